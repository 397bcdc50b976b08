"""Query latency (in-process and over HTTP) and retrieval quality on a built index.

Usage:
  .venv/bin/python benchmarks/query_benchmark.py --index indexes/bench-shared [--http]

Quality: dense, lexical and hybrid on eval/questions.jsonl. Latency: every question of
the set, repeated, through QAService.search (in-process) and, with --http, through a
real `qa serve` on 127.0.0.1 (a bounded number of sequential requests).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

from common import latency_summary, percentile, start_server, timed_ask

from qa_service.config import Settings
from qa_service.evaluate import evaluate, load_questions
from qa_service.retrieval import glossary_query
from qa_service.service import QAService

ROOT = Path(__file__).resolve().parent.parent


def http_latency(index: Path, questions: list[str], rounds: int) -> dict[str, float]:
    # Every round encodes every question again, as it would a question never seen before.
    server, url = start_server(index, env={"QA_RATE_LIMIT": "", "QA_QUERY_CACHE": "0"})
    try:
        seconds = [timed_ask(url, question) for _ in range(rounds) for question in questions]
        return latency_summary(seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, default=ROOT / "eval" / "questions.jsonl")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--http", action="store_true")
    args = parser.parse_args()

    settings = Settings.from_env(index_dir=args.index)
    service = QAService(settings)
    service.load()
    service.warm_up()
    questions = load_questions(args.questions)
    quality = {
        mode: evaluate(service, questions, mode=mode, k=5)["summary"]
        for mode in ("dense", "lexical", "hybrid")
    }
    texts = [q.question for q in questions]
    seconds = []
    for _ in range(args.rounds):
        for text in texts:
            # Latency of a question never seen before: no kept vector from an earlier round.
            service.query_vectors.clear()
            started = time.perf_counter()
            service.search(text, 5)
            seconds.append(time.perf_counter() - started)
    # Where the time goes: each stage of the hybrid search timed on its own.
    loaded = service.loaded
    depth = settings.candidate_depth
    stages: dict[str, list[float]] = {"encode": [], "dense_leg": [], "lexical_leg": []}
    calls: dict[str, Callable[[str], object]] = {
        "encode": service.embedder.encode_query,
        "dense_leg": lambda text: loaded.retrievers.dense.search(text, depth),
        "lexical_leg": lambda text: loaded.retrievers.bm25.search_text(glossary_query(text), depth),
    }
    for text in texts:
        for stage, call in calls.items():
            service.query_vectors.clear()
            started = time.perf_counter()
            call(text)
            stages[stage].append(time.perf_counter() - started)
    result = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "index": str(args.index),
        "model": service.loaded.reader.manifest.get("model"),
        "passages": service.loaded.reader.passage_count,
        "settings": {
            "candidate_depth": settings.candidate_depth,
            "rrf_k": settings.rrf_k,
            "dense_weight": settings.dense_weight,
            "lexical_weight": settings.lexical_weight,
            "document_weight": settings.document_weight,
            "glossary_weight": settings.glossary_weight,
            "hint_weight": settings.hint_weight,
            "query_cache": "cleared before each timed question",
            "query_encoder": service.embedder.query_encoder,
            "per_document_cap": settings.per_document_cap,
        },
        "quality": quality,
        "in_process": latency_summary(seconds),
        "in_process_stages_p50_ms": {
            stage: round(percentile([t * 1000 for t in times], 50), 2)
            for stage, times in stages.items()
        },
    }
    if args.http:
        result["http"] = http_latency(args.index, texts, args.rounds)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"query-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(
        json.dumps(result, ensure_ascii=False, indent=2)
    )
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
