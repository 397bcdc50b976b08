"""Result filters (document type, riksmöte, dates, party, person, source prefix).

A filter becomes a 0/1 mask over passage rows that both retrievers apply before they
cut their top-k, so a filtered search never returns fewer hits than exist.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

#: YYYY, YYYY-MM or YYYY-MM-DD of the calendar, in ASCII digits (``\d`` would take "٢٠٢٤"
#: too): months 01-12, days the month can have (29 for February in any year). The API's
#: schema uses the same expression.
DATE_PATTERN = (
    "^[0-9]{4}(-((0[13578]|1[02])(-(0[1-9]|[12][0-9]|3[01]))?"
    "|(0[469]|11)(-(0[1-9]|[12][0-9]|30))?"
    "|02(-(0[1-9]|1[0-9]|2[0-9]))?))?$"
)
_DATE = re.compile(DATE_PATTERN)
_RM = re.compile(r"^[0-9]{4}/[0-9]{2}$")
#: The longest filter value accepted (a name, a type, a path prefix); SQLite refuses a
#: LIKE pattern over 50,000 bytes, and no real value comes near this.
MAX_FILTER_CHARS = 300


def has_surrogates(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate ("\\ud800" in JSON): not a character,
    it cannot be written as UTF-8, so no stored text can match it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class FilterError(ValueError):
    """A filter value that cannot be used."""


@dataclass(frozen=True)
class Filters:
    doctype: str | None = None
    rm: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    party: str | None = None
    person: str | None = None
    source_prefix: str | None = None

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Filters:
        """Filters from a request's mapping; a key that names no filter is an error."""
        unknown = set(data) - set(_FIELDS)
        if unknown:
            names = ", ".join(sorted(repr(k) for k in unknown))
            raise FilterError(f"unknown filter(s) {names}; filters are {', '.join(_FIELDS)}")
        values: dict[str, str] = {}
        for key in _FIELDS:
            value = data.get(key)
            if value is None or value == "":
                continue
            if not isinstance(value, str):
                raise FilterError(f"filter {key!r} must be a string")
            if len(value) > MAX_FILTER_CHARS:
                raise FilterError(f"filter {key!r} is longer than {MAX_FILTER_CHARS} characters")
            if has_surrogates(value):
                raise FilterError(f"filter {key!r} holds a lone surrogate, not text")
            values[key] = value.strip()
        filters = cls(**values)
        filters.validate()
        return filters

    def validate(self) -> None:
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value and not _DATE.match(value):
                raise FilterError(f"{name} must be a date of the form YYYY, YYYY-MM or YYYY-MM-DD")
        if self.rm and not _RM.match(self.rm):
            raise FilterError("rm (riksmöte) must look like 2022/23")

    def is_empty(self) -> bool:
        return not any(getattr(self, key) for key in _FIELDS)

    def to_dict(self) -> dict[str, str]:
        return {key: value for key in _FIELDS if (value := getattr(self, key))}


#: The filter names, in order (read once, not on every request).
_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Filters))


def _where(filters: Filters) -> tuple[str, list[str]]:
    clauses: list[str] = []
    params: list[str] = []
    if filters.doctype:
        clauses.append("lower(d.doctype) = lower(?)")
        params.append(filters.doctype)
    if filters.rm:
        clauses.append("d.rm = ?")
        params.append(filters.rm)
    if filters.date_from:
        clauses.append("d.date IS NOT NULL AND d.date >= ?")
        params.append(filters.date_from)
    if filters.date_to:
        # "2023" or "2023-06" include the whole year or month.
        clauses.append("d.date IS NOT NULL AND substr(d.date, 1, ?) <= ?")
        params.extend([str(len(filters.date_to)), filters.date_to])
    if filters.party:
        clauses.append("('|' || upper(d.parties) || '|' LIKE ? OR upper(p.party) = ?)")
        party = filters.party.upper()
        params.extend([f"%|{party}|%", party])
    if filters.person:
        clauses.append(
            "(lower(d.people) LIKE ? ESCAPE '\\' OR lower(p.speaker) LIKE ? ESCAPE '\\')"
        )
        # The name is matched as written: % and _ in it are not wildcards.
        escaped = re.sub(r"([\\%_])", r"\\\1", filters.person.lower())
        person = f"%{escaped}%"
        params.extend([person, person])
    if filters.source_prefix:
        clauses.append("substr(d.source, 1, ?) = ?")
        params.extend([str(len(filters.source_prefix)), filters.source_prefix])
    return " AND ".join(clauses), params


def allowed_rows(db: sqlite3.Connection, filters: Filters, size: int) -> np.ndarray | None:
    """The mask of passage rows the filters allow; ``None`` when nothing is filtered."""
    if filters.is_empty():
        return None
    where, params = _where(filters)
    sql = f"SELECT p.row FROM passages p JOIN documents d ON d.id = p.doc_id WHERE {where}"
    mask = np.zeros(size, dtype=bool)
    rows = [r[0] for r in db.execute(sql, params)]
    if rows:
        mask[np.asarray(rows, dtype=np.int64)] = True
    return mask
