"""Calibrate when the extractive answer says "nothing found".

Usage: .venv/bin/python benchmarks/answer_threshold.py --index indexes/bench-e5

For each answerable question of eval/questions.jsonl (self-contained, with an evidence
sentence) and each question of eval/unanswerable.jsonl, two signals of the listed
passages are recorded: the best sentence's score (the weighted share of the question's
terms it holds) and the closeness (the embedding model's similarity of the most similar
listed passage). Printed: both distributions and, for pairs of thresholds, how many
answerable questions keep an answer and how many unanswerable ones are (wrongly)
answered. A similarity threshold of 0 tests the terms alone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qa_service.config import Settings
from qa_service.evaluate import load_questions
from qa_service.extractive import choose_sentences
from qa_service.service import QAService

ROOT = Path(__file__).resolve().parent.parent


def signals(service: QAService, question: str) -> tuple[float, float]:
    hits = service.search(question, 5)
    chosen = choose_sentences(question, [h.passage.text for h in hits], min_score=0.0)
    return (chosen[0].score if chosen else 0.0), service.closeness(question, hits)


def answered(scores: list[tuple[float, float]], terms: float, similarity: float) -> float:
    return round(sum(t >= terms and c >= similarity for t, c in scores) / len(scores), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    args = parser.parse_args()
    service = QAService(Settings.from_env(index_dir=args.index))
    service.load()
    answerable = [
        q.question
        for q in load_questions(ROOT / "eval" / "questions.jsonl")
        if q.evidence and not q.follows
    ]
    unanswerable = [
        json.loads(line)["question"]
        for line in (ROOT / "eval" / "unanswerable.jsonl").read_text("utf-8").splitlines()
        if line.strip()
    ]
    yes = [signals(service, q) for q in answerable]
    no = [signals(service, q) for q in unanswerable]
    rows = [
        {
            "min_terms": terms,
            "min_similarity": similarity,
            "answerable_answered": answered(yes, terms, similarity),
            "unanswerable_answered": answered(no, terms, similarity),
        }
        for terms in (0.2, 0.25, 0.3, 0.34, 0.4, 0.5)
        for similarity in (0.0, 0.82, 0.83, 0.84, 0.85, 0.86)
    ]
    print(json.dumps({"answerable": yes, "unanswerable": no, "thresholds": rows}, indent=1))


if __name__ == "__main__":
    main()
