"""List documents that hold a question's evidence sentence but are not among its relevant ones.

Usage: .venv/bin/python benchmarks/evidence_holders.py [--index DIR] [QUESTIONS.jsonl]

A document that contains the evidence sentence word for word (case and spacing aside)
answers the question as well as the listed one does; the question set lists it too when
it also meets the question's other conditions (party, document kind, year). Evidence
shorter than ``--min-chars`` (a bare figure such as "180") is not a sentence and is left
out. Reads the documents' cleaned text from an index's passage database.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qa_service.evaluate import load_questions
from qa_service.extractive import normalise
from qa_service.store import IndexReader

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("questions", type=Path, nargs="?", default=ROOT / "eval/questions.jsonl")
    parser.add_argument("--index", type=Path, default=ROOT / "indexes" / "bench-e5")
    parser.add_argument("--min-chars", type=int, default=30)
    args = parser.parse_args()
    reader = IndexReader(args.index)
    texts = {doc.source: normalise(doc.text) for doc in reader.documents()}
    for question in load_questions(args.questions):
        if not question.evidence or len(question.evidence) < args.min_chars:
            continue
        needle = normalise(question.evidence)
        extra = sorted(s for s, t in texts.items() if needle in t and s not in question.relevant)
        for source in extra:
            print(f"{question.id}\t{source}")


if __name__ == "__main__":
    main()
