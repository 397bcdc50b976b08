"""Which approximate index for the dense leg: recall@10 against exact search and search
time of FAISS graph (HNSW) and inverted-file (IVF) indexes, flat or 8-bit (SQ8) codes.

Usage:
  nice -n 19 .venv/bin/python benchmarks/approximate_choice.py --passages 100000

The vectors are the shared index's real ones plus noisy copies of them (as
scale_benchmark.py grows its index: each copy the real vector plus Gaussian noise,
normalised); the questions are eval/questions.jsonl encoded by the real model. Each index
proposes ``--candidates`` passages, scored again exactly as the service does
(qa_service/retrieval.py); recall@10 is of those against the exact top 10 by ``q·p``.
Search times are single-threaded (the service's FAISS setting), under SCHED_FIFO when
allowed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import faiss
import numpy as np
from common import percentile
from scale_benchmark import noisy, realtime

from qa_service.approximate import ApproximateSettings, build_approximate, search_parameters
from qa_service.config import Settings
from qa_service.embedding import make_embedder
from qa_service.evaluate import load_questions
from qa_service.store import IndexReader

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--shared", type=Path, default=Path("/work/main/indexes/shared"))
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument(
        "--factories", default="HNSW32,SQ8;HNSW32,Flat;HNSW16,SQ8;IVF{nlist},SQ8;IVF{nlist},Flat"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    real = IndexReader(args.shared).all_vectors()
    parents = rng.integers(0, len(real), args.passages - len(real))
    vectors = np.vstack([real, noisy(real[parents], args.noise, rng)])
    embedder = make_embedder(Settings())
    questions = [q.question for q in load_questions(ROOT / "eval" / "questions.jsonl")]
    queries = np.vstack([embedder.encode_query(q) for q in questions]).astype(np.float32)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    faiss.omp_set_num_threads(1)
    with realtime():
        began = time.perf_counter()
        _, truth = exact.search(queries, 10)
        exact_ms = (time.perf_counter() - began) * 1000 / len(queries)
    nlist = int(4 * np.sqrt(args.passages))
    results = {"passages": args.passages, "exact_ms_per_question": round(exact_ms, 2), "runs": []}
    for factory in args.factories.split(";"):
        factory = factory.format(nlist=nlist)
        faiss.omp_set_num_threads(2)
        settings = ApproximateSettings(1, factory, 64, args.candidates)
        began = time.perf_counter()
        index = build_approximate(vectors, settings)
        build_s = time.perf_counter() - began
        faiss.omp_set_num_threads(1)
        breadths = (32, 64, 128, 256) if "HNSW" in factory else (8, 16, 32, 64)
        for breadth in breadths:
            params = search_parameters(index, breadth)
            seconds, found = [], []
            with realtime():
                for query, expected in zip(queries, truth, strict=True):
                    began = time.perf_counter()
                    _, ids = index.search(query[None], args.candidates, params=params)
                    rows = ids[0][ids[0] >= 0]
                    top = rows[np.argsort(-(vectors[rows] @ query))[:10]]
                    seconds.append((time.perf_counter() - began) * 1000)
                    found.append(len(set(top.tolist()) & set(expected.tolist())) / 10)
            run = {
                "factory": factory,
                "breadth": breadth,
                "build_s": round(build_s, 1),
                "recall_at_10": round(float(np.mean(found)), 4),
                "p50_ms": round(percentile(seconds, 50), 2),
                "p95_ms": round(percentile(seconds, 95), 2),
            }
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
        del index
    print(json.dumps(results))


if __name__ == "__main__":
    main()
