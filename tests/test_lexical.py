from __future__ import annotations

from collections import Counter

import bm25s
import pytest

from qa_service.lexical import (
    Decompounder,
    LexicalIndex,
    expansion_terms,
    tokenize,
    tokenize_with_parts,
)
from qa_service.metadata import metadata_line
from qa_service.schema import DocumentMeta, Person

COUNTS = Counter(
    {
        "utanförskap": 50,
        "områden": 80,
        "arbetsmarknad": 40,
        "etablering": 30,
        "stöd": 90,
        "försörjning": 20,
        "kort": 5,
        "barn": 100,
    }
)


@pytest.mark.parametrize(
    ("word", "parts"),
    [
        ("utanförskapsområden", ("utanförskap", "områden")),
        ("arbetsmarknadsetablering", ("arbetsmarknad", "etablering")),
        ("försörjningsstöd", ("försörjning", "stöd")),
        ("barnbidrag", ()),  # "bidrag" is not a known word here
        ("områden", ()),  # too short to be a compound
        ("kortkortkort", ()),  # parts too rare
    ],
)
def test_decompounder(word: str, parts: tuple[str, ...]) -> None:
    assert Decompounder(COUNTS).split(word) == parts


def test_parts_are_added_after_the_compound() -> None:
    terms = tokenize_with_parts("Utanförskapsområden i Sverige", Decompounder(COUNTS))
    assert terms == tokenize("utanförskapsområden utanförskap områden Sverige")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hur många bor i utanförskapsområden?", ["mång", "bor", "utanförskapsområd"]),
        ("och det är de som", []),
        ("Jobbskatteavdraget 2023", ["jobbskatteavdrag", "2023"]),
    ],
)
def test_tokenize(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


def test_compound_in_passage_matches_its_parts_in_a_question() -> None:
    texts = [
        "Totalt bor 710 000 personer i utanförskapsområden.",
        "Utanförskap drabbar många. Områden i städer växer.",
        "Jobbskatteavdraget sänker skatten.",
    ] + ["Utanförskap och områden nämns här."] * 5
    index = LexicalIndex.build(texts)
    rows = [row for row, _ in index.search("utanförskap i områden", 8)]
    assert 0 in rows and 2 not in rows


def test_metadata_line_names_parties_in_full() -> None:
    meta = DocumentMeta(
        title="Från bidrag till jobb",
        doctype="Motion",
        rm="2019/20",
        date="2019-10-01",
        authors=[Person("Johan Forssell", "M", "undertecknare")],
    )
    assert (
        metadata_line(meta)
        == "Motion Från bidrag till jobb 2019/20 2019 Moderaterna Johan Forssell"
    )


def test_search_is_the_best_k_of_all_scores_with_ties_in_row_order() -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    words = ["sfi", "yrkesvux", "bidragstak", "aktivitetskrav", "jobbskatteavdrag", "etablering"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 6)))) for _ in range(400)]
    texts += ["helt annat ämne"] * 100  # passages no query term reaches
    index = LexicalIndex.build(texts)
    allowed = rng.random(len(texts)) < 0.5
    for query in ("bidragstak och sfi", "etablering", "yrkesvux aktivitetskrav jobbskatteavdrag"):
        for mask in (None, allowed):
            scores = index._bm25.get_scores(tokenize(query))  # type: ignore[union-attr]
            if mask is not None:
                scores = np.where(mask, scores, 0.0)
            rows = [r for r in np.lexsort((np.arange(len(texts)), -scores)) if scores[r] > 0]
            for k in (1, 10, 1000):
                got = index.search(query, k, allowed=mask)
                assert [row for row, _ in got] == rows[:k]
                assert [s for _, s in got] == [float(scores[r]) for r in rows[:k]]


@pytest.mark.parametrize(
    ("feedback", "weights", "count", "expected"),
    [
        # A term of both feedback passages beats one of a single passage.
        ([["bidragstak", "hushåll"], ["bidragstak", "kommun"]], [1.0, 1.0], 1, ["bidragstak"]),
        # The question's own stems and numbers are never added.
        ([["fråga", "2024", "hushåll"]], [1.0], 5, ["hushåll"]),
        # The better passage's terms weigh more.
        ([["hushåll"], ["kommun"]], [3.0, 1.0], 1, ["hushåll"]),
        # A term in nearly every passage scores low by its idf; one in one passage not at all.
        ([["vanlig", "hushåll", "unik"]], [1.0], 3, ["hushåll", "vanlig"]),
        ([], [], 3, []),
    ],
)
def test_expansion_terms(
    feedback: list[list[str]], weights: list[float], count: int, expected: list[str]
) -> None:
    frequency = {"bidragstak": 10, "hushåll": 20, "kommun": 20, "vanlig": 900, "unik": 1}
    terms = expansion_terms(
        ["fråga"], feedback, weights, lambda t: frequency.get(t, 0), 1000, count
    )
    assert terms == expected


def test_search_expanded_adds_the_feedback_terms() -> None:
    texts = [
        "bidragstak för hushåll med försörjningsstöd",
        "bidragstak och aktivitetskrav",
        "försörjningsstöd och aktivitetskrav i kommunerna",
        "kommunerna och skolan",
        "skolan",
    ]
    index = LexicalIndex.build(texts)
    plain = [row for row, _ in index.search("bidragstak", 5)]
    assert 2 not in plain
    expanded = index.search_expanded(
        "bidragstak", 5, lambda rows: [texts[r] for r in rows], passages=2, terms=2, weight=0.5
    )
    rows = [row for row, _ in expanded]
    assert rows[:2] == plain[:2]  # the question's own matches stay first
    assert 2 in rows  # found through "försörjningsstöd" / "aktivitetskrav"


def test_the_index_from_token_ids_is_the_one_from_stems() -> None:
    # LexicalIndex.build hands bm25s compact id arrays; bm25s's own path from the stems
    # must rank and score every question alike.
    texts = [
        "Regeringen sänker skatten på arbetsinkomster i utanförskapsområden.",
        "Jobbskatteavdraget förstärks med tio miljarder kronor.",
        "Områden med utanförskap får fler poliser och skolor.",
        "Budgeten för skolan höjs, och skatten på pension sänks.",
        "",
    ]
    built = LexicalIndex.build(texts)
    decompounder = Decompounder.from_texts(texts)
    reference = bm25s.BM25()
    reference.index(
        [tokenize_with_parts(t, decompounder) or ["\u2205"] for t in texts], show_progress=False
    )
    expected = LexicalIndex(reference, len(texts))
    for question in ["skatten", "utanförskap områden", "skolan budgeten pension", "kronor"]:
        got, wanted = built.search(question, 5), expected.search(question, 5)
        assert [row for row, _ in got] == [row for row, _ in wanted]
        assert [s for _, s in got] == pytest.approx([s for _, s in wanted])
        assert got
