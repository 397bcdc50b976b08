"""Calibrate when the extractive answer says "nothing found".

Usage: .venv/bin/python benchmarks/answer_threshold.py --index indexes/bench-e5

For each answerable question of eval/questions.jsonl (self-contained, with an evidence
sentence) and each question of eval/unanswerable.jsonl, the best sentence score of the top
passages is recorded (no threshold). Printed: both distributions and, for candidate
thresholds, how many answerable questions keep an answer and how many unanswerable ones
are (wrongly) answered.
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


def best_score(service: QAService, question: str) -> float:
    hits = service.search(question, 5)
    chosen = choose_sentences(question, [h.passage.text for h in hits], min_score=0.0)
    return chosen[0].score if chosen else 0.0


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
    yes = sorted(best_score(service, q) for q in answerable)
    no = sorted(best_score(service, q) for q in unanswerable)
    rows = []
    for threshold in (0.2, 0.25, 0.3, 0.34, 0.4, 0.45, 0.5, 0.6):
        rows.append(
            {
                "threshold": threshold,
                "answerable_answered": round(sum(s >= threshold for s in yes) / len(yes), 3),
                "unanswerable_answered": round(sum(s >= threshold for s in no) / len(no), 3),
            }
        )
    print(json.dumps({"answerable": yes, "unanswerable": no, "thresholds": rows}, indent=1))


if __name__ == "__main__":
    main()
