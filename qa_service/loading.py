"""Opening a published build of the index with its retrievers (the service reloads)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

from .config import Settings
from .embedding import Embedder, make_embedder
from .errors import IndexUnavailable
from .hints import HintIndex, document_facts
from .lexical import LexicalIndex, SegmentedLexicalIndex
from .query.candidates import Retrievers
from .query.pipeline import QueryIndex
from .query.sentences import SentenceVectors
from .retrieval import (
    DenseRetriever,
    ExpandedLexicalRetriever,
    LexicalRetriever,
    SegmentedDenseRetriever,
)
from .store import (
    LEXICAL,
    IndexReader,
    IndexStoreError,
    Segment,
    check_compatible,
    check_vector_agreement,
)

logger = logging.getLogger(__name__)

#: A published build that failed to open is tried again after this long.
RETRY_FAILED_SECONDS = 60.0
#: FAISS's OpenMP threads compete with the encoder's for the cores: the dense leg took 28 ms
#: with 2 threads and 14.5 ms with one (p50, 2 cores, BENCHMARKS.md).
FAISS_QUERY_THREADS = 1


def lexical_leg(settings: Settings, reader: IndexReader, lexical: LexicalIndex) -> LexicalRetriever:
    """The hybrid's lexical leg: BM25, with RM3-style feedback when configured."""
    if settings.lexical_feedback_passages <= 0:
        return LexicalRetriever(lexical)

    def texts(rows: list[int]) -> list[str]:
        found = reader.passages_by_rows(rows)
        return [found[row].text for row in rows if row in found]

    return ExpandedLexicalRetriever(
        lexical,
        texts,
        passages=settings.lexical_feedback_passages,
        terms=settings.lexical_feedback_terms,
        weight=settings.lexical_feedback_weight,
    )


def dense_retriever(
    settings: Settings, reader: IndexReader, encode_query: Callable[[str], np.ndarray]
) -> DenseRetriever | SegmentedDenseRetriever:
    # Feedback fused as a ranking of its own leaves the dense leg itself unmoved.
    separate = settings.dense_feedback_ranking_weight > 0
    feedback = 0 if separate else settings.dense_feedback_passages
    if reader.single:
        return _segment_retriever(settings, reader.segments[0], encode_query, feedback)
    # Each segment searched on its own (exactly or approximately by its size), the
    # question's feedback once over all of them.
    parts = [
        (segment.offset, _segment_retriever(settings, segment, encode_query, 0), segment.deleted)
        for segment in reader.segments
    ]
    return SegmentedDenseRetriever(
        parts, encode_query, feedback=feedback, feedback_weight=settings.dense_feedback_weight
    )


def _segment_retriever(
    settings: Settings,
    segment: Segment,
    encode_query: Callable[[str], np.ndarray],
    feedback: int,
) -> DenseRetriever:
    return DenseRetriever(
        segment.vectors,
        encode_query,
        document_vectors=segment.document_vectors,
        passage_documents=segment.passage_documents,
        document_weight=settings.document_weight,
        feedback=feedback,
        feedback_weight=settings.dense_feedback_weight,
        direct_share=settings.dense_direct_share,
        # A segment below the size (as now configured) is searched exactly.
        approximate=(
            segment.approximate if segment.rows >= settings.approximate_min_passages else None
        ),
        approximate_breadth=settings.approximate_search_breadth,
        approximate_candidates=settings.approximate_candidates,
        approximate_widest=settings.approximate_widest_breadth,
    )


def load_lexical(reader: IndexReader) -> LexicalIndex:
    """The build's BM25 index: its one segment's, or every segment's searched as one."""
    if reader.single:
        return LexicalIndex.load(reader.build_path / LEXICAL)
    parts = []
    for segment in reader.segments:
        part = LexicalIndex.load(segment.path / LEXICAL)
        if part.size != segment.rows:
            raise ValueError(f"{part.size} of {segment.rows} passages in {segment.relative}")
        parts.append((segment.offset, part))
    return SegmentedLexicalIndex(parts, reader.deleted)


def open_index(
    settings: Settings,
    embedder: Embedder,
    query_vector: Callable[[str], np.ndarray],
    *,
    documents: bool = True,
) -> QueryIndex:
    """Open the published build (raises :class:`IndexUnavailable` when unusable).

    ``documents`` false leaves out what only answering needs, the documents' facts and
    hints (0.8 s at a million passages): ``qa serve``'s master opens a build only to
    refuse it before its workers start, and each worker opens it in full.
    """
    faiss.omp_set_num_threads(FAISS_QUERY_THREADS)
    try:
        reader = IndexReader(settings.index_dir)
        if check_compatible(reader.manifest, model=settings.model, dimension=None):
            check_vector_agreement(reader, embedder.encode_passages)
    except IndexStoreError as exc:
        raise IndexUnavailable(str(exc)) from exc
    try:
        lexical = load_lexical(reader)
        if lexical.size != reader.passage_count:
            raise ValueError(f"{lexical.size} of {reader.passage_count} passages")
        # bm25s maps its arrays lazily: one search reads them all.
        lexical.search("index", 1)
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise IndexUnavailable(
            f"the index build {reader.build_path.name} is damaged ({LEXICAL}/: {exc}); "
            "publish a new one with `qa ingest`"
        ) from exc

    def encode_query(text: str) -> np.ndarray:
        vector = query_vector(text)
        if vector.shape[-1] != reader.vectors.d:
            raise IndexUnavailable(
                f"the model gives {vector.shape[-1]}-dimensional vectors but the index holds "
                f"{reader.vectors.d}: rebuild the index with `qa ingest`"
            )
        return vector

    sentences = (
        SentenceVectors(reader.sentence_vectors, reader.sentence_offsets, encode_query)
        if reader.sentence_vectors is not None and reader.sentence_offsets is not None
        else None
    )
    if sentences is not None and settings.sentence_leg_weight > 0:
        sentences.prepare()
    retrievers = Retrievers(
        dense=dense_retriever(settings, reader, encode_query),
        lexical=lexical_leg(settings, reader, lexical),
        bm25=LexicalRetriever(lexical),
        sentences=sentences,
    )
    logger.info(
        "loaded index %s (%s passages, model %s, %s)",
        reader.build_path.name,
        reader.passage_count,
        reader.manifest.get("model"),
        "sentence vectors" if sentences is not None else "no sentence vectors",
    )
    if not documents:
        return QueryIndex(reader, retrievers, {}, HintIndex({}))
    facts = {doc_id: document_facts(*columns) for doc_id, *columns in reader.document_columns()}
    return QueryIndex(reader, retrievers, facts, HintIndex(facts))


def check_build(settings: Settings) -> None:
    """Open the published build as a worker does, but without its documents' facts, to
    refuse an unusable one before any worker starts (raises :class:`IndexUnavailable`)."""
    embedder = make_embedder(settings)
    open_index(settings, embedder, embedder.encode_query, documents=False)


class Builds:
    """The published build a worker serves, switched when a new one is published.

    A build that cannot be opened (damaged, built for another model) is tried again only
    after ``retry_seconds`` or once another is published; meanwhile the worker keeps the
    build it has, or, having none, answers 503 with the reason.
    """

    def __init__(self, open_build: Callable[[], QueryIndex], target: Callable[[], Path]) -> None:
        self.open_build = open_build
        self.target = target
        self.current: QueryIndex | None = None
        self._lock = threading.Lock()
        self._checked_at = 0.0
        #: The build that last failed to open, why, and until when it is not tried again.
        self._failed: tuple[Path, str, float] | None = None

    def load(self) -> None:
        with self._lock:
            self.current = self.open_build()

    def serving(self) -> QueryIndex:
        """The build being served (:class:`IndexUnavailable` before one is loaded)."""
        if self.current is None:
            raise IndexUnavailable("the index is not loaded")
        return self.current

    @property
    def passage_count(self) -> int | None:
        """Passages in the loaded build, or None before the first load."""
        return self.current.reader.passage_count if self.current else None

    def maybe_reload(
        self, check_seconds: float, retry_seconds: float = RETRY_FAILED_SECONDS
    ) -> bool:
        """Switch to a newly published build, checking at most every ``check_seconds``."""
        now = time.monotonic()
        if now - self._checked_at < check_seconds and self.current is not None:
            return False
        self._checked_at = now
        current = self.current
        target = self.target()
        if current is not None and current.reader.build_path == target:
            return False
        with self._lock:
            if self.current is not current:
                return False
            failed = self._failed
            if failed is not None and failed[0] == target and now < failed[2]:
                if current is None:
                    raise IndexUnavailable(failed[1])
                return False
            try:
                fresh = self.open_build()
            except IndexUnavailable as exc:
                self._failed = (target, exc.message, now + retry_seconds)
                if current is None:
                    raise
                name = current.reader.build_path.name
                logger.error("published index not loaded, keeping build %s: %s", name, exc)
                return False
            self._failed = None
            self.current = fresh  # requests holding the old build keep it until they finish
        return True


def start_side_by_side(load: Callable[[], None], warm_up: Callable[[], None]) -> None:
    """A server worker's start: ``load`` the published index on a thread while
    ``warm_up`` loads the model (and answers a first question), returning when both are
    done, so that a question can then be answered in full.

    An unusable index is logged, not raised: the worker answers 503 with the reason and
    keeps looking for a usable build (failing to boot would make gunicorn's master stop,
    taking the healthy workers with it). A model that cannot load raises, and so does
    any other failure of ``load`` (after the model's part has finished).
    """
    failed: list[BaseException] = []

    def load_index() -> None:
        try:
            load()
        except IndexUnavailable as exc:
            logger.error("no usable index yet, answering 503 until one is published: %s", exc)
        except BaseException as exc:  # raised again below, after the model's part
            failed.append(exc)

    opening = threading.Thread(target=load_index, name="qa-open-index")
    opening.start()
    try:
        warm_up()
    finally:
        opening.join()
    if failed:
        raise failed[0]
