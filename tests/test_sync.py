"""``qa sync``: fetch from the replay server, ingest, and a running ``qa serve`` answers
from the new documents without a restart."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa_service.cli import main
from qa_service.config import Settings
from qa_service.ingest import run_ingest
from tests.conftest import SEED
from tests.replay import DATA, Replay, load_payloads
from tests.servers import start_server
from tests.test_server import post

pytestmark = pytest.mark.model


@pytest.fixture
def replay_url() -> Iterator[str]:
    server = Replay(load_payloads(sorted(DATA.glob("*.json"))))
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


def test_sync_makes_a_running_server_answer_from_new_documents(
    tmp_path: Path,
    replay_url: str,
    embedder,  # type: ignore[no-untyped-def]
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    index = tmp_path / "index"
    run_ingest([corpus], Settings(index_dir=index), embedder=embedder, progress=False)
    server = start_server(
        tmp_path, Settings(index_dir=index, conversations_db=tmp_path / "c.db"), corpus
    )
    url = server.url
    try:
        question = {"question": "Hur många platser för lärlingsjobb inför regeringen i Norrby?"}
        status, before = post(url + "/api/ask", question)
        assert status == 200
        assert all(not p["source"].startswith("riksdagen/") for p in before["passages"])

        args = ["sync", str(corpus), "--out", str(corpus / "riksdagen"), "--index", str(index)]
        args += ["--doktyp", "frs", "--sok", "segregation", "--base-url", replay_url]
        args += ["--rate", "0", "--json"]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        reports = json.loads(result.output)
        assert reports["fetch"]["downloaded"] == 4
        assert reports["ingest"]["published"] and reports["ingest"]["files_indexed"] == 4

        found = None
        deadline = time.time() + 30
        while time.time() < deadline and found is None:
            status, data = post(url + "/api/ask", question)
            top = data["passages"][0] if status == 200 and data["passages"] else {}
            if top.get("source") == "riksdagen/frs/HC129001.json":
                found = top
            time.sleep(0.3)
        assert found is not None, "the running server did not answer from the new build"
        assert found["citation"].startswith(
            "Svar på fråga 2024/25:9001 av Anna Andersson (S) besvarad av Erik Exempelsson (L)"
        )
        assert found["document"]["question"]["author"]["name"] == "Anna Andersson"
        assert "400 platser" in found["text"]
    finally:
        server.stop()
