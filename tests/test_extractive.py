from __future__ import annotations

import pytest

from qa_service.extractive import choose_sentences, sentences

PASSAGE = (
    "Den visar att 180 områden i 66 kommuner har så stora utmaningar att de kan betecknas "
    "som utanförskapsområden. Totalt bor 710 000 personer i dessa områden, varav 170 000 "
    "är barn. Regeringen är beslutsam att göra det som krävs."
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("En mening. En till!", ["En mening.", "En till!"]),
        ("Fråga? Svar.", ["Fråga?", "Svar."]),
        ("Rubrik\nText här.", ["Rubrik", "Text här."]),
        ("Citat: ”Det lönar sig.” Sedan mer.", ["Citat: ”Det lönar sig.”", "Sedan mer."]),
        ("", []),
    ],
)
def test_sentences(text: str, expected: list[str]) -> None:
    found = sentences(text)
    assert [s.text for s in found] == expected
    assert all(text[s.start : s.end] == s.text for s in found)


def test_choose_sentences_quotes_the_number() -> None:
    chosen = choose_sentences("Hur många personer bor i utanförskapsområden?", [PASSAGE])
    assert chosen
    assert chosen[0].sentence.text.startswith("Totalt bor 710 000 personer")


def test_nothing_relevant_gives_no_sentences() -> None:
    assert choose_sentences("Vad kostar en fotbollsarena i Umeå?", [PASSAGE]) == []


def test_prefers_better_passage_on_ties() -> None:
    text = "Yrkesvux byggs ut i hela landet."
    chosen = choose_sentences("yrkesvux", [text, text + " Mer."])
    assert chosen[0].passage_index == 0
    assert len(chosen) == 1  # the same sentence is quoted once
