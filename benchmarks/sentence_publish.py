"""What sentence vectors cost the publish of one changed file: a build with them is one
segment, written whole by every ``qa ingest``; a build without them publishes a segment.

Usage::

    .venv/bin/python benchmarks/sentence_publish.py --plain <build without them> \
        --sentences <build with QA_SENTENCE_VECTORS> [--rounds 2] [--work-dir DIR] [--json]

Both builds must be of ``../shared/corpus`` and ``../shared/seed``. The corpus and both
builds are copied under ``--work-dir`` (modification times kept, so nothing is read
again), each copy is brought up to date by one untimed ingest, and then each round one
sentence is appended to one file and both indexes are ingested in turn (which first
alternates), each in a child process: wall clock, CPU seconds and the child's own peak
RSS (``os.wait4``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import run_child

SHARED = Path("/work/shared")
EDITED = (
    "corpus/g0vse/data/regeringsuppdrag/2019/11/uppdrag-till-statens-skolverk-att-genomfora-"
    "insatser-for-att-starka-utbildningens-kvalitet-for-barn-och-elever-som-ar-nyanlanda-"
    "eller-har-annat-modersmal-an-svenska.md"
)


def copy_index(index: Path, target: Path) -> Path:
    """A copy of the build ``index`` points at, published at ``target``."""
    build = index.resolve()
    builds = target.parent / f".{target.name}.builds"
    builds.mkdir(parents=True)
    shutil.copytree(build, builds / build.name, copy_function=shutil.copy2)
    target.symlink_to(builds.relative_to(target.parent) / build.name)
    return target


def ingest(corpus: Path, index: Path, sentences: bool) -> dict[str, Any]:
    env = {**os.environ, "QA_SENTENCE_VECTORS": "true" if sentences else "false"}
    command = [sys.executable, "-m", "qa_service.cli", "ingest", str(corpus / "corpus")]
    command += [str(corpus / "seed"), "--index", str(index), "--json", "--no-progress"]
    run = run_child(command, env=env)
    if run.returncode != 0:
        raise SystemExit(f"qa ingest failed: {run.stderr[-2000:]}")
    report = json.loads(run.stdout)
    return {
        "wall_s": round(run.wall_s, 2),
        "cpu_s": round(run.cpu_s, 2),
        "peak_rss_mb": round(run.peak_rss_mb),
        "published": report["published"],
        "segments": report["segments"],
        "passages_embedded": report["passages_embedded"],
        "sentences_embedded": report["sentences_embedded"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plain", type=Path, required=True)
    parser.add_argument("--sentences", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(dir=args.work_dir))
    corpus = work / "shared"
    for part in ("corpus", "seed"):
        shutil.copytree(SHARED / part, corpus / part, copy_function=shutil.copy2)
    indexes = {
        "without sentence vectors (segment publish)": (
            copy_index(args.plain, work / "plain"),
            False,
        ),
        "with sentence vectors (whole build)": (copy_index(args.sentences, work / "sent"), True),
    }
    for index, sentences in indexes.values():
        ingest(corpus, index, sentences)  # up to date with this version's reader
    result: dict[str, Any] = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        **{name: [] for name in indexes},
    }
    names = list(indexes)
    try:
        for round_ in range(args.rounds):
            with open(corpus / EDITED, "a", encoding="utf-8") as edited:
                edited.write(f"\n\nUppdraget följs upp och redovisas under år {2020 + round_}.\n")
            for name in names if round_ % 2 == 0 else names[::-1]:
                index, sentences = indexes[name]
                result[name].append(ingest(corpus, index, sentences))
    finally:
        shutil.rmtree(work)
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
