"""The real server and the real job as processes: gunicorn, index reload, SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa_service.config import Settings
from qa_service.ingest import run_ingest
from qa_service.store import IndexReader
from tests.conftest import write_small_corpus
from tests.servers import start_server

pytestmark = pytest.mark.model


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def post(url: str, body: dict) -> tuple[int, dict]:  # type: ignore[type-arg]
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def live(tmp_path: Path, embedder) -> Iterator[tuple[str, Path, Settings]]:  # type: ignore[no-untyped-def]
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = Settings(index_dir=tmp_path / "index", conversations_db=tmp_path / "c.db")
    run_ingest([corpus], settings, embedder=embedder, progress=False)
    server = start_server(tmp_path, settings, corpus)
    try:
        yield server.url, corpus, settings
    finally:
        server.stop()


def test_gunicorn_serves_api_chat_and_metrics(live) -> None:  # type: ignore[no-untyped-def]
    url, _, _ = live
    status, data = post(url + "/api/ask", {"question": "Hur många bor i utanförskapsområden?"})
    assert status == 200 and "710 000" in data["passages"][0]["text"]
    assert get(url + "/")[0] == 200
    status, body = post(url + "/api/ask", {"question": ""})
    assert status == 400 and body["error"]["code"] == "invalid_request"
    metrics = get(url + "/metrics")[1].decode()
    assert 'qa_requests_total{endpoint="/api/ask",method="POST",status="200"}' in metrics
    assert "qa_request_seconds_bucket" in metrics
    assert "qa_index_passages" in metrics


def test_new_index_is_picked_up_without_failed_requests(live, embedder) -> None:  # type: ignore[no-untyped-def]
    url, corpus, settings = live
    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            status, _ = post(url + "/api/ask", {"question": "jobbskatteavdrag", "top_k": 3})
            if status != 200:
                failures.append(str(status))

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in threads:
        thread.start()
    (corpus / "nytt.md").write_text(
        "# Kommunal lärlingsutbildning\n\nLärlingsutbildning för vuxna byggs ut i Kiruna.\n",
        encoding="utf-8",
    )
    run_ingest([corpus], settings, embedder=embedder, progress=False)
    found = False
    deadline = time.time() + 30
    while time.time() < deadline and not found:
        status, data = post(url + "/api/ask", {"question": "lärlingsutbildning i Kiruna"})
        found = status == 200 and data["passages"][0]["source"] == "nytt.md"
        time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join()
    assert found, "the new index was not picked up"
    assert failures == []


def test_sigkill_during_ingest_leaves_index_intact(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = Settings(index_dir=tmp_path / "index")
    run_ingest([corpus], settings, embedder=embedder, progress=False)
    published = settings.index_dir.resolve()
    passages = IndexReader(settings.index_dir).passage_count
    for n in range(30):
        (corpus / f"extra-{n}.md").write_text(
            f"# Text {n}\n\n" + f"Mening {n} om arbetsmarknaden och yrkesvux. " * 40,
            encoding="utf-8",
        )
    for delay in (0.5, 1.5, 3.0, 5.0):
        job = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "qa_service.cli",
                "ingest",
                str(corpus),
                "--index",
                str(settings.index_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        if job.poll() is None:
            job.send_signal(signal.SIGKILL)
        job.wait()
        if job.returncode == 0:
            break  # it finished before the kill: a complete new build is fine too
        assert settings.index_dir.resolve() == published
        reader = IndexReader(settings.index_dir)
        assert reader.passage_count == passages
    report = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert report.files_indexed + report.files_reused == 34  # 4 + 30 new
    assert IndexReader(settings.index_dir).passage_count > passages
