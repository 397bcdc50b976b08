"""A real `qa serve` (gunicorn) on a free loopback port, for the tests that need one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from qa_service.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(
    url: str, body: dict | None = None, method: str | None = None, timeout: float = 30
) -> tuple[int, dict]:  # type: ignore[type-arg]
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else {}


@dataclass
class Server:
    url: str
    port: int
    process: subprocess.Popen  # type: ignore[type-arg]
    settings: Settings
    corpus: Path

    def workers(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(base: Path, settings: Settings, corpus: Path, *, wait: bool = True) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "QA_CONVERSATIONS_DB": str(settings.conversations_db),
        "QA_RATE_LIMIT": "",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (base / f"server-{port}.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qa_service.cli",
            "serve",
            "--index",
            str(settings.index_dir),
            "--port",
            str(port),
            "--workers",
            "2",
            "--threads",
            "2",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    server = Server(f"http://127.0.0.1:{port}", port, process, settings, corpus)
    deadline = time.time() + 120
    while wait and time.time() < deadline:
        try:
            # Both workers: each answers once it has loaded the index.
            if call(server.url + "/api/ready", timeout=5)[0] == 200 and len(server.workers()) == 2:
                break
        except OSError:
            time.sleep(0.3)
        if process.poll() is not None:
            break
    else:
        if wait:
            server.stop()
            pytest.fail("server did not become ready: " + (base / log.name).read_text()[-3000:])
    return server
