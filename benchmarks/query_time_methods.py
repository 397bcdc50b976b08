"""Query-time methods side by side on the development set, in one process.

Usage: QA_QUERY_CACHE=4096 .venv/bin/python benchmarks/query_time_methods.py \
    --index indexes/shared [--variants base,rescore5,...]

Each variant changes settings (or the dense retriever's feedback) of one loaded service
and runs ``evaluate`` on eval/questions.jsonl (hybrid, k 5) plus the quote count of
``quote_choice.py`` (the first quoted sentence is the evidence). Question vectors are
kept between variants, so only the first variant pays for encoding. Figures are split by
kind where the set allows: English questions (``is_english``), questions asking for a
number ("hur många", "hur mycket", "när", "vilket år", a digit in the question), the rest,
and follow-ups in their conversations.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from qa_service.config import Settings
from qa_service.evaluate import evaluate, load_questions
from qa_service.extractive import normalise
from qa_service.language import is_english
from qa_service.loading import lexical_leg
from qa_service.models import AskRequest
from qa_service.retrieval import DenseRetriever, LexicalRetriever
from qa_service.service import QAService

ROOT = Path(__file__).resolve().parent.parent

VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "off": {"dense_feedback_passages": 0, "dense_feedback_weight": 0.0},
    "cap3": {"per_document_cap": 3},
    "rescore3": {"passage_rescoring_documents": 3},
    "rescore5": {"passage_rescoring_documents": 5},
    "rescore10": {"passage_rescoring_documents": 10},
    "rocchio3_0.3": {"dense_feedback_passages": 3, "dense_feedback_weight": 0.3},
    "rocchio3_0.6": {"dense_feedback_passages": 3, "dense_feedback_weight": 0.6},
    "rocchio5_0.5": {"dense_feedback_passages": 5, "dense_feedback_weight": 0.5},
    "fb3_0.3_rrf0.5": {
        "dense_feedback_passages": 3,
        "dense_feedback_weight": 0.3,
        "dense_feedback_ranking_weight": 0.5,
    },
    "fb3_0.3_rrf1": {
        "dense_feedback_passages": 3,
        "dense_feedback_weight": 0.3,
        "dense_feedback_ranking_weight": 1.0,
    },
    "fb3_0.5_rrf0.5": {
        "dense_feedback_passages": 3,
        "dense_feedback_weight": 0.5,
        "dense_feedback_ranking_weight": 0.5,
    },
    "fb5_0.5_rrf1": {
        "dense_feedback_passages": 5,
        "dense_feedback_weight": 0.5,
        "dense_feedback_ranking_weight": 1.0,
    },
    "rocchio2_0.3": {"dense_feedback_passages": 2, "dense_feedback_weight": 0.3},
    "rocchio3_0.2": {"dense_feedback_passages": 3, "dense_feedback_weight": 0.2},
    "rocchio3_0.4": {"dense_feedback_passages": 3, "dense_feedback_weight": 0.4},
    "rocchio5_0.3": {"dense_feedback_passages": 5, "dense_feedback_weight": 0.3},
    "rocchio10_0.3": {"dense_feedback_passages": 10, "dense_feedback_weight": 0.3},
    "rocchio3_0.3_cap3": {
        "dense_feedback_passages": 3,
        "dense_feedback_weight": 0.3,
        "per_document_cap": 3,
    },
    "rm3_5_10_0.3": {"lexical_feedback_passages": 5},
    "rm3_5_10_0.1": {"lexical_feedback_passages": 5, "lexical_feedback_weight": 0.1},
    "rm3_3_5_0.2": {
        "lexical_feedback_passages": 3,
        "lexical_feedback_terms": 5,
        "lexical_feedback_weight": 0.2,
    },
    "rm3_10_20_0.2": {
        "lexical_feedback_passages": 10,
        "lexical_feedback_terms": 20,
        "lexical_feedback_weight": 0.2,
    },
    "rm3_5_10_0.5": {"lexical_feedback_passages": 5, "lexical_feedback_weight": 0.5},
    "rocchio3_0.3_rm3_5_10_0.1": {
        "dense_feedback_passages": 3,
        "dense_feedback_weight": 0.3,
        "lexical_feedback_passages": 5,
        "lexical_feedback_weight": 0.1,
    },
    "quote1": {"quote_similarity_weight": 1.0},
    "quote3": {"quote_similarity_weight": 3.0},
    "quote6": {"quote_similarity_weight": 6.0},
    "quote3_8": {"quote_similarity_weight": 3.0, "quote_similarity_candidates": 8},
    "quote20": {"quote_similarity_weight": 20.0},
}

_NUMBER = re.compile(r"\b(hur många|hur mycket|när|vilket år|hur stor)\b|\d", re.IGNORECASE)


def is_evidence(evidence: str, text: str) -> bool:
    a, b = normalise(evidence), normalise(text)
    return bool(b) and (a in b or b in a)


def kind(question: str) -> str:
    if is_english(question):
        return "english"
    return "number" if _NUMBER.search(question) else "other"


def group(results: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(results)
    with_evidence = [r for r in results if r["evidence"] is not None]
    return {
        "n": n,
        "hit@5": round(sum(r["hit"] for r in results) / n, 3) if n else None,
        "evidence@5": (
            round(sum(bool(r["evidence"]) for r in with_evidence) / len(with_evidence), 3)
            if with_evidence
            else None
        ),
        "mrr@10": round(sum(r["reciprocal_rank"] for r in results) / n, 3) if n else None,
    }


def run(
    service: QAService, questions: list[Any], overrides: dict[str, Any], mode: str = "hybrid"
) -> dict[str, Any]:
    base = service.settings
    service.settings = dataclasses.replace(base, **overrides)
    loaded = service.loaded
    dense = loaded.retrievers.dense
    assert isinstance(dense, DenseRetriever)
    separate = service.settings.dense_feedback_ranking_weight > 0
    dense.feedback = 0 if separate else service.settings.dense_feedback_passages
    dense.feedback_weight = service.settings.dense_feedback_weight
    bm25 = loaded.retrievers.bm25
    assert isinstance(bm25, LexicalRetriever)
    leg = lexical_leg(service.settings, loaded.reader, bm25.index)
    service.builds.current = dataclasses.replace(
        loaded, retrievers=dataclasses.replace(loaded.retrievers, lexical=leg)
    )
    try:
        start = time.perf_counter()
        report = evaluate(service, questions, mode=mode, k=5)  # type: ignore[arg-type]
        seconds = time.perf_counter() - start
        by_id = {q.id: q for q in questions}
        own = [r for r in report["results"] if not by_id[r["id"]].follows]
        kinds: dict[str, list[dict[str, Any]]] = {}
        for r in own:
            kinds.setdefault(kind(r["question"]), []).append(r)
        quotes = {"questions": 0, "first_is_evidence": 0, "any_is_evidence": 0}
        timings: list[float] = []
        for q in questions:
            if not q.evidence or q.follows or q.filters or is_english(q.question):
                continue
            # Question vectors are kept: this times everything but encoding the question.
            began = time.perf_counter()
            result = service.ask(AskRequest(question=q.question, top_k=5), remember=False)
            timings.append(1000 * (time.perf_counter() - began))
            if not any(is_evidence(q.evidence, p["text"]) for p in result.passages):
                continue
            quoted = [s.text for s in result.answer.sentences]
            quotes["questions"] += 1
            quotes["first_is_evidence"] += bool(quoted) and is_evidence(q.evidence, quoted[0])
            quotes["any_is_evidence"] += any(is_evidence(q.evidence, t) for t in quoted)
        ranks = {r["id"]: r["first_relevant_rank"] for r in report["results"]}
        evidence = {r["id"]: r["evidence"] for r in report["results"]}
        return {
            "summary": report["summary"],
            "kinds": {name: group(rs) for name, rs in sorted(kinds.items())},
            "quotes": quotes,
            "seconds": round(seconds, 1),
            "ask_without_encoding_p50_ms": round(float(statistics.median(timings)), 2),
            "ranks": ranks,
            "evidence": evidence,
        }
    finally:
        service.settings = base
        service.builds.current = loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, default=ROOT / "eval" / "questions.jsonl")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--mode", default="hybrid", choices=["hybrid", "dense", "lexical"])
    args = parser.parse_args()
    settings = Settings.from_env(
        index_dir=args.index, conversations_db=Path(tempfile.mkdtemp()) / "c.sqlite3"
    )
    service = QAService(settings)
    service.load()
    questions = load_questions(args.questions)
    results: dict[str, Any] = {}
    for name in args.variants.split(","):
        results[name] = run(service, questions, VARIANTS[name], args.mode)
        line = {k: v for k, v in results[name].items() if k not in ("ranks", "evidence")}
        print(name, json.dumps(line), flush=True)
    base = results.get("base")
    if base:
        for name, result in results.items():
            moved = {
                qid: (base["ranks"][qid], rank, base["evidence"][qid], result["evidence"][qid])
                for qid, rank in result["ranks"].items()
                if rank != base["ranks"][qid] or result["evidence"][qid] != base["evidence"][qid]
            }
            print(name, "moved:", json.dumps(moved), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
