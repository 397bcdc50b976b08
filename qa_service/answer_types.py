"""What kind of value a question asks for, and whether a sentence states one.

"Hur mycket pengar får Trafikverket för uppdraget?" is answered by the sentence that
names the sum ("För genomförande av uppdraget disponerar Trafikverket 500 000 kronor."),
not by the one that shares the question's words ("Regeringen ger Trafikverket i uppdrag
att analysera …"), which an official text usually puts first. The expected answer type
of a question (a quantity or a point in time), read from its interrogative, lets the
answer check that it quotes such a value, as question answering systems have done since
TREC's factoid track. Pure functions over strings.
"""

from __future__ import annotations

import re
from enum import Enum


class AnswerType(Enum):
    QUANTITY = "quantity"
    TIME = "time"


#: Swedish and English interrogatives that ask for an amount, a number or a share.
_QUANTITY = re.compile(
    r"\b(?:hur\s+(?:mycket|många|stor|stort|stora|höga?|högt|lång|långt|länge|gammal|"
    r"gamla|dyr|dyrt)|vilke[nt]\s+(?:belopp|summa|andel|storlek)|vad\s+kostar|"
    r"how\s+(?:much|many|large|big|high|long|old)|what\s+(?:amount|sum|share|"
    r"percentage|proportion))\b",
    re.IGNORECASE,
)
#: Interrogatives that ask for a date or a year. "När" and "when" ask only where a
#: question or one of its clauses begins ("Och när ska …", "…, och från när?"); inside a
#: clause they are conjunctions ("… besöka när han var i Karlskoga?").
_TIME = re.compile(
    r"(?:^|[,;:]\s*|\b(?:och|men|från|till|sedan|senast|and|but|since|until)\s+)"
    r"(?:när|when)\b|"
    r"\b(?:vilket\s+(?:datum|år)|vilken\s+(?:dag|månad|tidpunkt)|"
    r"what\s+date|which\s+year|what\s+year)\b",
    re.IGNORECASE,
)

_MONTHS = (
    "januari|februari|mars|april|maj|juni|juli|augusti|september|oktober|november|"
    "december|january|february|march|may|june|july|august|october"
)
#: Designations that hold digits without stating a value: "2018/19:AU10", "dir. 2017:20",
#: "SFS 2010:197", "U 2015:12", "prop. 2008/09:140".
_DESIGNATION = re.compile(r"\b\d{4}(?:/\d{2,4})?:\s?[A-ZÅÄÖa-zåäö]*\d*\b")
_NUMBER = re.compile(r"(?<![\w/])\d+(?:[ \u00a0.]\d{3})*(?:,\d+)?(?![\w/])")
_NUMBER_WORDS = re.compile(
    r"\b(?:två|tre|fyra|fem|sex|sju|åtta|nio|tio|elva|tolv|femton|tjugo|trettio|"
    r"fyrtio|femtio|hundra|tusen|miljon(?:er)?|miljard(?:er)?|hälften|halva|"
    r"tredjedel(?:en|ar)?|fjärdedel(?:en|ar)?|dubbelt|fördubblats|tredubblats)\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"(?<![\d/])(?:19|20)\d{2}(?![\d/:])")
_DATE = re.compile(rf"\b\d{{1,2}}\s+(?:{_MONTHS})\b|\b(?:{_MONTHS})\s+(?:19|20)\d{{2}}\b", re.I)


def expected_answer(question: str) -> AnswerType | None:
    """The kind of value the question asks for (None: a name, a reason, a content);
    a question that asks for both reads as the first ("Med hur mycket höjs ersättningen
    och från när?" asks for an amount)."""
    if _QUANTITY.search(question):
        return AnswerType.QUANTITY
    if _TIME.search(question):
        return AnswerType.TIME
    return None


def _values(text: str) -> set[str]:
    """The numbers a text states, spaces in them removed ("500 000" -> "500000")."""
    plain = _DESIGNATION.sub(" ", text)
    return {re.sub(r"[ \u00a0.]", "", m.group(0)) for m in _NUMBER.finditer(plain)}


def states_value(sentence: str, kind: AnswerType, question: str = "") -> bool:
    """Whether the sentence states a value of ``kind`` that the question does not
    already state ("Hur mycket fick Skolverket under 2015?" is not answered by a
    sentence whose only number is 2015)."""
    known = _values(question)
    plain = _DESIGNATION.sub(" ", sentence)
    if kind is AnswerType.TIME:
        if any(date.group(0).lower() not in question.lower() for date in _DATE.finditer(plain)):
            return True
        return any(year.group(0) not in known for year in _YEAR.finditer(plain))
    # A date's day and year are not amounts ("senast den 1 juni 2018").
    plain = _DATE.sub(" ", plain)
    years = {year.group(0) for year in _YEAR.finditer(plain)}
    if _values(plain) - known - years:
        return True
    return bool(_NUMBER_WORDS.search(plain))
