"""What the benchmarks share: a free loopback port, percentiles, a `qa serve` to talk to,
a child process measured on its own."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ChildRun:
    """A finished child process and what it alone used."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float
    #: The child's own peak resident memory (with the children it waited for). Not
    #: ``getrusage(RUSAGE_CHILDREN)``, whose ``ru_maxrss`` is the largest of every child
    #: this process has waited for so far (a server started earlier, say).
    peak_rss_mb: float


def run_child(command: list[str], env: dict[str, str] | None = None) -> ChildRun:
    """Run ``command`` to its end; its output, wall and CPU seconds and peak RSS, read by
    ``os.wait4`` from that child's own resource usage."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - began
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(
            returncode=child.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            peak_rss_mb=usage.ru_maxrss / 1024,
        )


def timed_ask(url: str, question: str, *, top_k: int = 5, timeout: float = 30) -> float:
    """Seconds one ``POST /api/ask`` of ``question`` takes, its answer read."""
    body = json.dumps({"question": question, "top_k": top_k}).encode()
    request = urllib.request.Request(
        f"{url}/api/ask", data=body, headers={"Content-Type": "application/json"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()
    return time.perf_counter() - started


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """Requests, p50, p95 and mean in milliseconds of a list of seconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "requests": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


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
