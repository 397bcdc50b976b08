"""Riksdagen's document search (``/dokumentlista/``) as pure functions.

An answer (``utformat=json``) is ``{"dokumentlista": {"@traffar", "@sida", "@sidor",
"@nasta_sida", "dokument": [...]}}``. Its quirks, handled here:

- ``dokument`` is a list, a single object when there is exactly one hit, and absent or
  null when there is none;
- the counters are strings;
- ``@nasta_sida`` is reported to come back with ``http:`` and without ``utformat=json``,
  so the next page's address is built from the query and ``p=`` instead of followed;
- deep paging is reported to stop around page 100: a query with more pages than the
  fetch may walk is split into two date ranges, again and again, until each fits
  (:func:`split_query`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

logger = logging.getLogger(__name__)

#: The first date any query is split from when it names neither dates nor a riksmöte.
EARLIEST = dt.date(1971, 1, 1)
_RM = re.compile(r"^(?P<start>\d{4})/(?P<end>\d{2}|\d{4})$")
_DOK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class BadPage(ValueError):
    """A search answer that is not a ``dokumentlista``."""


@dataclass(frozen=True)
class SearchQuery:
    """One search: every field is a filter of the service (``None``: not filtered)."""

    doktyp: str | None = None
    rm: str | None = None
    sok: str | None = None
    from_date: str | None = None  # YYYY-MM-DD, inclusive
    tom_date: str | None = None  # YYYY-MM-DD, inclusive
    org: str | None = None

    def params(self) -> dict[str, str]:
        values = {
            "doktyp": self.doktyp,
            "rm": self.rm,
            "sok": self.sok,
            "from": self.from_date,
            "tom": self.tom_date,
            "org": self.org,
        }
        return {key: value for key, value in values.items() if value}

    def describe(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.params().items()) or "(everything)"


@dataclass(frozen=True)
class Hit:
    """One document in a search answer."""

    dok_id: str
    doktyp: str = ""
    rm: str = ""
    beteckning: str = ""
    titel: str = ""
    datum: str = ""
    systemdatum: str = ""
    organ: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hit:
        dok_id = str(data.get("dok_id") or data.get("id") or "").strip()
        if not _DOK_ID.match(dok_id):
            raise BadPage(f"a hit without a usable dok_id: {dok_id!r}")
        names = [f.name for f in dataclasses.fields(cls) if f.name != "dok_id"]
        values = {name: " ".join(str(data.get(name) or "").split()) for name in names}
        return cls(dok_id=dok_id, **values)


@dataclass(frozen=True)
class Page:
    hits: list[Hit]
    total: int
    page: int
    pages: int


def search_url(base_url: str, query: SearchQuery, page: int, size: int) -> str:
    """The address of one page of a search, always as JSON and in a stable order."""
    params = {
        **query.params(),
        "sort": "datum",
        "sortorder": "asc",
        "utformat": "json",
        "sz": str(size),
        "p": str(page),
    }
    return f"{base_url.rstrip('/')}/dokumentlista/?{urlencode(params)}"


def dokumentstatus_url(base_url: str, dok_id: str) -> str:
    return f"{base_url.rstrip('/')}/dokumentstatus/{dok_id}.json"


def _count(value: Any, default: int) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def parse_page(data: Any) -> Page:
    """A decoded search answer -> its hits and counters; raises :class:`BadPage`."""
    if not isinstance(data, dict) or not isinstance(data.get("dokumentlista"), dict):
        raise BadPage("the answer is not a dokumentlista")
    listing = data["dokumentlista"]
    raw = listing.get("dokument")
    items = [] if raw is None else raw if isinstance(raw, list) else [raw]
    if not all(isinstance(item, dict) for item in items):
        raise BadPage("dokumentlista.dokument holds something other than documents")
    hits = [Hit.from_dict(item) for item in items]
    total = _count(listing.get("@traffar"), len(hits))
    page = _count(listing.get("@sida"), 1)
    pages = _count(listing.get("@sidor"), 1 if hits else 0)
    return Page(hits=hits, total=total, page=page, pages=pages)


def rm_dates(rm: str) -> tuple[dt.date, dt.date] | None:
    """Dates that surely hold a riksmöte's documents: ``2024/25`` -> 2024-06-01..2025-12-31.

    A riksmöte runs from September to the summer; the margins only widen the range,
    since the riksmöte itself stays a filter of the split queries.
    """
    match = _RM.match(rm.strip())
    if not match:
        return None
    start = int(match["start"])
    return dt.date(start, 6, 1), dt.date(start + 1, 12, 31)


def _date(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def query_dates(query: SearchQuery, today: dt.date) -> tuple[dt.date, dt.date]:
    """The date range a query covers, for splitting it."""
    start, end = _date(query.from_date), _date(query.tom_date)
    if (start is None or end is None) and query.rm:
        bounds = rm_dates(query.rm)
        if bounds:
            start, end = start or bounds[0], end or bounds[1]
    return start or EARLIEST, end or today


def split_query(query: SearchQuery, today: dt.date) -> list[SearchQuery]:
    """Two queries covering the first and second half of the query's dates, or ``[]``
    when the range is a single day (it cannot be split further)."""
    start, end = query_dates(query, today)
    if end <= start:
        return []
    middle = start + (end - start) // 2
    return [
        dataclasses.replace(query, from_date=start.isoformat(), tom_date=middle.isoformat()),
        dataclasses.replace(
            query,
            from_date=(middle + dt.timedelta(days=1)).isoformat(),
            tom_date=end.isoformat(),
        ),
    ]
