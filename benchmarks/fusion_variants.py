"""Fusions of the hybrid side by side on the development and held-out sets, by kind.

Usage: QA_QUERY_CACHE=4096 .venv/bin/python benchmarks/fusion_variants.py \
    --index indexes/shared [--variants rrf,convex_cov5,...] [--quotes]

Each variant sets the hybrid's fusion (``rrf`` or ``convex``), its term-coverage
scaling of the lexical leg (``coverage_passages``; 0: a fixed weight) and the choice of
passages within documents (``passage_rescoring_documents``, ``per_document_cap``) on one
loaded service, and runs ``evaluate`` (hybrid, k 5) on each question set, reported by kind as in
``question_sets.py``. Question vectors are kept between variants, so only the first pays
for encoding; ``fusion_ms_p50`` is the median time of the service's search (for its most
passages) of the self-contained questions with their vectors already kept (both legs, the
fusion and the re-ranking).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from question_sets import SETS, by_kind, quotes

from qa_service.config import Settings
from qa_service.evaluate import Question, evaluate, load_questions
from qa_service.service import QAService

#: name -> settings the variant changes
VARIANTS: dict[str, dict[str, Any]] = {
    "rrf": {"fusion": "rrf", "coverage_passages": 0},
    "rrf_cov5": {"fusion": "rrf", "coverage_passages": 5},
    "convex": {"fusion": "convex", "coverage_passages": 0},
    "convex_cov1": {"fusion": "convex", "coverage_passages": 1},
    "convex_cov5": {"fusion": "convex", "coverage_passages": 5},
    "convex_cov10": {"fusion": "convex", "coverage_passages": 10},
    "convex_cov5_rescore3": {
        "fusion": "convex",
        "coverage_passages": 5,
        "passage_rescoring_documents": 3,
    },
    "convex_cov5_rescore5": {
        "fusion": "convex",
        "coverage_passages": 5,
        "passage_rescoring_documents": 5,
    },
    "convex_cov5_cap3": {"fusion": "convex", "coverage_passages": 5, "per_document_cap": 3},
    "convex_cov5_rescore5_cap3": {
        "fusion": "convex",
        "coverage_passages": 5,
        "passage_rescoring_documents": 5,
        "per_document_cap": 3,
    },
}


def run(
    service: QAService,
    sets: dict[str, list[Question]],
    overrides: dict[str, Any],
    with_quotes: bool,
) -> dict[str, Any]:
    base = service.settings
    service.settings = dataclasses.replace(base, **overrides)
    try:
        result: dict[str, Any] = {}
        for name, questions in sets.items():
            report = evaluate(service, questions, mode="hybrid", k=5)
            result[name] = by_kind(report, questions, 5)
            result[name]["first ranks"] = {
                r["id"]: r["first_relevant_rank"] for r in report["results"]
            }
            result[name]["evidence"] = {r["id"]: r["evidence"] for r in report["results"]}
            if with_quotes:
                result[name]["quoted sentence is the evidence"] = quotes(service, questions)
            timings = []
            for question in questions:
                if question.follows:
                    continue
                began = time.perf_counter()
                service.search(question.question, service.settings.max_top_k)
                timings.append(1000 * (time.perf_counter() - began))
            result[name]["fusion_ms_p50"] = round(statistics.median(timings), 2)
        return result
    finally:
        service.settings = base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--quotes", action="store_true")
    parser.add_argument("--sets", default=",".join(SETS), help="question sets, by name")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    settings = Settings.from_env(
        index_dir=args.index, conversations_db=Path(tempfile.mkdtemp()) / "c.sqlite3"
    )
    service = QAService(settings)
    service.load()
    sets = {
        name: load_questions(path)
        for name, path in SETS.items()
        if name in args.sets.split(",") and path.exists()
    }
    results: dict[str, Any] = {}
    for name in args.variants.split(","):
        results[name] = run(service, sets, VARIANTS[name], args.quotes)
        for set_name, kinds in results[name].items():
            line = {
                kind: (f"{v['hit@5']:.3f} / {v['evidence@5'] or 0:.3f} / {v['mrr@10']:.3f}")
                for kind, v in kinds.items()
                if isinstance(v, dict) and "hit@5" in v
            }
            extra = {
                k: v for k, v in kinds.items() if not isinstance(v, dict) or k.startswith("quoted")
            }
            print(name, set_name, json.dumps(line, ensure_ascii=False), extra, flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
