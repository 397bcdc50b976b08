"""What the corpus is about, as data: the parties and the kinds of document.

``parties.toml`` and ``kinds.toml`` beside this module are read once; metadata, hints,
citations and the glossary take their names, codes and words from here, so a new party or
kind of document is a table row, not an edit in four modules. Corpus-specific rules (how
one source names its files or marks its pages) are source profiles (``profiles.py``).
"""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

logger = logging.getLogger(__name__)

MinisterRole = Literal["till", "besvarad av", "från"]
_MINISTER_ROLES: tuple[str, ...] = ("till", "besvarad av", "från")


class DomainDataError(ValueError):
    """A table of the domain is malformed (a packaging mistake, not bad input)."""


@dataclass(frozen=True)
class Party:
    """A party of the Riksdag."""

    code: str  # "S", as Riksdagen writes it after a name: "Serkan Köse (S)"
    name: str  # "Socialdemokraterna"
    english: tuple[str, ...]  # ("Social Democrats", …)
    pattern: str  # the words a question names it by (a regular expression); "" for none


@dataclass(frozen=True)
class Kind:
    """A kind of document, by the name the index gives it (``Document.meta.doctype``)."""

    name: str
    riksdagen: tuple[str, ...]
    regeringen: tuple[str, ...]
    citation: str
    abbreviation: str  # "Dir.", as the source writes it before a number; "" for none
    authored: bool
    minister: MinisterRole | None
    english: tuple[str, ...]
    swedish: str
    question_words: str


def _read(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DomainDataError(f"{name}: {exc}") from exc


def _checked_pattern(where: str, pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise DomainDataError(f"{where}: {exc}") from exc
    return pattern


@cache
def parties() -> tuple[Party, ...]:
    """The parties, in the order of ``parties.toml``."""
    rows = _read("parties.toml").get("party", [])
    return tuple(
        Party(
            code=row["code"],
            name=row["name"],
            english=tuple(row.get("english", ())),
            pattern=_checked_pattern(f"party {row['code']}", row.get("pattern", "")),
        )
        for row in rows
    )


@cache
def kinds() -> tuple[Kind, ...]:
    """The kinds of document, in the order of ``kinds.toml``."""
    found = []
    for row in _read("kinds.toml").get("kind", []):
        minister = row.get("minister")
        if minister is not None and minister not in _MINISTER_ROLES:
            raise DomainDataError(f"kind {row['name']}: minister must be one of {_MINISTER_ROLES}")
        found.append(
            Kind(
                name=row["name"],
                riksdagen=tuple(row.get("riksdagen", ())),
                regeringen=tuple(row.get("regeringen", ())),
                citation=row.get("citation", row["name"]),
                abbreviation=row.get("abbreviation", ""),
                authored=bool(row.get("authored", False)),
                minister=minister,
                english=tuple(row.get("english", ())),
                swedish=row.get("swedish", row["name"].lower()),
                question_words=_checked_pattern(
                    f"kind {row['name']}", row.get("question_words", "")
                ),
            )
        )
    return tuple(found)


@cache
def kind_named(name: str | None) -> Kind | None:
    """The kind of a document's ``doctype``, or None for one the table does not know."""
    return next((kind for kind in kinds() if kind.name == name), None)


@cache
def party_names() -> dict[str, str]:
    """Party code -> the party's Swedish name."""
    return {party.code: party.name for party in parties()}


@cache
def riksdagen_kinds() -> dict[str, str]:
    """Riksdagen ``doktyp`` code -> the kind's name."""
    return {code: kind.name for kind in kinds() for code in kind.riksdagen}


@cache
def regeringen_kinds() -> dict[str, str]:
    """regeringen.se section folder -> the kind's name."""
    return {section: kind.name for kind in kinds() for section in kind.regeringen}
