"""Could an English question's answer quote a sentence chosen by the stored sentence
similarity alone? (English answers quote nothing: Swedish sentences do not share an
English question's words.) For every self-contained English question of the chosen sets,
on a build with sentence vectors: is its evidence among the sentences of the passages the
quote is taken from, and where does its stored similarity rank among them.

Usage: .venv/bin/python benchmarks/english_quote.py --index <build with
           QA_SENTENCE_VECTORS> [--sets development,held-out,held-out 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from question_sets import SETS, kind_of
from quote_choice import is_evidence, mostly_evidence

from qa_service.config import Settings
from qa_service.evaluate import load_questions
from qa_service.extractive import QUOTE_PASSAGES, sentences
from qa_service.query.answer import quoted_similarities
from qa_service.service import QAService


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--sets", default="development,held-out,held-out 2")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings = Settings.from_env(
        index_dir=args.index, conversations_db=Path(tempfile.mkdtemp()) / "c.sqlite3"
    )
    service = QAService(settings)
    service.load()
    vectors = service.loaded.retrievers.sentences
    if vectors is None:
        raise SystemExit(f"{args.index} holds no sentence vectors (QA_SENTENCE_VECTORS)")
    rows: list[dict[str, Any]] = []
    for name in args.sets.split(","):
        for question in load_questions(SETS[name]):
            if question.follows or kind_of(question) != "english" or not question.evidence:
                continue
            hits = service.search(question.question, 5)
            similarities = quoted_similarities(vectors, question.question, hits, QUOTE_PASSAGES)
            values: list[float] = []
            evidence: float | None = None
            for hit, stored in zip(hits[:QUOTE_PASSAGES], similarities, strict=False):
                for sentence, value in zip(sentences(hit.passage.text), stored or [], strict=False):
                    values.append(float(value))
                    if is_evidence(question.evidence, sentence.text) or mostly_evidence(
                        question.evidence, sentence.text
                    ):
                        evidence = float(value) if evidence is None else max(evidence, value)
            values.sort(reverse=True)
            rows.append(
                {
                    "set": name,
                    "id": question.id,
                    "sentences": len(values),
                    "best similarity": round(values[0], 4) if values else None,
                    "evidence similarity": None if evidence is None else round(evidence, 4),
                    "evidence rank": None if evidence is None else values.index(evidence) + 1,
                }
            )
    held = [r for r in rows if r["evidence rank"] is not None]
    summary = {
        "questions": len(rows),
        "evidence among the quotable sentences": len(held),
        "evidence the most similar": sum(r["evidence rank"] == 1 for r in held),
        "evidence among the two most similar": sum(r["evidence rank"] <= 2 for r in held),
    }
    print(json.dumps({"index": str(args.index), "summary": summary, "questions": rows}, indent=1))


if __name__ == "__main__":
    main()
