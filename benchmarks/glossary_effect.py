"""The English glossary's effect on retrieval: question sets with the glossary on, with
its dense ranking off (``QA_GLOSSARY_WEIGHT=0``, the lexical leg still adds its terms),
and with no glossary at all (an empty table: neither leg gets Swedish terms).

Usage:
  .venv/bin/python benchmarks/glossary_effect.py --index indexes/shared \\
      eval/english_after_glossary.jsonl [--variants on,weight0,none] [--out DIR]

One embedder is loaded and shared by every variant; each variant loads the index anew.
Prints one line per (set, variant) and writes the full reports as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from functools import cache
from pathlib import Path

from qa_service import glossary
from qa_service.config import Settings
from qa_service.embedding import make_embedder
from qa_service.evaluate import evaluate, load_questions
from qa_service.service import QAService

VARIANTS = ("on", "weight0", "none")


def run(index: Path, sets: list[Path], variants: list[str], out: Path | None) -> None:
    base = Settings.from_env(index_dir=index)
    embedder = make_embedder(base)
    pattern = glossary._pattern
    nothing = cache(lambda: re.compile(r"(?!)"))  # an empty table: no phrase matches
    for questions in sets:
        items = load_questions(questions)
        for variant in variants:
            glossary._pattern = nothing if variant == "none" else pattern
            weight = 0.0 if variant == "weight0" else base.glossary_weight
            service = QAService(
                dataclasses.replace(base, glossary_weight=weight), embedder=embedder
            )
            service.load()
            report = evaluate(service, items, mode="hybrid", k=5)
            s = report["summary"]
            print(questions.name, variant, json.dumps(s, ensure_ascii=False), flush=True)
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                target = out / f"{questions.stem}.{variant}.json"
                target.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    glossary._pattern = pattern


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    run(args.index, args.sets, variants, args.out)


if __name__ == "__main__":
    main()
