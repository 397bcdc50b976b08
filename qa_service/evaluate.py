"""Evaluation: questions with relevant sources -> hit@k, evidence@k, MRR@10, nDCG@10.

A question file is JSON Lines, one object per line::

    {"id": "q01", "question": "…", "relevant": ["path/relative/to/ingest/root.txt"],
     "evidence": "a sentence that answers it" (optional), "filters": {…} (optional)}
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .conversation import is_follow_up, standalone_query
from .schema import Hit
from .service import Mode, QAService

_SPACE = re.compile(r"\s+")


class QuestionFileError(ValueError):
    """A question file that cannot be used."""


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    relevant: tuple[str, ...]
    evidence: str | None = None
    filters: dict[str, Any] = field(default_factory=dict)
    #: The id of the question this one follows up in a conversation.
    follows: str | None = None


@dataclass
class QuestionResult:
    id: str
    question: str
    hit: bool
    evidence: bool | None
    reciprocal_rank: float
    ndcg: float
    first_relevant_rank: int | None
    top_sources: list[str]


def load_questions(path: Path) -> list[Question]:
    questions: list[Question] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            questions.append(
                Question(
                    id=str(data.get("id", number)),
                    question=data["question"],
                    relevant=tuple(data["relevant"]),
                    evidence=data.get("evidence"),
                    filters=data.get("filters") or {},
                    follows=data.get("follows"),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise QuestionFileError(f"{path}:{number}: not a question object ({exc})") from exc
    if not questions:
        raise QuestionFileError(f"{path} holds no questions")
    return questions


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def score(question: Question, ranked: Sequence[tuple[str, str]], k: int) -> QuestionResult:
    """Metrics for one question's ranked ``(source, passage text)`` pairs (pure)."""
    relevant = set(question.relevant)
    sources = [source for source, _ in ranked]
    first = next((i for i, s in enumerate(sources[:10], start=1) if s in relevant), None)
    evidence: bool | None = None
    if question.evidence:
        needle = normalise(question.evidence)
        evidence = any(needle in normalise(text) for _, text in ranked[:k])
    seen: set[str] = set()
    dcg = 0.0
    for i, source in enumerate(sources[:10], start=1):
        if source in relevant and source not in seen:
            seen.add(source)
            dcg += 1 / math.log2(i + 1)
    ideal = sum(1 / math.log2(i + 1) for i in range(1, min(len(relevant), 10) + 1))
    return QuestionResult(
        id=question.id,
        question=question.question,
        hit=any(s in relevant for s in sources[:k]),
        evidence=evidence,
        reciprocal_rank=1 / first if first else 0.0,
        ndcg=dcg / ideal if ideal else 0.0,
        first_relevant_rank=first,
        top_sources=sources[:k],
    )


def ranked_pairs(hits: Sequence[Hit]) -> list[tuple[str, str]]:
    return [(hit.document.source, hit.passage.text) for hit in hits]


def summarise(results: Sequence[QuestionResult], k: int) -> dict[str, Any]:
    n = len(results)
    with_evidence = [r for r in results if r.evidence is not None]
    return {
        "questions": n,
        f"hit@{k}": round(sum(r.hit for r in results) / n, 4) if n else 0.0,
        f"evidence@{k}": (
            round(sum(bool(r.evidence) for r in with_evidence) / len(with_evidence), 4)
            if with_evidence
            else None
        ),
        "mrr@10": round(sum(r.reciprocal_rank for r in results) / n, 4) if n else 0.0,
        "ndcg@10": round(sum(r.ndcg for r in results) / n, 4) if n else 0.0,
    }


def evaluate(
    service: QAService, questions: Sequence[Question], *, mode: Mode = "hybrid", k: int = 5
) -> dict[str, Any]:
    """Run every question through the service and score it.

    A question that ``follows`` another is asked in that one's conversation: it is
    rewritten with the earlier turns exactly as the chat does, and scored separately, so
    follow-ups can be compared with self-contained questions.
    """
    results: list[QuestionResult] = []
    follow_results: list[QuestionResult] = []
    history: dict[str, list[str]] = {}
    for question in questions:
        earlier = history.get(question.follows, []) if question.follows else []
        standalone = question.question
        if earlier and is_follow_up(question.question):
            standalone = standalone_query(question.question, earlier)
        history[question.id] = [*earlier, standalone]
        hits = service.search(
            question.question,
            max(k, 10),
            filters=question.filters or None,
            mode=mode,
            rewritten=standalone,
        )
        result = score(question, ranked_pairs(hits), k)
        (follow_results if question.follows else results).append(result)
    summary = summarise(results, k)
    if follow_results:
        summary["follow_ups"] = summarise(follow_results, k)
    return {
        "mode": mode,
        "k": k,
        "summary": summary,
        "results": [asdict(r) for r in [*results, *follow_results]],
    }


def format_text(report: dict[str, Any]) -> str:
    k = report["k"]
    lines = []
    for r in report["results"]:
        evidence = "-" if r["evidence"] is None else ("E" if r["evidence"] else "e")
        rank = r["first_relevant_rank"] or "—"
        lines.append(
            f"{'H' if r['hit'] else '.'}{evidence} rank {rank!s:>2}  {r['id']}: {r['question']}"
        )
    summary = report["summary"]
    follow = summary.get("follow_ups")
    lines.append("")
    if follow:
        lines.append(
            f"follow-ups (in their conversations): questions={follow['questions']} "
            f"hit@{k}={follow[f'hit@{k}']} evidence@{k}={follow[f'evidence@{k}']} "
            f"mrr@10={follow['mrr@10']}"
        )
    lines.append(
        f"mode={report['mode']} questions={summary['questions']} hit@{k}={summary[f'hit@{k}']} "
        f"evidence@{k}={summary[f'evidence@{k}']} mrr@10={summary['mrr@10']} "
        f"ndcg@10={summary['ndcg@10']}"
    )
    return "\n".join(lines)
