"""What a question says about the documents it wants: party, kind, time, person.

People name their sources: "enligt Moderaternas valmanifest", "i Socialdemokraternas
budgetmotion hösten 2024", "i vårpropositionen 2023". Those words are weak evidence in
BM25 (every motion mentions other parties) and in a passage's vector, but they say which
documents the asker means. :func:`read_hints` finds them; :func:`hint_match` tells how
many of them a document meets; the service searches the documents that meet them on their
own, and the quote is matched without the words that named them
(:func:`without_hint_words`). A hint is a preference, never a filter: filters are
explicit (``Filters``).

Pure functions over strings.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .domain import kinds, parties

#: Party codes and the words (Swedish and English) that name them, as regex stems
#: (domain/parties.toml).
_PARTY_WORDS: dict[str, str] = {party.code: party.pattern for party in parties() if party.pattern}
_PARTY_CODE = re.compile(rf"\(({'|'.join(_PARTY_WORDS)})\)")

#: Document kinds (as the index names them) and the words that ask for them
#: (domain/kinds.toml).
_DOCTYPE_WORDS: dict[str, str] = {
    kind.name: kind.question_words for kind in kinds() if kind.question_words
}
_YEAR = re.compile(
    r"\b(?:(?P<autumn>hösten|autumn|fall)|(?P<spring>våren|spring))?(?:\s+of)?\s*"
    r"(?<!/)\b(?P<year>19[89]\d|20[0-4]\d)\b(?!/)",
    re.IGNORECASE,
)
_RIKSMOTE = re.compile(r"\b(\d{4})/(\d{2}|\d{4})\b")

#: Half-years: a hint or a document's time is a set of (year, SPRING) and (year, AUTUMN).
SPRING, AUTUMN = 1, 2
Period = tuple[int, int]


def _alternatives(table: dict[str, str]) -> list[tuple[str, re.Pattern[str]]]:
    return [(key, re.compile(rf"\b(?:{words})\b", re.IGNORECASE)) for key, words in table.items()]


_PARTIES = _alternatives(_PARTY_WORDS)
_DOCTYPES = _alternatives(_DOCTYPE_WORDS)


@dataclass(frozen=True)
class Hints:
    """The parties, document kinds, half-years and people (lower case) a question names."""

    parties: frozenset[str] = frozenset()
    doctypes: frozenset[str] = frozenset()
    periods: frozenset[Period] = frozenset()
    people: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.parties or self.doctypes or self.periods or self.people)


@dataclass(frozen=True)
class DocumentFacts:
    """What a hint is matched against: one document's kind, parties, half-years, people."""

    doctype: str | None
    parties: frozenset[str]
    periods: frozenset[Period]
    people: frozenset[str] = frozenset()


def read_hints(question: str, people: Collection[str] = ()) -> Hints:
    """The parties, kinds of document and half-years a question names, and which of
    ``people`` (full names in lower case, as :func:`person_names` gives them) it names.

    A year is both its halves; "hösten 2024" / "autumn 2024" only the second, "våren
    2024" / "spring 2024" only the first; a riksmöte "2024/25" is autumn 2024 and
    spring 2025.

    >>> hints = read_hints("Vad säger Socialdemokraterna i sin budgetmotion hösten 2024?")
    >>> sorted(hints.parties), sorted(hints.doctypes), sorted(hints.periods)
    (['S'], ['Motion'], [(2024, 2)])
    """
    parties = {code for code, pattern in _PARTIES if pattern.search(question)}
    parties.update(_PARTY_CODE.findall(question))
    doctypes = {name for name, pattern in _DOCTYPES if pattern.search(question)}
    periods: set[Period] = set()
    if doctypes:
        # A year dates the document only beside a kind of document ("valmanifestet 2022",
        # "budgetmotionen hösten 2024"); alone it is usually the subject ("fram till 2023").
        for match in _YEAR.finditer(question):
            year = int(match["year"])
            if match["autumn"]:
                periods.add((year, AUTUMN))
            elif match["spring"]:
                periods.add((year, SPRING))
            else:
                periods.update(year_periods(year))
        for first, second in _RIKSMOTE.findall(question):
            periods.update(riksmote_periods(f"{first}/{second}"))
    lowered = question.lower()
    named = {name for name in people if name in lowered and _person(name).search(lowered)}
    return Hints(frozenset(parties), frozenset(doctypes), frozenset(periods), frozenset(named))


def without_hint_words(question: str, hints: Hints) -> str:
    """The question without the words by which it named its hints' parties, kinds of
    document and people: what is left is what a quoted sentence should say.

    "Vad vill Moderaterna göra med bidragstaket?" asks about bidragstaket; every sentence
    of a Moderate motion that says "Moderaterna" shares a word with it and answers
    nothing. Years stay: they are as often what is asked.

    >>> without_hint_words("Vad skriver Moderaterna i sin motion om bidragstak?",
    ...                    read_hints("Vad skriver Moderaterna i sin motion om bidragstak?"))
    'Vad skriver i sin om bidragstak?'
    """
    if not (hints.parties or hints.doctypes or hints.people):
        return question
    patterns = [pattern for code, pattern in _PARTIES if code in hints.parties]
    patterns += [pattern for name, pattern in _DOCTYPES if name in hints.doctypes]
    patterns += [_person(name) for name in hints.people]
    text = question
    for pattern in patterns:
        text = pattern.sub(" ", text)
    if hints.parties:
        text = _PARTY_CODE.sub(" ", text)
    return " ".join(text.split())


def _person(name: str) -> re.Pattern[str]:
    """A person's full name (lower case) as whole words, in any case."""
    return re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE)


def year_periods(year: int) -> set[Period]:
    """Both halves of a year."""
    return {(year, SPRING), (year, AUTUMN)}


def riksmote_periods(rm: str | None) -> set[Period]:
    """``"2022/23"`` -> autumn 2022 and spring 2023: a riksmöte opens in September."""
    match = _RIKSMOTE.fullmatch(rm.strip()) if rm else None
    if not match:
        return set()
    first = int(match[1])
    return {(first, AUTUMN), (first + 1, SPRING)}


def date_periods(date: str | None) -> set[Period]:
    """The half-year of an ISO date; both halves when only the year is known."""
    match = re.match(r"(\d{4})(?:-(\d{2}))?", date or "")
    if not match:
        return set()
    year = int(match[1])
    if not match[2]:
        return year_periods(year)
    return {(year, SPRING if int(match[2]) <= 6 else AUTUMN)}


def person_names(people: str | None) -> frozenset[str]:
    """Full names (two words or more) from a ``|``-separated column, in lower case.

    Single words ("C", "Regeringen") name a party or a body, not a person to look for.
    """
    names = (" ".join(name.split()).lower() for name in (people or "").split("|"))
    return frozenset(name for name in names if " " in name)


def document_facts(
    doctype: str | None,
    parties: str | None,
    rm: str | None,
    date: str | None,
    people: str | None = None,
) -> DocumentFacts:
    """Facts from a document's stored columns (``parties``, ``people``: ``|``-separated).

    Its time is its date's half-year and its riksmöte's two halves: the budget bill for
    2025 is dated September 2024 and belongs to 2024/25.
    """
    periods = riksmote_periods(rm) | date_periods(date)
    codes = frozenset(code for code in (parties or "").split("|") if code and code != "-")
    return DocumentFacts(doctype, codes, frozenset(periods), person_names(people))


def hint_match(hints: Hints, facts: DocumentFacts) -> float:
    """The share of the question's kinds of hint (party, kind, year, person) a document
    meets."""
    asked = met = 0
    for wanted, have in (
        (hints.parties, facts.parties),
        (hints.doctypes, {facts.doctype} if facts.doctype else set()),
        (hints.periods, facts.periods),
        (hints.people, facts.people),
    ):
        if wanted:
            asked += 1
            met += bool(wanted & have)
    return met / asked if asked else 0.0


class HintIndex:
    """For each party, kind, half-year and person, the documents that have it: the
    documents meeting every hint of a question are then a few set operations away."""

    def __init__(self, facts: Mapping[str, DocumentFacts]) -> None:
        self.size = len(facts)
        self._parties: dict[str, set[str]] = {}
        self._doctypes: dict[str, set[str]] = {}
        self._periods: dict[Period, set[str]] = {}
        self._people: dict[str, set[str]] = {}
        for doc_id, fact in facts.items():
            for party in fact.parties:
                self._parties.setdefault(party, set()).add(doc_id)
            if fact.doctype:
                self._doctypes.setdefault(fact.doctype, set()).add(doc_id)
            for period in fact.periods:
                self._periods.setdefault(period, set()).add(doc_id)
            for person in fact.people:
                self._people.setdefault(person, set()).add(doc_id)
        #: Every person's full name in lower case, for ``read_hints``.
        self.people = frozenset(self._people)

    def meeting_all(self, hints: Hints) -> set[str]:
        """The documents that meet every kind of hint given (as ``hint_match`` = 1)."""
        found: set[str] | None = None
        kinds: Iterable[tuple[Collection[Any], Mapping[Any, set[str]]]] = (
            (hints.parties, self._parties),
            (hints.doctypes, self._doctypes),
            (hints.periods, self._periods),
            (hints.people, self._people),
        )
        for wanted, index in kinds:
            if not wanted:
                continue
            having = set().union(*(index.get(value, set()) for value in wanted))
            found = having if found is None else found & having
        return found or set()
