"""The quote with and without the value a question asks for (``QA_QUOTE_EXPECTED_VALUE``).

Usage: PYTHONPATH=.:benchmarks .venv/bin/python benchmarks/expected_value.py \
    --index indexes/shared [--sets "held-out 9"] [--rounds 5]

For each question set (``question_sets.SETS``), one loaded service answers every question
through ``QAService.ask`` twice, the setting off and on, and counts the answers whose quote
holds the evidence and those that quote anything (``question_sets.quotes``); retrieval is
the same both ways. It lists the questions whose quote changed. Then it times the
sentence choice alone (``choose_sentences`` over the five hits of each self-contained
question), off and on alternating question by question, for ``--rounds`` rounds, and
reports the medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any

from question_sets import asked, chosen_sets, loaded_service, quotes

from qa_service.evaluate import load_questions
from qa_service.extractive import choose_sentences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--sets", default="", help="names, comma-separated (default: all)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    service = loaded_service(args.index)
    base = service.settings
    variants = {
        "off": dataclasses.replace(base, quote_expected_value=False),
        "on": dataclasses.replace(base, quote_expected_value=True),
    }
    result: dict[str, Any] = {"index": str(args.index)}
    timing_cases: list[tuple[str, list[str]]] = []
    for name, path in chosen_sets(args.sets).items():
        if not path.exists():
            continue
        questions = load_questions(path)
        row: dict[str, Any] = {}
        texts: dict[str, dict[str, list[str]]] = {}
        for label, settings in variants.items():
            service.settings = settings
            answers = asked(service, questions)
            row[label] = quotes(service, questions, answers)
            texts[label] = {q.id: [s.text for s in a.answer.sentences] for q, a in answers}
        row["changed"] = {
            qid: {"off": texts["off"][qid], "on": texts["on"][qid]}
            for qid in texts["off"]
            if texts["off"][qid] != texts["on"][qid]
        }
        result[name] = row
        service.settings = base
        for question in questions:
            if question.follows:
                continue
            hits = service.search(question.question, 5)
            timing_cases.append((question.question, [hit.passage.text for hit in hits]))
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.rounds):
        for text, passages in timing_cases:
            for flag in (False, True):
                start = time.perf_counter()
                choose_sentences(text, passages, expected_value=flag)
                times[flag].append((time.perf_counter() - start) * 1000)
    result["choose_sentences_ms_p50"] = {
        "off": statistics.median(times[False]),
        "on": statistics.median(times[True]),
        "answers": len(timing_cases),
        "rounds": args.rounds,
    }
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
