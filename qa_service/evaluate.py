"""Evaluation: questions with relevant sources -> hit@k, evidence@k, MRR@10, nDCG@10.

A question file is JSON Lines, one object per line::

    {"id": "q01", "question": "…", "relevant": ["path/relative/to/ingest/root.txt"],
     "evidence": "a sentence that answers it" (optional), "filters": {…} (optional)}
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .conversation import Context
from .extractive import normalise
from .query.analysis import Mode
from .schema import Hit
from .service import QAService


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
    #: Asked in a conversation (``follows``) but about something new: it must not be
    #: pulled back to the earlier turns' topic.
    new_topic: bool = False
    #: What kind of question it is (``paraphrase``, ``english``, …), for reports by kind.
    kind: str | None = None


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
                    new_topic=bool(data.get("new_topic", False)),
                    kind=data.get("kind"),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise QuestionFileError(f"{path}:{number}: not a question object ({exc})") from exc
    if not questions:
        raise QuestionFileError(f"{path} holds no questions")
    return questions


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
    searched with the earlier turns exactly as the chat does, and scored separately:
    follow-ups, and questions on a ``new_topic`` that must not be pulled back.
    """
    results: list[QuestionResult] = []
    follow_results: list[QuestionResult] = []
    new_topic_results: list[QuestionResult] = []
    history: dict[str, list[Context]] = {}
    for question in questions:
        earlier = history.get(question.follows, []) if question.follows else []
        standalone, hits = service.converse(
            question.question,
            max(k, 10),
            history=earlier,
            filters=question.filters or None,
            mode=mode,
        )
        # The chat cites the top passages of an answer; the next turn leans on those.
        cited = (hit.document.id for hit in hits[: service.settings.default_top_k])
        history[question.id] = [*earlier, Context.citing(standalone, cited)]
        result = score(question, ranked_pairs(hits), k)
        if not question.follows:
            results.append(result)
        elif question.new_topic:
            new_topic_results.append(result)
        else:
            follow_results.append(result)
    summary = summarise(results, k)
    if follow_results:
        summary["follow_ups"] = summarise(follow_results, k)
    if new_topic_results:
        summary["new_topics"] = summarise(new_topic_results, k)
    return {
        "mode": mode,
        "k": k,
        "summary": summary,
        "results": [asdict(r) for r in [*results, *follow_results, *new_topic_results]],
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
    lines.append("")
    for key, label in (("follow_ups", "follow-ups"), ("new_topics", "new topics")):
        group = summary.get(key)
        if group:
            lines.append(
                f"{label} (in their conversations): questions={group['questions']} "
                f"hit@{k}={group[f'hit@{k}']} evidence@{k}={group[f'evidence@{k}']} "
                f"mrr@10={group['mrr@10']}"
            )
    lines.append(
        f"mode={report['mode']} questions={summary['questions']} hit@{k}={summary[f'hit@{k}']} "
        f"evidence@{k}={summary[f'evidence@{k}']} mrr@10={summary['mrr@10']} "
        f"ndcg@10={summary['ndcg@10']}"
    )
    return "\n".join(lines)
