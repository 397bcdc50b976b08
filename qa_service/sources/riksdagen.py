"""``qa fetch riksdagen``: search Riksdagen's open data and download into a corpus folder.

For each query (one per document type and riksmöte asked for) the job walks the search
pages, then downloads every listed document's ``dokumentstatus`` JSON that the folder
does not hold yet, or holds in an older version (its ``systemdatum`` changed), into
``<out>/<doktyp>/<dok_id>.json`` — the format the readers already read. A written answer
(``frs``) brings its question (``fr``) along, so the answer's citation can name who
asked. ``manifest.jsonl`` (metadata for ingest) and ``SOURCE.md`` (origin, terms,
attribution) are written beside the documents.

A bad answer (an HTML page, JSON cut off or not a ``dokumentstatus``, a document with no
text, an HTTP error after the retries) is reported for its document and counted; the run
goes on, and the next run tries that document again.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests
from tqdm import tqdm

from ..hashing import file_sha256
from ..metadata import intressent_people, question_reference, riksdagen_url
from ..schema import Person
from . import RIKSDAGEN_ATTRIBUTION
from .dokumentlista import (
    Hit,
    Page,
    SearchQuery,
    dokumentstatus_url,
    parse_page,
    search_url,
    split_query,
)
from .http import make_session
from .state import Entry, FetchState, remove_partials, write_atomic

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
SOURCE_NAME = "SOURCE.md"


class BadResponse(Exception):
    """An answer that cannot be used; ``reason`` says why, in a sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class FetchOptions:
    """What to fetch, where to, and how politely."""

    out: Path
    base_url: str = "https://data.riksdagen.se"
    doktyp: tuple[str, ...] = ()
    rm: tuple[str, ...] = ()
    sok: str | None = None
    from_date: str | None = None
    tom_date: str | None = None
    org: str | None = None
    #: Hits per search page (reports of the service's limit range from 100 to 500).
    page_size: int = 100
    #: Pages one query may walk before it is split by date (deep paging stops near 100).
    max_pages: int = 100
    #: Requests per second (0: no limit).
    rate: float = 2.0
    #: Seconds to wait for a connection and for each read.
    timeout: float = 30.0
    retries: int = 5
    #: Backoff factor: waits of about factor x 2^n seconds between tries (capped at 60 s).
    backoff: float = 1.0
    #: Download the question each written answer answers.
    questions: bool = True
    #: At most this many documents downloaded in this run (None: all).
    limit: int | None = None
    dry_run: bool = False

    def queries(self) -> list[SearchQuery]:
        return [
            SearchQuery(
                doktyp=doktyp,
                rm=rm,
                sok=self.sok,
                from_date=self.from_date,
                tom_date=self.tom_date,
                org=self.org,
            )
            for doktyp in (self.doktyp or (None,))
            for rm in (self.rm or (None,))
        ]


@dataclass
class FetchReport:
    out: str
    queries: list[str] = field(default_factory=list)
    #: Distinct documents the searches listed.
    listed: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    downloaded: int = 0
    #: Questions downloaded with the written answers that answer them.
    questions: int = 0
    bytes: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    #: Search pages that could not be read (their documents are missing from ``listed``).
    listing_errors: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: With ``--dry-run``: what would be downloaded, and why.
    would_fetch: list[dict[str, str]] = field(default_factory=list)
    partials_removed: int = 0
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.listing_errors

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed_count"] = len(self.failed)
        data["seconds"] = round(self.seconds, 3)
        return data


def check_dokumentstatus(content: bytes, content_type: str, dok_id: str) -> dict[str, Any]:
    """The decoded ``dokumentstatus`` of ``dok_id``, or :class:`BadResponse` saying why not."""
    head = content[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not head:
        raise BadResponse("empty answer")
    if head.startswith((b"<!doctype", b"<html")) or "html" in content_type.lower():
        raise BadResponse(f"an HTML page instead of JSON ({content_type or 'no content type'})")
    try:
        data = json.loads(content)
    except UnicodeDecodeError as exc:
        raise BadResponse(f"not UTF-8: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise BadResponse(f"truncated or invalid JSON ({exc.msg} at byte {exc.pos})") from exc
    status = data.get("dokumentstatus") if isinstance(data, dict) else None
    if not isinstance(status, dict) or not isinstance(status.get("dokument"), dict):
        raise BadResponse("JSON without a dokumentstatus.dokument object")
    dok = status["dokument"]
    if str(dok.get("dok_id") or "").lower() != dok_id.lower():
        raise BadResponse(f"the answer is about {dok.get('dok_id')!r}, not {dok_id!r}")
    debatt = status.get("debatt")
    has_speeches = isinstance(debatt, dict) and bool(debatt.get("anforande"))
    if not str(dok.get("html") or "").strip() and not has_speeches:
        raise BadResponse("the document has no body (empty html and no speeches)")
    return status


def _person(person: Person | None) -> dict[str, Any] | None:
    return {"name": person.name, "party": person.party} if person else None


class RiksdagenClient:
    """The two calls the fetch needs, on one polite session."""

    def __init__(self, session: requests.Session, base_url: str, timeout: float) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def get(self, url: str) -> requests.Response:
        """GET with the session's retries; network failures become :class:`BadResponse`."""
        try:
            response = self.session.get(url, timeout=(self.timeout, self.timeout))
            response.content  # noqa: B018 - read the body here, where errors are caught
        except requests.exceptions.ChunkedEncodingError as exc:
            raise BadResponse(f"truncated answer (the body was cut off: {exc})") from exc
        except requests.exceptions.RetryError as exc:
            raise BadResponse(f"gave up after retries: {exc}") from exc
        except requests.exceptions.RequestException as exc:
            kind = "timed out" if "timed out" in str(exc).lower() else "network error"
            raise BadResponse(f"{kind} after retries: {exc}") from exc
        if response.status_code >= 400:
            raise BadResponse(f"HTTP {response.status_code} {response.reason}".strip())
        return response

    def page(self, query: SearchQuery, number: int, size: int) -> Page:
        response = self.get(search_url(self.base_url, query, number, size))
        try:
            return parse_page(response.json())
        except ValueError as exc:  # JSONDecodeError and BadPage
            raise BadResponse(f"unreadable search page: {exc}") from exc

    def dokumentstatus(self, dok_id: str) -> tuple[bytes, dict[str, Any]]:
        response = self.get(dokumentstatus_url(self.base_url, dok_id))
        content = response.content
        status = check_dokumentstatus(content, response.headers.get("Content-Type", ""), dok_id)
        return content, status


class _Lister:
    """Walks a query's pages, splitting it by date where paging would stop."""

    def __init__(self, client: RiksdagenClient, options: FetchOptions, report: FetchReport):
        self.client = client
        self.options = options
        self.report = report
        self.today = dt.date.today()

    def hits(self, query: SearchQuery) -> Iterator[Hit]:
        size, max_pages = self.options.page_size, self.options.max_pages
        try:
            first = self.client.page(query, 1, size)
        except BadResponse as exc:
            self._listing_error(query, 1, exc.reason)
            return
        if first.pages > max_pages:
            parts = split_query(query, self.today)
            if parts:
                logger.info(
                    "%s: %d hits on %d pages, more than %d: split by date",
                    query.describe(),
                    first.total,
                    first.pages,
                    max_pages,
                )
                for part in parts:
                    yield from self.hits(part)
                return
            self.report.warnings.append(
                f"{query.describe()}: {first.total} hits on one day; only the first "
                f"{max_pages * size} can be paged to"
            )
        yield from first.hits
        for number in range(2, min(first.pages, max_pages) + 1):
            try:
                page = self.client.page(query, number, size)
            except BadResponse as exc:
                self._listing_error(query, number, exc.reason)
                continue
            yield from page.hits

    def _listing_error(self, query: SearchQuery, page: int, reason: str) -> None:
        logger.warning("search page %d of %s: %s", page, query.describe(), reason)
        self.report.listing_errors.append(
            {"query": query.describe(), "page": str(page), "reason": reason}
        )


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


class FetchJob:
    def __init__(
        self,
        options: FetchOptions,
        session: requests.Session | None = None,
        progress: bool | None = None,
    ) -> None:
        self.options = options
        self.session = session or make_session(
            retries=options.retries, backoff=options.backoff, rate=options.rate
        )
        self.client = RiksdagenClient(self.session, options.base_url, options.timeout)
        self.report = FetchReport(out=str(options.out), dry_run=options.dry_run)
        self.progress = progress

    def run(self) -> FetchReport:
        started = time.perf_counter()
        options, report = self.options, self.report
        out = options.out
        state = FetchState.load(out)
        if not options.dry_run:
            report.partials_removed = remove_partials(out)
        hits = self._list()
        show = self.progress if self.progress is not None else _isatty()
        try:
            bar = tqdm(total=len(hits), unit="dok", desc="fetch", disable=not show, leave=False)
            with bar:
                for hit in hits:
                    self._one(hit, state)
                    bar.update(1)
            if not options.dry_run and state.entries:
                self._write_sidecars(state)
                state.compact()
        finally:
            state.close()
        report.seconds = time.perf_counter() - started
        return report

    def _list(self) -> list[Hit]:
        lister = _Lister(self.client, self.options, self.report)
        seen: dict[str, Hit] = {}
        for query in self.options.queries():
            self.report.queries.append(query.describe())
            for hit in lister.hits(query):
                seen.setdefault(hit.dok_id, hit)
        self.report.listed = len(seen)
        return list(seen.values())

    def _limit_reached(self) -> bool:
        limit = self.options.limit
        return limit is not None and self.report.downloaded >= limit

    def _one(self, hit: Hit, state: FetchState) -> None:
        report = self.report
        entry = state.get(hit.dok_id)
        if entry is None:
            why = "new"
        elif not state.has_file(entry):
            why = "missing or modified locally"
        elif hit.systemdatum and hit.systemdatum != entry.systemdatum:
            why = "changed"
        else:
            report.unchanged += 1
            self._question(entry, state)
            return
        if why == "new":
            report.new += 1
        else:
            report.changed += 1
        if self.options.dry_run:
            report.would_fetch.append(
                {
                    "dok_id": hit.dok_id,
                    "doktyp": hit.doktyp,
                    "rm": hit.rm,
                    "beteckning": hit.beteckning,
                    "titel": hit.titel,
                    "why": why,
                }
            )
            return
        if self._limit_reached():
            return
        downloaded = self._download(hit.dok_id, hit.doktyp, state, fallback=hit)
        if downloaded is not None:
            self._question(downloaded, state)

    def _download(
        self, dok_id: str, doktyp: str, state: FetchState, fallback: Hit | None = None
    ) -> Entry | None:
        report = self.report
        try:
            content, status = self.client.dokumentstatus(dok_id)
        except BadResponse as exc:
            logger.warning("%s: %s", dok_id, exc.reason)
            report.failed.append({"dok_id": dok_id, "reason": exc.reason})
            return None
        dok = status["dokument"]
        doktyp = str(dok.get("doktyp") or dok.get("typ") or doktyp or "okänd").lower()
        relative = f"{doktyp}/{dok_id}.json"
        write_atomic(self.options.out / relative, content)
        authors, minister = intressent_people(
            (status.get("dokintressent") or {}).get("intressent")
            if isinstance(status.get("dokintressent"), dict)
            else None
        )
        question = question_reference(status) if doktyp == "frs" else None

        def text(key: str) -> str:
            value = dok.get(key) or (getattr(fallback, key, "") if fallback else "")
            return " ".join(str(value or "").split())

        entry = Entry(
            dok_id=dok_id,
            file=relative,
            # The listing's value where there is one: it is what the next run compares.
            systemdatum=(fallback.systemdatum if fallback else "") or text("systemdatum"),
            sha256=file_sha256(self.options.out / relative),
            doktyp=doktyp,
            rm=text("rm"),
            beteckning=text("beteckning"),
            titel=text("titel"),
            datum=text("datum"),
            authors=[{"name": p.name, "party": p.party, "role": p.role} for p in authors],
            minister=_person(minister),
            question=(
                {"dok_id": question.dok_id, "rm": question.rm, "beteckning": question.beteckning}
                if question
                else None
            ),
            fetched_at=_now(),
        )
        state.record(entry)
        report.downloaded += 1
        report.bytes += len(content)
        return entry

    def _question(self, answer: Entry, state: FetchState) -> None:
        """Download the question a written answer answers, once."""
        question = answer.question or {}
        dok_id = question.get("dok_id")
        if not self.options.questions or answer.doktyp != "frs" or not dok_id:
            return
        known = state.get(dok_id)
        if known is not None and state.has_file(known):
            return
        if self.options.dry_run:
            return
        if self._download(dok_id, "fr", state) is not None:
            self.report.questions += 1

    def _write_sidecars(self, state: FetchState) -> None:
        lines = []
        for entry in state.sorted_entries():
            record: dict[str, Any] = {
                "file": entry.file,
                "dok_id": entry.dok_id,
                "doktyp": entry.doktyp,
                "rm": entry.rm or None,
                "beteckning": entry.beteckning or None,
                "titel": entry.titel,
                "datum": entry.datum,
                "systemdatum": entry.systemdatum,
                "url": riksdagen_url(entry.dok_id),
                "source": RIKSDAGEN_ATTRIBUTION,
            }
            if entry.question:
                question = dict(entry.question)
                asked = state.get(question.get("dok_id") or "")
                if asked is not None and asked.authors:
                    first = asked.authors[0]
                    question["asker"] = {"name": first["name"], "party": first.get("party")}
                record["question"] = question
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        out = self.options.out
        write_atomic(out / MANIFEST_NAME, "".join(lines).encode("utf-8"))
        if not (out / SOURCE_NAME).exists():
            write_atomic(out / SOURCE_NAME, source_text(self.options.base_url).encode("utf-8"))


def source_text(base_url: str) -> str:
    """The provenance note written beside fetched documents."""
    return (
        "# Riksdagen open data\n\n"
        f"- Source: {RIKSDAGEN_ATTRIBUTION} (Källa: {RIKSDAGEN_ATTRIBUTION}), "
        f"fetched from {base_url} by `qa fetch riksdagen`.\n"
        "- Format: `dokumentstatus` JSON, one file per document, as the service gives it "
        "(`<doktyp>/<dok_id>.json`); `manifest.jsonl` holds each file's metadata.\n"
        "- Terms: Riksdagen's open data may be used and processed freely, commercially too; "
        f"name {RIKSDAGEN_ATTRIBUTION} as the source.\n"
        "- `.qa-fetch-state.jsonl` records what was fetched (dok_id, systemdatum, "
        "sha256), so the next fetch downloads only new and changed documents.\n"
    )


def _isatty() -> bool:
    return sys.stderr.isatty()


def run_fetch(
    options: FetchOptions,
    *,
    session: requests.Session | None = None,
    progress: bool | None = None,
) -> FetchReport:
    """Search, then download what the corpus folder lacks; see the module docstring."""
    return FetchJob(options, session=session, progress=progress).run()


def format_fetch_report(report: FetchReport) -> str:
    head = "Would fetch" if report.dry_run else "Fetched"
    lines = [
        f"{head} into {report.out} (source: {RIKSDAGEN_ATTRIBUTION})",
        f"Queries: {'; '.join(report.queries)}",
        f"Listed: {report.listed}  new: {report.new}  changed: {report.changed}  "
        f"unchanged: {report.unchanged}",
    ]
    if report.dry_run:
        lines.extend(
            f"  {w['dok_id']}  {w['doktyp']} {w['rm']}:{w['beteckning']}  {w['titel']}"
            f"  ({w['why']})"
            for w in report.would_fetch
        )
    else:
        lines.append(
            f"Downloaded: {report.downloaded} ({report.questions} questions of answers), "
            f"{report.bytes / 1e6:.1f} MB in {report.seconds:.1f} s"
        )
    if report.partials_removed:
        lines.append(f"Removed {report.partials_removed} half-written file(s) of an earlier run")
    if report.failed:
        lines.append(f"Failed: {len(report.failed)}")
        lines.extend(f"  {f['dok_id']}: {f['reason']}" for f in report.failed[:50])
    if report.listing_errors:
        lines.append(f"Search pages failed: {len(report.listing_errors)}")
        lines.extend(
            f"  {e['query']} p={e['page']}: {e['reason']}" for e in report.listing_errors[:20]
        )
    lines.extend(f"Warning: {w}" for w in report.warnings)
    return "\n".join(lines)


__all__ = [
    "BadResponse",
    "FetchOptions",
    "FetchReport",
    "check_dokumentstatus",
    "format_fetch_report",
    "run_fetch",
]
