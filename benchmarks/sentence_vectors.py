"""Sentence vectors on the question sets: re-scoring the fused candidates by their best
sentence, every passage ranked by its best sentence as a leg of the hybrid (with a build
that stores them), and choosing the quote by sentence similarity, against the default
before them.

Usage: .venv/bin/python benchmarks/sentence_vectors.py --index indexes/shared
           [--cache sentences.npz] [--sets held-out,held-out 2,development] [--json]

All variants run in one process over one loaded build, so each question is encoded once.
A build with sentence vectors (``QA_SENTENCE_VECTORS``) is read as it is; a build
without them gets them lazily here: the sentences of every passage a stage asks about
are cut by ``extractive.sentences`` and embedded with the passage encoder, exactly as
the ingest would (half precision), and kept in ``--cache`` (keyed by sentence text) for
the next run. The stages only ever read the sentence vectors of the fused candidates
and of the quoted passages, so the figures are those of a full build; embedding the
whole corpus's ~195,000 distinct sentences was not possible on the shared machine in the
time there was.

Per set, mode (dense, hybrid; lexical is unchanged by these) and variant: hit@5,
evidence@5, MRR@10 in all and by kind (as ``question_sets.py``), and for the hybrid
whether a quoted sentence is the evidence.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from question_sets import SETS, by_kind, quotes
from tqdm import tqdm

from qa_service import validation
from qa_service.config import Settings
from qa_service.embedding import Embedder
from qa_service.evaluate import evaluate as run_questions
from qa_service.evaluate import load_questions
from qa_service.extractive import SENTENCE_SPLITTER, sentences
from qa_service.query.analysis import Mode
from qa_service.query.sentences import SentenceVectors, sentence_similarities
from qa_service.service import QAService
from qa_service.store import (
    MANIFEST,
    SENTENCE_OFFSETS,
    SENTENCE_VECTORS,
    IndexReader,
    builds_dir,
)

logger = logging.getLogger(__name__)

#: (name, settings changed from today's default). The first is the baseline.
R = "sentence_rescoring_passages"
D = "sentence_dense_passages"
W = "sentence_rescoring_weight"
M = "sentence_rescoring_method"
Q = "quote_sentence_weight"
S = "quote_sentence_min_similarity"
L = "sentence_leg_weight"
UNANSWERABLE = SETS["development"].parent / "unanswerable.jsonl"
#: Every variant starts from the settings with the sentence vectors unused (the default
#: before the sentence leg and the similarity-chosen quote); each names what it changes.
UNUSED: dict[str, Any] = {L: 0.0, Q: 0.0, S: 0.0}
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("default (sentence vectors unused)", {}),
    ("fused 40 re-scored, rrf, weight 0.25", {R: 40, W: 0.25}),
    ("fused 40 re-scored, rrf, weight 0.5", {R: 40, W: 0.5}),
    ("fused 40 re-scored, rrf, weight 1", {R: 40}),
    ("fused 40 re-scored, convex, weight 0.25", {R: 40, M: "convex", W: 0.25}),
    ("fused 40 re-scored, convex, weight 0.5", {R: 40, M: "convex", W: 0.5}),
    ("fused 40 re-scored, convex, weight 1", {R: 40, M: "convex"}),
    ("fused 20 re-scored, rrf, weight 1", {R: 20}),
    ("dense leg's 40 re-scored, rrf, weight 1", {D: 40}),
    ("dense leg's 40 re-scored, rrf, weight 0.5", {D: 40, W: 0.5}),
    ("dense leg's 40 re-scored, convex, weight 1", {D: 40, M: "convex"}),
    ("quote weight 2", {Q: 2.0}),
    ("quote weight 5", {Q: 5.0}),
    ("quote weight 10", {Q: 10.0}),
    ("quote weight 20", {Q: 20.0}),
    ("quote weight 5, similarity 0.86 admits", {Q: 5.0, S: 0.86}),
    ("quote weight 5, similarity 0.88 admits", {Q: 5.0, S: 0.88}),
    ("quote weight 5, similarity 0.90 admits", {Q: 5.0, S: 0.90}),
    ("quote weight 10, similarity 0.88 admits", {Q: 10.0, S: 0.88}),
    ("sentence leg, weight 0.5", {L: 0.5}),
    ("sentence leg, weight 1", {L: 1.0}),
    ("sentence leg, weight 2", {L: 2.0}),
    ("sentence leg instead of the dense leg", {L: 1.0, "dense_weight": 0.0}),
    ("sentence leg 1, quote weight 10, similarity 0.88 admits", {L: 1.0, Q: 10.0, S: 0.88}),
    (
        "sentence leg 0.5, quote weight 10, similarity 0.88 admits (the default)",
        {L: 0.5, Q: 10.0, S: 0.88},
    ),
]


@dataclass
class Embedded:
    """What :class:`LazySentenceVectors` knows so far: each asked-about passage row's
    sentences, each sentence's vector, and how many were embedded here in how long."""

    rows: dict[int, list[str]] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    count: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class LazySentenceVectors(SentenceVectors):
    """Sentence vectors embedded on first use, as the ingest embeds them."""

    embedder: Embedder
    reader: IndexReader
    cache: Path | None
    known: Embedded = field(default_factory=Embedded)

    @classmethod
    def of(cls, service: QAService, reader: IndexReader, cache: Path | None) -> LazySentenceVectors:
        """Over ``reader``'s passages, with the sentences ``cache`` holds already."""
        known = Embedded()
        if cache is not None and cache.exists():
            stored = np.load(cache, allow_pickle=False)
            known.vectors.update(zip(stored["texts"].tolist(), stored["vectors"], strict=True))
        empty, offsets = np.zeros((0, 0)), np.zeros(1, np.int64)
        return cls(empty, offsets, service.query_vectors, service.embedder, reader, cache, known)

    @property
    def embedded(self) -> int:
        return self.known.count

    @property
    def embed_seconds(self) -> float:
        return self.known.seconds

    def ensure(self, rows: Sequence[int], progress: bool = False) -> None:
        rows_map, known = self.known.rows, self.known.vectors
        missing = [r for r in dict.fromkeys(rows) if r not in rows_map]
        if not missing:
            return
        found = self.reader.passages_by_rows(missing)
        for row in missing:
            rows_map[row] = [s.text for s in sentences(found[row].text)]
        texts = sorted(
            {t for row in missing for t in rows_map[row] if t not in known},
            key=lambda t: -len(t),
        )
        if not texts:
            return
        started = time.perf_counter()
        step = 2048
        for start in tqdm(range(0, len(texts), step), disable=not progress, desc="sentences"):
            part = texts[start : start + step]
            vectors = self.embedder.encode_passages(part, batch_size=32)
            for text, vector in zip(part, vectors, strict=True):
                known[text] = np.asarray(vector, dtype=np.float16)
        self.known.count += len(texts)
        self.known.seconds += time.perf_counter() - started

    def save(self) -> None:
        known = self.known.vectors
        if self.cache is None or not known:
            return
        texts = list(known)
        np.savez(self.cache, texts=np.asarray(texts), vectors=np.stack([known[t] for t in texts]))

    def similarities(self, query: str, rows: Sequence[int]) -> list[np.ndarray]:
        self.ensure(list(rows))
        rows_map, known = self.known.rows, self.known.vectors
        dimension = next(iter(known.values())).shape[0] if known else 1
        parts = [
            np.stack([known[t] for t in rows_map[r]])
            if rows_map[r]
            else np.zeros((0, dimension), np.float16)
            for r in rows
        ]
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in parts], out=offsets[1:])
        vectors = np.concatenate(parts) if len(parts) else np.zeros((0, dimension))
        vector = np.asarray(self.encode_query(query), dtype=np.float32)
        return sentence_similarities(vector, vectors, offsets, list(range(len(rows))))


@dataclass(frozen=True)
class Recorder(SentenceVectors):
    """Records the rows asked about and answers as a build without sentences would."""

    rows: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, encode: Callable[[str], np.ndarray]) -> Recorder:
        return cls(np.zeros((0, 0)), np.zeros(1, np.int64), encode)

    def similarities(self, query: str, rows: Sequence[int]) -> list[np.ndarray]:
        self.rows.extend(rows)
        return [np.zeros(0, np.float32) for _ in rows]


def write_build(lazy: LazySentenceVectors, reader: IndexReader, out: Path) -> Path:
    """A copy of the build at ``out`` (an index path) with the sentence vectors known so
    far: a passage whose sentences are not all embedded gets none (for serving over HTTP
    the questions whose candidates were embedded; the manifest says how many passages have
    them)."""
    known = lazy.known.vectors
    build = builds_dir(out) / reader.build_path.name
    if build.exists():
        shutil.rmtree(build)
    shutil.copytree(reader.build_path, build)
    dimension = reader.vectors.d
    parts: list[np.ndarray] = []
    covered = 0
    for text in tqdm(reader.passage_texts(), desc="writing", unit="passage"):
        cut = [s.text for s in sentences(text)]
        if cut and all(t in known for t in cut):
            parts.append(np.stack([known[t] for t in cut]))
            covered += 1
        else:
            parts.append(np.zeros((0, dimension), np.float16))
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    np.save(build / SENTENCE_VECTORS, np.concatenate(parts).astype(np.float16))
    np.save(build / SENTENCE_OFFSETS, offsets)
    manifest = json.loads((build / MANIFEST).read_text(encoding="utf-8"))
    manifest["sentences"] = {
        "count": int(offsets[-1]),
        "splitter": SENTENCE_SPLITTER,
        "passages_with_sentences": covered,
    }
    (build / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    link = out.parent / f".{out.name}.tmp"
    link.unlink(missing_ok=True)
    link.symlink_to(build.relative_to(out.parent))
    link.replace(out)
    logger.warning("wrote %s: %d of %d passages with sentences", build, covered, len(parts))
    return build


def use_sentences(service: QAService, sentence_vectors: SentenceVectors | None) -> None:
    index = service.loaded
    retrievers = dataclasses.replace(index.retrievers, sentences=sentence_vectors)
    service.builds.current = dataclasses.replace(index, retrievers=retrievers)


def run_set(
    service: QAService,
    base: Settings,
    questions: list[Any],
    modes: Sequence[Mode],
    variants: Sequence[tuple[str, dict[str, Any]]],
    unanswerable: bool = False,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, changes in variants:
        service.settings = dataclasses.replace(base, **{**UNUSED, **changes})
        started = time.perf_counter()
        result: dict[str, Any] = {
            mode: by_kind(run_questions(service, questions, mode=mode, k=5), questions, 5)
            for mode in modes
        }
        result["quoted sentence is the evidence (hybrid)"] = quotes(service, questions)
        if unanswerable:
            result["unanswerable answered"] = unanswerable_answered(service)
        result["seconds"] = round(time.perf_counter() - started, 1)
        out[name] = result
        logger.warning("%s: %s", name, json.dumps(summary_line(result), ensure_ascii=False))
    service.settings = base
    return out


def unanswerable_answered(service: QAService) -> str:
    """How many questions the corpus cannot answer get an answer anyway."""
    texts = [
        json.loads(line)["question"]
        for line in UNANSWERABLE.read_text("utf-8").splitlines()
        if line.strip()
    ]
    found = sum(service.ask(text, 5, remember=False).answer.found for text in texts)
    return f"{found} / {len(texts)}"


def summary_line(result: dict[str, Any]) -> dict[str, Any]:
    line: dict[str, Any] = {}
    for mode in ("dense", "hybrid"):
        if mode in result:
            alone = result[mode].get("all (asked alone)", {})
            line[mode] = [alone.get("hit@5"), alone.get("evidence@5"), alone.get("mrr@10")]
    line["quote"] = result["quoted sentence is the evidence (hybrid)"].get("all")
    line["unanswerable"] = result.get("unanswerable answered")
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--sets", default="held-out 2,held-out,development")
    parser.add_argument("--modes", default="dense,hybrid")
    parser.add_argument("--variants", default="", help="names' numbers, e.g. 0,2,6 (all)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--write-build",
        type=Path,
        default=None,
        help="also write a copy of the build with the sentence vectors embedded (an index "
        "path), for query_benchmark.py --http",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    base = Settings.from_env(
        index_dir=args.index, conversations_db=Path(tempfile.mkdtemp()) / "c.sqlite3"
    )
    service = QAService(base)
    service.load()
    reader = service.loaded.reader
    stored = service.loaded.retrievers.sentences
    variants = VARIANTS
    if args.variants:
        variants = [VARIANTS[int(i)] for i in args.variants.split(",")]
    modes = [validation.mode(mode) for mode in args.modes.split(",")]
    chosen = {name: SETS[name] for name in args.sets.split(",") if name}
    lazy: LazySentenceVectors | None = None
    if stored is None:
        # First the rows the stages ask about with every variant's depth, embedded in one
        # sorted run (as the ingest's batches), then the variants.
        recorder = Recorder.of(service.query_vectors)
        use_sentences(service, recorder)
        deepest = max(v.get(R, 0) for _, v in variants)
        dense_deepest = max(v.get(D, 0) for _, v in variants)
        probe = dataclasses.replace(
            base,
            sentence_rescoring_passages=max(deepest, 1),
            sentence_dense_passages=dense_deepest,
            quote_sentence_weight=1.0,
        )
        service.settings = probe
        for path in chosen.values():
            questions = load_questions(path)
            for mode in modes:
                run_questions(service, questions, mode=mode, k=5)
            quotes(service, questions)
        unanswerable_answered(service)
        service.settings = base
        lazy = LazySentenceVectors.of(service, reader, args.cache)
        lazy.ensure(recorder.rows, progress=True)
        lazy.save()
        logger.warning(
            "%d rows asked about; %d sentences embedded in %.0f s",
            len(set(recorder.rows)),
            lazy.embedded,
            lazy.embed_seconds,
        )
        use_sentences(service, lazy)
    result: dict[str, Any] = {"index": str(args.index), "passages": service.loaded_passages}
    for n, (name, path) in enumerate(chosen.items()):
        questions = load_questions(path)
        result[name] = run_set(service, base, questions, modes, variants, unanswerable=n == 0)
    if lazy is not None:
        lazy.save()
        result["sentences embedded"] = lazy.embedded
        result["embedding seconds"] = round(lazy.embed_seconds, 1)
        if args.write_build is not None:
            write_build(lazy, reader, args.write_build)
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
