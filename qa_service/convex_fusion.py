"""Fusing the hybrid's rankings by how much each leg's own evidence says for the question.

Reciprocal rank fusion gives BM25's first passage the same weight whether it holds every
word of the question or one word of five. On questions asked in other words than the
documents use (paraphrases, English), BM25's ranking is then noise that takes half the
fused weight and pushes the dense leg's finds out of the top five (BENCHMARKS.md,
held-out set). Here each ranking's scores are min-max normalised over its own list and
summed with weights (a convex combination, as in pyserini's and Weaviate's hybrid
search), and the lexical leg's weight is multiplied by its **term coverage**: the
idf-weighted share of the question's stems that the best-matching of its first passages
holds. A passage holding the question's rare words gives BM25 its full weight; a list
whose best passage shares only a common word or two gives it little.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence

logger = logging.getLogger(__name__)

Ranking = list[tuple[int, float]]


def minmax(ranking: Sequence[tuple[int, float]]) -> dict[int, float]:
    """A ranking's scores mapped onto [0, 1]: its best is 1, its last 0 (all 1 when its
    scores are equal)."""
    if not ranking:
        return {}
    scores = [score for _, score in ranking]
    low, high = min(scores), max(scores)
    if high <= low:
        return {item: 1.0 for item, _ in ranking}
    span = high - low
    return {item: (score - low) / span for item, score in ranking}


def convex_fusion(
    rankings: Sequence[Sequence[tuple[int, float]]], weights: Sequence[float]
) -> Ranking:
    """``score(d) = sum_i w_i * minmax_i(d)``, 0 where ranking i lacks d.

    Ties are broken by the best rank a document reached in any list, then by id, as in
    :func:`qa_service.retrieval.rrf`.
    """
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking")
    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        normalised = minmax(ranking)
        for rank, (item, _score) in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight * normalised[item]
            best[item] = min(best.get(item, rank), rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], best[pair[0]], pair[0]))


def idf(document_frequency: int, size: int) -> float:
    """BM25's idf, ``ln(1 + (N - df + 0.5) / (df + 0.5))``; a stem no passage holds gets
    the largest value (it still counts as a word of the question BM25 cannot match)."""
    return math.log(1 + (size - document_frequency + 0.5) / (document_frequency + 0.5))


def term_coverage(weights: Mapping[str, float], holders: Sequence[Collection[str]]) -> float:
    """The largest idf-weighted share of the question's stems (``weights``: stem ->
    idf) that any one passage holds (``holders``: each passage's stems among them);
    0 without stems or passages (pure). Exact sums (``math.fsum``): the same figure in
    every process, whatever order a set of stems is iterated in."""
    total = math.fsum(weights.values())
    if total <= 0 or not holders:
        return 0.0
    return max(math.fsum(weights[s] for s in held if s in weights) for held in holders) / total
