"""The service at a size the shared corpus does not reach: a synthetic index of N passages
grown from the real shared index, searched in-process and over HTTP.

Usage:
  nice -n 19 .venv/bin/python benchmarks/scale_benchmark.py --passages 300000 [--json]
      [--work-dir /tmp/qa-scale] [--shared indexes/shared] [--no-incremental]

How the index grows (it is cached under ``--work-dir/<N>/`` and reused by later runs):

* every real passage, document, file record and vector of ``--shared`` is in it, as built;
* then copies of the real documents, copy 1, 2, ... of each in turn until N passages: a
  copy keeps its document's metadata and number of passages; each of its passages is
  the real passage's sentences in another order with one sentence swapped for a sentence
  of a random real passage, and its vector is the real passage's plus Gaussian noise,
  normalised (``--noise`` 0.5: cosine 0.89 to the real one); the document's vector the
  same. No embedding run is needed, and the vectors keep the real ones' distribution;
* each copy is written as a text file under ``<N>/corpus/synthetic/``, with its file
  record, so a later ``qa ingest`` over the real corpus and these files sees every file
  unchanged but the one the benchmark edits (the incremental publish it times);
* the index is written with the project's IndexWriter and LexicalIndex, as ``qa ingest``
  writes one (the approximate dense index included, by the default settings).

Measured: the service's start (``qa serve``, two workers, until /api/ready, at normal
priority) and each worker's resident memory (RSS, and PSS: shared pages split between the
processes; a worker that exited is named with its log lines, ``<N>/serve.log``);
/api/ask over HTTP; the hybrid search in-process and the dense leg alone (from question
vectors, the index's cost) at p50/p95, under SCHED_FIFO when allowed (as ``chrt -f 1``);
recall@10 of the dense leg (``q·p + w·q·d``) against exact search over every passage;
whether the real questions get the same results with and without the approximate index;
the size on disk; and the time of ``qa ingest`` publishing one changed file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from common import percentile, start_server
from tqdm import tqdm

from qa_service.approximate import approximate_settings
from qa_service.config import Settings
from qa_service.embedding import QueryVectors
from qa_service.evaluate import load_questions
from qa_service.hashing import file_sha256
from qa_service.ingest import _lexical_text
from qa_service.lexical import LexicalIndex
from qa_service.retrieval import DenseRetriever, _rows_of
from qa_service.schema import Document, Passage, document_id, passage_id
from qa_service.service import QAService
from qa_service.store import LEXICAL, FileRecord, IndexReader, IndexWriter

ROOT = Path(__file__).resolve().parent.parent
SHARED_ROOTS = [Path("/work/shared/corpus"), Path("/work/shared/seed")]
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@contextlib.contextmanager
def realtime() -> Iterator[bool]:
    """SCHED_FIFO priority 1 for the block (as ``chrt -f 1``), when the system allows it."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (PermissionError, AttributeError, OSError):
        yield False
        return
    try:
        yield True
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def recombine(text: str, other: str, rng: np.random.Generator) -> str:
    """A passage's sentences in another order, one of them swapped for one of ``other``'s
    (pure given the generator's state)."""
    sentences = [s for s in _SENTENCE.split(text) if s.strip()]
    donors = [s for s in _SENTENCE.split(other) if s.strip()]
    if not sentences:
        return text
    order = rng.permutation(len(sentences))
    mixed = [sentences[i] for i in order]
    if donors:
        mixed[int(rng.integers(len(mixed)))] = donors[int(rng.integers(len(donors)))]
    return " ".join(mixed)


def noisy(vectors: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors near ``vectors``: plus Gaussian noise of norm ~``noise``, normalised."""
    moved = vectors + rng.standard_normal(vectors.shape, dtype=np.float32) * (
        noise / np.sqrt(vectors.shape[1])
    )
    return (moved / np.linalg.norm(moved, axis=1, keepdims=True)).astype(np.float32)


def build_synthetic(shared: Path, target: Path, passages: int, noise: float, seed: int) -> None:
    """Write the synthetic index of ``passages`` passages at ``target/index``."""
    rng = np.random.default_rng(seed)
    real = IndexReader(shared)
    vectors = real.all_vectors()
    assert real.document_vectors is not None and real.passage_documents is not None
    doc_vectors = np.asarray(real.document_vectors)
    documents = list(real.documents())
    rows_of = {doc.id: real.passages_of(doc.id) for doc in documents}
    texts = real.passage_texts()
    if passages < len(texts):
        raise SystemExit(f"--passages must be at least the real {len(texts)}")
    positions = {
        row[0]: i
        for i, row in enumerate(real.db.execute("SELECT id FROM documents ORDER BY rowid"))
    }
    corpus = target / "corpus"
    index_path = target / "index"
    shutil.rmtree(target, ignore_errors=True)
    corpus.mkdir(parents=True)
    manifest = {
        key: value
        for key, value in real.manifest.items()
        if key not in {"format_version", "package_version", "built_at", "passages", "documents"}
    }
    manifest["sources"] = dict(manifest.get("sources", {}))
    writer = IndexWriter(
        index_path, manifest, approximate=approximate_settings(Settings.from_env())
    )
    lexical: list[str] = []
    count = 0
    for record in real.files().values():
        writer.add_file(record)
    progress = tqdm(total=passages, desc="synthetic index", unit="passage")
    # The real documents first, as built; then copies until the target.
    for doc in documents:
        rows = rows_of[doc.id]
        writer.add_document(
            doc,
            [p for _, p in rows],
            vectors[[r for r, _ in rows]],
            doc_vectors[positions[doc.id]],
        )
        lexical.extend(_lexical_text(doc, p) for _, p in rows)
        count += len(rows)
        progress.update(len(rows))
    copy = 0
    while count < passages:
        copy += 1
        for doc in documents:
            rows = rows_of[doc.id][: passages - count]
            if not rows or count >= passages:
                break
            source = f"synthetic/{copy:03d}/{document_id(doc.source)}.txt"
            new_id = document_id(source)
            texts_new = [
                recombine(p.text, texts[int(rng.integers(len(texts)))], rng) for _, p in rows
            ]
            body = "\n\n".join(texts_new)
            path = corpus / source
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body, encoding="utf-8")
            sha = file_sha256(path)
            stat = path.stat()
            new_passages = []
            start = 0
            for (_, p), text in zip(rows, texts_new, strict=True):
                new_passages.append(
                    Passage(
                        id=passage_id(source, start, text),
                        doc_id=new_id,
                        ordinal=p.ordinal,
                        text=text,
                        char_start=start,
                        char_end=start + len(text),
                        page=p.page,
                        heading=p.heading,
                        speaker=p.speaker,
                        party=p.party,
                    )
                )
                start += len(text) + 2
            document = Document(
                id=new_id,
                source=source,
                sha256=sha,
                meta=doc.meta,
                text=body,
                reader="txt",
                page_count=None,
            )
            writer.add_file(FileRecord(source, sha, stat.st_size, stat.st_mtime_ns, "indexed"))
            writer.add_document(
                document,
                new_passages,
                noisy(vectors[[r for r, _ in rows]], noise, rng),
                noisy(doc_vectors[positions[doc.id]][None, :], noise, rng)[0],
            )
            writer.manifest["sources"][source] = sha
            lexical.extend(_lexical_text(document, p) for p in new_passages)
            count += len(rows)
            progress.update(len(rows))
    progress.close()
    real.close()
    del vectors, texts, rows_of
    started = time.perf_counter()
    writer.save_part(LEXICAL, LexicalIndex.build(lexical).save)
    lexical_seconds = time.perf_counter() - started
    writer.manifest["documents"] = writer._db.execute("SELECT COUNT(*) FROM documents").fetchone()[
        0
    ]
    writer.manifest["synthetic"] = {
        "passages": passages,
        "noise": noise,
        "seed": seed,
        "copies": copy,
        "lexical_build_seconds": round(lexical_seconds, 1),
    }
    started = time.perf_counter()
    writer.publish(int(real.manifest["dimension"]))
    writer.manifest["synthetic"]["publish_seconds"] = round(time.perf_counter() - started, 1)
    (target / "build.json").write_text(json.dumps(writer.manifest["synthetic"]))


def disk_usage(build: Path) -> dict[str, float]:
    sizes: dict[str, float] = {}
    for path in build.iterdir():
        files = [path] if path.is_file() else list(path.rglob("*"))
        sizes[path.name] = round(sum(f.stat().st_size for f in files if f.is_file()) / 1e6, 1)
    sizes["total"] = round(sum(sizes.values()), 1)
    return sizes


def memory_of(pid: int) -> dict[str, float] | None:
    """RSS and PSS of a process, in MB (None: it has exited)."""
    values = {}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in {"Rss", "Pss"}:
            values[name.lower() + "_mb"] = round(int(rest.split()[0]) / 1024, 1)
    return values


def log_lines_of(log: Path, pid: int) -> list[str]:
    """The server log's lines that name a process (why a worker exited, say)."""
    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line for line in lines if str(pid) in line][-10:]


def workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = [int(p) for p in children.read_text().split()] if children.exists() else []
    return found + [g for c in found for g in workers_of(c)]


def serve(index: Path, questions: list[str], requests: int, log: Path) -> dict[str, Any]:
    """Start ``qa serve`` (two workers), time it, ask ``requests`` questions, read memory.

    The server starts at normal priority, as it would in production: a real-time
    priority inherited by its workers (as before) let their spinning OpenMP threads keep
    the cores from each other while both loaded. Only the client is real-time while it
    times the answers. The server's log goes to ``log``; a worker that exits meanwhile is
    reported with the log's lines about it."""
    env = {"QA_RATE_LIMIT": "", "QA_QUERY_CACHE": "0"}
    started = time.perf_counter()
    server, url = start_server(index, env=env, log=log)
    start_s = time.perf_counter() - started
    try:
        at_ready = workers_of(server.pid)
        seconds = []
        with realtime():
            for i in range(requests):
                body = json.dumps({"question": questions[i % len(questions)], "top_k": 5})
                request = urllib.request.Request(
                    f"{url}/api/ask",
                    data=body.encode(),
                    headers={"Content-Type": "application/json"},
                )
                began = time.perf_counter()
                with urllib.request.urlopen(request, timeout=60) as response:
                    response.read()
                seconds.append(time.perf_counter() - began)
        workers, exited = [], []
        for pid in sorted(set(at_ready) | set(workers_of(server.pid))):
            memory = memory_of(pid)
            if memory is None:
                exited.append({"pid": pid, "log": log_lines_of(log, pid)})
            elif memory.get("rss_mb", 0) > 100:  # the model's processes
                workers.append({"pid": pid, **memory})
    finally:
        server.terminate()
        server.wait(timeout=60)
    for worker in exited:
        print(f"worker {worker['pid']} exited: {worker['log']}", file=sys.stderr)
    ms = [s * 1000 for s in seconds]
    return {
        "start_s": round(start_s, 2),
        "http_requests": len(ms),
        "http_p50_ms": round(percentile(ms, 50), 1),
        "http_p95_ms": round(percentile(ms, 95), 1),
        "workers": workers,
        "workers_exited": exited,
    }


def exact_dense(reader: IndexReader, vector: np.ndarray, weight: float, k: int) -> list[int]:
    """The exact top k of ``q·p + w·q·d`` over every passage, in blocks of the mapped file."""
    matrix = _rows_of(reader.vectors)
    assert reader.document_vectors is not None and reader.passage_documents is not None
    documents = np.asarray(reader.document_vectors) @ vector * weight
    owner = reader.passage_documents
    best: list[tuple[float, int]] = []
    block = 200_000
    for start in range(0, len(matrix), block):
        scores = matrix[start : start + block] @ vector + documents[owner[start : start + block]]
        top = np.argpartition(-scores, k)[:k] if len(scores) > k else np.arange(len(scores))
        best.extend((float(scores[i]), start + int(i)) for i in top)
    best.sort(key=lambda pair: (-pair[0], pair[1]))
    return [row for _, row in best[:k]]


def dense_leg(service: QAService) -> DenseRetriever:
    """The loaded build's dense leg (the synthetic index is one segment: one retriever)."""
    dense = service.loaded.retrievers.dense
    assert isinstance(dense, DenseRetriever), type(dense)
    return dense


def in_process(
    index: Path,
    shared: Path,
    questions: list[str],
    rounds: int,
    pairs: list[tuple[int, int]] | None = None,
) -> dict[str, Any]:
    settings = Settings.from_env(index_dir=index, query_cache=0)
    began = time.perf_counter()
    service = QAService(settings)
    service.load()
    service.warm_up()
    load_s = time.perf_counter() - began
    loaded, dense = service.loaded, dense_leg(service)
    dense_ms, hybrid_ms = [], []
    with realtime() as fifo:
        vectors = [
            np.asarray(service.embedder.encode_query(q), dtype=np.float32) for q in questions
        ]
        for _ in range(rounds):
            for vector in vectors:
                began = time.perf_counter()
                dense.search_vector(vector, settings.candidate_depth)
                dense_ms.append((time.perf_counter() - began) * 1000)
            for question in questions:
                service.query_vectors.clear()
                began = time.perf_counter()
                service.search(question, 5)
                hybrid_ms.append((time.perf_counter() - began) * 1000)
    # Recall@10 of the dense leg against exact search over every passage.
    recalls, same_top10 = [], 0
    for vector in vectors:
        truth = exact_dense(loaded.reader, vector, settings.document_weight, 10)
        got = [row for row, _ in dense.search_vector(vector, 10)]
        recalls.append(len(set(truth) & set(got)) / 10)
        same_top10 += got == truth
    # Untimed from here: each question is encoded once, for both services.
    exact_service = QAService(
        Settings.from_env(index_dir=index, approximate_min_passages=10**12),
        embedder=service.embedder,
    )
    exact_service.load()
    known = dict(zip(questions, vectors, strict=True))
    cache = QueryVectors(
        lambda text: known[text] if text in known else service.embedder.encode_query(text), 1024
    )
    service.query_vectors = exact_service.query_vectors = cache
    approximate_results = [[hit.passage.id for hit in service.search(q, 5)] for q in questions]
    exact_dense_ms = []
    with realtime():
        for vector in vectors:
            began = time.perf_counter()
            dense_leg(exact_service).search_vector(vector, settings.candidate_depth)
            exact_dense_ms.append((time.perf_counter() - began) * 1000)
    exact_results = [[hit.passage.id for hit in exact_service.search(q, 5)] for q in questions]
    same = sum(a == e for a, e in zip(approximate_results, exact_results, strict=True))
    real = {row[0] for row in IndexReader(shared).db.execute("SELECT id FROM passages")}
    real_hits = sum(1 for result in exact_results for pid in result if pid in real)
    swept = (
        sweep(service, exact_service, questions, vectors, pairs, settings.candidate_depth)
        if pairs
        else None
    )
    return {
        "passages": loaded.reader.passage_count,
        "approximate": dense.approximate is not None,
        "approximate_index": loaded.reader.manifest.get("approximate"),
        "realtime_priority": fifo,
        "load_in_process_s": round(load_s, 2),
        "p50_ms": round(percentile(hybrid_ms, 50), 1),
        "p95_ms": round(percentile(hybrid_ms, 95), 1),
        "dense_p50_ms": round(percentile(dense_ms, 50), 2),
        "dense_p95_ms": round(percentile(dense_ms, 95), 2),
        "exact_dense_p50_ms": round(percentile(exact_dense_ms, 50), 2),
        "exact_dense_p95_ms": round(percentile(exact_dense_ms, 95), 2),
        "recall_at_10": round(float(np.mean(recalls)), 4),
        "dense_top10_identical": f"{same_top10}/{len(vectors)}",
        "hybrid_top5_same_as_exact": f"{same}/{len(questions)}",
        "exact_top5_real_passages": f"{real_hits}/{5 * len(questions)}",
        "sweep": swept,
    }


def sweep(
    service: QAService,
    exact_service: QAService,
    questions: list[str],
    vectors: list[np.ndarray],
    pairs: list[tuple[int, int]],
    depth: int,
) -> list[dict[str, Any]]:
    """For each (efSearch, candidates): the dense leg's time and how often its top
    ``depth`` (what the fusion reads: its min-max normalisation takes the last score
    too) is the exact leg's, and the hybrid's top 5 against the exact service's with
    the hybrid's time (the question's encoding included)."""
    dense, exact = dense_leg(service), dense_leg(exact_service)
    exact_depth = [exact.search_vector(v, depth) for v in vectors]
    exact_top5 = [[hit.passage.id for hit in exact_service.search(q, 5)] for q in questions]
    rows = []
    for breadth, candidates in pairs:
        dense.approximate_breadth, dense.approximate_candidates = breadth, candidates
        dense_ms, hybrid_ms, same_depth, same_rows = [], [], 0, 0
        with realtime():
            for vector, truth in zip(vectors, exact_depth, strict=True):
                began = time.perf_counter()
                got = dense.search_vector(vector, depth)
                dense_ms.append((time.perf_counter() - began) * 1000)
                same_depth += [r for r, _ in got] == [r for r, _ in truth]
                same_rows += {r for r, _ in got} == {r for r, _ in truth}
            results = []
            for question in questions:
                began = time.perf_counter()
                results.append([hit.passage.id for hit in service.search(question, 5)])
                hybrid_ms.append((time.perf_counter() - began) * 1000)
        same = sum(a == e for a, e in zip(results, exact_top5, strict=True))
        row = {
            "ef_search": breadth,
            "candidates": candidates,
            "dense_p50_ms": round(percentile(dense_ms, 50), 2),
            "dense_p95_ms": round(percentile(dense_ms, 95), 2),
            f"dense_top{depth}_same_order": f"{same_depth}/{len(vectors)}",
            f"dense_top{depth}_same_rows": f"{same_rows}/{len(vectors)}",
            "hybrid_p50_ms": round(percentile(hybrid_ms, 50), 1),
            "hybrid_p95_ms": round(percentile(hybrid_ms, 95), 1),
            "hybrid_top5_same_as_exact": f"{same}/{len(questions)}",
            # Which questions (by their line in the file) differ.
            "differing": [
                i for i, (a, e) in enumerate(zip(results, exact_top5, strict=True)) if a != e
            ],
        }
        print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def incremental(target: Path, index: Path) -> dict[str, Any]:
    """Edit one synthetic file and time ``qa ingest`` publishing the change."""
    edited = sorted((target / "corpus" / "synthetic").rglob("*.txt"))[0]
    with edited.open("a", encoding="utf-8") as handle:
        handle.write(f"\n\nEtt tillagt stycke, skrivet {time.time():.0f}, om budgeten.\n")
    roots = [str(r) for r in SHARED_ROOTS] + [str(target / "corpus")]
    command = [
        sys.executable,
        "-m",
        "qa_service.cli",
        "ingest",
        *roots,
        "--index",
        str(index),
        "--json",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        return {"incremental_publish_s": None, "error": done.stderr[-2000:]}
    report = json.loads(done.stdout) if done.stdout.strip().startswith("{") else done.stdout[-500:]
    return {
        "incremental_publish_s": round(seconds, 1),
        # CPU seconds: what the publish costs, whatever else the machine runs meanwhile.
        "incremental_publish_cpu_s": round(
            after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 1
        ),
        "incremental_peak_rss_mb": round(after.ru_maxrss / 1024, 1),
        "ingest_report": report,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passages", type=int, required=True)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/qa-scale"))
    parser.add_argument("--shared", type=Path, default=Path("/work/main/indexes/shared"))
    parser.add_argument("--questions", type=Path, default=ROOT / "eval" / "questions.jsonl")
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--http-requests", type=int, default=30)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--no-incremental", action="store_true")
    parser.add_argument(
        "--sweep",
        default="",
        help="efSearch:candidates pairs to measure as well, e.g. 128:200,256:400",
    )
    parser.add_argument("--no-serve", action="store_true", help="skip the server's part")
    parser.add_argument(
        "--start-only", action="store_true", help="only the service's start and memory"
    )
    args = parser.parse_args()
    target = args.work_dir / str(args.passages)
    index = target / "index"
    build: dict[str, Any] = {}
    if args.rebuild or not (index / "manifest.json").exists():
        began, cpu = time.perf_counter(), time.process_time()
        build_synthetic(args.shared, target, args.passages, args.noise, args.seed)
        build = {
            "build_s": round(time.perf_counter() - began, 1),
            "build_cpu_s": round(time.process_time() - cpu, 1),
        }
        stored = json.loads((target / "build.json").read_text())
        (target / "build.json").write_text(json.dumps({**stored, **build}))
    build.update(json.loads((target / "build.json").read_text()))
    questions = [q.question for q in load_questions(args.questions)]
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "build": build,
        "disk_mb": disk_usage(index.resolve()),
    }
    if args.start_only:
        served = serve(index, questions, args.http_requests, target / "serve.log")
        print(json.dumps({**result, **served}, ensure_ascii=False))
        return
    pairs = [
        (int(ef), int(candidates))
        for ef, candidates in (pair.split(":") for pair in args.sweep.split(",") if pair)
    ]
    result.update(in_process(index, args.shared, questions, args.rounds, pairs))
    print(json.dumps(result), file=sys.stderr, flush=True)  # so far, should a later step fail
    if args.no_serve:
        print(json.dumps(result, ensure_ascii=False))
        return
    served = serve(index, questions, args.http_requests, target / "serve.log")
    result.update(served)
    print(json.dumps(served), file=sys.stderr, flush=True)
    result["rss_mb"] = max((w["rss_mb"] for w in served["workers"]), default=None)
    result["pss_mb"] = max((w["pss_mb"] for w in served["workers"]), default=None)
    result.update(
        {"incremental_publish_s": None, "incremental": "not run (--no-incremental)"}
        if args.no_incremental
        else incremental(target, index)
    )
    text = json.dumps(result, ensure_ascii=False, indent=None if args.json else 2)
    print(text)


if __name__ == "__main__":
    main()
