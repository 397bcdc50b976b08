from __future__ import annotations

import pytest

from qa_service.hints import (
    DocumentFacts,
    Hints,
    document_facts,
    hint_match,
    person_names,
    read_hints,
    riksmote_years,
)


def hints(parties: str = "", doctypes: tuple[str, ...] = (), years: tuple[int, ...] = ()) -> Hints:
    return Hints(frozenset(parties.split()), frozenset(doctypes), frozenset(years))


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            "Vad säger Socialdemokraterna om arbetslösheten i sin budgetmotion hösten 2024?",
            hints("S", ("Motion",), (2024,)),
        ),
        (
            "Vad ville Moderaterna göra med bidragen enligt valmanifestet?",
            hints("M", ("Valmanifest",)),
        ),
        (
            "Hur många praktikplatser lovade Moderaterna i valet 2022?",
            hints("M", ("Valmanifest",), (2022,)),
        ),
        ("Vad innebär bidragstaket i Tidöavtalet?", hints(doctypes=("Överenskommelse",))),
        (
            "Hur ska kvalificeringen gå till enligt Tidöpartierna?",
            hints(doctypes=("Överenskommelse",)),
        ),
        (
            "Vad föreslås i budgetpropositionen för 2023?",
            hints(doctypes=("Proposition",), years=(2023,)),
        ),
        ("Vilka interpellationer ställde Teresa Carvalho (S)?", hints("S", ("Interpellation",))),
        ("Vad vill Vänsterpartiet och Centerpartiet?", hints("V C")),
        (
            "What do the Sweden Democrats propose in motion 2019/20?",
            hints("SD", ("Motion",), (2019, 2020)),
        ),
        ("Vad sade Kristdemokraternas partiprogram 2025?", hints("KD", ("Partiprogram",), (2025,))),
        # A year without a kind of document is the subject, not the document's date.
        ("Vad kostar extratjänsterna fram till 2023?", hints()),
        ("Hur hög var arbetslösheten andra kvartalet 2023?", hints()),
        # Words that only look like a party or a kind.
        ("Vad säger liberal migrationspolitik om öppen förskola?", hints()),
        ("Hur många bor i utanförskapsområden?", hints()),
    ],
)
def test_read_hints(question: str, expected: Hints) -> None:
    assert read_hints(question) == expected


@pytest.mark.parametrize(
    ("rm", "expected"),
    [
        ("2022/23", {2022, 2023}),
        ("1999/2000", {1999, 2000}),
        ("", set()),
        (None, set()),
        ("2022", set()),
    ],
)
def test_riksmote_years(rm: str | None, expected: set[int]) -> None:
    assert riksmote_years(rm) == expected


PEOPLE = person_names("Serkan Köse|Johan  Pehrson|Teresa Carvalho|C|Regeringen")


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Vilken satsning föreslår regeringen i svaret till Serkan Köse?", {"serkan köse"}),
        ("Varför är svenska viktigt enligt johan pehrson?", {"johan pehrson"}),
        ("What did Teresa Carvalho's interpellation say?", {"teresa carvalho"}),
        ("Vad sade Carvalho?", set()),  # a surname alone is too weak
        ("Vad sade Serkan Köseoglu?", set()),  # another name that begins the same
        ("Vad säger regeringen om C?", set()),
    ],
)
def test_read_hints_people(question: str, expected: set[str]) -> None:
    assert read_hints(question, PEOPLE).people == expected


def test_person_names_are_full_names_in_lower_case() -> None:
    assert {"serkan köse", "johan pehrson", "teresa carvalho"} == PEOPLE
    assert person_names(None) == frozenset()


def test_document_facts_from_columns() -> None:
    facts = document_facts("Motion", "-|M|S", "2019/20", "2019-10-04", "Ulf Kristersson|M")
    assert facts == DocumentFacts(
        "Motion", frozenset({"M", "S"}), frozenset({2019, 2020}), frozenset({"ulf kristersson"})
    )
    assert document_facts(None, "", None, None) == DocumentFacts(None, frozenset(), frozenset())
    assert document_facts("Pressmeddelande", "", None, "2023-08").years == {2023}


MOTION_M_2019 = DocumentFacts(
    "Motion", frozenset({"M"}), frozenset({2019, 2020}), frozenset({"ulf kristersson"})
)


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (hints(), 0.0),
        (hints("M"), 1.0),
        (hints("S"), 0.0),
        (hints("S M"), 1.0),  # any of the named parties
        (hints("M", ("Motion",)), 1.0),
        (hints("M", ("Valmanifest",)), 0.5),
        (hints("S", ("Motion",), (2024,)), 1 / 3),
        (hints("M", ("Motion",), (2020,)), 1.0),
        (Hints(people=frozenset({"ulf kristersson"})), 1.0),
        (Hints(parties=frozenset({"S"}), people=frozenset({"ulf kristersson"})), 0.5),
    ],
)
def test_hint_match(wanted: Hints, expected: float) -> None:
    assert hint_match(wanted, MOTION_M_2019) == pytest.approx(expected)
