from __future__ import annotations

import pytest

from qa_service.answer_types import AnswerType, expected_answer, states_value

QUANTITY, TIME = AnswerType.QUANTITY, AnswerType.TIME


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Hur mycket pengar får Trafikverket för uppdraget?", QUANTITY),
        ("Och hur många av dem är barn?", QUANTITY),
        ("Hur stor andel av deltagarna är födda utanför Europa?", QUANTITY),
        ("Hur högt är bidragstaket för en familj?", QUANTITY),
        ("Vilket belopp avsätts för yrkesvux?", QUANTITY),
        ("Vad kostar jobbskatteavdraget?", QUANTITY),
        ("How many people live in the exclusion areas?", QUANTITY),
        ("När ska uppdraget redovisas?", TIME),
        ("Och när ska han vara klar?", TIME),
        ("Med hur mycket höjs ersättningen och från när?", QUANTITY),  # the first asked
        ("Vad föreslås, och när?", TIME),
        ("Till vilket datum förlängdes utredningstiden?", TIME),
        ("Vilket år infördes aktivitetskravet?", TIME),
        ("When will the inquiry report?", TIME),
        ("Vilket försvarsföretag skulle ministern besöka när han var i Karlskoga?", None),
        ("Har ledamöter varnat för följderna när myndigheten drog sig tillbaka?", None),
        ("What did the minister say when asked about segregation?", None),
        ("Vad vill Moderaterna göra med bidragstaket?", None),
        ("Vem är samordnare mot segregation?", None),
        # A level of administration, not an amount.
        ("På vilken nivå ska uppgifterna kunna redovisas?", None),
    ],
)
def test_expected_answer(question: str, kind: AnswerType | None) -> None:
    assert expected_answer(question) is kind


@pytest.mark.parametrize(
    ("sentence", "kind", "question", "states"),
    [
        ("Trafikverket disponerar 500 000 kronor.", QUANTITY, "Hur mycket?", True),
        ("Uppdraget ska redovisas senast den 1 juni 2018.", QUANTITY, "", False),
        ("Försörjningskravet föreslås höjas med 30% från dagens nivå.", QUANTITY, "", True),
        ("Strängbetong minskade styrkan med en tredjedel.", QUANTITY, "", True),
        ("Kompensationen uppgår till 3,2 miljarder kronor.", QUANTITY, "", True),
        ("Regeringen ger Trafikverket i uppdrag att analysera segregationen.", QUANTITY, "", False),
        # A year is a time, not an amount; a number the question states answers nothing.
        ("Skolverket ska ta fram materialet under 2015.", QUANTITY, "Hur mycket 2015?", False),
        ("Skolverket får högst 5 000 000 kronor under 2015.", QUANTITY, "Hur mycket 2015?", True),
        ("Personer födda 1957 missade avdraget.", QUANTITY, "Hur många födda 1957?", False),
        ("Det framgår av betänkande 2018/19:AU10.", QUANTITY, "", False),
        ("Utredaren har fått tilläggsdirektiv (dir. 2017:20).", QUANTITY, "", False),
        ("Uppdraget ska redovisas senast den 1 juni 2018.", TIME, "När?", True),
        ("Delbetänkandet kom den 31 maj.", TIME, "När kom det?", True),
        ("Satsningen förstärks under 2026.", TIME, "När?", True),
        ("Satsningen förstärks under 2026.", TIME, "Vad händer 2026, och när?", False),
        ("Regeringen uppdrar åt Vetenskapsrådet att kartlägga forskningen.", TIME, "När?", False),
        ("Propositionen 2008/09:140 lämnades.", TIME, "När?", False),
    ],
)
def test_states_value(sentence: str, kind: AnswerType, question: str, states: bool) -> None:
    assert states_value(sentence, kind, question) is states
