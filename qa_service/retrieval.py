"""Retrievers behind one small interface: dense (FAISS) and lexical (BM25).

Scores of BM25 and cosine similarity live on different scales, so the hybrid fuses
ranks, not scores (reciprocal rank fusion, :mod:`qa_service.query.fusion`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import faiss
import numpy as np

from .approximate import allowed_selector, search_parameters
from .glossary import with_swedish_terms
from .language import is_english
from .lexical import LexicalIndex
from .store import RowGroups

logger = logging.getLogger(__name__)

Ranking = list[tuple[int, float]]


class Retriever(Protocol):
    def search(self, query: str, k: int, *, allowed: np.ndarray | None = None) -> Ranking: ...


def rrf(
    rankings: Sequence[Sequence[tuple[int, float]]],
    *,
    k: int = 60,
    weights: Sequence[float] | None = None,
) -> Ranking:
    """Reciprocal rank fusion: ``score(d) = sum_i w_i / (k + rank_i(d))``, ranks from 1.

    Ties are broken by the best rank a document reached in any list, then by id, so the
    result is deterministic.
    """
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking")
    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, (item, _score) in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
            best[item] = min(best.get(item, rank), rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], best[pair[0]], pair[0]))


def _dot(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector`` without BLAS: OpenBLAS's threads keep spinning after a product
    and halved the speed of the next question's encoding on 2 cores (BENCHMARKS.md)."""
    return np.einsum("ij,j->i", matrix, vector)


def _best(rows: np.ndarray, scores: np.ndarray, k: int) -> Ranking:
    """The ``k`` best ``(row, score)`` pairs, best first, equal scores by row."""
    order = np.lexsort((rows, -scores))[:k]
    return [(int(rows[i]), float(scores[i])) for i in order]


def _rows_of(index: faiss.Index) -> np.ndarray:
    """An index's vectors as a float32 matrix: a view of a flat index's own (possibly
    memory-mapped) storage, a copy otherwise."""
    if isinstance(index, faiss.IndexFlat):
        codes = faiss.rev_swig_ptr(index.codes.data(), index.codes.size())
        return codes.view(np.float32).reshape(index.ntotal, index.d)
    return index.reconstruct_n(0, index.ntotal)


#: A filter is searched by scoring its passages directly (rather than by scanning the
#: index with a selector) only up to this many passages, whatever its share
#: (``direct_share``): more cost more than the approximate index's search (BENCHMARKS.md).
DIRECT_ROWS = 20_000


class QuestionSearch:
    """What both dense legs do with a question: encode it, move it towards its own best
    passages when asked (Rocchio), and search with its vector. A leg gives its passage
    count, the vectors of rows and :meth:`search_vector`."""

    encode_query: Callable[[str], np.ndarray]
    feedback: int
    feedback_weight: float

    @property
    def size(self) -> int:
        raise NotImplementedError

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def search_vector(
        self,
        vector: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        *,
        also: np.ndarray | None = None,
    ) -> Ranking:
        raise NotImplementedError

    def search(
        self,
        query: str,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        also: Sequence[int] = (),
    ) -> Ranking:
        """The top ``k`` passages for ``query``; ``also``: rows that an approximate search
        scores with its own candidates (the hybrid's lexical finds), so that each of them
        that belongs to the exact top k is in the result (an exact search has them
        already)."""
        if self.size == 0 or k < 1:
            return []
        vector = np.asarray(self.encode_query(query), dtype=np.float32).reshape(-1)
        if self.feedback > 0 and self.feedback_weight > 0:
            # Rocchio: move the question towards its own best passages and search again.
            first = self.search_vector(vector, self.feedback, allowed)
            rows = np.asarray([row for row, _ in first], dtype=np.int64)
            vector = rocchio(vector, self._vectors(rows), self.feedback_weight)
        extra = np.asarray(also, dtype=np.int64) if len(also) else None
        return self.search_vector(vector, k, allowed, also=extra)

    def feedback_search(
        self,
        query: str,
        ranking: Ranking,
        k: int,
        *,
        passages: int,
        weight: float,
        allowed: np.ndarray | None = None,
    ) -> Ranking:
        """The top ``k`` for the question's vector moved towards the first ``passages`` of
        ``ranking`` (the question's own dense ranking; Rocchio at ``weight``)."""
        vector = np.asarray(self.encode_query(query), dtype=np.float32).reshape(-1)
        rows = np.asarray([row for row, _ in ranking[:passages]], dtype=np.int64)
        return self.search_vector(rocchio(vector, self._vectors(rows), weight), k, allowed)


class DenseRetriever(QuestionSearch):
    """Cosine similarity over normalised vectors in a FAISS inner-product index.

    With document vectors and a ``document_weight`` w, a passage scores
    ``q·p + w·(q·d)`` where d is its document's vector (type, title, people): the passage
    and its document are both asked whether they match. The top k of that sum is found
    exactly in two steps (a threshold algorithm):

    1. FAISS scans the passages, kept in half precision, for the ``first_stage`` best
       by ``q·p`` alone; they and the few thousand documents are then scored in full
       precision;
    2. a passage outside those candidates has ``q·p`` at most the last candidate's
       half-precision score θ plus the rounding bound ε, so it can only reach the top k
       if ``θ + ε + w·(q·d)`` does; the passages of the (usually few) documents that
       pass this bound are scored too.

    Measured side by side over 29,768 passages (p50): 1.66-1.77 ms for one half-precision
    scan over the passages with their document vectors appended, 1.54-1.56 ms for these
    two steps, whose scores are exact rather than rounded (BENCHMARKS.md).

    A large build (``approximate``, approximate.py) replaces step 1's scan: its
    approximate index proposes the candidates (the allowed rows selected inside its
    search), and step 2 is the same, from the lowest candidate's ``q·p``. The top k is then
    approximate (recall@10 measured by benchmarks/scale_benchmark.py); no half-precision
    copy of the passages is made, and the exact vectors are read only for candidates.
    """

    def __init__(
        self,
        index: faiss.Index,
        encode_query: Callable[[str], np.ndarray],
        *,
        document_vectors: np.ndarray | None = None,
        passage_documents: np.ndarray | None = None,
        document_weight: float = 0.0,
        first_stage: int = 400,
        feedback: int = 0,
        feedback_weight: float = 0.0,
        direct_share: int = 8,
        approximate: faiss.Index | None = None,
        approximate_breadth: int = 64,
        approximate_candidates: int = 200,
        approximate_widest: int = 4096,
    ) -> None:
        self.encode_query = encode_query
        #: A filter that leaves at most 1/``direct_share`` of the passages is searched by
        #: scoring them directly, not by a scan with a selector (``Settings.dense_direct_share``).
        self.direct_share = direct_share
        #: Pseudo-relevance feedback: the question vector moves by ``feedback_weight``
        #: times the mean of its ``feedback`` best passages' vectors (0: none).
        self.feedback = feedback
        self.feedback_weight = feedback_weight
        self.document_weight = document_weight
        self.first_stage = first_stage
        self.index = index
        self._full = index  # keeps the memory self._passages may view alive
        self._passages = _rows_of(index)
        #: A large build's approximate index (approximate.py): it proposes
        #: ``approximate_candidates`` passages (searched at efSearch/nprobe
        #: ``approximate_breadth``), which are scored again exactly.
        self.approximate = approximate
        self.approximate_breadth = approximate_breadth
        self.approximate_candidates = approximate_candidates
        #: The widest a filtered search looks (``Settings.approximate_widest_breadth``).
        self.approximate_widest = approximate_widest
        self._documents: np.ndarray | None = None
        if (
            document_weight > 0
            and document_vectors is not None
            and passage_documents is not None
            and index.ntotal > 0
        ):
            if approximate is None:
                # Half precision: the scan reads half the memory (4.9 -> 2.1 ms over
                # 28,625 passages with their documents, BENCHMARKS.md).
                half = faiss.IndexScalarQuantizer(
                    index.d, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
                )
                half.add(np.ascontiguousarray(self._passages))
                self.index = half
                # |q·p - q·half(p)| <= 2^-11 |q| |p| (half precision keeps 11 significant
                # bits); twice that leaves room for the float32 sums.
                squares = np.einsum("ij,ij->i", self._passages, self._passages)
                self._rounding = 2.0**-10 * float(np.sqrt(np.max(squares)))
            self._documents = np.asarray(document_vectors, dtype=np.float32)
            self._owner = np.asarray(passage_documents, dtype=np.int64)
            self._rows_by_document = RowGroups(self._owner, len(self._documents))

    def similarities(self, query: str, rows: Sequence[int]) -> np.ndarray:
        """``q·p`` of the question and the passages at ``rows`` (full precision)."""
        vector = np.asarray(self.encode_query(query), dtype=np.float32).reshape(-1)
        return self._exact(vector, np.asarray(rows, dtype=np.int64), None)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        return self._passages[rows]

    def search_vector(
        self,
        vector: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        *,
        also: np.ndarray | None = None,
    ) -> Ranking:
        """The top ``k`` for a question vector (see :meth:`search`)."""
        if self.index.ntotal == 0 or k < 1:
            return []
        k = min(k, self.index.ntotal)
        params = None
        if allowed is not None:
            rows = np.flatnonzero(allowed).astype(np.int64)
            if len(rows) == 0:
                return []
            k = min(k, len(rows))
            if len(rows) <= min(self.index.ntotal // self.direct_share, DIRECT_ROWS):
                return self._score_rows(vector, rows, k)
            if self.approximate is None:
                # A bitmap rather than a set of ids: the same rows, and no hash set of
                # most of the rows built per question when a segment masks a few.
                selector, _bits = allowed_selector(allowed)  # read by the search below
                params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        if self.approximate is not None:
            return self._search_approximate(vector, k, allowed, also)
        if self._documents is None:
            scores, ids = self.index.search(vector.reshape(1, -1), k, params=params)
            return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        return self._search_with_documents(vector, k, params, allowed)

    def _exact(
        self, vector: np.ndarray, rows: np.ndarray, document_scores: np.ndarray | None
    ) -> np.ndarray:
        """The full-precision scores of the passages at ``rows``: ``q·p``, plus their
        documents' weighted ``q·d`` when ``document_scores`` holds them."""
        scores = _dot(self._passages[rows], vector)
        if document_scores is None:
            return scores
        return scores + document_scores[self._owner[rows]]

    def _document_scores(self, vector: np.ndarray) -> np.ndarray | None:
        """``w·(q·d)`` of every document (None: no document vectors)."""
        if self._documents is None:
            return None
        return self.document_weight * _dot(self._documents, vector)

    def _score_rows(self, vector: np.ndarray, rows: np.ndarray, k: int) -> Ranking:
        """The top k of a few allowed rows, each scored directly in full precision (a
        filter or a question's hints leave few; no scan of the whole index is needed)."""
        return _best(rows, self._exact(vector, rows, self._document_scores(vector)), k)

    def _search_approximate(
        self,
        vector: np.ndarray,
        k: int,
        allowed: np.ndarray | None,
        also: np.ndarray | None = None,
    ) -> Ranking:
        """The top k from the approximate index's candidates, scored again exactly.

        The allowed rows are selected inside the approximate search (before it cuts its
        candidates). The allowed rows of ``also`` are scored as candidates too: each of
        them that belongs to the exact top k is in the top k returned, however the
        approximate search ranked it (rows neither proposes may still be missing). With
        document vectors, the documents that could still lift a passage outside the
        candidates into the top k (its ``q·p`` at most the lowest candidate's, as in the
        exact search) have all their passages scored too.
        """
        assert self.approximate is not None
        selector, bits = (None, None) if allowed is None else allowed_selector(allowed)
        breadth = self.approximate_breadth
        if allowed is not None:
            # A filter leaving a share s of the passages: the search looks 1/s as wide (up
            # to 8 times, the widest filter ``direct_share`` leaves to it), so it meets as many
            # allowed passages as an unfiltered one (recall tests/test_approximate.py), but
            # no wider than ``approximate_widest``: at a million passages a filter leaving
            # 15 % took 116 ms at 1/s × 2048, 28 ms at 4096, with the top 100 exact for 40
            # and 36 of 40 questions (BENCHMARKS.md).
            share = max(float(np.count_nonzero(allowed)) / len(allowed), 1 / self.direct_share)
            widest = max(breadth, self.approximate_widest)
            breadth = min(int(np.ceil(breadth / share)), widest)
        params = search_parameters(self.approximate, breadth, selector)
        wanted = max(k, self.approximate_candidates)
        _, ids = self.approximate.search(vector.reshape(1, -1), wanted, params=params)
        del bits  # read by the search only
        rows = ids[0][ids[0] >= 0]
        proposed = len(rows)
        if also is not None and len(also):
            named = also[(also >= 0) & (also < len(self._passages))]
            if allowed is not None:
                named = named[np.asarray(allowed, dtype=bool)[named]]
            rows = np.concatenate([rows, np.setdiff1d(named, rows)])
        document_scores = self._document_scores(vector)
        scores = self._exact(vector, rows, document_scores)
        if document_scores is not None and proposed >= k:
            # The bound is the approximate index's: a named row far from the question
            # must not open every document.
            own = scores[:proposed] - document_scores[self._owner[rows[:proposed]]]
            theta = float(np.min(own))
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            open_documents = np.flatnonzero(theta + document_scores >= kth)
            if len(open_documents):
                extra = self._rows_by_document.rows(open_documents)
                if allowed is not None:
                    extra = extra[np.asarray(allowed, dtype=bool)[extra]]
                extra = np.setdiff1d(extra, rows, assume_unique=True)
                rows = np.concatenate([rows, extra])
                scores = np.concatenate([scores, self._exact(vector, extra, document_scores)])
        return _best(rows, scores, k)

    def _search_with_documents(
        self,
        vector: np.ndarray,
        k: int,
        params: faiss.SearchParameters | None,
        allowed: np.ndarray | None,
    ) -> Ranking:
        document_scores = self._document_scores(vector)
        assert document_scores is not None
        first = max(k, self.first_stage)
        half_scores, ids = self.index.search(vector.reshape(1, -1), first, params=params)
        rows = ids[0][ids[0] >= 0]
        scores = self._exact(vector, rows, document_scores)
        if len(rows) == first:  # fewer: every allowed passage is a candidate already
            theta = half_scores[0][-1] + self._rounding * float(np.linalg.norm(vector))
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            open_documents = np.flatnonzero(theta + document_scores >= kth)
            if len(open_documents):
                extra = self._rows_by_document.rows(open_documents)
                if allowed is not None:
                    extra = extra[np.asarray(allowed, dtype=bool)[extra]]
                candidate = np.zeros(len(self._owner), dtype=bool)
                candidate[rows] = True
                extra = extra[~candidate[extra]]
                rows = np.concatenate([rows, extra])
                scores = np.concatenate([scores, self._exact(vector, extra, document_scores)])
        return _best(rows, scores, k)


def glossary_query(query: str) -> str:
    """An English question with the glossary's Swedish terms added (others unchanged)."""
    return with_swedish_terms(query) if is_english(query) else query


class LexicalRetriever:
    """BM25; an English question is searched with the glossary's Swedish terms added."""

    def __init__(self, index: LexicalIndex) -> None:
        self.index = index

    def search(self, query: str, k: int, *, allowed: np.ndarray | None = None) -> Ranking:
        return self.search_text(glossary_query(query), k, allowed=allowed)

    def search_text(self, text: str, k: int, *, allowed: np.ndarray | None = None) -> Ranking:
        """BM25 for ``text`` as it stands (the glossary's terms already added)."""
        return self.index.search(text, k, allowed=allowed)

    def term_coverage(self, text: str, rows: Sequence[int]) -> float:
        """How much of ``text`` (as :meth:`search_text` searches it) the best of ``rows``
        holds, word for word (:meth:`LexicalIndex.term_coverage`)."""
        return self.index.term_coverage(text, rows)


class ExpandedLexicalRetriever(LexicalRetriever):
    """BM25 with RM3-style pseudo-relevance feedback (:meth:`LexicalIndex.search_expanded`):
    the best terms of the question's first passages are searched too, at ``weight``."""

    def __init__(
        self,
        index: LexicalIndex,
        feedback_texts: Callable[[list[int]], list[str]],
        *,
        passages: int = 5,
        terms: int = 10,
        weight: float = 0.3,
    ) -> None:
        super().__init__(index)
        self.feedback_texts = feedback_texts
        self.passages = passages
        self.terms = terms
        self.weight = weight

    def search_text(self, text: str, k: int, *, allowed: np.ndarray | None = None) -> Ranking:
        return self.index.search_expanded(
            text,
            k,
            self.feedback_texts,
            passages=self.passages,
            terms=self.terms,
            weight=self.weight,
            allowed=allowed,
        )


def rocchio(vector: np.ndarray, feedback: np.ndarray, beta: float) -> np.ndarray:
    """Pseudo-relevance feedback on a question vector: ``q + beta * mean(feedback)``,
    normalised (``feedback`` holds the top passages' vectors, one per row)."""
    if beta <= 0 or len(feedback) == 0:
        return vector
    moved = vector + beta * np.asarray(feedback, dtype=np.float32).mean(axis=0)
    norm = float(np.linalg.norm(moved))
    return (moved / norm).astype(np.float32) if norm > 0 else vector


class SegmentedDenseRetriever(QuestionSearch):
    """The dense leg over a build of several segments (store.py): each segment's
    :class:`DenseRetriever` (exact, or approximate when the segment is large enough)
    finds its own top k over its rows, the deleted ones masked out before its top k is
    cut, and the best k of those are the build's. The top k of a union is the top k of
    its parts' top k, so with exact parts the result is the exact one."""

    def __init__(
        self,
        parts: Sequence[tuple[int, DenseRetriever, np.ndarray | None]],
        encode_query: Callable[[str], np.ndarray],
        *,
        feedback: int = 0,
        feedback_weight: float = 0.0,
    ) -> None:
        #: ``(first row, retriever over the segment's rows, deleted mask or None)``.
        self.parts = list(parts)
        self.encode_query = encode_query
        self.feedback = feedback
        self.feedback_weight = feedback_weight
        self._size = sum(part.index.ntotal for _, part, _ in self.parts)

    @property
    def size(self) -> int:
        return self._size

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), self.parts[0][1].index.d), dtype=np.float32)
        for offset, part, _ in self.parts:
            inside = (rows >= offset) & (rows < offset + part.index.ntotal)
            if inside.any():
                out[inside] = part._passages[rows[inside] - offset]
        return out

    def similarities(self, query: str, rows: Sequence[int]) -> np.ndarray:
        """``q·p`` of the question and the passages at ``rows`` (full precision)."""
        vector = np.asarray(self.encode_query(query), dtype=np.float32).reshape(-1)
        return _dot(self._vectors(np.asarray(rows, dtype=np.int64)), vector)

    def search_vector(
        self,
        vector: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        *,
        also: np.ndarray | None = None,
    ) -> Ranking:
        """The top ``k`` for a question vector over every segment (``also``: rows of the
        build, each given to its segment's search)."""
        if self.size == 0 or k < 1:
            return []
        found: Ranking = []
        for offset, part, deleted in self.parts:
            size = part.index.ntotal
            if size == 0:
                continue
            local = None if allowed is None else np.asarray(allowed[offset : offset + size])
            if deleted is not None:
                local = ~deleted if local is None else local & ~deleted
            if local is not None and not local.any():
                continue
            mine = None
            if also is not None:
                mine = also[(also >= offset) & (also < offset + size)] - offset
            found += [
                (row + offset, s) for row, s in part.search_vector(vector, k, local, also=mine)
            ]
        if not found:
            return []
        rows = np.asarray([row for row, _ in found], dtype=np.int64)
        scores = np.asarray([score for _, score in found], dtype=np.float64)
        return _best(rows, scores, k)
