"""The approximate dense index: recall against exact search, filters, the document term,
and exact search below the size that asks for it (small random data, real FAISS)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import faiss
import numpy as np
import pytest

from qa_service.approximate import ApproximateSettings, build_approximate
from qa_service.config import Settings
from qa_service.ingest import run_ingest
from qa_service.retrieval import DenseRetriever, SegmentedDenseRetriever
from qa_service.service import QAService
from qa_service.store import APPROXIMATE, IndexReader

from .conftest import write_small_corpus
from .fake_embedder import FakeEmbedder

FACTORIES = ["HNSW16,Flat", "HNSW16,SQ8", "IVF32,Flat", "IVF32,SQ8"]


def _clustered(rng: np.random.Generator, count: int, dim: int, centres: int) -> np.ndarray:
    """Unit vectors around a few centres: like passages, many near neighbours."""
    middle = rng.normal(size=(centres, dim)).astype(np.float32)
    vectors = middle[rng.integers(0, centres, count)] + 0.6 * rng.normal(size=(count, dim))
    vectors = vectors.astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _case(
    factory: str, *, weight: float = 0.3, seed: int = 0, candidates: int = 50
) -> tuple[DenseRetriever, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A random clustered index with document vectors, searched approximately; returns the
    retriever, the passages, the documents, each passage's document and the questions."""
    rng = np.random.default_rng(seed)
    passages = _clustered(rng, 4000, 32, 40)
    documents = _clustered(rng, 200, 32, 40)
    owner = np.sort(rng.integers(0, len(documents), len(passages))).astype(np.int32)
    questions = _clustered(rng, 30, 32, 40)
    exact = faiss.IndexFlatIP(32)
    exact.add(passages)
    settings = ApproximateSettings(
        min_passages=1, factory=factory, search_breadth=64, candidates=candidates
    )
    current = {"q": questions[0]}
    dense = DenseRetriever(
        exact,
        lambda _: current["q"],
        document_vectors=documents,
        passage_documents=owner,
        document_weight=weight,
        approximate=build_approximate(passages, settings),
        approximate_breadth=settings.search_breadth,
        approximate_candidates=settings.candidates,
    )
    dense.current = current  # type: ignore[attr-defined]
    return dense, passages, documents, owner, questions


def _ask(dense: DenseRetriever, question: np.ndarray, k: int, allowed=None):  # type: ignore[no-untyped-def]
    dense.current["q"] = question  # type: ignore[attr-defined]
    return dense.search("q", k, allowed=allowed)


@pytest.mark.parametrize("factory", FACTORIES)
def test_recall_against_exact_search(factory: str) -> None:
    dense, passages, documents, owner, questions = _case(factory)
    found = []
    for question in questions:
        truth = passages @ question + 0.3 * (documents @ question)[owner]
        expected = set(np.argsort(-truth)[:10].tolist())
        got = [row for row, _ in _ask(dense, question, 10)]
        assert len(got) == 10
        found.append(len(expected & set(got)) / 10)
    assert np.mean(found) >= 0.95


@pytest.mark.parametrize("factory", ["HNSW16,SQ8", "IVF32,SQ8"])
def test_scores_hold_the_document_term(factory: str) -> None:
    dense, passages, documents, owner, questions = _case(factory, weight=0.5)
    for question in questions[:5]:
        for row, score in _ask(dense, question, 10):
            wanted = passages[row] @ question + 0.5 * (documents[owner[row]] @ question)
            assert score == pytest.approx(float(wanted), abs=1e-5)


def test_a_document_lifts_a_passage_the_approximate_index_did_not_propose() -> None:
    # Few candidates, and one document made to match the question exactly: its passages
    # are far from the question by q·p alone, yet with w·q·d they win.
    dense, passages, documents, owner, questions = _case("HNSW16,Flat", weight=1.0, candidates=10)
    question = questions[3]
    by_passage = passages @ question
    lifted = int(owner[int(np.argmin(by_passage))])  # the document of the farthest passage
    documents[lifted] = question
    dense._documents = documents
    truth = by_passage + 1.0 * (documents @ question)[owner]
    assert lifted in set(owner[np.argsort(-truth)[:5]].tolist())
    assert lifted not in set(owner[np.argsort(-by_passage)[:10]].tolist())
    got = [row for row, _ in _ask(dense, question, 5)]
    assert got == np.argsort(-truth, kind="stable")[:5].tolist()


@pytest.mark.parametrize("factory", ["HNSW16,SQ8", "IVF32,Flat"])
@pytest.mark.parametrize("share", [0.5, 0.2])
def test_filters_are_applied_before_the_top_k(factory: str, share: float) -> None:
    # A share above direct_share's goes through the approximate index with a selector.
    dense, passages, documents, owner, questions = _case(factory)
    rng = np.random.default_rng(5)
    allowed = rng.random(len(passages)) < share
    found = []
    for question in questions:
        truth = passages @ question + 0.3 * (documents @ question)[owner]
        truth = np.where(allowed, truth, -np.inf)
        expected = set(np.argsort(-truth)[:10].tolist())
        got = [row for row, _ in _ask(dense, question, 10, allowed)]
        assert len(got) == 10  # the filter did not cut the top 10 short
        assert all(allowed[row] for row in got)
        found.append(len(expected & set(got)) / 10)
    assert np.mean(found) >= 0.95


@pytest.mark.parametrize(
    ("breadth", "widest", "share", "searched"),
    [
        (64, 4096, 1.0, 64),  # no filter: the breadth itself
        (64, 4096, 0.25, 256),  # 1/s as wide
        (64, 100, 0.25, 100),  # but no wider than the widest
        (2048, 4096, 0.25, 4096),
        (2048, 1024, 0.25, 2048),  # never narrower than unfiltered
    ],
)
def test_a_filtered_search_looks_wider_up_to_the_widest(
    monkeypatch: pytest.MonkeyPatch, breadth: int, widest: int, share: float, searched: int
) -> None:
    import qa_service.retrieval as retrieval

    dense, passages, _documents, _owner, questions = _case("HNSW16,SQ8")
    dense.approximate_breadth, dense.approximate_widest = breadth, widest
    seen: list[int] = []
    real = retrieval.search_parameters

    def spy(index: faiss.Index, width: int, selector: object = None) -> faiss.SearchParameters:
        seen.append(width)
        return real(index, width, selector)

    monkeypatch.setattr(retrieval, "search_parameters", spy)
    allowed = None
    if share < 1:
        allowed = np.zeros(len(passages), dtype=bool)
        allowed[: int(share * len(passages))] = True  # over 1/8: not scored directly
    got = _ask(dense, questions[0], 10, allowed)
    assert len(got) == 10
    assert seen == [searched]


def test_a_narrow_filter_is_scored_exactly() -> None:
    dense, passages, documents, owner, questions = _case("HNSW16,SQ8")
    allowed = np.zeros(len(passages), dtype=bool)
    allowed[::50] = True  # 2 %: scored directly, no approximate search
    question = questions[1]
    truth = np.where(allowed, passages @ question + 0.3 * (documents @ question)[owner], -np.inf)
    got = [row for row, _ in _ask(dense, question, 10, allowed)]
    assert got == np.argsort(-truth, kind="stable")[:10].tolist()


def _small_corpus(tmp_path: Path, **changes: object) -> tuple[Path, Settings]:
    """The tests' small corpus and settings that index it under ``tmp_path``."""
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = Settings(
        index_dir=tmp_path / "indexes" / "small",
        conversations_db=tmp_path / "conversations.sqlite3",
        **changes,  # type: ignore[arg-type]
    )
    return corpus, settings


@pytest.mark.parametrize(("min_passages", "approximate"), [(10**6, False), (1, True)])
def test_builds_below_the_size_are_searched_exactly(
    tmp_path: Path, min_passages: int, approximate: bool
) -> None:
    corpus, settings = _small_corpus(
        tmp_path,
        approximate_min_passages=min_passages,
        approximate_index="HNSW8,Flat",
    )
    embedder = FakeEmbedder()
    run_ingest([corpus], settings, embedder=embedder, progress=False)  # type: ignore[arg-type]
    reader = IndexReader(settings.index_dir)
    assert (reader.build_path / APPROXIMATE).exists() is approximate
    assert ("approximate" in reader.manifest) is approximate
    service = QAService(settings, embedder=embedder)  # type: ignore[arg-type]
    service.load()
    dense = service.loaded.retrievers.dense
    assert (dense.approximate is not None) is approximate
    question = "Hur många bor i utanförskapsområden?"
    got = dense.search(question, 5)
    exact = dataclasses.replace(settings, approximate_min_passages=10**6)
    exact_service = QAService(exact, embedder=embedder)  # type: ignore[arg-type]
    exact_service.load()
    assert exact_service.loaded.retrievers.dense.approximate is None
    # The small index is all candidates: the approximate path finds the exact top 5.
    expected = exact_service.loaded.retrievers.dense.search(question, 5)
    assert [row for row, _ in got] == [row for row, _ in expected]
    assert [score for _, score in got] == pytest.approx([score for _, score in expected])


def test_a_segment_publish_keeps_the_linked_builds_approximate_index(tmp_path: Path) -> None:
    corpus, settings = _small_corpus(
        tmp_path,
        approximate_min_passages=1,
        approximate_index="HNSW8,Flat",
        segment_merge_share=1.0,  # one edited file of a small corpus: no merge
    )
    embedder = FakeEmbedder()
    run_ingest([corpus], settings, embedder=embedder, progress=False)  # type: ignore[arg-type]
    first = IndexReader(settings.index_dir)
    built = first.manifest["approximate"]
    # The new segment (one edited file) is below the size; the linked one is not.
    settings = dataclasses.replace(settings, approximate_min_passages=first.passage_count)
    with (corpus / "press.md").open("a", encoding="utf-8") as handle:
        handle.write("\nEtt nytt stycke om yrkesvux.\n")
    report = run_ingest([corpus], settings, embedder=embedder, progress=False)  # type: ignore[arg-type]
    assert report.published and report.segments == 2 and not report.merged
    reader = IndexReader(settings.index_dir)
    assert reader.manifest["approximate"] == built
    service = QAService(settings, embedder=embedder)  # type: ignore[arg-type]
    service.load()
    dense = service.loaded.retrievers.dense
    assert isinstance(dense, SegmentedDenseRetriever)
    assert [part.approximate is not None for _, part, _ in dense.parts] == [True, False]


def _mapped_file(address: int) -> str | None:
    """The file whose mapping holds ``address`` in this process (None: anonymous memory)."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        start, end = (int(part, 16) for part in fields[0].split("-"))
        if start <= address < end:
            return fields[5].strip() if len(fields) == 6 else None
    return None


def _codes_address(index: faiss.Index) -> int:
    codes = faiss.downcast_index(index).codes
    return int(faiss.rev_swig_ptr(codes.data(), codes.size()).ctypes.data)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/self/maps")
def test_an_opened_build_maps_its_vectors_from_the_files(tmp_path: Path) -> None:
    """The flat vectors and the approximate index's codes are the files' pages, not a
    copy: opening costs nothing per passage and the workers share them."""
    corpus, settings = _small_corpus(
        tmp_path,
        approximate_min_passages=1,
        approximate_index="HNSW8,SQ8",
    )
    run_ingest([corpus], settings, embedder=FakeEmbedder(), progress=False)  # type: ignore[arg-type]
    reader = IndexReader(settings.index_dir)
    flat = _mapped_file(_codes_address(reader.vectors))
    assert flat == str(reader.build_path / "vectors.faiss")
    graph = faiss.downcast_index(reader.approximate)
    assert _mapped_file(_codes_address(graph.storage)) == str(reader.build_path / APPROXIMATE)
    # What the retriever scores from is that mapping too.
    dense = DenseRetriever(reader.vectors, FakeEmbedder().encode_query)
    assert _mapped_file(int(dense._passages.ctypes.data)) == flat


def test_rows_named_by_the_caller_take_their_exact_place() -> None:
    # One list probed of 32: the approximate search alone misses some of the exact top 20;
    # the rows the hybrid's lexical leg found are scored with its candidates.
    dense, passages, _, _, questions = _case("IVF32,Flat", candidates=20, weight=0)
    dense.approximate_breadth = 1
    question = questions[2]
    truth = passages @ question
    best = np.argsort(-truth, kind="stable")[:20]
    alone = [row for row, _ in _ask(dense, question, 20)]
    assert alone != best.tolist()  # the case is one the approximate search gets wrong
    dense.current["q"] = question  # type: ignore[attr-defined]
    named = [*best.tolist(), -1, len(passages)]  # rows outside the build are ignored
    got = dense.search("q", 20, also=named)
    assert [row for row, _ in got] == best.tolist()
    assert [score for _, score in got] == pytest.approx(truth[best].tolist(), abs=1e-5)
    # A filter holds for the named rows too.
    allowed = np.ones(len(passages), dtype=bool)
    allowed[best[:5]] = False
    filtered = [row for row, _ in dense.search("q", 20, allowed=allowed, also=named)]
    assert not set(filtered) & set(best[:5].tolist())
    assert set(best[5:].tolist()) <= set(filtered)


def test_a_segmented_build_gives_each_segment_its_named_rows() -> None:
    first, passages_a, _, _, questions = _case("IVF32,Flat", candidates=20, weight=0)
    second, passages_b, _, _, _ = _case("IVF32,Flat", candidates=20, weight=0, seed=1)
    first.approximate_breadth = second.approximate_breadth = 1
    deleted = np.zeros(len(passages_b), dtype=bool)
    deleted[0] = True  # a deleted row stays out even when named
    build = SegmentedDenseRetriever(
        [(0, first, None), (len(passages_a), second, deleted)], lambda _: questions[4]
    )
    truth = np.concatenate([passages_a, passages_b]) @ questions[4]
    truth[len(passages_a)] = -np.inf
    best = np.argsort(-truth, kind="stable")[:20]
    named = np.asarray([*best.tolist(), len(passages_a)], dtype=np.int64)
    assert [row for row, _ in build.search_vector(questions[4], 20)] != best.tolist()
    got = build.search_vector(questions[4], 20, also=named)
    assert [row for row, _ in got] == best.tolist()


def test_named_rows_far_from_the_question_leave_the_document_bound_as_it_was() -> None:
    # With the document term, the documents whose passages are all scored are those that
    # could lift a passage with q·p up to the approximate candidates' lowest; a named row
    # far from the question must not lower that bound (nor close those documents).
    dense, passages, documents, owner, questions = _case("HNSW16,Flat", weight=1.0, candidates=10)
    scored: set[int] = set()
    exact = dense._exact

    def recording(vector: np.ndarray, rows: np.ndarray, document_scores: object) -> np.ndarray:
        scored.update(rows.tolist())
        return exact(vector, rows, document_scores)  # type: ignore[arg-type]

    dense._exact = recording  # type: ignore[method-assign]
    for question in questions[:5]:
        truth = passages @ question + 1.0 * (documents @ question)[owner]
        far = np.argsort(truth)[:20]  # the least similar passages, with their documents
        scored.clear()
        _ask(dense, question, 10)
        alone = set(scored)
        assert len(alone) > 10 + len(far)  # some documents were opened
        scored.clear()
        dense.current["q"] = question  # type: ignore[attr-defined]
        dense.search("q", 10, also=far.tolist())
        assert scored == alone | set(far.tolist())
