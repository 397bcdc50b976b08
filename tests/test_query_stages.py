"""Each stage of answering a question on its own, with small fakes; then the stages in
order over a real index embedded by the fake embedder (no model is loaded)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from qa_service.config import Settings
from qa_service.conversation import Context
from qa_service.hints import DocumentFacts, HintIndex
from qa_service.ingest import run_ingest
from qa_service.models import AskRequest
from qa_service.query.analysis import Mode, QueryText, analyse
from qa_service.query.answer import quoted_question
from qa_service.query.candidates import Retrievers, candidate_rankings, share_weight
from qa_service.query.fusion import FusionWeights, NamedRanking, fuse
from qa_service.query.sentences import SentenceVectors
from qa_service.retrieval import rrf
from qa_service.service import QAService
from tests.conftest import write_small_corpus
from tests.fake_embedder import FakeEmbedder

# -- analysis -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "continues", "rewritten", "focus"),
    [
        # A pronoun: rewritten with the earlier turn's topic words, its documents searched.
        ("Och hur många av dem är barn?", False, True, ("d1", "d2")),
        # No pronoun, but the earlier documents answer it: its own words, in those documents.
        ("Hur många fanns i åtgärden i augusti?", True, False, ("d1", "d2")),
        # A new topic stands alone.
        ("Vad kostar jobbskatteavdraget?", False, False, ()),
    ],
)
def test_analysis_of_a_question_after_an_earlier_turn(
    question: str, continues: bool, rewritten: bool, focus: tuple[str, ...]
) -> None:
    asked: list[tuple[str, tuple[str, ...]]] = []

    def test(text: QueryText, documents: object) -> bool:
        asked.append((text.text, tuple(documents)))  # type: ignore[call-overload]
        return continues

    history = [Context("Hur många bor i utanförskapsområden?", ("d1", "d2"))]
    analysis = analyse(question, history=history, continues=test)
    assert analysis.question.text == question
    assert (analysis.rewritten is not None) == rewritten
    assert analysis.focus == focus
    if rewritten:
        assert "utanförskapsområden" in analysis.standalone and not asked
    else:
        assert analysis.standalone == question and asked == [(question, ("d1", "d2"))]


@pytest.mark.parametrize(
    ("continues", "found_alone", "topic"),
    [
        # Continues, but its own best passage lies elsewhere: the earlier topic words too.
        (True, False, "Vad kostar reformen? bor utanförskapsområden"),
        # Continues and finds the earlier documents on its own words: no topic.
        (True, True, None),
        # A new topic: neither.
        (False, False, None),
    ],
)
def test_a_continuing_question_gets_the_topic_words_when_its_own_lead_elsewhere(
    continues: bool, found_alone: bool, topic: str | None
) -> None:
    history = [Context("Hur många bor i utanförskapsområden?", ("d1",))]
    analysis = analyse(
        "Vad kostar reformen?",
        history=history,
        continues=lambda text, focus: continues,
        found_alone=lambda text, focus: found_alone,
    )
    assert analysis.standalone == "Vad kostar reformen?"
    assert (analysis.topic.text if analysis.topic else None) == topic
    assert analysis.focus == (("d1",) if continues else ())


def test_analysis_without_history_asks_no_continuity() -> None:
    def fail(text: QueryText, documents: object) -> bool:
        raise AssertionError("no earlier turn to continue")

    analysis = analyse("Och hur många av dem är barn?", continues=fail)
    assert analysis.rewritten is None and analysis.focus == () and not analysis.is_follow_up


@pytest.mark.parametrize(
    ("question", "english", "lexical"),
    [
        ("What is the benefit cap?", True, "What is the benefit cap? bidragstak"),
        ("Vad är bidragstaket?", False, "Vad är bidragstaket?"),
    ],
)
def test_the_language_and_glossary_terms_are_read_once(
    question: str, english: bool, lexical: str
) -> None:
    analysis = analyse(question)
    assert analysis.query.english is english
    assert analysis.query.lexical == lexical


@pytest.mark.parametrize(("mode", "has_hints"), [("hybrid", True), ("dense", False)])
def test_hints_are_read_for_the_hybrid_only(mode: str, has_hints: bool) -> None:
    analysis = analyse("Vad skriver Moderaterna i sin motion 2023?", mode=mode)  # type: ignore[arg-type]
    assert bool(analysis.hints) is has_hints
    if has_hints:
        assert analysis.hints.parties == frozenset({"M"})


# -- candidates ---------------------------------------------------------------------


class Recording:
    """A retriever that remembers what it was asked; rows from ``first_row`` on."""

    def __init__(self, first_row: int) -> None:
        self.first_row = first_row
        self.asked: list[tuple[str, bool]] = []
        self.named: list[list[int]] = []

    def _answer(self, text: str, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        self.asked.append((text, allowed is not None))
        return [(self.first_row + len(self.asked), 1.0)]

    def search(
        self,
        query: str,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        also: list[int] | tuple[int, ...] = (),
    ) -> list:
        self.named.append(list(also))
        return self._answer(query, allowed)

    def search_text(self, text: str, k: int, *, allowed: np.ndarray | None = None) -> list:
        return self._answer(text, allowed)

    def term_coverage(self, text: str, rows: list[int]) -> float:
        return 1.0

    def feedback_search(self, query: str, ranking: list, k: int, **kwargs: object) -> list:
        return self._answer(f"feedback: {query}", None)

    def similarities(self, query: str, rows: list[int]) -> np.ndarray:
        return np.zeros(len(rows), dtype=np.float32)


class FakeRows:
    """Ten passages: document ``d<i>`` holds row i."""

    passage_count = 10

    def rows_of_documents(self, doc_ids: list[str]) -> np.ndarray:
        return np.asarray([int(d[1:]) for d in doc_ids if d[1:].isdigit()], dtype=np.int64)


FACTS = {
    "d1": DocumentFacts("Motion", frozenset({"M"}), frozenset()),
    "d2": DocumentFacts("Interpellation", frozenset({"S"}), frozenset()),
}


def _rankings(
    question: str,
    history: list[Context],
    weights: FusionWeights,
    retrievers: Retrievers | None = None,
) -> NamedRanking:
    analysis = analyse(question, history=history, continues=lambda text, focus: False)
    return candidate_rankings(
        analysis,
        mode="hybrid",
        retrievers=retrievers or Retrievers(Recording(0), Recording(100), Recording(200)),
        rows=FakeRows(),
        hint_index=HintIndex(FACTS),
        depth=5,
        allowed=None,
        settings=Settings(),
        weights=weights,
    )


@pytest.mark.parametrize(
    ("question", "history", "names"),
    [
        ("Vad är bidragstaket?", [], ["dense", "lexical"]),
        ("What is the benefit cap?", [], ["dense", "lexical", "glossary"]),
        # Moderaternas motion: the one document meeting both hints gets its BM25 ranking.
        ("Vad skriver Moderaterna i sin motion?", [], ["dense", "lexical", "hinted_documents"]),
        (
            "Och hur många av dem är barn?",
            [Context("Hur många bor i utanförskapsområden?", ("d2",))],
            ["dense", "lexical"] * 3,
        ),
    ],
)
def test_candidate_rankings_are_named(
    question: str, history: list[Context], names: list[str]
) -> None:
    assert _rankings(question, history, FusionWeights()).names() == names


@pytest.mark.parametrize(
    ("question", "weight"),
    [
        # A kind of document named: the question names its source.
        ("Vad skriver Moderaterna i sin motion?", 1.0),
        # A party named alone: as often the subject as the source.
        ("Vad vill Moderaterna göra åt bidragen?", 0.5),
    ],
)
def test_the_hinted_ranking_weighs_by_whether_a_kind_is_named(question: str, weight: float) -> None:
    tree = _rankings(question, [], FusionWeights(hinted_documents=1.0, hinted_without_kind=0.5))
    hinted = [part for part in tree.parts if part.name == "hinted_documents"]
    assert [part.weight for part in hinted] == [weight]


def test_the_dense_leg_is_given_the_lexical_legs_finds() -> None:
    # An approximate dense leg scores them with its own candidates (retrieval.py).
    dense = Recording(0)
    retrievers = Retrievers(dense, Recording(100), Recording(200))
    _rankings("Vad är bidragstaket?", [], FusionWeights(), retrievers)
    assert dense.named == [[101]]  # the one row the lexical leg found


def test_a_follow_up_weighs_its_rankings_as_the_weights_say() -> None:
    weights = FusionWeights(follow_up_question=0.2, follow_up_standalone=0.7, follow_up_focus=0.9)
    history = [Context("Hur många bor i utanförskapsområden?", ("d2",))]
    tree = _rankings("Och hur många av dem är barn?", history, weights)
    (follow_up,) = tree.parts
    assert [(p.name, p.weight) for p in follow_up.parts] == [
        ("question", 0.2),
        ("standalone", 0.7),
        ("focus", 0.9),
    ]


def _continuing(weights: FusionWeights) -> tuple[NamedRanking, Recording]:
    """The rankings of a question with no pronoun that the earlier documents answer."""
    dense, lexical, bm25 = Recording(0), Recording(100), Recording(200)
    history = [Context("Hur många bor i utanförskapsområden?", ("d2",))]
    analysis = analyse("Vad kostar reformen?", history=history, continues=lambda t, f: True)
    tree = candidate_rankings(
        analysis,
        mode="hybrid",
        retrievers=Retrievers(dense, lexical, bm25),
        rows=FakeRows(),
        hint_index=HintIndex(FACTS),
        depth=5,
        allowed=None,
        settings=Settings(),
        weights=weights,
    )
    return tree, lexical


def test_a_continuing_question_is_searched_with_the_earlier_topic_words_too() -> None:
    tree, lexical = _continuing(FusionWeights(continuing_topic=1.5, follow_up_focus=0.4))
    (follow_up,) = tree.parts
    assert [(p.name, p.weight) for p in follow_up.parts] == [
        ("question", 1.0),
        ("topic", 1.5),
        ("focus", 0.4),
    ]
    topic = "Vad kostar reformen? bor utanförskapsområden"
    # Its own words and the topic in the whole corpus; the topic within the documents.
    assert lexical.asked == [("Vad kostar reformen?", False), (topic, False), (topic, True)]


def test_a_continuing_question_keeps_its_own_words_at_topic_weight_zero() -> None:
    tree, lexical = _continuing(FusionWeights(continuing_topic=0.0))
    (follow_up,) = tree.parts
    assert [p.name for p in follow_up.parts] == ["question", "focus"]
    assert lexical.asked == [("Vad kostar reformen?", False), ("Vad kostar reformen?", True)]


@pytest.mark.parametrize(
    ("share", "strength", "factor"),
    [(1.0, 1.0, 1.0), (0.25, 1.0, 0.25), (0.25, 0.5, 0.625), (0.25, 0.0, 1.0), (0.0, 1.0, 0.0)],
)
def test_share_weight(share: float, strength: float, factor: float) -> None:
    assert share_weight(share, strength) == pytest.approx(factor)


@pytest.mark.parametrize(
    ("question", "strength", "weight"),
    [
        # Every word of the question is the glossary's: the full weight.
        ("What is the benefit cap?", 1.0, 2.0),
        # "benefit cap" is two of the four words benefit, cap, football, clubs.
        ("What is the benefit cap of football clubs?", 1.0, 1.0),
        ("What is the benefit cap of football clubs?", 0.5, 1.5),
        ("What is the benefit cap of football clubs?", 0.0, 2.0),
    ],
)
def test_the_glossary_ranking_weighs_what_the_glossary_reads(
    question: str, strength: float, weight: float
) -> None:
    weights = FusionWeights(glossary=2.0, glossary_by_share=strength)
    (follow_up,) = _rankings(question, [], weights).parts
    (asked,) = follow_up.parts
    assert [(p.name, p.weight) for p in asked.parts][2] == ("glossary", weight)


def test_no_glossary_ranking_at_weight_zero() -> None:
    tree = _rankings("What is the benefit cap?", [], FusionWeights(glossary=0.0))
    assert tree.names() == ["dense", "lexical"]


@dataclasses.dataclass(frozen=True)
class FakeSentences(SentenceVectors):
    """Sentence vectors whose search answers from its own rows, remembering its masks."""

    asked: list[np.ndarray | None] = dataclasses.field(default_factory=list)

    def search(self, query: str, k: int, *, allowed: np.ndarray | None = None) -> list:
        self.asked.append(allowed)
        return [(300, 0.9), (301, 0.8)]


def _with_sentences() -> tuple[Retrievers, FakeSentences]:
    sentences = FakeSentences(np.zeros((0, 2)), np.zeros(1, np.int64), lambda text: np.zeros(2))
    return Retrievers(Recording(0), Recording(100), Recording(200), sentences), sentences


@pytest.mark.parametrize(
    ("weight", "names"),
    [(0.5, ["dense", "lexical", "sentences"]), (0.0, ["dense", "lexical"])],
)
def test_the_sentence_leg_is_searched_at_its_weight(weight: float, names: list[str]) -> None:
    retrievers, sentences = _with_sentences()
    tree = _rankings("Vad är bidragstaket?", [], FusionWeights(sentences=weight), retrievers)
    assert tree.names() == names
    (follow_up,) = tree.parts
    (asked,) = follow_up.parts
    assert [p.weight for p in asked.parts if p.name == "sentences"] == ([weight] if weight else [])
    assert len(sentences.asked) == (1 if weight else 0)


def test_a_follow_ups_focus_searches_the_sentences_within_the_documents() -> None:
    retrievers, sentences = _with_sentences()
    history = [Context("Hur många bor i utanförskapsområden?", ("d2",))]
    weights = FusionWeights(sentences=1.0)
    tree = _rankings("Och hur många av dem är barn?", history, weights, retrievers)
    assert tree.names() == ["dense", "lexical", "sentences"] * 3
    masks = sentences.asked
    assert masks[:2] == [None, None]
    assert masks[2] is not None and masks[2].nonzero()[0].tolist() == [2]


def test_no_sentence_leg_without_sentence_vectors() -> None:
    tree = _rankings("Vad är bidragstaket?", [], FusionWeights(sentences=1.0))
    assert tree.names() == ["dense", "lexical"]


# -- fusion -------------------------------------------------------------------------


A = [(1, 0.9), (2, 0.8), (3, 0.7)]
B = [(3, 5.0), (4, 4.0)]


def test_a_single_ranking_is_kept_with_its_scores() -> None:
    tree = NamedRanking("root", parts=(NamedRanking("only", 0.3, A),))
    assert fuse(tree, rrf_k=60) == A


def test_fusion_folds_the_tree_from_its_leaves() -> None:
    inner = NamedRanking("inner", 0.5, parts=(NamedRanking("a", 1.0, A), NamedRanking("b", 2.0, B)))
    tree = NamedRanking("root", parts=(inner, NamedRanking("c", 1.0, [(4, 1.0)])), limit=2)
    expected = rrf([rrf([A, B], k=10, weights=[1.0, 2.0]), [(4, 1.0)]], k=10, weights=[0.5, 1.0])
    assert fuse(tree, rrf_k=10) == expected[:2]


def test_fusion_weights_come_from_the_settings() -> None:
    settings = Settings(
        rrf_k=30,
        hint_ranking_weight=0.0,
        hint_ranking_without_kind_weight=0.25,
        follow_up_focus_weight=0.25,
    )
    weights = FusionWeights.from_settings(settings)
    assert (weights.rrf_k, weights.hinted_documents, weights.follow_up_focus) == (30, 0.0, 0.25)
    assert weights.hinted_without_kind == 0.25


# -- the stages in order ------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_service(tmp_path_factory: pytest.TempPathFactory) -> QAService:
    base: Path = tmp_path_factory.mktemp("stages")
    settings = Settings(
        index_dir=base / "index",
        conversations_db=base / "c.sqlite3",
        answer_min_similarity=0.0,
    )
    embedder = FakeEmbedder()
    run_ingest([write_small_corpus(base / "corpus")], settings, embedder=embedder, progress=False)  # type: ignore[arg-type]
    service = QAService(settings, embedder=embedder)  # type: ignore[arg-type]
    service.load()
    return service


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_the_pipeline_ranks_diversified_hits(fake_service: QAService, mode: str) -> None:
    hits = fake_service.search(
        "Jobbskatteavdraget förstärks med 10 miljarder kronor 2025.", 3, mode=mode
    )  # type: ignore[arg-type]
    assert [hit.rank for hit in hits] == list(range(1, len(hits) + 1))
    assert hits and hits[0].document.source == "press.md"
    per_document: dict[str, int] = {}
    for hit in hits:
        per_document[hit.document.id] = per_document.get(hit.document.id, 0) + 1
    assert max(per_document.values()) <= fake_service.settings.per_document_cap


def test_the_pipeline_answers_and_remembers_a_follow_up(fake_service: QAService) -> None:
    first = fake_service.ask("Hur många personer bor i utanförskapsområden?")
    assert first["answer"]["found"] is True
    assert first["passages"][0]["permalink"] == f"/p/{first['passages'][0]['id']}"
    request = AskRequest(
        question="Och hur många av dem är barn?", conversation_id=first.conversation_id
    )
    second = fake_service.ask(request)
    assert "utanförskapsområden" in second["standalone_query"]
    assert first.conversation_id is not None
    turns = fake_service.conversation(first.conversation_id).turns
    assert [t.question for t in turns] == [first.question, second.question]
    assert turns[1].passages == second.passages


def test_a_continuing_question_keeps_its_words_and_searches_the_topic(
    fake_service: QAService,
) -> None:
    # Ratio 0: any question the previous answer's documents match at all continues.
    fake_service.settings = dataclasses.replace(fake_service.settings, continuity_ratio=0.0)
    interpellation = next(
        d.id for d in fake_service.loaded.reader.documents() if d.source.startswith("ipq/")
    )
    history = [Context("Vad vill Anna Andersson med yrkesvux?", (interpellation,))]
    asked: list[str] = []
    encode = fake_service.query_vectors._encode
    fake_service.query_vectors._encode = lambda text: asked.append(text) or encode(text)  # type: ignore[method-assign]
    # Its best passage is the press release's ("löna sig att arbeta"), the interpellation
    # holds "platser": it continues, but its own words lead elsewhere.
    question = "Ska det löna sig att arbeta med fler platser?"
    standalone, hits = fake_service.converse(question, history=history)
    assert standalone == question
    (topic,) = [text for text in asked if text != question]
    assert topic.startswith(question) and "yrkesvux" in topic
    assert hits[0].document.id == interpellation


def test_a_continuing_question_that_finds_the_documents_alone_gets_no_topic(
    fake_service: QAService,
) -> None:
    fake_service.settings = dataclasses.replace(fake_service.settings, continuity_ratio=0.0)
    interpellation = next(
        d.id for d in fake_service.loaded.reader.documents() if d.source.startswith("ipq/")
    )
    history = [Context("Vad vill Anna Andersson med yrkesvux?", (interpellation,))]
    asked: list[str] = []
    encode = fake_service.query_vectors._encode
    fake_service.query_vectors._encode = lambda text: asked.append(text) or encode(text)  # type: ignore[method-assign]
    question = "Vilka platser räcker inte i Malmö och Göteborg?"
    standalone, hits = fake_service.converse(question, history=history)
    assert standalone == question and asked == [question]
    assert hits[0].document.id == interpellation


@pytest.mark.parametrize(
    ("question", "mode", "expected"),
    [
        # The party named the source; the quote is matched on what is asked.
        (
            "Vad vill Moderaterna göra med bidragstaket?",
            "hybrid",
            "Vad vill göra med bidragstaket?",
        ),
        # Nothing of weight left without the hint words: the whole question.
        ("Vad har Moderaterna om motionen?", "hybrid", "Vad har Moderaterna om motionen?"),
        # Hints are read for the hybrid only.
        (
            "Vad vill Moderaterna göra med bidragstaket?",
            "dense",
            "Vad vill Moderaterna göra med bidragstaket?",
        ),
    ],
)
def test_the_quote_is_matched_without_the_words_that_named_the_source(
    question: str, mode: Mode, expected: str
) -> None:
    analysis = analyse(question, mode=mode, continues=lambda text, focus: False)
    assert quoted_question(analysis.standalone, analysis) == expected
