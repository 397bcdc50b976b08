"""``qa fetch riksdagen``: the real HTTP client against a replay server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from qa_service.answer import citation
from qa_service.cli import main
from qa_service.hashing import file_sha256
from qa_service.ingest import SourceFile, build_document, load_sidecars
from qa_service.readers import read_document
from qa_service.schema import Document, Person
from qa_service.sources.dokumentlista import (
    BadPage,
    SearchQuery,
    parse_page,
    rm_dates,
    search_url,
    split_query,
)
from qa_service.sources.http import RateLimit
from qa_service.sources.riksdagen import (
    BadResponse,
    FetchOptions,
    check_dokumentstatus,
    run_fetch,
)
from qa_service.sources.state import STATE_NAME, FetchState
from tests.conftest import ROOT, SHARED, needs_shared
from tests.replay import DATA, HTML_ERROR, Fault, Replay, load_payloads

FRS = ["HC129001", "HC129002", "HC129003"]
FR = ["HC119001", "HC119002"]


@pytest.fixture
def replay() -> Iterator[Replay]:
    server = Replay(load_payloads(sorted(DATA.glob("*.json"))))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def options(replay: Replay, out: Path, **kw: Any) -> FetchOptions:
    defaults: dict[str, Any] = {
        "out": out,
        "base_url": replay.base_url,
        "rate": 0,
        "timeout": 2.0,
        "retries": 2,
        "backoff": 0.01,
    }
    return FetchOptions(**{**defaults, **kw})


# -- the search answer, pure -------------------------------------------------------------


def _listing(dokument: Any, **counters: str) -> dict[str, Any]:
    listing: dict[str, Any] = {"@traffar": "2", "@sida": "1", "@sidor": "1", **counters}
    if dokument is not ...:
        listing["dokument"] = dokument
    return {"dokumentlista": listing}


@pytest.mark.parametrize(
    ("data", "ids", "total", "pages"),
    [
        (_listing([{"dok_id": "A1"}, {"dok_id": "A2"}]), ["A1", "A2"], 2, 1),
        # Exactly one hit: an object, not a list.
        (_listing({"dok_id": "A1"}, **{"@traffar": "1"}), ["A1"], 1, 1),
        (_listing(None, **{"@traffar": "0", "@sidor": "0"}), [], 0, 0),
        (_listing(..., **{"@traffar": "0", "@sidor": "0"}), [], 0, 0),
        (_listing([{"dok_id": "A1"}], **{"@traffar": " 250 ", "@sidor": "3"}), ["A1"], 250, 3),
    ],
)
def test_parse_page(data: Any, ids: list[str], total: int, pages: int) -> None:
    page = parse_page(data)
    assert [h.dok_id for h in page.hits] == ids
    assert (page.total, page.pages) == (total, pages)


@pytest.mark.parametrize(
    "data",
    [
        {"dokumentstatus": {}},
        [],
        _listing(["not a document"]),
        _listing([{"dok_id": "../../etc/passwd"}]),
        _listing([{"titel": "no id"}]),
    ],
)
def test_parse_page_refuses(data: Any) -> None:
    with pytest.raises(BadPage):
        parse_page(data)


def test_search_url_asks_for_json_and_the_page() -> None:
    query = SearchQuery(doktyp="frs", rm="2024/25", sok="segregation")
    url = search_url("https://data.riksdagen.se/", query, 3, 100)
    assert url.startswith("https://data.riksdagen.se/dokumentlista/?")
    for part in ("doktyp=frs", "rm=2024%2F25", "sok=segregation", "utformat=json", "p=3", "sz=100"):
        assert part in url


@pytest.mark.parametrize(
    ("query", "halves"),
    [
        (
            SearchQuery(from_date="2024-01-01", tom_date="2024-01-04"),
            [("2024-01-01", "2024-01-02"), ("2024-01-03", "2024-01-04")],
        ),
        (
            SearchQuery(rm="2024/25"),
            [("2024-06-01", "2025-03-17"), ("2025-03-18", "2025-12-31")],
        ),
        (SearchQuery(from_date="2024-05-05", tom_date="2024-05-05"), []),
        (
            SearchQuery(tom_date="1971-01-02"),
            [("1971-01-01", "1971-01-01"), ("1971-01-02", "1971-01-02")],
        ),
    ],
)
def test_split_query(query: SearchQuery, halves: list[tuple[str, str]]) -> None:
    parts = split_query(query, today=dt.date(2026, 1, 1))
    assert [(p.from_date, p.tom_date) for p in parts] == halves
    assert all(p.rm == query.rm for p in parts)


@pytest.mark.parametrize(
    ("rm", "expected"),
    [
        ("2024/25", (dt.date(2024, 6, 1), dt.date(2025, 12, 31))),
        ("1999/2000", (dt.date(1999, 6, 1), dt.date(2000, 12, 31))),
        ("2024", None),
    ],
)
def test_rm_dates(rm: str, expected: Any) -> None:
    assert rm_dates(rm) == expected


GOOD = json.dumps(
    {"dokumentstatus": {"dokument": {"dok_id": "H1", "html": "<p>Text</p>"}}}
).encode()


@pytest.mark.parametrize(
    ("content", "ctype", "reason"),
    [
        (b"", "application/json", "empty answer"),
        (b"<!DOCTYPE html><html>fel</html>", "application/json", "HTML page"),
        (b'{"x": 1}', "text/html", "HTML page"),
        (GOOD[:-20], "application/json", "truncated or invalid JSON"),
        (b'{"dokumentstatus": null}', "application/json", "without a dokumentstatus"),
        (GOOD.replace(b'"H1"', b'"H2"'), "application/json", "not 'H1'"),
        (GOOD.replace(b"<p>Text</p>", b""), "application/json", "no body"),
    ],
)
def test_check_dokumentstatus_says_what_is_wrong(content: bytes, ctype: str, reason: str) -> None:
    with pytest.raises(BadResponse, match=reason):
        check_dokumentstatus(content, ctype, "H1")


def test_check_dokumentstatus_accepts_a_document() -> None:
    assert check_dokumentstatus(GOOD, "application/json; charset=utf-8", "h1")["dokument"]


def test_rate_limit_spaces_requests() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limit = RateLimit(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        limit.wait()
    assert slept == [0.25, 0.25]
    assert RateLimit(0).wait() == 0.0


# -- against the replay server ----------------------------------------------------------


def test_done_when_fetch_once_then_nothing(replay: Replay, tmp_path: Path) -> None:
    out = tmp_path / "corpus" / "riksdagen"
    args = ["fetch", "riksdagen", "--doktyp", "frs", "--rm", "2024/25", "--sok", "segregation"]
    args += ["--out", str(out), "--base-url", replay.base_url, "--rate", "0", "--json"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report["listed"] == 2 and report["new"] == 2
    assert report["downloaded"] == 4 and report["questions"] == 2  # both answers and questions
    assert report["failed"] == [] and report["listing_errors"] == []
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == [
        ".qa-fetch-state.jsonl",
        "SOURCE.md",
        "fr/HC119001.json",
        "fr/HC119002.json",
        "frs/HC129001.json",
        "frs/HC129002.json",
        "manifest.jsonl",
    ]
    assert (out / "frs/HC129001.json").read_bytes() == (DATA / "hc129001.json").read_bytes()
    assert "Sveriges riksdag" in (out / "SOURCE.md").read_text(encoding="utf-8")
    # Every document once; search pages built by us, never from @nasta_sida.
    assert sorted(replay.document_requests()) == sorted(
        f"/dokumentstatus/{d}.json" for d in ["HC129001", "HC129002", *FR]
    )
    assert all("qa_service/" in agent for agent in replay.agents)

    before = len(replay.document_requests())
    # The service's address from QA_RIKSDAGEN_URL this time.
    at = args.index("--base-url")
    second = CliRunner(env={"QA_RIKSDAGEN_URL": replay.base_url}).invoke(
        main, args[:at] + args[at + 2 :]
    )
    assert second.exit_code == 0, second.output
    again = json.loads(second.output)
    assert again["downloaded"] == 0 and again["unchanged"] == 2
    assert len(replay.document_requests()) == before


def test_answer_cites_its_question_author_and_number(replay: Replay, tmp_path: Path) -> None:
    out = tmp_path / "riksdagen"
    run_fetch(options(replay, out, doktyp=("frs",), sok="segregation"))
    files = [SourceFile(p, p.relative_to(out).as_posix()) for p in out.rglob("*.json")]
    sidecars = load_sidecars([SourceFile(out / "manifest.jsonl", "manifest.jsonl"), *files])

    def document(source: str) -> Document:
        item = next(f for f in files if f.source == source)
        result = read_document(item.path, item.source)
        return build_document(
            item, result, file_sha256(item.path), sidecars.get(item.path.resolve())
        )[0]

    def cite(source: str) -> str:
        return citation(document(source))

    answer = document("frs/HC129001.json").meta
    assert answer.question is not None and answer.question.dok_id == "HC119001"
    assert answer.question.author == Person("Anna Andersson", "S", "frågeställare")
    assert answer.minister == Person("Erik Exempelsson", "L", "statsråd")
    assert (answer.doctype, answer.rm, answer.beteckning, answer.date) == (
        "Svar på skriftlig fråga",
        "2024/25",
        "9001",
        "2025-03-19",
    )

    # 9001 names its asker only in its question: the fetch links them. The minister of an
    # answer is the one who answers it (besvaradav); of the question, its addressee.
    assert cite("frs/HC129001.json").startswith(
        "Svar på fråga 2024/25:9001 av Anna Andersson (S) besvarad av Erik Exempelsson (L), "
        "”Segregationen på arbetsmarknaden i Exempelstad”, 2025-03-19"
    )
    # 9002 has no reference; its number and its body's first line link it.
    assert cite("frs/HC129002.json").startswith(
        "Svar på fråga 2024/25:9002 av Bo Berg (M) besvarad av Erik Exempelsson (L)"
    )
    assert cite("fr/HC119001.json").startswith(
        "Skriftlig fråga 2024/25:9001 av Anna Andersson (S) till Erik Exempelsson (L)"
    )


def test_paging_single_hit_pages_and_no_next_page_link(replay: Replay, tmp_path: Path) -> None:
    report = run_fetch(options(replay, tmp_path / "o", page_size=1, questions=False))
    assert report.listed == 7 and report.downloaded == 7 and report.ok
    pages = [p for p in replay.requests if p.startswith("/dokumentlista/")]
    assert len(pages) == 7 and all("utformat=json" in p for p in pages)
    assert [p for p in pages if "p=7" in p]


def test_deep_paging_is_split_by_date(tmp_path: Path) -> None:
    server = Replay(load_payloads(sorted(DATA.glob("*.json"))), deep_limit=2)
    server.start()
    try:
        report = run_fetch(
            options(server, tmp_path / "o", page_size=1, max_pages=2, questions=False)
        )
    finally:
        server.stop()
    assert report.listed == 7 and report.downloaded == 7
    assert report.ok and report.warnings == []
    assert any("from=" in p for p in server.requests)


def test_retries_429_with_retry_after_and_500(replay: Replay, tmp_path: Path) -> None:
    replay.fault("/dokumentstatus/HC129001.json", Fault(429, {"Retry-After": "1"}))
    replay.fault("/dokumentstatus/HC129002.json", Fault(500), Fault(503))
    replay.fault("/dokumentlista/", Fault(502))
    started = time.monotonic()
    report = run_fetch(options(replay, tmp_path / "o", doktyp=("frs",), sok="segregation"))
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    assert report.ok and report.downloaded == 4
    assert replay.document_requests().count("/dokumentstatus/HC129002.json") == 3


def test_a_document_that_keeps_failing_is_reported_and_the_run_goes_on(
    replay: Replay, tmp_path: Path
) -> None:
    replay.fault("/dokumentstatus/HC129001.json", *[Fault(500)] * 3)
    out = tmp_path / "o"
    report = run_fetch(options(replay, out, doktyp=("frs",), sok="segregation"))
    assert report.failed == [{"dok_id": "HC129001", "reason": "HTTP 500 Internal Server Error"}]
    assert report.downloaded == 2 and not (out / "frs/HC129001.json").exists()
    again = run_fetch(options(replay, out, doktyp=("frs",), sok="segregation"))
    assert again.ok and again.new == 1 and again.downloaded == 2  # the answer and its question


def test_time_out_is_retried_then_reported(replay: Replay, tmp_path: Path) -> None:
    replay.fault("/dokumentstatus/HC129001.json", Fault(delay=1.0))
    replay.fault("/dokumentstatus/HC129002.json", *[Fault(delay=1.0)] * 2)
    report = run_fetch(
        options(replay, tmp_path / "o", doktyp=("frs",), sok="segregation", timeout=0.3, retries=1)
    )
    assert [f["dok_id"] for f in report.failed] == ["HC129002"]
    assert report.failed[0]["reason"].startswith("timed out")
    assert (tmp_path / "o/frs/HC129001.json").is_file()


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(truncate=True), "truncated answer"),
        (Fault(body=(DATA / "hc129001.json").read_bytes()[:300]), "truncated or invalid JSON"),
        (HTML_ERROR, "HTML page"),
        (Fault(body=b""), "empty answer"),
        (Fault(404, body=b"<html>Not found</html>", content_type="text/html"), "HTTP 404"),
    ],
)
def test_bad_answers_are_reported_per_document(
    replay: Replay, tmp_path: Path, fault: Fault, reason: str
) -> None:
    replay.fault("/dokumentstatus/HC129001.json", fault)
    out = tmp_path / "o"
    report = run_fetch(options(replay, out, doktyp=("frs",), sok="segregation"))
    assert len(report.failed) == 1 and reason in report.failed[0]["reason"]
    assert report.downloaded == 2  # the other answer and its question
    assert not (out / "frs/HC129001.json").exists()
    assert not [p for p in out.rglob(".*part*")]


def test_missing_body_and_a_changed_document(replay: Replay, tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert run_fetch(options(replay, out, doktyp=("mot",))).downloaded == 2
    data = json.loads((DATA / "h602993.json").read_bytes())
    data["dokumentstatus"]["dokument"]["systemdatum"] = "2026-01-01 10:00:00"
    data["dokumentstatus"]["dokument"]["titel"] = "Startjobbskatteavdrag (ändrad)"
    replay.put(json.dumps(data, ensure_ascii=False).encode())
    report = run_fetch(options(replay, out, doktyp=("mot",)))
    assert (report.changed, report.unchanged, report.downloaded) == (1, 1, 1)
    assert "(ändrad)" in (out / "mot/H602993.json").read_text(encoding="utf-8")
    data["dokumentstatus"]["dokument"]["html"] = ""
    data["dokumentstatus"]["dokument"]["systemdatum"] = "2026-02-01 10:00:00"
    replay.put(json.dumps(data, ensure_ascii=False).encode())
    report = run_fetch(options(replay, out, doktyp=("mot",)))
    assert report.failed == [
        {"dok_id": "H602993", "reason": "the document has no body (empty html and no speeches)"}
    ]
    assert "(ändrad)" in (out / "mot/H602993.json").read_text(encoding="utf-8")  # kept


def test_dry_run_writes_nothing(replay: Replay, tmp_path: Path) -> None:
    out = tmp_path / "o"
    report = run_fetch(options(replay, out, doktyp=("frs",), dry_run=True))
    assert [w["dok_id"] for w in report.would_fetch] == FRS
    assert not out.exists() and replay.document_requests() == []


def test_interrupted_run_resumes(replay: Replay, tmp_path: Path) -> None:
    for dok_id in ["H602993", "H6021441", *FR, *FRS]:
        replay.fault(f"/dokumentstatus/{dok_id}.json", Fault(delay=0.4))
    out = tmp_path / "o"
    command = [sys.executable, "-m", "qa_service.cli", "fetch", "riksdagen", "--out", str(out)]
    command += ["--base-url", replay.base_url, "--no-questions", "--rate", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    job = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / STATE_NAME
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if state.exists() and len(state.read_text(encoding="utf-8").splitlines()) >= 2:
            break
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=10)
    kept = FetchState.load(out).entries
    assert 2 <= len(kept) < 7
    for entry in kept.values():  # every recorded file is whole
        assert file_sha256(out / entry.file) == entry.sha256
    report = run_fetch(options(replay, out, questions=False))
    assert report.ok and report.unchanged == len(kept)
    assert report.downloaded == 7 - len(kept)
    assert not [p for p in out.rglob(".*part*")]
    assert len(FetchState.load(out).entries) == 7


@needs_shared
def test_recorded_dokumentstatus_of_the_shared_corpus(tmp_path: Path) -> None:
    raw = SHARED / "corpus" / "openriksdag" / "data" / "raw"
    paths = sorted(raw.glob("*/*.json"))
    server = Replay(load_payloads(paths))
    server.start()
    out = tmp_path / "o"
    try:
        report = run_fetch(
            options(server, out, doktyp=("mot",), rm=("2018/19",), sok="nyanlända", page_size=20)
        )
    finally:
        server.stop()
    assert report.ok and report.downloaded == report.listed >= 10
    originals = {p.name.upper().removesuffix(".JSON"): p for p in paths}
    for path in (out / "mot").glob("*.json"):
        assert path.read_bytes() == originals[path.stem].read_bytes()
        result = read_document(path, path.name)
        assert result.meta.doctype == "Motion" and result.meta.rm == "2018/19"
        assert result.meta.authors and all(a.party for a in result.meta.authors)


def test_limit_stops_after_n_and_the_rest_follows_next_time(replay: Replay, tmp_path: Path) -> None:
    out = tmp_path / "o"
    first = run_fetch(options(replay, out, doktyp=("mot",), limit=1))
    assert (first.new, first.downloaded) == (2, 1)
    second = run_fetch(options(replay, out, doktyp=("mot",)))
    assert (second.new, second.unchanged, second.downloaded) == (1, 1, 1)


def test_sync_refuses_an_out_folder_it_would_not_index(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    args = ["sync", str(tmp_path / "corpus"), "--out", str(tmp_path / "elsewhere")]
    result = CliRunner().invoke(main, [*args, "--base-url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "is not inside the folders to ingest" in result.output


def test_fetch_exits_1_when_documents_failed(replay: Replay, tmp_path: Path) -> None:
    replay.fault("/dokumentstatus/H602993.json", HTML_ERROR)
    args = ["fetch", "riksdagen", "--doktyp", "mot", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, [*args, "--base-url", replay.base_url, "--rate", "0"])
    assert result.exit_code == 1
    assert "Failed: 1" in result.output and "H602993: an HTML page" in result.output
    assert "Downloaded: 1" in result.output
