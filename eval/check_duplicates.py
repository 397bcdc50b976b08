"""Duplicate search for a held-out set: for each evidence, three 7-word windows (start,
middle, end) are looked up with `grep -rlF` in the shared corpus and seed. Prints every
file other than the question's `relevant` ones that holds a window; whether such a file
states the same fact and answers the question is then judged by reading it.

    python eval/check_duplicates.py eval/heldout4
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

CORPUS = "/work/shared/corpus"
SEED = "/work/shared/seed"


def windows(evidence: str, size: int = 7) -> list[str]:
    words = evidence.split()
    middle = max(0, (len(words) - size) // 2)
    parts = [words[:size], words[middle : middle + size], words[-size:]]
    return list(dict.fromkeys(" ".join(part) for part in parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("set", type=Path, help="the set's directory (holds questions.jsonl)")
    args = parser.parse_args()
    for line in (args.set / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        hits: dict[str, int] = {}
        for window in windows(row["evidence"]):
            out = subprocess.run(
                ["grep", "-rlF", window, CORPUS, SEED], capture_output=True, text=True
            ).stdout.split()
            for path in out:
                rel = path.removeprefix(CORPUS + "/")
                hits[rel] = hits.get(rel, 0) + 1
        others = {k: v for k, v in hits.items() if k not in row["relevant"]}
        for rel, count in sorted(others.items()):
            print(f"{row['id']}\t{count}/3 windows\t{rel}")


if __name__ == "__main__":
    main()
