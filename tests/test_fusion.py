from __future__ import annotations

import math

import numpy as np
import pytest

from qa_service.config import Settings
from qa_service.convex_fusion import convex_fusion, idf, minmax, term_coverage
from qa_service.lexical import LexicalIndex
from qa_service.query.analysis import QueryText
from qa_service.query.candidates import Retrievers, search_text
from qa_service.query.fusion import FusionWeights, fuse
from qa_service.retrieval import LexicalRetriever


@pytest.mark.parametrize(
    ("ranking", "expected"),
    [
        ([], {}),
        ([(1, 5.0)], {1: 1.0}),
        ([(1, 3.0), (2, 3.0)], {1: 1.0, 2: 1.0}),
        ([(1, 9.0), (2, 5.0), (3, 1.0)], {1: 1.0, 2: 0.5, 3: 0.0}),
        ([(4, -0.5), (7, -1.5)], {4: 1.0, 7: 0.0}),
    ],
)
def test_minmax(ranking: list[tuple[int, float]], expected: dict[int, float]) -> None:
    assert minmax(ranking) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("rankings", "weights", "expected"),
    [
        (
            [[(1, 9.0), (2, 8.0), (3, 7.0)], [(2, 0.9), (3, 0.8), (4, 0.1)]],
            [1.0, 1.0],
            [2, 1, 3, 4],
        ),
        # A leg whose weight is 0 only adds candidates, ranked after the others.
        ([[(1, 0.9), (2, 0.5), (5, 0.1)], [(3, 30.0), (2, 10.0)]], [1.0, 0.0], [1, 2, 3, 5]),
        # The lexical leg's large raw scores do not outweigh the dense leg's small ones.
        (
            [[(1, 0.85), (2, 0.80), (3, 0.70)], [(3, 40.0), (2, 39.0), (4, 1.0)]],
            [1.0, 0.5],
            [2, 1, 3, 4],
        ),
        # Equal fused scores: the better best rank wins, then the smaller id.
        ([[(5, 1.0), (6, 0.5)], [(6, 1.0), (5, 0.5)]], [1.0, 1.0], [5, 6]),
        ([[], []], [1.0, 1.0], []),
    ],
)
def test_convex_fusion(
    rankings: list[list[tuple[int, float]]], weights: list[float], expected: list[int]
) -> None:
    assert [item for item, _ in convex_fusion(rankings, weights)] == expected


def test_convex_fusion_needs_one_weight_per_ranking() -> None:
    with pytest.raises(ValueError):
        convex_fusion([[(1, 1.0)]], [1.0, 1.0])


def test_idf_is_largest_for_unknown_stems() -> None:
    assert idf(0, 100) > idf(1, 100) > idf(50, 100) > 0
    assert idf(10, 100) == pytest.approx(math.log(1 + 90.5 / 10.5))


@pytest.mark.parametrize(
    ("weights", "holders", "expected"),
    [
        ({"a": 1.0, "b": 3.0}, [{"a"}, {"b"}], 0.75),
        ({"a": 1.0, "b": 3.0}, [{"a", "b"}], 1.0),
        ({"a": 1.0, "b": 3.0}, [set()], 0.0),
        ({"a": 1.0}, [], 0.0),
        ({}, [{"a"}], 0.0),
        # Stems a passage holds beyond the question's do not count.
        ({"a": 2.0, "b": 2.0}, [{"a", "z"}], 0.5),
    ],
)
def test_term_coverage(weights: dict[str, float], holders: list[set[str]], expected: float) -> None:
    assert term_coverage(weights, holders) == pytest.approx(expected)


TEXTS = [
    "ett bidragstak införs för hushåll med försörjningsstöd",
    "aktivitetskrav för den som har försörjningsstöd",
    "kommunerna ansvarar för skolan",
    "regeringen föreslår ett bidragstak",
] + ["helt annat ämne om vägar och broar"] * 20


def test_lexical_term_coverage_weighs_rare_stems_more() -> None:
    index = LexicalIndex.build(TEXTS)
    question = "bidragstak försörjningsstöd skolan"
    assert index.term_coverage(question, [0]) > index.term_coverage(question, [2])
    assert index.term_coverage(question, [0, 2]) == index.term_coverage(question, [0])
    assert index.term_coverage(question, [4]) == 0.0
    assert index.term_coverage(question, []) == 0.0
    # A question word no passage holds lowers the coverage of every passage.
    assert index.term_coverage(question + " vårdcentral", [0]) < index.term_coverage(question, [0])
    assert index.term_coverage("bidragstak", [3]) == 1.0


class _Dense:
    """A dense leg with fixed scores (the lexical leg below is the real BM25)."""

    def __init__(self, ranking: list[tuple[int, float]]) -> None:
        self.ranking = ranking

    def search(
        self, query: str, k: int, *, allowed: np.ndarray | None = None, also: object = ()
    ) -> list:
        return self.ranking[:k]


@pytest.mark.parametrize(
    ("question", "first"),
    [
        # BM25's best passage holds only a common word of the question: the dense leg leads.
        ("vilka regler gäller för skolan i kommunerna numera egentligen", 1),
        # BM25's best passage holds the question's words: it leads.
        ("bidragstak för hushåll med försörjningsstöd", 0),
    ],
)
def test_hybrid_trusts_the_lexical_leg_by_its_coverage(question: str, first: int) -> None:
    dense = _Dense([(1, 0.86), (0, 0.85), (3, 0.84), (2, 0.80)])
    lexical = LexicalRetriever(LexicalIndex.build(TEXTS))
    hybrid = search_text(
        QueryText.read(question),
        "question",
        1.0,
        mode="hybrid",
        retrievers=Retrievers(dense, lexical, lexical),  # type: ignore[arg-type]
        depth=4,
        allowed=None,
        settings=Settings(candidate_depth=4),
        weights=FusionWeights(hybrid_method="convex", coverage_passages=5),
    )
    assert fuse(hybrid, rrf_k=60)[0][0] == first


def test_postings_are_in_row_order() -> None:
    """LexicalIndex.term_coverage finds rows by binary search in each stem's postings."""
    bm25 = LexicalIndex.build(TEXTS * 3)._bm25
    assert bm25 is not None
    indptr, indices = bm25.scores["indptr"], bm25.scores["indices"]
    for position in range(len(indptr) - 1):
        postings = indices[indptr[position] : indptr[position + 1]]
        assert np.all(np.diff(postings) > 0)


@pytest.mark.parametrize(
    "order",
    [("a", "b", "c", "d"), ("d", "c", "b", "a"), ("b", "d", "a", "c"), ("c", "a", "d", "b")],
)
def test_term_coverage_is_the_same_whatever_order_the_stems_come_in(
    order: tuple[str, ...],
) -> None:
    weights = {stem: {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.7}[stem] for stem in order}
    held = tuple(stem for stem in order if stem != "d")
    expected = math.fsum([0.1, 0.2, 0.3]) / math.fsum([0.1, 0.2, 0.3, 0.7])
    assert term_coverage(weights, [held]) == expected
