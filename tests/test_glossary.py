from __future__ import annotations

import numpy as np
import pytest

from qa_service.config import Settings
from qa_service.domain import parties
from qa_service.glossary import GLOSSARY, POLICY_TERMS, swedish_terms, with_swedish_terms
from qa_service.lexical import tokenize
from qa_service.query.analysis import QueryText
from qa_service.query.candidates import Retrievers, search_text
from qa_service.query.fusion import FusionWeights, fuse
from qa_service.retrieval import LexicalRetriever, glossary_query
from tests.conftest import SHARED, needs_shared


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("How many people live in exclusion areas?", ["utanförskapsområden"]),
        # The longest phrase at a place wins over its parts.
        ("What does the Public Employment Service do?", ["arbetsförmedlingen"]),
        ("the unemployment insurance", ["arbetslöshetsförsäkringen a-kassan"]),
        ("Who is long-term unemployed?", ["långtidsarbetslösa"]),
        ("the Liberals' party programme", ["liberalerna", "partiprogram"]),
        ("Who gets a permanent residence permit?", ["permanent uppehållstillstånd"]),
        # Each term once, in order of first mention.
        ("new start jobs and wage subsidy, new start jobs again", ["nystartsjobb", "lönebidrag"]),
        # Whole words only: no "taxes" in "taxesx", no "police" in "police-led".
        ("taxesx for jobseekers", ["arbetssökande"]),
        ("police-led patrols", []),
        # Parties and kinds of document come from the domain tables.
        ("the Sweden Democrats' written question", ["sverigedemokraterna", "skriftlig fråga"]),
        ("an answer to a written question", ["svar på skriftlig fråga"]),
        (
            "the Minister for Employment and the Swedish Migration Agency",
            [
                "arbetsmarknadsminister arbetsmarknadsministern",
                "migrationsverket",
            ],
        ),
        ("Hur många bor i utanförskapsområden?", []),
        ("", []),
    ],
)
def test_swedish_terms(text: str, terms: list[str]) -> None:
    assert swedish_terms(text) == terms


def test_every_entry_is_a_lower_case_phrase_with_searchable_swedish() -> None:
    for english, swedish in GLOSSARY.items():
        assert english == english.lower().strip(), english
        assert tokenize(swedish), (english, swedish)


def test_the_parties_and_kinds_of_the_domain_are_in_the_glossary() -> None:
    for party in parties():
        for english in party.english:
            assert GLOSSARY[english.lower()] == party.name.lower()
    assert GLOSSARY["press release"] == "pressmeddelande"
    assert GLOSSARY["committee report"] == "betänkande"


@needs_shared
def test_every_policy_term_is_a_word_of_the_shared_corpus() -> None:
    """The policy terms are the documents' own words: each Swedish word occurs there."""
    text = "\n".join(
        path.read_bytes().decode("utf-8", "ignore").lower()
        for folder in (SHARED / "corpus", SHARED / "seed")
        for path in folder.rglob("*")
        if path.suffix in {".md", ".txt", ".xml", ".json", ".html"} and path.is_file()
    )
    missing = [
        (english, word)
        for english, swedish in POLICY_TERMS.items()
        for word in swedish.split()
        if word not in text
    ]
    assert not missing


class Recording:
    """A retriever that remembers what it was asked; each answer is a row of its own."""

    def __init__(self, first_row: int) -> None:
        self.first_row = first_row
        self.queries: list[str] = []

    def search(
        self, query: str, k: int, *, allowed: np.ndarray | None = None, also: object = ()
    ) -> list[tuple[int, float]]:
        self.queries.append(query)
        return [(self.first_row + len(self.queries), 1.0)]

    def search_text(
        self, text: str, k: int, *, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        return self.search(text, k, allowed=allowed)

    def term_coverage(self, text: str, rows: list[int]) -> float:
        return 1.0


@pytest.mark.parametrize(
    ("question", "glossary_weight", "dense_queries"),
    [
        (
            "What is the benefit cap?",
            1.0,
            ["What is the benefit cap?", "bidragstak"],
        ),
        ("What is the benefit cap?", 0.0, ["What is the benefit cap?"]),
        ("Vad är bidragstaket?", 1.0, ["Vad är bidragstaket?"]),
        # English, but nothing the glossary knows: no third ranking.
        ("What did Ebba Busch say?", 1.0, ["What did Ebba Busch say?"]),
    ],
)
def test_an_english_question_gets_a_dense_ranking_of_its_swedish_terms(
    question: str, glossary_weight: float, dense_queries: list[str]
) -> None:
    dense, lexical = Recording(100), Recording(200)
    text = QueryText.read(question)
    hybrid = search_text(
        text,
        "question",
        1.0,
        mode="hybrid",
        retrievers=Retrievers(dense, lexical, lexical),  # type: ignore[arg-type]
        depth=5,
        allowed=None,
        settings=Settings(),
        weights=FusionWeights(glossary=glossary_weight),
    )
    fused = fuse(hybrid, rrf_k=60)
    assert dense.queries == dense_queries
    # The lexical leg is given the question with the glossary's Swedish terms.
    assert lexical.queries == [text.lexical]
    assert len(fused) == len(dense_queries) + 1


class FakeIndex:
    def __init__(self) -> None:
        self.queries: list[str] = []

    def search(
        self, query: str, k: int, *, allowed: np.ndarray | None = None, also: object = ()
    ) -> list[tuple[int, float]]:
        self.queries.append(query)
        return []


@pytest.mark.parametrize(
    ("question", "searched"),
    [
        ("Who gets the benefit cap?", "Who gets the benefit cap? bidragstak"),
        ("Vem får bidragstak?", "Vem får bidragstak?"),
    ],
)
def test_the_lexical_leg_adds_the_swedish_terms_to_an_english_question(
    question: str, searched: str
) -> None:
    index = FakeIndex()
    LexicalRetriever(index).search(question, 5)  # type: ignore[arg-type]
    assert index.queries == [searched]


def test_with_swedish_terms_adds_the_terms_found_or_given() -> None:
    question = "Who gets the benefit cap and the wage subsidy?"
    assert with_swedish_terms(question) == f"{question} bidragstak lönebidrag"
    assert with_swedish_terms(question, ("lönebidrag",)) == f"{question} lönebidrag"
    assert with_swedish_terms("What is it?") == "What is it?"


@pytest.mark.parametrize(
    "text",
    [
        "Who gets the benefit cap?",
        "What does the Public Employment Service say about new start jobs?",
        "What is it?",
        "Vem får bidragstak?",
        "Public Employment Service budget 2024",
    ],
)
def test_the_query_stages_and_the_lexical_retriever_give_bm25_the_same_text(text: str) -> None:
    assert QueryText.read(text).lexical == glossary_query(text)
