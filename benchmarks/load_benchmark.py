"""A bounded loopback load against `qa serve` (gunicorn), optionally across an index publish.

Usage:
  .venv/bin/python benchmarks/load_benchmark.py --index indexes/bench-shared \
      [--clients 8] [--seconds 60] [--publish-during]

Clients send a mix of POST /api/ask and GET /api/search with the question set's
questions to 127.0.0.1 only, for a fixed time, and count every failure (non-2xx or
connection error). With --publish-during, `qa ingest` publishes a new build of the same
index half-way (the shared corpus plus one small extra file, so one file is embedded).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from common import percentile, start_server

from qa_service.evaluate import load_questions

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def request(url: str, question: str, rng: random.Random) -> int:
    if rng.random() < 0.5:
        body = json.dumps({"question": question, "top_k": 5}).encode()
        req = urllib.request.Request(
            url + "/api/ask", data=body, headers={"Content-Type": "application/json"}
        )
    else:
        query = urllib.parse.urlencode({"q": question, "top_k": 5})
        req = urllib.request.Request(f"{url}/api/search?{query}")
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def ready_build(url: str) -> str:
    with urllib.request.urlopen(url + "/api/ready", timeout=30) as response:
        return str(json.loads(response.read())["index"]["build"])


def publish(index: Path, extra: Path) -> dict[str, object]:
    (extra / "publish-marker.md").write_text(
        f"# Publicering\n\nDetta index publicerades {time.time()}.\n", encoding="utf-8"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "qa_service.cli",
            "ingest",
            str(SHARED / "corpus"),
            str(SHARED / "seed"),
            str(extra),
            "--index",
            str(index),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr[-500:]}
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "published": report.get("published"),
        "passages_embedded": report.get("passages_embedded"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--publish-during", action="store_true")
    args = parser.parse_args()
    questions = [q.question for q in load_questions(ROOT / "eval" / "questions.jsonl")]

    # The benchmark measures the server, not the rate limiter; the question set is asked
    # over and over, so no question vector is kept between requests.
    server, url = start_server(
        args.index,
        workers=args.workers,
        env={
            "QA_CONVERSATIONS_DB": tempfile.mktemp(suffix=".sqlite3"),
            "QA_RATE_LIMIT": "",
            "QA_QUERY_CACHE": "0",
        },
    )
    try:
        build_before = ready_build(url)
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        lock = threading.Lock()
        stop_at = time.time() + args.seconds

        def client(seed: int) -> None:
            rng = random.Random(seed)
            while time.time() < stop_at:
                started = time.perf_counter()
                status = request(url, rng.choice(questions), rng)
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    statuses[status] = statuses.get(status, 0) + 1

        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        started = time.time()
        for thread in threads:
            thread.start()
        publish_result = None
        if args.publish_during:
            time.sleep(args.seconds / 3)
            with tempfile.TemporaryDirectory() as extra:
                publish_result = publish(args.index, Path(extra))
        for thread in threads:
            thread.join()
        elapsed = time.time() - started
        build_after = ready_build(url)
        ms = [s * 1000 for s in latencies]
        failed = sum(n for status, n in statuses.items() if not 200 <= status < 400)
        result = {
            "clients": args.clients,
            "workers": args.workers,
            "seconds": round(elapsed, 1),
            "requests": len(ms),
            "requests_per_second": round(len(ms) / elapsed, 2),
            "p50_ms": round(percentile(ms, 50), 1),
            "p95_ms": round(percentile(ms, 95), 1),
            "p99_ms": round(percentile(ms, 99), 1),
            "failed": failed,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "publish": publish_result,
            "build_before": build_before,
            "build_after": build_after,
        }
    finally:
        server.terminate()
        server.wait(timeout=60)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"load-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
