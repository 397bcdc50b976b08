"""The cost of publishing one changed file into a large index: a full rebuild against a
segment publish, on copies of the synthetic index ``scale_benchmark.py`` caches.

Usage (the index of N passages must be cached under ``--work-dir/<N>/`` by a run of
``scale_benchmark.py --passages N`` first)::

    nice -n 19 .venv/bin/python benchmarks/incremental_publish.py --passages 100000 \
        [--variants full,segments] [--rounds 1] [--json]

Each round and variant, in turn: the cached build and corpus are copied as hard links
(nothing of the cache is written: ``qa ingest`` writes a new build and only unlinks old
ones, and the edited file is written as a new file), the copy is brought to where an
ingest by this version would leave it (``copy_cached``), one synthetic file gets a
paragraph appended, and ``qa ingest`` over the shared corpus plus the synthetic files is
timed in a child process: wall clock and CPU seconds (user + system, from the child's
rusage: what the publish costs whatever else the shared machine runs). ``full`` sets
``QA_INDEX_SEGMENTS=false`` (every publish writes a complete build, as before segments);
``segments`` the default. The model's loading is in both.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import run_child

from qa_service.ingest import READER_VERSION

SHARED_ROOTS = [Path("/work/shared/corpus"), Path("/work/shared/seed")]
VARIANTS = {"full": {"QA_INDEX_SEGMENTS": "false"}, "segments": {"QA_INDEX_SEGMENTS": "true"}}


def copy_cached(source: Path, dest: Path) -> Path:
    """The cached index and corpus under ``dest`` as hard links; returns the index link."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(source / ".index.builds"), str(dest)], check=True)
    subprocess.run(["cp", "-al", str(source / "corpus"), str(dest)], check=True)
    os.symlink(os.readlink(source / "index"), dest / "index")
    # The cached build names the reader version it was grown from (that of the shared
    # index it copies); as written, the first `qa ingest` would read every file again
    # for the current readers, whatever the variant. The copy's manifest (a new file,
    # not written through the link) names the current version, so that the ingest sees
    # one changed file, as after an ingest by this version.
    manifest_path = dest / "index" / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["reader"] = READER_VERSION
    manifest_path.unlink()
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    # Likewise the file records: the shared corpus's files were touched (same content,
    # new modification times) since the shared index was built, which the first ingest
    # records; the copy's database (a copy, not the cache's linked file) records them.
    database = dest / "index" / "passages.sqlite3"
    shutil.copyfile(database, database.with_suffix(".tmp"))
    os.replace(database.with_suffix(".tmp"), database)
    conn = sqlite3.connect(database)
    updates = []
    for source, size in conn.execute("SELECT source, size FROM files"):
        for root in [*SHARED_ROOTS, dest / "corpus"]:
            path = root / source
            if path.is_file() and path.stat().st_size == size:
                updates.append((path.stat().st_mtime_ns, source))
                break
    conn.executemany("UPDATE files SET mtime_ns = ? WHERE source = ?", updates)
    conn.commit()
    conn.close()
    return dest / "index"


def edit_one_file(corpus: Path) -> Path:
    """Append a paragraph to the first synthetic file, as a new file (the hard link to
    the cache is broken, not written through)."""
    edited = sorted((corpus / "synthetic").rglob("*.txt"))[0]
    text = edited.read_text(encoding="utf-8")
    edited.unlink()
    edited.write_text(
        f"{text}\n\nEtt tillagt stycke, skrivet {time.time():.0f}, om budgeten.\n",
        encoding="utf-8",
    )
    return edited


def publish(index: Path, corpus: Path, env: dict[str, str]) -> dict[str, Any]:
    roots = [str(r) for r in SHARED_ROOTS] + [str(corpus)]
    command = [sys.executable, "-m", "qa_service.cli", "ingest", *roots, "--index", str(index)]
    done = run_child([*command, "--json"], env={**os.environ, **env})
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    report = json.loads(done.stdout)
    return {
        "wall_s": round(done.wall_s, 1),
        "cpu_s": round(done.cpu_s, 1),
        "peak_rss_mb": round(done.peak_rss_mb, 1),
        "published": report.get("published"),
        "segments": report.get("segments"),
        "merged": report.get("merged"),
        "passages": report.get("passages"),
        "passages_embedded": report.get("passages_embedded"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, required=True)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/qa-scale"))
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/qa-incremental"))
    parser.add_argument("--variants", default="full,segments")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    source = args.work_dir / str(args.passages)
    if not (source / "index" / "manifest.json").exists():
        raise SystemExit(f"no cached index at {source}: run scale_benchmark.py first")
    results: dict[str, list[dict[str, Any]]] = {}
    for _ in range(args.rounds):
        for variant in args.variants.split(","):
            dest = args.scratch / f"{args.passages}-{variant}"
            index = copy_cached(source, dest)
            edit_one_file(dest / "corpus")
            load = os.getloadavg()[0]
            result = publish(index, dest / "corpus", VARIANTS[variant])
            result["load_before"] = round(load, 1)
            results.setdefault(variant, []).append(result)
            print(json.dumps({variant: result}), file=sys.stderr, flush=True)
            shutil.rmtree(dest, ignore_errors=True)
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "passages": args.passages,
        "results": results,
    }
    print(json.dumps(summary, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
