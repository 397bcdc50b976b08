"""Sentence vectors: stored at ingest beside the passages, reused on an incremental
ingest, optional (a build without them is served as before), and the two pure uses of
them: re-scoring candidates by their best sentence and choosing the quoted sentence."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa_service.config import ConfigError, Settings
from qa_service.extractive import (
    Chosen,
    Sentence,
    choose_sentences,
    sentences,
    with_sentence_similarity,
)
from qa_service.ingest import run_ingest
from qa_service.query.sentences import (
    SentenceVectors,
    best_of_parts,
    best_passages,
    rescore,
    sentence_similarities,
)
from qa_service.schema import Document, DocumentMeta, Passage
from qa_service.service import QAService
from qa_service.store import (
    MANIFEST,
    SEGMENTS,
    SENTENCE_OFFSETS,
    SENTENCE_VECTORS,
    IndexCorrupt,
    IndexReader,
    IndexWriter,
)
from tests.conftest import SEED, SHARED, needs_shared, write_small_corpus
from tests.fake_embedder import FakeEmbedder


class CountingEmbedder(FakeEmbedder):
    """The fake model, remembering every text it was asked to embed."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode_passages(self, texts, *, batch_size=32, progress=False):  # type: ignore[no-untyped-def]
        self.seen.extend(texts)
        return super().encode_passages(texts, batch_size=batch_size, progress=progress)


def _document(doc_id: str, texts: list[str]) -> tuple[Document, list[Passage]]:
    meta = DocumentMeta(title=doc_id)
    document = Document(doc_id, f"{doc_id}.txt", "0" * 64, meta, " ".join(texts), "text")
    passages = [
        Passage(f"{doc_id}-{i}", doc_id, i, text, 0, len(text)) for i, text in enumerate(texts)
    ]
    return document, passages


def _write(index: Path, docs: list[list[str]], *, sentences_on: bool = True) -> IndexReader:
    embedder = FakeEmbedder()
    writer = IndexWriter(index, {"model": "fake"}, sentences=sentences_on)
    for n, texts in enumerate(docs):
        document, passages = _document(f"d{n}", texts)
        vectors = embedder.encode_passages(texts)
        per_passage = [
            embedder.encode_passages([s.text for s in sentences(t)]).reshape(-1, 16) for t in texts
        ]
        writer.add_document(
            document, passages, vectors, embedder.encode_passages(["x"])[0], per_passage
        )
    writer.publish(embedder.dimension)
    return IndexReader(index)


def test_sentence_vectors_round_trip(tmp_path: Path) -> None:
    texts = [["Skatten sänks. Det ska löna sig att arbeta!", "..."], ["En mening utan slut"]]
    reader = _write(tmp_path / "i", texts)
    embedder = FakeEmbedder()
    assert reader.has_sentence_vectors
    assert reader.manifest["sentences"]["count"] == 3
    for row, text in enumerate([t for doc in texts for t in doc]):
        stored = reader.passage_sentence_vectors(row)
        assert stored is not None and stored.dtype == np.float16
        expected = embedder.encode_passages([s.text for s in sentences(text)]).reshape(-1, 16)
        assert stored.shape == expected.shape
        np.testing.assert_allclose(stored.astype(np.float32), expected, atol=1e-3)


def test_a_build_without_them_reads_as_none(tmp_path: Path) -> None:
    reader = _write(tmp_path / "i", [["Skatten sänks."]], sentences_on=False)
    assert not reader.has_sentence_vectors
    assert reader.passage_sentence_vectors(0) is None
    assert not (reader.build_path / SENTENCE_VECTORS).exists()


def test_vectors_cut_by_another_splitter_are_not_used(tmp_path: Path) -> None:
    reader = _write(tmp_path / "i", [["Skatten sänks. Det lönar sig."]])
    manifest = json.loads((reader.build_path / MANIFEST).read_text())
    manifest["sentences"]["splitter"] = "some other splitter"
    (reader.build_path / MANIFEST).write_text(json.dumps(manifest))
    assert not IndexReader(tmp_path / "i").has_sentence_vectors


def test_damaged_sentence_offsets_are_reported(tmp_path: Path) -> None:
    reader = _write(tmp_path / "i", [["Skatten sänks. Det lönar sig."]])
    np.save(reader.build_path / SENTENCE_OFFSETS, np.asarray([0, 5], dtype=np.int64))
    with pytest.raises(IndexCorrupt, match=SENTENCE_OFFSETS):
        IndexReader(tmp_path / "i")


def test_a_passage_needs_its_sentence_vectors(tmp_path: Path) -> None:
    writer = IndexWriter(tmp_path / "i", {"model": "fake"}, sentences=True)
    document, passages = _document("d", ["Skatten sänks."])
    with pytest.raises(ValueError, match="sentence vectors"):
        writer.add_document(document, passages, np.zeros((1, 16)), np.zeros(16), None)
    writer.abort()


def test_incremental_ingest_embeds_only_new_sentences(tmp_path: Path) -> None:
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = Settings(index_dir=tmp_path / "index" / "i", sentence_vectors=True)
    first = CountingEmbedder()
    report = run_ingest([corpus], settings, embedder=first, progress=False)
    reader = IndexReader(settings.index_dir)
    assert reader.has_sentence_vectors
    texts = [reader.passages_by_rows([r])[r].text for r in range(reader.passage_count)]
    distinct = {s.text for text in texts for s in sentences(text)}
    # Each distinct sentence once, however many passages hold it.
    assert report.sentences_embedded == len(distinct)
    assert int(reader.sentence_offsets[-1]) == sum(len(sentences(t)) for t in texts)  # type: ignore[index]
    before = {
        reader.passages_by_rows([r])[r].text: reader.passage_sentence_vectors(r)
        for r in range(reader.passage_count)
    }
    (corpus / "ny.md").write_text("Helt ny text om bostäder. Två meningar här.\n", "utf-8")
    second = CountingEmbedder()
    report = run_ingest([corpus], settings, embedder=second, progress=False)
    assert report.sentences_embedded == 2
    assert set(second.seen) >= {"Helt ny text om bostäder.", "Två meningar här."}
    assert "Jobbskatteavdraget förstärks med 10 miljarder kronor 2025." not in second.seen
    reader = IndexReader(settings.index_dir)
    for row in range(reader.passage_count):
        text = reader.passages_by_rows([row])[row].text
        stored = reader.passage_sentence_vectors(row)
        assert stored is not None and len(stored) == len(sentences(text))
        if text in before:
            np.testing.assert_array_equal(stored, before[text])


def test_turning_them_off_and_on_rebuilds(tmp_path: Path) -> None:
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = Settings(index_dir=tmp_path / "index" / "i", sentence_vectors=False)
    run_ingest([corpus], settings, embedder=FakeEmbedder(), progress=False)
    assert not IndexReader(settings.index_dir).has_sentence_vectors
    on = dataclasses.replace(settings, sentence_vectors=True)
    report = run_ingest([corpus], on, embedder=FakeEmbedder(), progress=False)
    assert report.published and report.passages_embedded == 0 and report.sentences_embedded > 0
    assert IndexReader(settings.index_dir).has_sentence_vectors


@pytest.mark.parametrize("on", [True, False])
def test_a_change_is_a_whole_build_with_them_and_a_segment_without(
    tmp_path: Path, on: bool
) -> None:
    # Sentence vectors are a one-segment build's only: with them on, a changed file
    # publishes a whole build that has them; with them off, a segment publish.
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = Settings(
        index_dir=tmp_path / "index" / "i",
        conversations_db=tmp_path / "c.db",
        sentence_vectors=on,
        segment_merge_share=1.0,  # no merge: the small corpus changes by a large share
    )
    run_ingest([corpus], settings, embedder=FakeEmbedder(), progress=False)
    with (corpus / "press.md").open("a", encoding="utf-8") as handle:
        handle.write("\nEtt nytt stycke om bostadsbidrag. Och hyresrätter i glesbygden.\n")
    report = run_ingest([corpus], settings, embedder=FakeEmbedder(), progress=False)
    assert report.published and report.files_indexed == 1 and not report.merged
    reader = IndexReader(settings.index_dir)
    if on:
        assert report.segments == 1 and len(reader.segments) == 1
        assert SEGMENTS not in reader.manifest and reader.deleted is None
        assert reader.has_sentence_vectors
        assert report.sentences_embedded > 0 and report.sentence_vectors_reused > 0
        for row in range(reader.passage_count):
            text = reader.passages_by_rows([row])[row].text
            stored = reader.passage_sentence_vectors(row)
            assert stored is not None and len(stored) == len(sentences(text))
    else:
        assert report.segments == 2 and len(reader.segments) == 2
        assert len(reader.manifest[SEGMENTS]) == 2 and reader.deleted is not None
        assert not reader.has_sentence_vectors
        assert not (reader.build_path / SENTENCE_VECTORS).exists()
        assert report.sentences_embedded == 0
        # Turned on over a build of two segments: written whole, with them.
        report = run_ingest(
            [corpus],
            dataclasses.replace(settings, sentence_vectors=True),
            embedder=FakeEmbedder(),
            progress=False,
        )
        reader = IndexReader(settings.index_dir)
        assert report.published and report.passages_embedded == 0
        assert len(reader.segments) == 1 and reader.has_sentence_vectors


@pytest.mark.parametrize(
    ("raw", "expected"), [("0", False), ("false", False), ("on", True), ("TRUE", True)]
)
def test_the_setting_reads_booleans(raw: str, expected: bool) -> None:
    assert Settings.from_env({"QA_SENTENCE_VECTORS": raw}).sentence_vectors is expected


def test_the_setting_refuses_other_words() -> None:
    with pytest.raises(ConfigError, match="QA_SENTENCE_VECTORS"):
        Settings.from_env({"QA_SENTENCE_VECTORS": "maybe"})
    with pytest.raises(ConfigError, match="QA_SENTENCE_RESCORING_METHOD"):
        Settings.from_env({"QA_SENTENCE_RESCORING_METHOD": "max"})


# -- the pure functions ------------------------------------------------------------------

VECTORS = np.asarray([[1, 0], [0, 1], [0.6, 0.8], [0.8, 0.6]], dtype=np.float16)
OFFSETS = np.asarray([0, 2, 2, 4], dtype=np.int64)  # row 1 has no sentence


@pytest.mark.parametrize(
    ("rows", "best"),
    [([0], [1.0]), ([1], [float("-inf")]), ([2, 0], [0.8, 1.0]), ([0, 1, 2], [1.0, None, 0.8])],
)
def test_best_sentence_of_each_passage(rows: list[int], best: list[float | None]) -> None:
    parts = sentence_similarities(np.asarray([1.0, 0.0]), VECTORS, OFFSETS, rows)
    assert [len(p) for p in parts] == [int(OFFSETS[r + 1] - OFFSETS[r]) for r in rows]
    found = best_of_parts(parts)
    wanted = [float("-inf") if b is None else b for b in best]
    np.testing.assert_allclose(found, wanted, atol=1e-3)


@pytest.mark.parametrize(
    ("ids", "scores", "k", "ranking"),
    [
        # Sentences 0, 1 are row 0's, 2 row 2's, 3, 4 row 3's (row 1 has none).
        ([4, 2, 0, 3], [0.9, 0.8, 0.7, 0.6], 5, [(3, 0.9), (2, 0.8), (0, 0.7)]),
        ([4, 2, 0, 3], [0.9, 0.8, 0.7, 0.6], 2, [(3, 0.9), (2, 0.8)]),
        ([1, 0, -1, -1], [0.5, 0.4, 0.0, 0.0], 5, [(0, 0.5)]),
        ([-1], [0.0], 5, []),
    ],
)
def test_best_passages(
    ids: list[int], scores: list[float], k: int, ranking: list[tuple[int, float]]
) -> None:
    owners = np.asarray([0, 0, 2, 3, 3], dtype=np.int64)
    found = best_passages(np.asarray(ids), np.asarray(scores, np.float32), owners, k)
    assert [row for row, _ in found] == [row for row, _ in ranking]
    assert [score for _, score in found] == pytest.approx([score for _, score in ranking])


def test_every_passage_is_searched_by_its_best_sentence() -> None:
    """The search ranks every passage of the build, by its best sentence alone."""
    vectors = SentenceVectors(VECTORS, OFFSETS, lambda _: np.asarray([0.6, 0.8]))
    # Row 0's best is its second sentence (0.8), row 2's its first (1.0); row 1 has none.
    found = vectors.search("fråga", 5)
    assert [row for row, _ in found] == [2, 0]
    assert [score for _, score in found] == pytest.approx([1.0, 0.8], abs=1e-3)
    only = np.asarray([True, True, False])
    assert [row for row, _ in vectors.search("fråga", 5, allowed=only)] == [0]
    assert [row for row, _ in vectors.search("fråga", 1)] == [2]
    assert vectors.search("fråga", 0) == []


RANKING = [(10, 0.9), (11, 0.8), (12, 0.7), (13, 0.6)]


@pytest.mark.parametrize(
    ("best", "weight", "method", "order"),
    [
        # No weight, or nothing to re-score: the fused order.
        ([0.1, 0.2, 0.3, 0.4], 0.0, "rrf", [10, 11, 12, 13]),
        ([float("-inf")] * 4, 1.0, "rrf", [10, 11, 12, 13]),
        # Agreeing orders stay; a strong sentence lifts its passage.
        ([0.9, 0.8, 0.7, 0.6], 1.0, "rrf", [10, 11, 12, 13]),
        ([0.1, 0.2, 0.3, 0.9], 1.0, "rrf", [10, 13, 11, 12]),
        ([0.1, 0.2, 0.3, 0.9], 3.0, "rrf", [13, 12, 10, 11]),
        ([0.1, 0.2, 0.3, 0.9], 1.5, "convex", [13, 10, 11, 12]),
        ([0.5, 0.5, 0.5, 0.5], 1.0, "convex", [10, 11, 12, 13]),
        # Only the first two are re-scored; the rest follow as they were.
        ([0.1, 0.9], 1.5, "convex", [11, 10, 12, 13]),
        # A passage without sentences counts as the least similar.
        ([float("-inf"), 0.2, 0.3, 0.4], 5.0, "convex", [13, 12, 10, 11]),
    ],
)
def test_rescore(best: list[float], weight: float, method: str, order: list[int]) -> None:
    result = rescore(RANKING, best, weight=weight, method=method, rrf_k=1)
    assert [row for row, _ in result] == order
    # The places keep their scores: the scale later stages read is unchanged.
    assert [score for _, score in result] == [score for _, score in RANKING]


def test_rescore_refuses_an_unknown_method() -> None:
    with pytest.raises(ValueError, match="method"):
        rescore(RANKING, [0.1, 0.2], weight=1.0, method="max")


def _chosen(text: str, score: float, index: int = 0) -> Chosen:
    return Chosen(index, Sentence(text, 0, len(text)), score)


@pytest.mark.parametrize(
    ("candidates", "weight", "bar", "expected"),
    [
        # Terms alone when the similarities are equal.
        ([("a", 0.5, 0.8), ("b", 0.4, 0.8)], 5.0, 0.34, ["a", "b"]),
        # A sentence close in meaning overtakes one that only shares words.
        ([("a", 0.5, 0.80), ("b", 0.4, 0.85)], 5.0, 0.34, ["b", "a"]),
        ([("a", 0.5, 0.80), ("b", 0.4, 0.85)], 1.0, 0.34, ["a", "b"]),
        # One with no shared word joins when its meaning carries it over the bar.
        ([("a", 0.5, 0.80), ("c", 0.0, 0.92)], 5.0, 0.34, ["c", "a"]),
        ([("a", 0.5, 0.80), ("c", 0.0, 0.85)], 5.0, 0.34, ["a"]),
    ],
)
def test_with_sentence_similarity(
    candidates: list[tuple[str, float, float]], weight: float, bar: float, expected: list[str]
) -> None:
    given = [(_chosen(text, score), similarity) for text, score, similarity in candidates]
    chosen = with_sentence_similarity(given, weight, bar)
    assert [c.sentence.text for c in chosen] == expected


PASSAGE = (
    "Regeringen har beslutat om en ny myndighet. "
    "Myndigheten ska samordna arbetet mot fusk med bidrag. "
    "Beslutet gäller från årsskiftet."
)
QUESTION = "Vilket beslut har regeringen fattat om bidrag?"


@pytest.mark.parametrize(
    ("similarities", "weight", "first"),
    [
        (None, 0.0, "Regeringen har beslutat om en ny myndighet."),
        ([[0.80, 0.80, 0.80]], 5.0, "Regeringen har beslutat om en ny myndighet."),
        ([[0.80, 0.95, 0.80]], 5.0, "Myndigheten ska samordna arbetet mot fusk med bidrag."),
        # Similarities that do not line up with the passage's sentences are not used.
        ([[0.80, 0.95]], 5.0, "Regeringen har beslutat om en ny myndighet."),
        ([None], 5.0, "Regeringen har beslutat om en ny myndighet."),
    ],
)
def test_choose_sentences_with_stored_similarities(
    similarities: list[list[float] | None] | None, weight: float, first: str
) -> None:
    chosen = choose_sentences(
        QUESTION, [PASSAGE], sentence_similarities=similarities, sentence_weight=weight
    )
    assert chosen and chosen[0].sentence.text == first


@pytest.mark.parametrize(
    ("min_similarity", "quoted"),
    [(0.0, []), (0.995, []), (0.95, ["Regeringen har beslutat om en ny myndighet."])],
)
def test_a_close_enough_sentence_is_quoted_without_shared_words(
    min_similarity: float, quoted: list[str]
) -> None:
    chosen = choose_sentences(
        "Hur många vargar finns det?",
        [PASSAGE],
        sentence_similarities=[[0.99, 0.80, 0.80]],
        sentence_weight=5.0,
        sentence_min_similarity=min_similarity,
    )
    assert [c.sentence.text for c in chosen] == quoted


def test_similarity_does_not_decide_whether_anything_is_quoted() -> None:
    chosen = choose_sentences(
        "Hur många vargar finns det?",
        [PASSAGE],
        sentence_similarities=[[0.99, 0.99, 0.99]],
        sentence_weight=10.0,
    )
    assert chosen == []


# -- served ------------------------------------------------------------------------------


def test_a_build_without_sentence_vectors_is_served_as_before(
    small_index: Settings, embedder, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The session's small index, built with the default (no sentence vectors, as every
    build made before them): the same answers with the sentence settings on as off."""
    settings = dataclasses.replace(small_index, conversations_db=tmp_path / "c.sqlite3")
    assert not IndexReader(settings.index_dir).has_sentence_vectors
    plain = QAService(settings, embedder=embedder)
    plain.load()
    assert plain.loaded.retrievers.sentences is None
    on = dataclasses.replace(settings, sentence_rescoring_passages=40, quote_sentence_weight=5.0)
    rescoring = QAService(on, embedder=embedder)
    rescoring.load()
    for question in ("Vad gör regeringen för yrkesvux?", "jobbskatteavdraget 2025"):
        a = plain.ask(question, remember=False)
        b = rescoring.ask(question, remember=False)
        assert [p.id for p in a.passages] == [p.id for p in b.passages]
        assert a.answer.text == b.answer.text


CHOSEN = [
    "riksdagen-interpellations/data/202223/ipq-202223--0089.xml",
    "riksdagen-interpellations/data/202324/ipq-202324--0010.xml",
    "g0vse/data/pressmeddelanden/2025/10/77-700-arbetslosa-utrikes-fodda-saknar-utbildning.md",
]


@needs_shared
@pytest.mark.shared
@pytest.mark.model
def test_shared_documents_with_sentence_vectors(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """A few real documents with the real model: every passage's stored sentence vectors
    are the model's vectors of its quoted sentences, and an answer with re-scoring and
    the sentence-chosen quote quotes a sentence of a listed passage."""
    corpus = tmp_path / "corpus"
    for relative in CHOSEN:
        target = corpus / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHARED / "corpus" / relative, target)
    shutil.copy(SEED, corpus / SEED.name)
    settings = Settings(
        index_dir=tmp_path / "index",
        conversations_db=tmp_path / "c.sqlite3",
        sentence_vectors=True,
        sentence_rescoring_passages=40,
        quote_sentence_weight=5.0,
    )
    report = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert report.sentences_embedded > 0
    reader = IndexReader(settings.index_dir)
    rows = [0, reader.passage_count // 2, reader.passage_count - 1]
    for row, passage in reader.passages_by_rows(rows).items():
        texts = [s.text for s in sentences(passage.text)]
        stored = reader.passage_sentence_vectors(row)
        assert stored is not None and len(stored) == len(texts)
        fresh = embedder.encode_passages(texts)
        cosines = np.einsum("ij,ij->i", stored.astype(np.float32), fresh)
        assert float(cosines.min()) > 0.99
    service = QAService(settings, embedder=embedder)
    service.load()
    assert service.loaded.retrievers.sentences is not None
    answer = service.ask("Hur många arbetslösa utrikes födda saknar utbildning?", remember=False)
    assert answer.answer.found
    listed = {p.id: p.text for p in answer.passages}
    for sentence in answer.answer.sentences:
        assert sentence.text in listed[sentence.passage_id]
