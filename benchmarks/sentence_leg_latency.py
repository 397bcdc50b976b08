"""What the sentence vectors cost a question over HTTP: two `qa serve` on the same build
with sentence vectors, one with the sentence leg and the similarity-chosen quote (the
default for such a build), one with both off, asked `/api/ask` question by question in
turn (which server goes first alternates), every question of the set in every round,
no question vectors kept between requests.

Usage: .venv/bin/python benchmarks/sentence_leg_latency.py --index <build with
           QA_SENTENCE_VECTORS> [--questions eval/questions.jsonl] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from common import latency_summary, start_server, timed_ask

from qa_service.evaluate import load_questions

ROOT = Path(__file__).resolve().parent.parent
OFF = {
    "QA_SENTENCE_LEG_WEIGHT": "0",
    "QA_QUOTE_SENTENCE_WEIGHT": "0",
    "QA_QUOTE_SENTENCE_MIN_SIMILARITY": "0",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, default=ROOT / "eval" / "questions.jsonl")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    texts = [q.question for q in load_questions(args.questions)]
    common = {"QA_RATE_LIMIT": "", "QA_QUERY_CACHE": "0"}
    servers = {
        "sentence leg and quote (default)": start_server(
            args.index, workers=args.workers, env=common
        ),
        "both off": start_server(args.index, workers=args.workers, env={**common, **OFF}),
    }
    try:
        names = list(servers)
        for name in names:  # one question each before timing: the workers' first requests
            for _ in range(2 * args.workers):
                timed_ask(servers[name][1], texts[0])
        seconds: dict[str, list[float]] = {name: [] for name in names}
        turn = 0
        for _ in range(args.rounds):
            for text in texts:
                order = names if turn % 2 == 0 else names[::-1]
                turn += 1
                for name in order:
                    seconds[name].append(timed_ask(servers[name][1], text))
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=30)
    result = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "index": str(args.index),
        "workers per server": args.workers,
        **{name: latency_summary(values) for name, values in seconds.items()},
    }
    first, second = (result[name]["p50_ms"] for name in names)
    result["p50 ratio (default / off)"] = round(first / second, 3)
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
