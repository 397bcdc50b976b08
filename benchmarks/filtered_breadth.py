"""How wide a filtered approximate search should look: time and agreement with exact
search of the dense leg under a filter, by breadth, candidates and widest breadth.

Usage (after ``scale_benchmark.py --passages N`` has built and cached the index):
  .venv/bin/python benchmarks/filtered_breadth.py --index /tmp/qa-scale/1000000/index \
      [--questions 40] [--shares 0.14,0.3] [--variants 128:200:1024,2048:3200:4096,...]

A filter here allows whole documents, drawn at random with the share's probability (as a
filter by kind, year or party allows whole documents). The truth is the allowed passages
scored exactly (``q·p + w·q·d``). Each variant is ``efSearch:candidates:widest``: a
filter leaving a share s makes the search look 1/s as wide (at most ``direct_share``
times), but no wider than ``widest`` (``QA_APPROXIMATE_WIDEST_BREADTH``). The variants
run interleaved, twice, under SCHED_FIFO when allowed; single-threaded FAISS, as served.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import percentile
from scale_benchmark import approximate_parts, dense_leg, question_vectors, realtime

from qa_service.config import Settings
from qa_service.evaluate import load_questions
from qa_service.service import QAService

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--shares", default="0.14,0.3")
    parser.add_argument(
        "--variants", default="128:200:1024,2048:3200:2048,2048:3200:4096,2048:3200:16384"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = Settings.from_env(index_dir=args.index, query_cache=0)
    service = QAService(settings)
    service.load()
    service.warm_up()
    questions = [q.question for q in load_questions(ROOT / "eval" / "questions.jsonl")]
    vectors = question_vectors(service, questions[: args.questions])
    parts = approximate_parts(dense_leg(service))
    if len(parts) != 1:
        raise SystemExit("this measures a build whose first segment alone is approximate")
    part = parts[0]
    owner = np.load(args.index / "passage_documents.npy")
    rng = np.random.default_rng(args.seed)
    variants = [tuple(int(x) for x in v.split(":")) for v in args.variants.split(",")]
    depth = settings.candidate_depth
    for share in (float(s) for s in args.shares.split(",")):
        allowed = (rng.random(int(owner.max()) + 1) < share)[owner]
        rows = np.flatnonzero(allowed)
        allowed_share = round(float(allowed.mean()), 3)
        truth, exact_ms = [], []
        with realtime():
            for vector in vectors:
                began = time.perf_counter()
                truth.append([r for r, _ in part._score_rows(vector, rows, depth)])
                exact_ms.append((time.perf_counter() - began) * 1000)
        print(
            json.dumps({"share": allowed_share, "exact_rows_p50_ms": percentile(exact_ms, 50)}),
            flush=True,
        )
        for round_ in range(args.rounds):
            for breadth, candidates, widest in variants if round_ % 2 == 0 else variants[::-1]:
                part.approximate_breadth = breadth
                part.approximate_candidates = candidates
                part.approximate_widest = widest
                times, recall, same = [], [], 0
                with realtime():
                    for vector, expected in zip(vectors, truth, strict=True):
                        began = time.perf_counter()
                        got = [r for r, _ in part.search_vector(vector, depth, allowed)]
                        times.append((time.perf_counter() - began) * 1000)
                        recall.append(len(set(got[:10]) & set(expected[:10])) / 10)
                        same += got == expected
                row = {
                    "share": allowed_share,
                    "round": round_ + 1,
                    "variant": f"{breadth}:{candidates}:{widest}",
                    "p50_ms": round(percentile(times, 50), 1),
                    "p95_ms": round(percentile(times, 95), 1),
                    "recall_at_10": round(float(np.mean(recall)), 4),
                    f"top{depth}_same": f"{same}/{len(vectors)}",
                }
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
