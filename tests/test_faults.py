"""Fault injection against the service side: real gunicorn processes, real sockets, real
files. Each test is one failure an outside campaign found (issue 15); the ingest side's
faults are tested in test_ingest.py."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from qa_service.config import Settings
from qa_service.ingest import run_ingest
from qa_service.service import QAService
from qa_service.web import create_app
from tests.conftest import write_small_corpus
from tests.servers import Server, call, start_server

pytestmark = pytest.mark.model

QUESTION = "Hur många personer bor i utanförskapsområden?"


def raw_exchange(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send bytes as they are, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def split_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("live")
    corpus = write_small_corpus(base / "corpus")
    settings = Settings(index_dir=base / "index", conversations_db=base / "c.sqlite3")
    run_ingest([corpus], settings, embedder=embedder, progress=False)
    server = start_server(base, settings, corpus)
    try:
        yield server
    finally:
        server.stop()


# -- 1. concurrent turns of one conversation, and deletion during asks ------------------


def test_parallel_follow_ups_are_each_stored_once_in_order(live: Server) -> None:
    status, first = call(live.url + "/api/ask", {"question": QUESTION, "top_k": 2})
    assert status == 200
    cid = first["conversation_id"]
    asked: list[str] = []
    statuses: list[int] = []
    with ThreadPoolExecutor(16) as pool:
        for round_ in range(10):
            questions = [f"Och hur många av dem är barn? ({round_}-{i})" for i in range(16)]
            asked += questions
            bodies = [{"question": q, "conversation_id": cid, "top_k": 2} for q in questions]
            results = pool.map(lambda b: call(live.url + "/api/ask", b), bodies)
            statuses += [s for s, _ in results]
    assert statuses == [200] * 160
    status, conversation = call(f"{live.url}/api/conversations/{cid}")
    turns = conversation["turns"]
    stored = [t["question"] for t in turns]
    assert stored[0] == QUESTION
    assert sorted(stored[1:]) == sorted(asked)  # each exactly once
    times = [t["created_at"] for t in turns]
    assert times == sorted(times)  # in the order they were stored


def test_deleting_a_conversation_while_follow_ups_run(live: Server) -> None:
    outcomes: list[int] = []
    for _ in range(3):
        cid = call(live.url + "/api/ask", {"question": QUESTION, "top_k": 2})[1]["conversation_id"]
        body = {"question": "Och hur många av dem är barn?", "conversation_id": cid, "top_k": 2}
        with ThreadPoolExecutor(9) as pool:
            asks = [pool.submit(call, live.url + "/api/ask", body) for _ in range(8)]
            time.sleep(0.05)
            deleted = pool.submit(call, f"{live.url}/api/conversations/{cid}", None, "DELETE")
            outcomes += [f.result()[0] for f in asks]
            assert deleted.result()[0] == 204
        assert call(f"{live.url}/api/conversations/{cid}")[0] == 404
    assert set(outcomes) <= {200, 404}, outcomes


# -- 7. slow clients ------------------------------------------------------------------


def test_health_answers_every_probe_within_a_second_while_slow_clients_wait(
    live: Server,
) -> None:
    held: list[socket.socket] = []
    try:
        for i in range(16):
            sock = socket.create_connection(("127.0.0.1", live.port))
            if i % 2:  # half a request head, then silence
                sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            else:  # the head and half the body
                sock.sendall(
                    b"POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 200\r\n\r\n{"question": "sl'
                )
            held.append(sock)
        time.sleep(0.5)  # let every worker take its share of them
        for _ in range(20):
            started = time.monotonic()
            status, body = call(live.url + "/api/health", timeout=1.0)
            assert status == 200 and body == {"status": "ok"}
            assert time.monotonic() - started < 1.0
        # Real work goes on too.
        assert call(live.url + "/api/ask", {"question": QUESTION}, timeout=10)[0] == 200
    finally:
        for sock in held:
            sock.close()


# -- 6 and 11. gunicorn's own answers, bodies it frames ---------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        # A chunked body whose chunk size is not hexadecimal.
        (
            b"POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n",
            400,
        ),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (
            b"POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000\r\n\r\n{}",
            413,
        ),
    ],
)
def test_malformed_requests_get_the_json_error_shape(
    live: Server, request_bytes: bytes, status: int
) -> None:
    got, headers, body = split_response(raw_exchange(live.port, request_bytes))
    assert got == status
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert set(error) == {"status", "code", "message"} and error["status"] == status


def test_a_chunked_body_is_read_whole(live: Server) -> None:
    body = json.dumps({"question": QUESTION, "top_k": 1}).encode()
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7]) for i in range(0, len(body), 7)
    )
    raw = (
        b"POST /api/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks + b"0\r\n\r\n"
    )
    status, _, answer = split_response(raw_exchange(live.port, raw))
    assert status == 200 and json.loads(answer)["question"] == QUESTION


# -- 5. a damaged published build ------------------------------------------------------

DAMAGEABLE = [
    "vectors.faiss",
    "passages.sqlite3",
    "documents.npy",
    "passage_documents.npy",
    "shingles.npy",
    "shingle_offsets.npy",
    "lexical/data.csc.index.npy",
    "lexical/indices.csc.index.npy",
    "lexical/vocab.index.json",
    "lexical/params.index.json",
    "lexical/size",
    "manifest.json",
]


@pytest.fixture
def own_index(tmp_path: Path, small_index: Settings) -> Settings:
    """A private copy of the small index, published the way ``qa ingest`` does."""
    builds = tmp_path / ".index.builds"
    builds.mkdir()
    build = builds / small_index.index_dir.resolve().name
    shutil.copytree(small_index.index_dir.resolve(), build)
    settings = dataclasses.replace(
        small_index, index_dir=tmp_path / "index", conversations_db=tmp_path / "c.sqlite3"
    )
    os.symlink(os.path.relpath(build, tmp_path), settings.index_dir)
    return settings


@pytest.mark.parametrize("damaged", DAMAGEABLE)
def test_a_damaged_build_is_refused_and_the_loaded_one_kept(
    own_index: Settings, embedder, damaged: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("qa_service.service.RELOAD_CHECK_SECONDS", 0.0)
    service = QAService(own_index, embedder=embedder)
    service.load()
    loaded = service.index_version
    client = create_app(own_index, service=service).test_client()
    publish_copy(own_index, damage=damaged)
    for _ in range(2):  # the damaged build is tried once, then not again
        ready = client.get("/api/ready")
        assert ready.status_code == 200 and ready.get_json()["index"]["build"] == loaded
        assert client.post("/api/ask", json={"question": QUESTION}).status_code == 200
    # A worker starting now has no build to keep: 503 with the reason, never a 500.
    fresh = QAService(own_index, embedder=embedder)
    fresh_client = create_app(own_index, service=fresh).test_client()
    for path in ("/api/ready", "/api/search?q=sfi", "/api/facets"):
        response = fresh_client.get(path)
        assert response.status_code == 503, (path, response.get_data(as_text=True))
        error = response.get_json()["error"]
        assert error["code"] == "index_unavailable"
        assert Path(damaged).name in error["message"] or damaged.startswith("lexical")


def test_qa_serve_refuses_a_damaged_build_with_a_sentence(own_index: Settings, runner) -> None:  # type: ignore[no-untyped-def]
    from qa_service.cli import main

    publish_copy(own_index, damage="passages.sqlite3")
    result = runner.invoke(main, ["serve", "--index", str(own_index.index_dir)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a ClickException, not a traceback
    assert "passages.sqlite3" in result.output and "damaged" in result.output


# -- 9. readiness with the conversation database on a read-only or full disk ------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root; skipped otherwise): a disk that fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_ready_says_no_when_the_conversation_disk_is_read_only(
    tmp_path: Path, small_index: Settings, embedder
) -> None:  # type: ignore[no-untyped-def]
    writable = tmp_path / "rw"
    settings = dataclasses.replace(small_index, conversations_db=writable / "c.sqlite3")
    service = QAService(settings, embedder=embedder)
    service.load()
    cid = service.ask(QUESTION)["conversation_id"]
    # The same directory seen through a read-only bind mount (needs root).
    view = tmp_path / "ro"
    view.mkdir()
    done = subprocess.run(["mount", "--bind", str(writable), str(view)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        read_only = dataclasses.replace(settings, conversations_db=view / "c.sqlite3")
        worker = QAService(read_only, embedder=embedder)
        worker.load()
        client = create_app(read_only, service=worker).test_client()
        ready = client.get("/api/ready")
        assert ready.status_code == 503, ready.get_data(as_text=True)
        assert ready.get_json()["error"]["code"] == "conversations_unavailable"
        for body in ({"question": QUESTION}, {"question": "Och barnen?", "conversation_id": cid}):
            asked = client.post("/api/ask", json=body)
            assert asked.status_code == 503, asked.get_data(as_text=True)
        assert client.get(f"/api/conversations/{cid}").status_code in (200, 503)
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def test_ready_says_no_when_the_conversation_disk_is_full(
    small_disk: Path, small_index: Settings, embedder
) -> None:  # type: ignore[no-untyped-def]
    settings = dataclasses.replace(small_index, conversations_db=small_disk / "c.sqlite3")
    service = QAService(settings, embedder=embedder)
    service.load()
    client = create_app(settings, service=service).test_client()
    assert client.get("/api/ready").status_code == 200
    filler = small_disk / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    try:
        asked = client.post("/api/ask", json={"question": QUESTION + " " + "x" * 900})
        assert asked.status_code == 503, asked.get_data(as_text=True)
        assert client.get("/api/ready").status_code == 503
    finally:
        filler.unlink()
    assert client.get("/api/ready").status_code == 200


# -- 4. a worker restarting while the published index is unusable -----------------------


def publish_copy(settings: Settings, damage: str | None = None) -> Path:
    """Publish a copy of the current build, with one of its files cut in half."""
    current = settings.index_dir.resolve()
    copy = current.parent / f"copy-{uuid.uuid4().hex[:8]}"
    shutil.copytree(current, copy)
    if damage is not None:
        path = copy / damage
        with path.open("r+b") as handle:
            handle.truncate(path.stat().st_size // 2)
    link = settings.index_dir.parent / f".{settings.index_dir.name}.tmp-{uuid.uuid4().hex[:6]}"
    os.symlink(os.path.relpath(copy, settings.index_dir.parent), link)
    os.replace(link, settings.index_dir)
    return copy


def test_a_worker_restarted_with_a_damaged_index_serves_503_and_the_master_stays(
    live: Server,
) -> None:
    # Last in this module: it damages the live server's index, and restores it.
    server, settings = live, live.settings
    good = settings.index_dir.resolve()
    try:
        publish_copy(settings, damage="vectors.faiss")
        victim = server.workers()[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.time() + 60
        seen: set[int] = set()
        while time.time() < deadline and 503 not in seen:
            workers = server.workers()
            if len(workers) == 2 and victim not in workers:
                try:
                    status, body = call(server.url + "/api/ready", timeout=5)
                except OSError:
                    status, body = 0, {}
                seen.add(status)
                if status == 503:
                    assert body["error"]["code"] == "index_unavailable"
                    assert "vectors.faiss" in body["error"]["message"]
            time.sleep(0.2)
        assert server.process.poll() is None, "gunicorn's master stopped"
        assert 503 in seen and seen <= {200, 503}, seen
        # A usable build published again: every worker serves it.
        os.replace(_link_to(settings, good), settings.index_dir)
        statuses = []
        deadline = time.time() + 60
        while time.time() < deadline:
            statuses = [call(server.url + "/api/ready", timeout=5)[0] for _ in range(10)]
            if statuses == [200] * 10:
                break
            time.sleep(1)
        assert statuses == [200] * 10
    finally:
        if settings.index_dir.resolve() != good:
            os.replace(_link_to(settings, good), settings.index_dir)


def _link_to(settings: Settings, build: Path) -> Path:
    link = settings.index_dir.parent / f".{settings.index_dir.name}.tmp-{uuid.uuid4().hex[:6]}"
    os.symlink(os.path.relpath(build, settings.index_dir.parent), link)
    return link
