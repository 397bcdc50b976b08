"""Follow-ups and English questions: variants of their rankings side by side, by kind.

Usage: QA_QUERY_CACHE=4096 .venv/bin/python benchmarks/conversation_variants.py \
    --index indexes/shared [--variants base,...] [--out results.json]

Each variant changes settings of the ranking group (how a follow-up's rankings are
weighted and which earlier documents it searches within; how an English question's BM25
and glossary rankings follow the share of its words the glossary reads) on one loaded
service, and runs ``evaluate`` (hybrid, k 5) on the development set, both held-out sets and
the English questions written after the glossary, reported by kind as in
``question_sets.py`` with each question's first relevant rank. Question vectors are kept
between variants (``QA_QUERY_CACHE``), so only the first variant pays for encoding.
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

from question_sets import ROOT, SETS, by_kind

from qa_service.config import Settings
from qa_service.conversation import Context
from qa_service.evaluate import Question, evaluate, load_questions
from qa_service.service import QAService

ALL_SETS = {**SETS, "english after glossary": ROOT / "eval" / "english_after_glossary.jsonl"}

#: name -> settings the variant changes (``default``: the defaults)
VARIANTS: dict[str, dict[str, Any]] = {
    "before": {"continuing_topic_weight": 0.0, "glossary_by_share": 0.0},
    "default": {},
    "topic_only": {"glossary_by_share": 0.0},
    "glossary_share_only": {"continuing_topic_weight": 0.0},
    "topic_0.5": {"continuing_topic_weight": 0.5},
    "topic_1.5": {"continuing_topic_weight": 1.5},
    "glossary_share_0.5": {"glossary_by_share": 0.5},
    "glossary_off": {"glossary_weight": 0.0},
}

SHOWN = ("all (asked alone)", "english", "follow_up", "new_topic", "paraphrase", "swedish")


def run(service: QAService, sets: dict[str, list[Question]], overrides: dict[str, Any]) -> Any:
    base = service.settings
    service.settings = dataclasses.replace(base, **overrides)
    try:
        result: dict[str, Any] = {}
        for name, questions in sets.items():
            report = evaluate(service, questions, mode="hybrid", k=5)
            kinds = by_kind(report, questions, 5)
            kinds["first ranks"] = {r["id"]: r["first_relevant_rank"] for r in report["results"]}
            kinds["evidence"] = {r["id"]: r["evidence"] for r in report["results"]}
            result[name] = kinds
        return result
    finally:
        service.settings = base


def turn_times(service: QAService, sets: dict[str, list[Question]], overrides: Any) -> list[float]:
    """Milliseconds of each turn that follows another, asked in its conversation with the
    question vectors cleared first, so that every text a turn searches is encoded."""
    base = service.settings
    service.settings = dataclasses.replace(base, **overrides)
    times: list[float] = []
    try:
        for questions in sets.values():
            history: dict[str, list[Context]] = {}
            for question in questions:
                earlier = history.get(question.follows, []) if question.follows else []
                service.query_vectors.clear()
                began = time.perf_counter()
                standalone, hits = service.converse(question.question, 10, history=earlier)
                if question.follows:
                    times.append(1000 * (time.perf_counter() - began))
                cited = (hit.document.id for hit in hits[: service.settings.default_top_k])
                history[question.id] = [*earlier, Context.citing(standalone, cited)]
        return times
    finally:
        service.settings = base


def line(kinds: dict[str, Any]) -> str:
    parts = []
    for kind in SHOWN:
        v = kinds.get(kind)
        if v:
            hits = round(v["hit@5"] * v["questions"])
            parts.append(
                f"{kind} ({v['questions']}) {v['hit@5']:.3f} / {v['evidence@5'] or 0:.3f} / "
                f"{v['mrr@10']:.3f} [{hits}/{v['questions']}]"
            )
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--sets", default=",".join(ALL_SETS), help="question sets, by name")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--timing", type=int, default=0, help="rounds of timed conversation turns (0: none)"
    )
    args = parser.parse_args()
    settings = Settings.from_env(
        index_dir=args.index, conversations_db=Path(tempfile.mkdtemp()) / "c.sqlite3"
    )
    service = QAService(settings)
    service.load()
    sets = {
        name: load_questions(path)
        for name, path in ALL_SETS.items()
        if name in args.sets.split(",") and path.exists()
    }
    results: dict[str, Any] = {}
    for name in args.variants.split(","):
        results[name] = run(service, sets, VARIANTS[name])
        for set_name, kinds in results[name].items():
            print(name, "|", set_name, "|", line(kinds), flush=True)
        if args.out:
            args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    if args.timing:
        # Interleaved: every round times every variant, so load on the machine hits all.
        times: dict[str, list[float]] = {name: [] for name in args.variants.split(",")}
        for _ in range(args.timing):
            for name in times:
                times[name].extend(turn_times(service, sets, VARIANTS[name]))
        for name, taken in times.items():
            p50 = statistics.median(taken)
            print(name, "| turns after another, p50 ms", f"{p50:.1f}", f"(n {len(taken)})")
            results[name]["turn_ms_p50"] = round(p50, 2)
        if args.out:
            args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
