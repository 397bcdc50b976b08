"""How to search every sentence vector of a build for the sentence leg: a NumPy float32
product, FAISS flat (float32), FAISS scalar-quantised (fp16, 8-bit), and an HNSW graph,
timed one question at a time on one thread, the variants in turn each round; and how
many of the exact top 100 passages (by their best sentence) each finds.

Usage: .venv/bin/python benchmarks/sentence_search.py --index <build with
           QA_SENTENCE_VECTORS> [--questions 60] [--rounds 3] [--json]

The questions are sentence vectors of the build drawn at random (seed 1) with a little
noise, normalised: the search's cost does not depend on what is asked.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa_service.query.sentences import SENTENCES_PER_PASSAGE, best_passages
from qa_service.store import SENTENCE_OFFSETS, SENTENCE_VECTORS

PASSAGES = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    build = args.index.resolve()
    stored = np.load(build / SENTENCE_VECTORS, mmap_mode="r")
    offsets = np.load(build / SENTENCE_OFFSETS)
    owners = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    matrix = np.ascontiguousarray(stored, dtype=np.float32)
    dimension = matrix.shape[1]
    rng = np.random.default_rng(1)
    questions = matrix[rng.integers(0, len(matrix), args.questions)]
    questions = questions + rng.normal(0, 0.02, questions.shape).astype(np.float32)
    questions /= np.linalg.norm(questions, axis=1, keepdims=True)
    k = SENTENCES_PER_PASSAGE * PASSAGES

    built: dict[str, float] = {}

    def timed_build(name: str, make: Callable[[], faiss.Index]) -> faiss.Index:
        started = time.perf_counter()
        index = make()
        built[name] = round(time.perf_counter() - started, 2)
        return index

    def quantised(kind: int) -> Callable[[], faiss.Index]:
        def make() -> faiss.Index:
            index = faiss.IndexScalarQuantizer(dimension, kind, faiss.METRIC_INNER_PRODUCT)
            index.train(matrix)
            index.add(matrix)
            return index

        return make

    def flat() -> faiss.Index:
        index = faiss.IndexFlatIP(dimension)
        index.add(matrix)
        return index

    def graph() -> faiss.Index:
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        index = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.add(matrix)
        return index

    indexes = {
        "faiss flat float32": timed_build("faiss flat float32", flat),
        "faiss fp16": timed_build("faiss fp16", quantised(faiss.ScalarQuantizer.QT_fp16)),
        "faiss 8-bit": timed_build("faiss 8-bit", quantised(faiss.ScalarQuantizer.QT_8bit)),
    }
    hnsw = timed_build("hnsw M32", graph)
    faiss.omp_set_num_threads(1)

    def numpy_exact(q: np.ndarray) -> np.ndarray:
        scores = matrix @ q
        top = np.argpartition(-scores, k - 1)[:k]
        return top[np.argsort(-scores[top])]

    def searcher(index: Any, ef: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
        def search(q: np.ndarray) -> np.ndarray:
            if ef is not None:
                index.hnsw.efSearch = ef
            return index.search(q[None], k)[1][0]

        return search

    variants: dict[str, Callable[[np.ndarray], np.ndarray]] = {"numpy float32": numpy_exact}
    variants.update({name: searcher(index) for name, index in indexes.items()})
    variants.update({f"hnsw M32 efSearch {ef}": searcher(hnsw, ef) for ef in (256, 1024, 2048)})

    def passages(ids: np.ndarray) -> list[int]:
        zeros = np.zeros(len(ids), dtype=np.float32)
        return [row for row, _ in best_passages(ids, zeros, owners, PASSAGES)]

    exact = [passages(numpy_exact(q)) for q in questions]
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    found: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        names = list(variants)
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            for q, truth in zip(questions, exact, strict=True):
                started = time.perf_counter()
                ids = variants[name](q)
                seconds[name].append(time.perf_counter() - started)
                if round_ == 0:
                    found[name].append(len(set(passages(ids)) & set(truth)) / PASSAGES)
    result: dict[str, Any] = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "index": str(args.index),
        "sentences": len(matrix),
        "build seconds": built,
    }
    for name in variants:
        result[name] = {
            "p50_ms": round(statistics.median(seconds[name]) * 1000, 2),
            "recall@100 passages": round(statistics.fmean(found[name]), 3),
            "top 100 exact": f"{sum(r == 1.0 for r in found[name])} / {len(found[name])}",
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
