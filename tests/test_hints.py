from __future__ import annotations

import pytest

from qa_service.hints import (
    AUTUMN,
    SPRING,
    DocumentFacts,
    HintIndex,
    Hints,
    Period,
    date_periods,
    document_facts,
    hint_match,
    person_names,
    read_hints,
    riksmote_periods,
    without_hint_words,
)


def hints(parties: str = "", doctypes: tuple[str, ...] = (), years: tuple[int, ...] = ()) -> Hints:
    """Hints of whole years (both halves)."""
    periods = {(year, half) for year in years for half in (SPRING, AUTUMN)}
    return Hints(frozenset(parties.split()), frozenset(doctypes), frozenset(periods))


def seasons(parties: str, doctypes: tuple[str, ...], *periods: Period) -> Hints:
    return Hints(frozenset(parties.split()), frozenset(doctypes), frozenset(periods))


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        (
            "Vad säger Socialdemokraterna om arbetslösheten i sin budgetmotion hösten 2024?",
            seasons("S", ("Motion",), (2024, AUTUMN)),
        ),
        (
            "Vad skrev Moderaterna i sin motion våren 2019?",
            seasons("M", ("Motion",), (2019, SPRING)),
        ),
        (
            "What did the Liberals' motion say in the autumn of 2021?",
            seasons("L", ("Motion",), (2021, AUTUMN)),
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
            "Vad lovade statsministern i regeringsförklaringen 2025?",
            hints(doctypes=("Tal",), years=(2025,)),
        ),
        (
            "What did the government's 2023 budget bill propose for older workers?",
            hints(doctypes=("Proposition",), years=(2023,)),
        ),
        ("Which committee reports dealt with sfi?", hints(doctypes=("Betänkande",))),
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
            seasons("SD", ("Motion",), (2019, AUTUMN), (2020, SPRING)),
        ),
        (
            "Vilka motioner från 1999/2000 handlar om sfi?",
            seasons("", ("Motion",), (1999, AUTUMN), (2000, SPRING)),
        ),
        ("Vad sade Kristdemokraternas partiprogram 2025?", hints("KD", ("Partiprogram",), (2025,))),
        # A year without a kind of document is the subject, not the document's date.
        ("Vad kostar extratjänsterna fram till 2023?", hints()),
        ("Hur hög var arbetslösheten andra kvartalet 2023?", hints()),
        # Words that only look like a party or a kind.
        ("Vad säger liberal migrationspolitik om öppen förskola?", hints()),
        ("Blir höjningen moderat för hushållen?", hints()),
        ("Hur genomförs EU-direktivet om lönetransparens?", hints()),
        ("Vad vill de Moderata ledamöterna?", hints("M")),
        ("Vad vill moderaterna med bidragen?", hints("M")),
        ("Vilket direktiv fick utredningen?", hints(doctypes=("Kommittédirektiv",))),
        ("Hur många bor i utanförskapsområden?", hints()),
    ],
)
def test_read_hints(question: str, expected: Hints) -> None:
    assert read_hints(question) == expected


@pytest.mark.parametrize(
    ("rm", "expected"),
    [
        ("2022/23", {(2022, AUTUMN), (2023, SPRING)}),
        ("1999/2000", {(1999, AUTUMN), (2000, SPRING)}),
        ("", set()),
        (None, set()),
        ("2022", set()),
    ],
)
def test_riksmote_periods(rm: str | None, expected: set[Period]) -> None:
    assert riksmote_periods(rm) == expected


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("2024-10-04", {(2024, AUTUMN)}),
        ("2024-06-30", {(2024, SPRING)}),
        ("2023-07", {(2023, AUTUMN)}),
        ("2023", {(2023, SPRING), (2023, AUTUMN)}),
        ("", set()),
        (None, set()),
        ("okänt", set()),
    ],
)
def test_date_periods(date: str | None, expected: set[Period]) -> None:
    assert date_periods(date) == expected


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
    assert facts == MOTION_M_2019
    assert facts.parties == {"M", "S"}
    assert document_facts(None, "", None, None) == DocumentFacts(None, frozenset(), frozenset())
    assert document_facts("Pressmeddelande", "", None, "2023-08").periods == {(2023, AUTUMN)}
    # The budget bill for 2025: dated September 2024, riksmöte 2024/25.
    bill = document_facts("Proposition", "", "2024/25", "2024-09-19")
    assert bill.periods == {(2024, AUTUMN), (2025, SPRING)}


MOTION_M_2019 = DocumentFacts(
    "Motion",
    frozenset({"M", "S"}),
    frozenset({(2019, AUTUMN), (2020, SPRING)}),
    frozenset({"ulf kristersson"}),
)


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (hints(), 0.0),
        (hints("M"), 1.0),
        (hints("KD"), 0.0),
        (hints("KD M"), 1.0),  # any of the named parties
        (hints("M", ("Motion",)), 1.0),
        (hints("M", ("Valmanifest",)), 0.5),
        (hints("KD", ("Motion",), (2024,)), 1 / 3),
        (hints("M", ("Motion",), (2020,)), 1.0),
        (seasons("M", ("Motion",), (2019, AUTUMN)), 1.0),
        # Spring 2019 was the riksmöte before.
        (seasons("M", ("Motion",), (2019, SPRING)), 2 / 3),
        (Hints(people=frozenset({"ulf kristersson"})), 1.0),
        (Hints(parties=frozenset({"KD"}), people=frozenset({"ulf kristersson"})), 0.5),
    ],
)
def test_hint_match(wanted: Hints, expected: float) -> None:
    assert hint_match(wanted, MOTION_M_2019) == pytest.approx(expected)


INDEXED = {
    "m-motion-2019": MOTION_M_2019,
    "s-motion-2024": DocumentFacts(
        "Motion", frozenset({"S"}), frozenset({(2024, AUTUMN), (2025, SPRING)})
    ),
    "s-manifest": DocumentFacts("Valmanifest", frozenset({"S"}), frozenset({(2022, SPRING)})),
    "press": DocumentFacts(
        "Pressmeddelande", frozenset(), frozenset({(2024, AUTUMN)}), frozenset({"johan pehrson"})
    ),
    "unknown": DocumentFacts(None, frozenset(), frozenset()),
}


@pytest.mark.parametrize(
    "wanted",
    [
        hints(),
        hints("S"),
        hints("S M", ("Motion",)),
        seasons("S", ("Motion",), (2024, AUTUMN)),
        hints(doctypes=("Valmanifest", "Motion"), years=(2022,)),
        Hints(people=frozenset({"johan pehrson"}), periods=frozenset({(2024, AUTUMN)})),
        Hints(people=frozenset({"ulf kristersson"}), parties=frozenset({"S"})),
        hints("KD"),
    ],
)
def test_hint_index_finds_the_documents_meeting_every_hint(wanted: Hints) -> None:
    expected = {doc for doc, facts in INDEXED.items() if wanted and hint_match(wanted, facts) == 1}
    assert HintIndex(INDEXED).meeting_all(wanted) == expected


def test_hint_index_knows_every_person() -> None:
    assert HintIndex(INDEXED).people == {"ulf kristersson", "johan pehrson"}


@pytest.mark.parametrize(
    ("question", "people", "expected"),
    [
        # The party and the kind named the source; the subject is left.
        (
            "Vad skriver Moderaterna i sin motion om bidragstak?",
            (),
            "Vad skriver i sin om bidragstak?",
        ),
        # A party's code in brackets and a compound kind; the year stays.
        (
            "Vad föreslog (M) i budgetmotionen hösten 2024 om jobbskatteavdrag?",
            (),
            "Vad föreslog i hösten 2024 om jobbskatteavdrag?",
        ),
        # A person the build knows, by full name.
        (
            "Vilka borgmästare skulle Johan Pehrson träffa i Köpenhamn?",
            ("johan pehrson",),
            "Vilka borgmästare skulle träffa i Köpenhamn?",
        ),
        ("What does the Christian Democrats' party programme say?", (), "What does the ' say?"),
        # No hint: the question as it is.
        ("Vad är bidragstaket?", (), "Vad är bidragstaket?"),
    ],
)
def test_without_hint_words(question: str, people: tuple[str, ...], expected: str) -> None:
    assert without_hint_words(question, read_hints(question, people)) == expected
