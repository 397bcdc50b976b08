"""Retrievers behind one small interface: dense (FAISS), lexical (BM25), hybrid.

Scores of BM25 and cosine similarity live on different scales, so the hybrid fuses
either ranks (reciprocal rank fusion) or each ranking's scores normalised over its own
candidates, BM25 weighted by how much of the question its best passages hold
(:mod:`qa_service.fusion`, the default).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import faiss
import numpy as np

from .fusion import convex_fusion
from .glossary import swedish_terms
from .hints import DocumentFacts, Hints, hint_match
from .language import is_english
from .lexical import LexicalIndex
from .nearduplicates import near_duplicates, shingles
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


#: A filter that leaves at most this share of the passages (1/8) is searched by scoring its
#: passages directly rather than by scanning the index with a selector (BENCHMARKS.md).
DIRECT_SHARE = 8


class DenseRetriever:
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
    ) -> None:
        self.encode_query = encode_query
        #: Pseudo-relevance feedback: the question vector moves by ``feedback_weight``
        #: times the mean of its ``feedback`` best passages' vectors (0: none).
        self.feedback = feedback
        self.feedback_weight = feedback_weight
        self.document_weight = document_weight
        self.first_stage = first_stage
        self.index = index
        self._full = index  # keeps the memory self._passages may view alive
        self._passages = _rows_of(index)
        self._documents: np.ndarray | None = None
        if (
            document_weight > 0
            and document_vectors is not None
            and passage_documents is not None
            and index.ntotal > 0
        ):
            # Half precision: the scan reads half the memory (4.9 -> 2.1 ms over 28,625
            # passages with their documents, BENCHMARKS.md).
            half = faiss.IndexScalarQuantizer(
                index.d, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
            )
            half.add(np.ascontiguousarray(self._passages))
            self.index = half
            # |q·p - q·half(p)| <= 2^-11 |q| |p| (half precision keeps 11 significant bits);
            # twice that leaves room for the float32 sums.
            longest = float(np.sqrt(np.max(np.einsum("ij,ij->i", self._passages, self._passages))))
            self._rounding = 2.0**-10 * longest
            self._documents = np.asarray(document_vectors, dtype=np.float32)
            self._owner = np.asarray(passage_documents, dtype=np.int64)
            self._rows_by_document = RowGroups(self._owner, len(self._documents))

    def similarities(self, query: str, rows: Sequence[int]) -> np.ndarray:
        """``q·p`` of the question and the passages at ``rows`` (full precision)."""
        vector = np.asarray(self.encode_query(query), dtype=np.float32).reshape(-1)
        return self._exact(vector, np.asarray(rows, dtype=np.int64), None)

    def search(self, query: str, k: int, *, allowed: np.ndarray | None = None) -> Ranking:
        if self.index.ntotal == 0 or k < 1:
            return []
        vector = np.asarray(self.encode_query(query), dtype=np.float32).reshape(-1)
        if self.feedback > 0 and self.feedback_weight > 0:
            # Rocchio: move the question towards its own best passages and search again.
            first = self.search_vector(vector, self.feedback, allowed)
            rows = np.asarray([row for row, _ in first], dtype=np.int64)
            vector = rocchio(vector, self._passages[rows], self.feedback_weight)
        return self.search_vector(vector, k, allowed)

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
        return self.search_vector(rocchio(vector, self._passages[rows], weight), k, allowed)

    def search_vector(
        self, vector: np.ndarray, k: int, allowed: np.ndarray | None = None
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
            if len(rows) <= self.index.ntotal // DIRECT_SHARE:
                return self._score_rows(vector, rows, k)
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(rows))  # type: ignore[call-arg]
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


class LexicalRetriever:
    """BM25; an English question is searched with the glossary's Swedish terms added."""

    def __init__(self, index: LexicalIndex) -> None:
        self.index = index

    def search(self, query: str, k: int, *, allowed: np.ndarray | None = None) -> Ranking:
        return self.index.search(self.lexical_query(query), k, allowed=allowed)

    @staticmethod
    def lexical_query(query: str) -> str:
        """The text BM25 is searched with: an English question gets the glossary's terms."""
        if is_english(query):
            return " ".join([query, *swedish_terms(query)])
        return query

    def term_coverage(self, query: str, rows: Sequence[int]) -> float:
        """How much of the question the best of ``rows`` holds, word for word
        (:meth:`LexicalIndex.term_coverage`, on the text :meth:`search` searches)."""
        return self.index.term_coverage(self.lexical_query(query), rows)


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

    def search(self, query: str, k: int, *, allowed: np.ndarray | None = None) -> Ranking:
        return self.index.search_expanded(
            self.lexical_query(query),
            k,
            self.feedback_texts,
            passages=self.passages,
            terms=self.terms,
            weight=self.weight,
            allowed=allowed,
        )


class HybridRetriever:
    """Dense and lexical candidates fused with RRF, or (``fusion="convex"``) by their
    min-max normalised scores (:mod:`qa_service.fusion`). With ``coverage_passages`` the
    lexical leg's weight is scaled by its term coverage over that many of its first
    passages (0: a fixed weight).

    An English question gets a third ranking: the dense leg searched with the Swedish
    terms the glossary finds in it, at ``glossary_weight`` (its lexical leg adds the
    terms itself). The multilingual model alone ranks Swedish passages poorly for an
    English question (BENCHMARKS.md).
    """

    def __init__(
        self,
        dense: Retriever,
        lexical: Retriever,
        *,
        depth: int = 100,
        rrf_k: int = 60,
        weights: tuple[float, float] = (1.0, 1.0),
        glossary_weight: float = 1.0,
        feedback: tuple[int, float, float] = (0, 0.0, 0.0),
        fusion: str = "rrf",
        coverage_passages: int = 5,
    ) -> None:
        self.dense = dense
        self.fusion = fusion
        self.coverage_passages = coverage_passages
        #: (passages, Rocchio weight, RRF weight): the dense leg searched again with the
        #: question moved towards its first passages, fused as a ranking of its own beside
        #: the unmoved one (0 RRF weight: none).
        self.feedback = feedback
        self.lexical = lexical
        self.depth = depth
        self.rrf_k = rrf_k
        self.weights = weights
        self.glossary_weight = glossary_weight

    def search(self, query: str, k: int, *, allowed: np.ndarray | None = None) -> Ranking:
        depth = max(k, self.depth)
        dense = self.dense.search(query, depth, allowed=allowed)
        lexical = self.lexical.search(query, depth, allowed=allowed)
        rankings = [dense, lexical]
        weights = list(self.weights)
        if self.coverage_passages > 0 and isinstance(self.lexical, LexicalRetriever):
            first = [row for row, _ in lexical[: self.coverage_passages]]
            weights[1] *= self.lexical.term_coverage(query, first)
        passages, moved, fused = self.feedback
        if fused > 0 and passages > 0 and dense and isinstance(self.dense, DenseRetriever):
            rankings.append(
                self.dense.feedback_search(
                    query, dense, depth, passages=passages, weight=moved, allowed=allowed
                )
            )
            weights.append(fused)
        terms = swedish_terms(query) if self.glossary_weight > 0 and is_english(query) else []
        if terms:
            rankings.append(self.dense.search(" ".join(terms), depth, allowed=allowed))
            weights.append(self.glossary_weight)
        if self.fusion == "convex":
            return convex_fusion(rankings, weights)[:k]
        return rrf(rankings, k=self.rrf_k, weights=weights)[:k]


@dataclass
class Candidate:
    row: int
    score: float
    doc_id: str
    text: str
    also_in: list[int]


def diversify(
    candidates: Sequence[Candidate],
    k: int,
    *,
    per_document: int = 2,
    duplicate_threshold: float = 0.6,
    fingerprint: Callable[[Candidate], set[int]] | None = None,
) -> list[Candidate]:
    """Keep the best ``k``: near-duplicates fold into the first (``also_in``) and no
    document contributes more than ``per_document`` passages (0: no cap).

    ``fingerprint`` gives a candidate's shingles (stored ones, in the service); without
    it they are cut from the candidate's text.
    """
    fingerprint = fingerprint or (lambda candidate: shingles(candidate.text))
    kept: list[Candidate] = []
    kept_shingles: list[set[int]] = []
    per_doc: dict[str, int] = {}
    for candidate in candidates:
        grams = fingerprint(candidate)
        duplicate_of = next(
            (
                i
                for i, other in enumerate(kept_shingles)
                if near_duplicates(grams, other, duplicate_threshold)
            ),
            None,
        )
        if duplicate_of is not None:
            kept[duplicate_of].also_in.append(candidate.row)
            continue
        if per_document and per_doc.get(candidate.doc_id, 0) >= per_document:
            continue
        if len(kept) == k:
            continue
        per_doc[candidate.doc_id] = per_doc.get(candidate.doc_id, 0) + 1
        kept.append(candidate)
        kept_shingles.append(grams)
    return kept


def lift_hinted(
    candidates: Sequence[Candidate],
    hints: Hints,
    facts: Mapping[str, DocumentFacts],
    weight: float,
) -> list[Candidate]:
    """Re-rank fused candidates: a passage whose document meets the question's hints
    (party, kind, year, person) has its score multiplied by ``1 + weight * share met``.

    RRF scores are close together (ranks 1 and 5 of both legs: 0.0328 and 0.0308), so a
    small weight moves a hinted document a few places, not from the bottom to the top.
    """
    if not hints or weight <= 0:
        return list(candidates)
    lifted = []
    for candidate in candidates:
        document = facts.get(candidate.doc_id)
        share = hint_match(hints, document) if document is not None else 0.0
        lifted.append(dataclasses.replace(candidate, score=candidate.score * (1 + weight * share)))
    return sorted(lifted, key=lambda c: -c.score)


def within_document_order(
    rows: Sequence[int],
    dense_scores: Sequence[float],
    lexical_scores: Mapping[int, float],
    *,
    rrf_k: int = 60,
    fusion: str = "rrf",
    lexical_weight: float = 1.0,
) -> list[int]:
    """One document's passages ordered by RRF of their dense and BM25 ranks among
    the document's own passages (a passage with no question term gets no lexical rank),
    or with ``fusion="convex"`` by their min-max normalised scores, BM25's at
    ``lexical_weight``.

    Every passage of the document is scored, not only those that reached the fused
    candidates, so the passage that holds the answer is not lost because one leg ranked
    it below its corpus-wide cut.
    """
    dense = sorted(zip(rows, dense_scores, strict=True), key=lambda p: (-p[1], p[0]))
    lexical = sorted(
        ((row, lexical_scores[row]) for row in rows if lexical_scores.get(row, 0.0) > 0),
        key=lambda p: (-p[1], p[0]),
    )
    if fusion == "convex":
        return [row for row, _ in convex_fusion([dense, lexical], [1.0, lexical_weight])]
    return [row for row, _ in rrf([dense, lexical], k=rrf_k)]


def reassign_document_slots(
    candidates: Sequence[Candidate],
    orders: Mapping[str, Sequence[int]],
    texts: Mapping[int, str],
) -> list[Candidate]:
    """The fused list with the places each document in ``orders`` holds refilled by
    that document's passages in its own order: the documents keep their places and
    scores, only which of their passages fill them changes (pure)."""
    queues = {doc: list(rows) for doc, rows in orders.items()}
    out: list[Candidate] = []
    for candidate in candidates:
        queue = queues.get(candidate.doc_id)
        if queue is None:
            out.append(candidate)
            continue
        row = next((r for r in queue if r in texts), None)
        if row is None:
            continue
        queue.remove(row)
        out.append(Candidate(row, candidate.score, candidate.doc_id, texts[row], []))
    return out


def rocchio(vector: np.ndarray, feedback: np.ndarray, beta: float) -> np.ndarray:
    """Pseudo-relevance feedback on a question vector: ``q + beta * mean(feedback)``,
    normalised (``feedback`` holds the top passages' vectors, one per row)."""
    if beta <= 0 or len(feedback) == 0:
        return vector
    moved = vector + beta * np.asarray(feedback, dtype=np.float32).mean(axis=0)
    norm = float(np.linalg.norm(moved))
    return (moved / norm).astype(np.float32) if norm > 0 else vector
