"""Sentence-level similarity from the vectors a build stores for every sentence of every
passage (``QA_SENTENCE_VECTORS``): a passage scores as its best sentence (max over its
parts), which re-scores the first fused candidates (``QA_SENTENCE_RESCORING_PASSAGES``),
ranks every passage of the build as a leg of the hybrid of its own
(``QA_SENTENCE_LEG_WEIGHT``) and helps choose the quoted sentence
(``QA_QUOTE_SENTENCE_WEIGHT``).

The scoring is pure arithmetic over arrays; :class:`SentenceVectors` reads a build's.
A build without sentence vectors has none, and the stages then do what they did before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import faiss
import numpy as np

from ..convex_fusion import minmax
from ..retrieval import Ranking, rrf

logger = logging.getLogger(__name__)

#: The sentence search reads this many sentences per passage it is to rank: a passage
#: holds ~10, and its best one is all that counts, so the first 100 passages of a
#: question are found among its first 2,000 sentences (the benchmark's figures are those
#: of scoring every sentence, BENCHMARKS.md).
SENTENCES_PER_PASSAGE = 20
#: Sentences converted to float32 at a time while the index is filled.
ADD_BLOCK = 65_536


def sentence_similarities(
    query: np.ndarray, vectors: np.ndarray, offsets: np.ndarray, rows: Sequence[int]
) -> list[np.ndarray]:
    """``q·s`` of every sentence of each passage at ``rows`` (an array per passage, in
    its sentences' order; empty for a passage without sentences)."""
    if not len(rows):
        return []
    starts = offsets[np.asarray(rows, dtype=np.int64)]
    ends = offsets[np.asarray(rows, dtype=np.int64) + 1]
    picked = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    # One gather and one product for all of them; einsum: no BLAS threads (BENCHMARKS.md).
    scores = np.einsum("ij,j->i", vectors[picked].astype(np.float32), q)
    return np.split(scores, np.cumsum(ends - starts)[:-1].tolist())


def best_passages(
    sentence_ids: np.ndarray, scores: np.ndarray, owners: np.ndarray, k: int
) -> Ranking:
    """The first ``k`` passages of a sentence search's hits (ids best first, ``-1`` for
    none), each scored as its best sentence among them (max over its parts)."""
    found = sentence_ids >= 0
    rows = owners[sentence_ids[found]]
    values = scores[found]
    # np.unique gives each passage's first place, i.e. its best sentence's.
    _, first = np.unique(rows, return_index=True)
    first = np.sort(first)[:k]
    return [(int(rows[i]), float(values[i])) for i in first]


def best_of_parts(parts: Sequence[np.ndarray], empty: float = float("-inf")) -> np.ndarray:
    """Each passage's best sentence score (``empty`` for one without sentences)."""
    return np.asarray([float(p.max()) if len(p) else empty for p in parts], dtype=np.float64)


def rescore(
    ranking: Ranking,
    best: Sequence[float],
    *,
    weight: float,
    method: str = "rrf",
    rrf_k: int = 60,
) -> Ranking:
    """The first ``len(best)`` places of ``ranking`` reordered by their fused order
    combined with their best sentence's similarity ``best`` (one per place, in order);
    the places keep their scores, so the scale the later stages read is unchanged, and
    the rest of the ranking follows as it was.

    ``rrf``: ``1/(k + fused rank) + weight/(k + sentence rank)``; ``convex``:
    ``minmax(fused score) + weight * minmax(sentence score)`` over the re-scored places.
    A place without a sentence (``-inf``) takes the sentence side's lowest value.
    """
    count = min(len(best), len(ranking))
    if count < 2 or weight <= 0:
        return list(ranking)
    head, tail = list(ranking[:count]), list(ranking[count:])
    values = np.asarray(best[:count], dtype=np.float64)
    finite = values[np.isfinite(values)]
    if not len(finite):
        return list(ranking)
    values = np.where(np.isfinite(values), values, float(finite.min()))
    by_sentence = sorted(
        ((row, float(v)) for (row, _), v in zip(head, values, strict=True)),
        key=lambda pair: -pair[1],
    )
    if method == "rrf":
        order = rrf([head, by_sentence], k=rrf_k, weights=[1.0, weight])
    elif method == "convex":
        fused, sentence = minmax(head), minmax(by_sentence)
        position = {row: i for i, (row, _) in enumerate(head)}
        order = sorted(
            ((row, fused[row] + weight * sentence[row]) for row, _ in head),
            key=lambda pair: (-pair[1], position[pair[0]]),
        )
    else:
        raise ValueError(f"unknown rescoring method {method!r}")
    scores = [score for _, score in head]
    return [(row, scores[i]) for i, (row, _) in enumerate(order)] + tail


@dataclass(frozen=True)
class SentenceVectors:
    """A build's sentence vectors and the question's encoder (the dense leg's)."""

    vectors: np.ndarray
    offsets: np.ndarray
    encode_query: Callable[[str], np.ndarray]

    def similarities(self, query: str, rows: Sequence[int]) -> list[np.ndarray]:
        """``q·s`` of every sentence of each passage at ``rows``."""
        vector = np.asarray(self.encode_query(query), dtype=np.float32)
        return sentence_similarities(vector, self.vectors, self.offsets, rows)

    @cached_property
    def _owners(self) -> np.ndarray:
        """The passage row of every sentence."""
        counts = np.diff(self.offsets)
        return np.repeat(np.arange(len(counts), dtype=np.int64), counts)

    @cached_property
    def _index(self) -> faiss.Index:
        # An exact scan in half precision, as stored: as fast as a float32 product with
        # BLAS (8.5 against 8.0-9.8 ms for 302,041 sentences, one thread) in half the
        # memory, and with FAISS's selector for a filtered search (BENCHMARKS.md).
        index = faiss.IndexScalarQuantizer(
            self.vectors.shape[1], faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
        for start in range(0, len(self.vectors), ADD_BLOCK):
            index.add(np.asarray(self.vectors[start : start + ADD_BLOCK], dtype=np.float32))
        logger.info("sentence index: %d sentences", index.ntotal)
        return index

    def prepare(self) -> None:
        """Build the sentence search's index now rather than on the first question."""
        _ = self._index, self._owners

    def search(self, query: str, k: int, *, allowed: np.ndarray | None = None) -> Ranking:
        """The ``k`` passages whose best sentence is most similar to ``query``, searched
        over every sentence of the build (that ``allowed``, a mask of passage rows,
        allows), as the first :data:`SENTENCES_PER_PASSAGE` × ``k`` sentences rank them."""
        total = len(self.vectors)
        if k <= 0 or total == 0:
            return []
        vector = np.asarray(self.encode_query(query), dtype=np.float32).reshape(1, -1)
        params, bits = None, None
        if allowed is not None:
            bits = np.packbits(np.asarray(allowed, dtype=bool)[self._owners], bitorder="little")
            selector = faiss.IDSelectorBitmap(total, faiss.swig_ptr(bits))
            params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        scores, ids = self._index.search(
            vector, min(total, SENTENCES_PER_PASSAGE * k), params=params
        )
        del bits  # read by the selector until the search returns
        return best_passages(ids[0], scores[0], self._owners, k)

    def rescore(
        self,
        query: str,
        ranking: Ranking,
        *,
        passages: int,
        weight: float,
        method: str,
        rrf_k: int,
    ) -> Ranking:
        """:func:`rescore` of the first ``passages`` of ``ranking`` for ``query``."""
        if passages <= 0 or weight <= 0 or len(ranking) < 2:
            return list(ranking)
        head = [row for row, _ in ranking[:passages]]
        best = best_of_parts(self.similarities(query, head))
        return rescore(ranking, best.tolist(), weight=weight, method=method, rrf_k=rrf_k)
