"""The service at a size the shared corpus does not reach: a synthetic index of N passages
grown from the real shared index, searched in-process and over HTTP.

Usage:
  nice -n 19 .venv/bin/python benchmarks/scale_benchmark.py --passages 300000 [--json]
      [--work-dir /tmp/qa-scale] [--shared indexes/shared] [--no-incremental]
  .venv/bin/python benchmarks/scale_benchmark.py --passages 100000 --measure-build 25000,10000
      [--build-rounds 2] [--build-queries] [--work-dir /tmp/qa-scale] [--json]

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

``--measure-build S,…`` measures the build alone instead: the same synthetic index (its
copies' text files not written) built in one segment and with a segment written out
every S passages (``QA_BUILD_SEGMENT_PASSAGES``; at most ``QA_BUILD_MAX_SEGMENTS``), each
build in a child process of its own, whose peak RSS (``ru_maxrss``) and wall and CPU
time are the build's; the variants interleaved, their order reversed every other round.
With ``--build-queries`` each variant's last build is then searched in-process (the
dense leg from question vectors, the hybrid search) and its hybrid top 5 compared with
the one-segment build's.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from common import percentile, run_child, start_server, timed_ask
from tqdm import tqdm

from qa_service.approximate import approximate_settings
from qa_service.config import Settings
from qa_service.embedding import QueryVectors
from qa_service.evaluate import load_questions
from qa_service.hashing import file_sha256
from qa_service.ingest import _lexical_text, _save_lexical
from qa_service.retrieval import DenseRetriever, SegmentedDenseRetriever, _rows_of
from qa_service.schema import Document, Passage, document_id, passage_id
from qa_service.service import QAService
from qa_service.store import FileRecord, IndexReader, IndexWriter

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


def build_synthetic(
    shared: Path,
    target: Path,
    passages: int,
    noise: float,
    seed: int,
    *,
    segment_passages: int = 0,
    write_files: bool = True,
) -> None:
    """Write the synthetic index of ``passages`` passages at ``target/index``: one
    segment, or (``segment_passages``) a segment written out every so many passages,
    as ``qa ingest`` does with ``QA_BUILD_SEGMENT_PASSAGES``. Without ``write_files``
    the copies' text files are not written (their records hash the text)."""
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
    settings = Settings.from_env()
    lexical_seconds = 0.0

    def lexical(texts: Sequence[str], path: Path) -> None:
        nonlocal lexical_seconds
        began = time.perf_counter()
        _save_lexical(texts, path)
        lexical_seconds += time.perf_counter() - began

    writer = IndexWriter(
        index_path,
        manifest,
        approximate=approximate_settings(settings),
        lexical=lexical,
        flush_passages=segment_passages,
        max_segments=settings.build_max_segments,
        expected_passages=passages,
    )
    count = 0
    records = real.files()
    progress = tqdm(total=passages, desc="synthetic index", unit="passage")
    # The real documents first, as built, each file's record after its document (a
    # segment holds its documents' records); then copies until the target.
    for doc in documents:
        rows = rows_of[doc.id]
        writer.add_document(
            doc,
            [p for _, p in rows],
            vectors[[r for r, _ in rows]],
            doc_vectors[positions[doc.id]],
            lexical_texts=[_lexical_text(doc, p) for _, p in rows],
        )
        if doc.source in records:
            writer.add_file(records.pop(doc.source))
        count += len(rows)
        progress.update(len(rows))
    for record in records.values():  # skipped files
        writer.add_file(record)
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
            if write_files:
                path = corpus / source
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(body, encoding="utf-8")
                sha = file_sha256(path)
                size, mtime_ns = path.stat().st_size, path.stat().st_mtime_ns
            else:
                data = body.encode("utf-8")
                sha, size, mtime_ns = hashlib.sha256(data).hexdigest(), len(data), 0
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
            writer.add_document(
                document,
                new_passages,
                noisy(vectors[[r for r, _ in rows]], noise, rng),
                noisy(doc_vectors[positions[doc.id]][None, :], noise, rng)[0],
                lexical_texts=[_lexical_text(document, p) for p in new_passages],
            )
            writer.add_file(FileRecord(source, sha, size, mtime_ns, "indexed"))
            writer.manifest["sources"][source] = sha
            count += len(rows)
            progress.update(len(rows))
    progress.close()
    real.close()
    del vectors, texts, rows_of
    writer.manifest["documents"] = writer.documents_written
    writer.manifest["synthetic"] = {
        "passages": passages,
        "noise": noise,
        "seed": seed,
        "copies": copy,
        "segment_passages": segment_passages,
    }
    started = time.perf_counter()
    writer.publish(int(real.manifest["dimension"]))
    writer.manifest["synthetic"]["publish_seconds"] = round(time.perf_counter() - started, 1)
    # Every segment's lexical index (those written out before the publish included).
    writer.manifest["synthetic"]["lexical_build_seconds"] = round(lexical_seconds, 1)
    writer.manifest["synthetic"]["segments"] = writer.segments_written
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
                seconds.append(timed_ask(url, questions[i % len(questions)], timeout=60))
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


def dense_leg(service: QAService) -> DenseRetriever | SegmentedDenseRetriever:
    """The loaded build's dense leg: one retriever, or one per segment once an incremental
    publish has added a segment."""
    dense = service.loaded.retrievers.dense
    assert isinstance(dense, DenseRetriever | SegmentedDenseRetriever), type(dense)
    return dense


def approximate_parts(dense: DenseRetriever | SegmentedDenseRetriever) -> list[DenseRetriever]:
    """The retrievers of the dense leg that search an approximate index (a segment's own
    retriever is approximate when the segment alone is large enough)."""
    parts = (
        [part for _, part, _ in dense.parts]
        if isinstance(dense, SegmentedDenseRetriever)
        else [dense]
    )
    return [part for part in parts if part.approximate is not None]


def question_vectors(service: QAService, questions: list[str]) -> list[np.ndarray]:
    return [np.asarray(service.embedder.encode_query(q), dtype=np.float32) for q in questions]


def timed_searches(
    service: QAService,
    dense: Any,
    questions: list[str],
    vectors: list[np.ndarray],
    rounds: int = 1,
) -> tuple[list[float], list[float]]:
    """Milliseconds of the dense leg (from the questions' ``vectors``) and of the hybrid
    search, each question ``rounds`` times."""
    depth = service.settings.candidate_depth
    dense_ms, hybrid_ms = [], []
    for _ in range(rounds):
        for vector in vectors:
            began = time.perf_counter()
            dense.search_vector(vector, depth)
            dense_ms.append((time.perf_counter() - began) * 1000)
        for question in questions:
            service.query_vectors.clear()
            began = time.perf_counter()
            service.search(question, 5)
            hybrid_ms.append((time.perf_counter() - began) * 1000)
    return dense_ms, hybrid_ms


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
    with realtime() as fifo:
        vectors = question_vectors(service, questions)
        dense_ms, hybrid_ms = timed_searches(service, dense, questions, vectors, rounds)
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
        "approximate": bool(approximate_parts(dense)),
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
        for part in approximate_parts(dense):
            part.approximate_breadth, part.approximate_candidates = breadth, candidates
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
    done = run_child(command)
    if done.returncode != 0:
        return {"incremental_publish_s": None, "error": done.stderr[-2000:]}
    report = json.loads(done.stdout) if done.stdout.strip().startswith("{") else done.stdout[-500:]
    return {
        "incremental_publish_s": round(done.wall_s, 1),
        # CPU seconds: what the publish costs, whatever else the machine runs meanwhile.
        "incremental_publish_cpu_s": round(done.cpu_s, 1),
        "incremental_peak_rss_mb": round(done.peak_rss_mb, 1),
        "ingest_report": report,
    }


def rss_now_mb() -> float:
    """This process's resident memory now, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def build_child(args: argparse.Namespace) -> None:
    """``--build-child S``: one synthetic build of ``--passages`` with segments of S
    passages (0: one), timed, in this process alone; prints one JSON line."""
    target = args.work_dir / f"build-{args.build_child}"
    shutil.rmtree(target, ignore_errors=True)
    baseline = rss_now_mb()
    began, cpu = time.perf_counter(), time.process_time()
    build_synthetic(
        args.shared,
        target,
        args.passages,
        args.noise,
        args.seed,
        segment_passages=args.build_child,
        write_files=False,
    )
    result = {
        "segment_passages": args.build_child,
        "build_s": round(time.perf_counter() - began, 1),
        "build_cpu_s": round(time.process_time() - cpu, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_build_mb": baseline,
        **json.loads((target / "build.json").read_text()),
        "disk_mb": disk_usage((target / "index").resolve())["total"],
    }
    print(json.dumps(result))


def query_times(
    index: Path, questions: list[str], embedder: Any = None
) -> tuple[dict[str, Any], list[list[str]], Any]:
    """The dense leg (from question vectors) and the hybrid search in-process over one
    build, each question once; and each question's hybrid top 5 (passage ids)."""
    settings = Settings.from_env(index_dir=index, query_cache=0)
    service = QAService(settings, embedder=embedder)
    service.load()
    service.warm_up()
    dense = service.loaded.retrievers.dense
    with realtime():
        vectors = question_vectors(service, questions)
        dense_ms, hybrid_ms = timed_searches(service, dense, questions, vectors)
    top5 = [[hit.passage.id for hit in service.search(q, 5)] for q in questions]
    figures = {
        "segments": len(service.loaded.reader.segments),
        "dense_p50_ms": round(percentile(dense_ms, 50), 2),
        "dense_p95_ms": round(percentile(dense_ms, 95), 2),
        "p50_ms": round(percentile(hybrid_ms, 50), 1),
        "p95_ms": round(percentile(hybrid_ms, 95), 1),
    }
    return figures, top5, service.embedder


def measure_builds(args: argparse.Namespace, sizes: list[int]) -> dict[str, Any]:
    """``--measure-build S,…``: the synthetic build of ``--passages`` in one segment and
    in segments of each S, each in a child process of its own (its peak RSS is the
    build's), interleaved for ``--build-rounds`` rounds (the order reversed every other
    round); then, with ``--build-queries``, each variant's last build searched."""
    variants = [0, *sizes]
    runs: dict[int, list[dict[str, Any]]] = {v: [] for v in variants}
    for round_ in range(args.build_rounds):
        for variant in variants if round_ % 2 == 0 else variants[::-1]:
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--passages",
                str(args.passages),
                "--work-dir",
                str(args.work_dir),
                "--shared",
                str(args.shared),
                "--noise",
                str(args.noise),
                "--seed",
                str(args.seed),
                "--build-child",
                str(variant),
            ]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(done.stderr[-3000:])
            runs[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[variant][-1]), file=sys.stderr, flush=True)
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "passages": args.passages,
        "runs": {str(v): r for v, r in runs.items()},
    }
    if args.build_queries:
        questions = [q.question for q in load_questions(args.questions)]
        embedder = None
        searched: dict[str, Any] = {}
        tops: dict[int, list[list[str]]] = {}
        for variant in variants:
            index = args.work_dir / f"build-{variant}" / "index"
            figures, tops[variant], embedder = query_times(index, questions, embedder)
            figures["hybrid_top5_same_as_one_segment"] = (
                f"{sum(a == b for a, b in zip(tops[0], tops[variant], strict=True))}"
                f"/{len(questions)}"
            )
            searched[str(variant)] = figures
            print(json.dumps({str(variant): figures}), file=sys.stderr, flush=True)
        result["queries"] = searched
    return result


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
        "--measure-build",
        metavar="S[,S...]",
        help="measure the build alone (peak RSS, time) in one segment and in segments "
        "of S passages, interleaved, under --work-dir/build-<S>/",
    )
    parser.add_argument("--build-rounds", type=int, default=2)
    parser.add_argument(
        "--build-queries", action="store_true", help="with --measure-build: search each"
    )
    parser.add_argument("--build-child", type=int, help=argparse.SUPPRESS)
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
    if args.build_child is not None:
        build_child(args)
        return
    if args.measure_build:
        sizes = [int(size) for size in args.measure_build.split(",")]
        print(json.dumps(measure_builds(args, sizes), indent=None if args.json else 2))
        return
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
