"""What the benchmarks share: a free loopback port, percentiles, a `qa serve` to talk to."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def start_server(
    index: Path,
    *,
    workers: int = 2,
    env: dict[str, str] | None = None,
    wait: float = 600,
    log: Path | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `qa serve` on a free loopback port and wait until its index is ready; with
    ``log``, the server's output (gunicorn's and the workers' logs) goes to that file."""
    port = free_port()
    handle = open(log, "wb") if log is not None else None  # noqa: SIM115
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qa_service.cli",
            "serve",
            "--index",
            str(index),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        stdout=handle if handle is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if handle is not None else subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    if handle is not None:
        handle.close()  # the child holds its own copy
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/api/ready", timeout=5):
                return server, url
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("qa serve did not become ready")
