"""Duplicate search for eval/heldout4: for each evidence, three 7-word windows (start,
middle, end) are looked up with `grep -rlF` in the shared corpus and seed. Prints every
file other than the question's `relevant` ones that holds a window; whether such a file
states the same fact and answers the question was then judged by reading it.

    python eval/heldout4/check_duplicates.py
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = "/work/shared/corpus"
SEED = "/work/shared/seed"


def windows(evidence: str, size: int = 7) -> list[str]:
    words = evidence.split()
    middle = max(0, (len(words) - size) // 2)
    return list(dict.fromkeys([" ".join(words[:size]), " ".join(words[middle:middle + size]),
                               " ".join(words[-size:])]))


def main() -> None:
    for line in (HERE / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        hits: dict[str, int] = {}
        for window in windows(row["evidence"]):
            out = subprocess.run(["grep", "-rlF", window, CORPUS, SEED],
                                 capture_output=True, text=True).stdout.split()
            for path in out:
                rel = path.removeprefix(CORPUS + "/")
                hits[rel] = hits.get(rel, 0) + 1
        others = {k: v for k, v in hits.items() if k not in row["relevant"]}
        for rel, count in sorted(others.items()):
            print(f"{row['id']}\t{count}/3 windows\t{rel}")


if __name__ == "__main__":
    main()
