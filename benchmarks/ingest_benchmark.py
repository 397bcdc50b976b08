"""Ingest the shared corpus and compare the job's rate with the bare model's encode rate.

Usage: .venv/bin/python benchmarks/ingest_benchmark.py [--index DIR] [--sample N]

Writes a JSON result to benchmarks/results/ and prints it; copy the figures into
BENCHMARKS.md together with the machine line it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path

from qa_service.config import Settings
from qa_service.embedding import make_embedder
from qa_service.ingest import run_ingest
from qa_service.store import IndexReader

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def machine() -> dict[str, object]:
    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, default=ROOT / "indexes" / "bench-shared")
    parser.add_argument("--sample", type=int, default=2000, help="passages for the bare rate")
    parser.add_argument("--fresh", action="store_true", help="delete the index first")
    args = parser.parse_args()
    if not (SHARED / "corpus").is_dir():
        raise SystemExit(f"{SHARED}/corpus is missing: this benchmark needs ../shared")
    settings = Settings.from_env(index_dir=args.index)
    if args.fresh and args.index.exists():
        import shutil

        args.index.unlink() if args.index.is_symlink() else shutil.rmtree(args.index)
    embedder = make_embedder(settings)
    report = run_ingest([SHARED / "corpus", SHARED / "seed"], settings, embedder=embedder)

    texts = IndexReader(args.index).passage_texts()
    sample = random.Random(0).sample(texts, min(args.sample, len(texts)))
    embedder.encode_passages(sample[:64])  # warm-up
    started = time.perf_counter()
    embedder.encode_passages(sample, batch_size=settings.embed_batch_size)
    bare_seconds = time.perf_counter() - started

    result = {
        "machine": machine(),
        "model": settings.model,
        "files_seen": report.files_seen,
        "files_indexed": report.files_indexed,
        "files_skipped": len(report.skipped),
        "skipped": report.skipped,
        "documents": report.documents,
        "passages": report.passages,
        "passages_embedded": report.passages_embedded,
        "ingest_seconds": round(report.seconds, 1),
        "embed_seconds": round(report.embed_seconds, 1),
        "ingest_passages_per_second": round(report.passages_per_second, 2),
        "bare_model_sample": len(sample),
        "bare_model_passages_per_second": round(len(sample) / bare_seconds, 2),
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (out / f"ingest-{stamp}.json").write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
