from __future__ import annotations

import faiss
import numpy as np
import pytest

from qa_service.config import Settings
from qa_service.hints import AUTUMN, SPRING, DocumentFacts, Hints
from qa_service.query.analysis import QueryText
from qa_service.query.candidates import Retrievers, search_text
from qa_service.query.fusion import FusionWeights, fuse
from qa_service.query.reranking import (
    Candidate,
    diversify,
    lift_hinted,
    reassign_document_slots,
    within_document_order,
)
from qa_service.retrieval import DenseRetriever, rocchio, rrf


@pytest.mark.parametrize(
    ("rankings", "k", "weights", "expected"),
    [
        ([[(1, 9.0), (2, 8.0)], [(2, 0.9), (3, 0.8)]], 60, None, [2, 1, 3]),
        ([[(1, 1.0)], []], 60, None, [1]),
        ([[], []], 60, None, []),
        # Weights let one list dominate.
        ([[(1, 1.0), (2, 0.5)], [(2, 1.0), (1, 0.5)]], 60, [1.0, 3.0], [2, 1]),
        # Equal fused scores: the better best rank wins, then the smaller id.
        ([[(5, 1.0), (6, 0.5)], [(6, 1.0), (5, 0.5)]], 60, None, [5, 6]),
        ([[(1, 1.0), (2, 1.0), (3, 1.0)]], 1, None, [1, 2, 3]),
    ],
)
def test_rrf(
    rankings: list[list[tuple[int, float]]],
    k: int,
    weights: list[float] | None,
    expected: list[int],
) -> None:
    assert [item for item, _ in rrf(rankings, k=k, weights=weights)] == expected


def test_rrf_scores() -> None:
    fused = dict(rrf([[(1, 0.0)], [(1, 0.0), (2, 0.0)]], k=10))
    assert fused[1] == pytest.approx(2 / 11)
    assert fused[2] == pytest.approx(1 / 12)


def test_rrf_needs_one_weight_per_list() -> None:
    with pytest.raises(ValueError):
        rrf([[(1, 1.0)]], weights=[1.0, 2.0])


def cand(row: int, doc: str, text: str) -> Candidate:
    return Candidate(row, 1.0 / (row + 1), doc, text, [])


def test_diversify_caps_documents_and_folds_duplicates() -> None:
    dup = "Sverigedemokraterna och regeringspartierna är överens om en ny migrationspolitik"
    candidates = [
        cand(0, "pdf", dup),
        cand(1, "txt", dup + "."),
        cand(2, "pdf", "annan text ett om bidragstak och aktivitetskrav"),
        cand(3, "pdf", "tredje text om jobbskatteavdrag för vanligt folk"),
        cand(4, "c", "en helt egen text om yrkesvux i kommunerna"),
    ]
    kept = diversify(candidates, 3, per_document=2)
    assert [c.row for c in kept] == [0, 2, 4]
    assert kept[0].also_in == [1]


def test_diversify_without_cap() -> None:
    candidates = [cand(i, "same", f"text nummer {i} med egna ord {i * 7}") for i in range(4)]
    assert len(diversify(candidates, 4, per_document=0)) == 4


FACTS = {
    "m-motion": DocumentFacts("Motion", frozenset({"M"}), frozenset({(2019, AUTUMN)})),
    "s-motion": DocumentFacts("Motion", frozenset({"S"}), frozenset({(2024, AUTUMN)})),
    "press": DocumentFacts("Pressmeddelande", frozenset(), frozenset({(2024, SPRING)})),
}
# Fused scores of ranks 1, 2 and 3 in both legs (RRF k=60).
FUSED = [("press", 2 / 61), ("m-motion", 2 / 62), ("s-motion", 2 / 63)]


@pytest.mark.parametrize(
    ("hints", "weight", "expected"),
    [
        (Hints(), 0.5, ["press", "m-motion", "s-motion"]),
        (Hints(parties=frozenset({"S"})), 0.0, ["press", "m-motion", "s-motion"]),
        (Hints(parties=frozenset({"S"})), 0.5, ["s-motion", "press", "m-motion"]),
        (Hints(doctypes=frozenset({"Motion"})), 0.5, ["m-motion", "s-motion", "press"]),
        # Half the hints met (party, not kind) lifts less than all of them.
        (
            Hints(parties=frozenset({"M"}), doctypes=frozenset({"Valmanifest"})),
            0.02,
            ["press", "m-motion", "s-motion"],
        ),
        (
            Hints(parties=frozenset({"M"}), doctypes=frozenset({"Motion"})),
            0.02,
            ["m-motion", "press", "s-motion"],
        ),
        # The autumn of 2024: the S motion meets kind and time, the press release of the
        # spring only neither.
        (
            Hints(doctypes=frozenset({"Motion"}), periods=frozenset({(2024, AUTUMN)})),
            0.5,
            ["s-motion", "m-motion", "press"],
        ),
        # A document the facts do not know is left where it was.
        (Hints(parties=frozenset({"X"})), 0.5, ["press", "m-motion", "s-motion"]),
    ],
)
def test_lift_hinted(hints: Hints, weight: float, expected: list[str]) -> None:
    candidates = [Candidate(i, score, doc, doc, []) for i, (doc, score) in enumerate(FUSED)]
    lifted = lift_hinted(candidates, hints, FACTS, weight)
    assert [c.doc_id for c in lifted] == expected
    assert candidates[0].score == 2 / 61  # the input is not changed


def _half(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors rounded to what half precision (the dense search's storage) holds."""
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float16).astype(np.float32)


def _unit(*values: float) -> np.ndarray:
    return _half(np.asarray([values], dtype=np.float32))[0]


@pytest.mark.parametrize(
    ("weight", "expected"),
    [
        (0.0, [0, 2, 1]),  # the passages alone: row 0 is closest to the question
        (1.0, [2, 1, 0]),  # row 2's document matches the question: it wins
    ],
)
def test_dense_adds_the_document_similarity(weight: float, expected: list[int]) -> None:
    passages = np.vstack([_unit(1, 0.2), _unit(0.2, 1), _unit(1, 0.5)])
    index = faiss.IndexFlatIP(2)
    index.add(passages)
    documents = np.vstack([_unit(0, 1), _unit(1, 0)])
    owner = np.asarray([0, 1, 1], dtype=np.int32)
    question = _unit(1, 0.1)
    dense = DenseRetriever(
        index,
        lambda _: question,
        document_vectors=documents,
        passage_documents=owner,
        document_weight=weight,
    )
    ranking = dense.search("q", 3)
    assert [row for row, _ in ranking] == expected
    for row, score in ranking:
        wanted = passages[row] @ question + weight * (documents[owner[row]] @ question)
        assert score == pytest.approx(float(wanted), abs=1e-5)
    allowed = np.asarray([True, True, False])
    assert [row for row, _ in dense.search("q", 3, allowed=allowed)] == [
        r for r in expected if r != 2
    ]


def _dense_case(
    seed: int,
    passages: int,
    dim: int,
    documents: int,
    weight: float,
    *,
    half: bool,
    first_stage: int = 400,
) -> tuple[DenseRetriever, np.ndarray]:
    """A random index with document vectors; returns the retriever and the true scores."""
    rng = np.random.default_rng(seed)
    unit = _half if half else (lambda v: v / np.linalg.norm(v, axis=1, keepdims=True))
    vectors = unit(rng.normal(size=(passages, dim)).astype(np.float32))
    doc_vectors = unit(rng.normal(size=(documents, dim)).astype(np.float32))
    owner = rng.integers(0, documents, size=passages).astype(np.int32)
    question = vectors[0] + doc_vectors[owner[passages // 2]]
    question /= np.linalg.norm(question)
    index = faiss.IndexFlatIP(dim)
    index.add(vectors)
    dense = DenseRetriever(
        index,
        lambda _: question,
        document_vectors=doc_vectors,
        passage_documents=owner,
        document_weight=weight,
        first_stage=first_stage,
    )
    return dense, vectors @ question + weight * (doc_vectors @ question)[owner]


@pytest.mark.parametrize("first_stage", [10, 40, 400, 1000])
@pytest.mark.parametrize("seed", range(5))
def test_dense_with_documents_is_exact_top_k(seed: int, first_stage: int) -> None:
    # The search keeps passages in half precision; vectors that half precision holds
    # exactly must come back in exactly the brute-force order, however few candidates
    # the first step takes (the second step scores the documents that may still win).
    dense, truth = _dense_case(seed, 600, 16, 30, 0.8, half=True, first_stage=first_stage)
    allowed = np.random.default_rng(seed + 100).random(600) < 0.5
    # A filter leaving few passages (here 5 %) is scored directly, without the index scan.
    few = np.random.default_rng(seed + 200).random(600) < 0.05
    for mask in (None, allowed, few):
        scores = truth if mask is None else np.where(mask, truth, -np.inf)
        expected = list(np.argsort(-scores, kind="stable")[:10])
        got = dense.search("q", 10, allowed=mask)
        assert [row for row, _ in got] == expected
        assert [s for _, s in got] == pytest.approx([float(truth[r]) for r in expected], abs=1e-5)


@pytest.mark.parametrize("first_stage", [20, 400])
def test_dense_with_documents_is_exact_for_any_vectors(first_stage: int) -> None:
    # The scan rounds to half precision, but the candidates are scored in full precision
    # and the rounding is part of the bound: the brute-force order and scores come back.
    dense, truth = _dense_case(7, 2000, 384, 50, 0.3, half=False, first_stage=first_stage)
    got = dense.search("q", 20)
    assert got[0][0] == 0
    assert [row for row, _ in got] == list(np.argsort(-truth, kind="stable")[:20])
    assert [s for _, s in got] == pytest.approx([float(truth[r]) for r, _ in got], abs=1e-5)


@pytest.mark.parametrize(
    ("owners", "asked", "rows"),
    [
        ([0, 0, 1, 1, 1, 2], [1], [2, 3, 4]),
        ([0, 0, 1, 1, 1, 2], [2, 0], [5, 0, 1]),
        ([1, 0, 1, 0, 2], [1], [0, 2]),  # rows of one owner need not be contiguous
        ([0, 2, 2], [1], []),  # an owner without rows
        ([0, 1], [], []),
    ],
)
def test_row_groups(owners: list[int], asked: list[int], rows: list[int]) -> None:
    from qa_service.store import RowGroups

    groups = RowGroups(np.asarray(owners), max(owners) + 1)
    assert groups.rows(asked).tolist() == rows


@pytest.mark.parametrize(
    ("dense", "lexical", "expected"),
    [
        # Both legs agree.
        ([0.9, 0.5, 0.1], {10: 3.0, 11: 1.0}, [10, 11, 12]),
        # Passages ranked by both legs beat one ranked first by the dense leg alone.
        ([0.9, 0.8, 0.1], {11: 2.0, 12: 1.0}, [11, 12, 10]),
        # No question term in the document: the dense order alone.
        ([0.2, 0.7, 0.5], {}, [11, 12, 10]),
        # A zero BM25 score is no lexical rank.
        ([0.2, 0.7, 0.5], {10: 0.0}, [11, 12, 10]),
    ],
)
def test_within_document_order(
    dense: list[float], lexical: dict[int, float], expected: list[int]
) -> None:
    assert within_document_order([10, 11, 12], dense, lexical) == expected


def _candidate(row: int, doc: str, score: float) -> Candidate:
    return Candidate(row, score, doc, f"text {row}", [])


@pytest.mark.parametrize(
    ("orders", "expected"),
    [
        # No document rescored: unchanged.
        ({}, [(1, "a"), (2, "b"), (3, "a")]),
        # Document a's places are filled by its own best passages, in its order.
        ({"a": [7, 3, 1]}, [(7, "a"), (2, "b"), (3, "a")]),
        # A passage whose text is unknown is skipped.
        ({"a": [99, 1, 3]}, [(1, "a"), (2, "b"), (3, "a")]),
        # Both documents rescored.
        ({"a": [3, 1], "b": [8]}, [(3, "a"), (8, "b"), (1, "a")]),
        # A document with fewer known passages than places gives up the rest.
        ({"a": [7]}, [(7, "a"), (2, "b")]),
    ],
)
def test_reassign_document_slots(
    orders: dict[str, list[int]], expected: list[tuple[int, str]]
) -> None:
    candidates = [_candidate(1, "a", 0.3), _candidate(2, "b", 0.2), _candidate(3, "a", 0.1)]
    texts = {row: f"text {row}" for row in (1, 2, 3, 7, 8)}
    out = reassign_document_slots(candidates, orders, texts)
    assert [(c.row, c.doc_id) for c in out] == expected
    # Places keep their scores; texts follow the rows.
    assert [c.score for c in out] == [0.3, 0.2, 0.1][: len(out)]
    assert all(c.text == f"text {c.row}" for c in out)


@pytest.mark.parametrize(
    ("beta", "expected"),
    [
        (0.0, [1.0, 0.0]),
        (1.0, [np.sqrt(0.5), np.sqrt(0.5)]),  # q + mean(feedback) = (1, 1)
    ],
)
def test_rocchio(beta: float, expected: list[float]) -> None:
    question = np.asarray([1.0, 0.0], dtype=np.float32)
    feedback = np.asarray([[0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    moved = rocchio(question, feedback, beta)
    assert moved == pytest.approx(np.asarray(expected), abs=1e-6)
    assert float(np.linalg.norm(moved)) == pytest.approx(1.0, abs=1e-6)


def test_rocchio_without_feedback() -> None:
    question = np.asarray([0.6, 0.8], dtype=np.float32)
    assert rocchio(question, np.zeros((0, 2), dtype=np.float32), 0.5) is question


def test_dense_feedback_moves_towards_the_best_passages() -> None:
    # The question is nearest row 0, which leans towards row 1: feedback from row 0
    # lifts row 1 above row 3, which leans the other way.
    passages = np.vstack([_unit(1, 0.2), _unit(0.8, 0.6), _unit(0.5, 1), _unit(1, -0.6)])
    index = faiss.IndexFlatIP(2)
    index.add(passages)
    question = _unit(1, 0.0)
    plain = DenseRetriever(index, lambda _: question)
    assert [row for row, _ in plain.search("q", 4)] == [0, 3, 1, 2]
    fed = DenseRetriever(index, lambda _: question, feedback=1, feedback_weight=1.0)
    assert [row for row, _ in fed.search("q", 4)] == [0, 1, 3, 2]


class _NoLexical:
    def search_text(self, text: str, k: int, *, allowed: np.ndarray | None = None) -> list:
        return []

    def term_coverage(self, text: str, rows: list[int]) -> float:
        return 0.0


@pytest.mark.parametrize(("fused", "expected"), [(0.0, [0, 3, 1, 2]), (3.0, [0, 1, 3, 2])])
def test_hybrid_fuses_the_feedback_search_as_its_own_ranking(
    fused: float, expected: list[int]
) -> None:
    passages = np.vstack([_unit(1, 0.2), _unit(0.8, 0.6), _unit(0.5, 1), _unit(1, -0.6)])
    index = faiss.IndexFlatIP(2)
    index.add(passages)
    question = _unit(1, 0.0)
    dense = DenseRetriever(index, lambda _: question)
    settings = Settings(candidate_depth=4, dense_feedback_passages=1, dense_feedback_weight=1.0)
    hybrid = search_text(
        QueryText("q"),
        "question",
        1.0,
        mode="hybrid",
        retrievers=Retrievers(dense, _NoLexical(), _NoLexical()),
        depth=4,
        allowed=None,
        settings=settings,
        weights=FusionWeights(dense_feedback=fused),
    )
    assert [row for row, _ in fuse(hybrid, rrf_k=60)] == expected
    # The dense leg itself is not moved.
    assert [row for row, _ in dense.search("q", 4)] == [0, 3, 1, 2]
