"""Riksdagen and regeringen.se specifics: document types, headers, beteckningar, people.

Pure functions over strings and dicts; the readers call them. The kinds of document and
the parties are tables (``domain/``); a source's own conventions are its profile
(``domain/profiles.py``).
"""

from __future__ import annotations

import re
from typing import Any

from .domain import party_names, regeringen_kinds, riksdagen_kinds
from .domain.profiles import meta_from_path
from .domain.profiles import quoted_minister as quoted_minister  # the press releases' rule
from .schema import DocumentMeta, DocumentRef, Person

#: Riksdagen ``doktyp`` codes and the Swedish names people cite them by (domain/kinds.toml).
DOKTYP_NAMES: dict[str, str] = riksdagen_kinds()
#: regeringen.se sections (the first folder of a g0vse path) and their document types.
SECTION_TYPES: dict[str, str] = regeringen_kinds()

_RM = r"(?P<rm>\d{4}/\d{2,4})"
_WHO = r"(?P<who>[^()\n]+?)\s*\((?P<party>[A-ZÅÄÖ]{1,3})\)"
_HEADER_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"^\s*Svar på (?:skriftlig )?fråga {_RM}:(?P<nr>\d+) av {_WHO}"), "frs"),
    (re.compile(rf"^\s*Interpellation {_RM}:(?P<nr>\d+) av {_WHO}"), "ip"),
    (re.compile(rf"^\s*Skriftlig fråga {_RM}:(?P<nr>\d+) av {_WHO}"), "fr"),
    (re.compile(rf"^\s*(?:Regeringens proposition|Prop\.) {_RM}:(?P<nr>\d+)"), "prop"),
    (re.compile(rf"^\s*Motion (?:till riksdagen )?{_RM}:(?P<nr>\d+)(?: av {_WHO})?"), "mot"),
]
_HTML_COMMENT_HEADER = re.compile(
    r"^\s*<!--\s*(?P<kind>[^|]+?)\s+(?P<rm>\d{4}/\d{2}):(?P<nr>\d+)\s*\((?P<party>[A-ZÅÄÖ]+)\)"
    r"(?P<rest>[^>]*)-->\s*"
)
_GENERIC_COMMENT = re.compile(r"^\s*<!--(?P<body>[^>]*?)-->\s*")
_PERSON_WITH_PARTY = re.compile(r"^(?P<name>.+?)\s*\((?P<party>[A-ZÅÄÖ]{1,3})\)\s*$")


def doctype_name(code: str | None) -> str | None:
    """The Swedish name for a Riksdagen ``doktyp`` code, or the code itself."""
    if not code:
        return None
    return DOKTYP_NAMES.get(code.lower(), code)


def parse_person(text: str | None, role: str | None = None) -> Person | None:
    """``"Teresa Carvalho (S)"`` -> Person("Teresa Carvalho", "S")."""
    if not text or not text.strip():
        return None
    text = " ".join(text.split())
    match = _PERSON_WITH_PARTY.match(text)
    if match:
        return Person(match["name"], match["party"], role)
    return Person(text, None, role)


def iso_date(value: str | None) -> str | None:
    """``"2019-03-22 00:00:00"`` -> ``"2019-03-22"``; anything without a date -> None."""
    if not value:
        return None
    match = re.search(r"\d{4}-\d{2}-\d{2}", value)
    return match.group(0) if match else None


def parse_text_header(text: str) -> tuple[DocumentMeta, str]:
    """Read a Riksdagen/regeringen header at the top of plain text.

    Returns the metadata found and the text with the header (and the title lines that
    follow it up to the first blank line) removed. Text without a known header comes
    back unchanged with empty metadata.
    """
    comment = _HTML_COMMENT_HEADER.match(text)
    if comment:
        meta, body = _comment_header_meta(comment), text[comment.end() :]
        return _motion_title(meta, body), body
    generic = _GENERIC_COMMENT.match(text)
    if generic:
        return _generic_comment_meta(generic["body"]), text[generic.end() :]
    stripped = text.lstrip("\n\ufeff")
    first_line = stripped.split("\n", 1)[0]
    for pattern, code in _HEADER_PATTERNS:
        match = pattern.match(first_line)
        if not match:
            continue
        groups = match.groupdict()
        meta = DocumentMeta(doctype=doctype_name(code), rm=groups["rm"], beteckning=groups["nr"])
        if groups.get("who"):
            meta.authors = [Person(" ".join(groups["who"].split()), groups["party"], "författare")]
        rest = stripped[len(first_line) :].lstrip("\n")
        parts = re.split(r"\n[ \t]*\n", rest, maxsplit=1)
        title_block, body = parts[0], parts[1] if len(parts) > 1 else ""
        title = " ".join(title_block.split())
        if title and len(title) <= 300 and body.strip():
            meta.title = title
            return meta, body
        meta.title = " ".join(first_line.split())
        return meta, rest
    return DocumentMeta(), text


def _motion_title(meta: DocumentMeta, body: str) -> DocumentMeta:
    """A motion's text starts "Motion till riksdagen / 2024/25:3199 / av X m.fl. (S) / Title"."""
    lines = [line.strip() for line in body.split("\n")[:8] if line.strip()]
    for i, line in enumerate(lines[:-1]):
        if line.startswith("av "):
            person = parse_person(line[3:].replace(" m.fl.", ""), "undertecknare")
            if person is not None:
                meta.authors = [person, *meta.authors]
            meta.title = lines[i + 1]
            break
    return meta


def _generic_comment_meta(comment: str) -> DocumentMeta:
    """``<!-- Liberalernas partiprogram 2025 | antaget 2025-11-23 | https://… -->``."""
    parts = [part.strip() for part in comment.split("|")]
    url = next((p for p in parts if p.startswith(("http://", "https://"))), None)
    return DocumentMeta(title=parts[0], date=iso_date(comment), url=url)


def _comment_header_meta(match: re.Match[str]) -> DocumentMeta:
    kind = match["kind"].strip()
    rest = match["rest"]
    date = iso_date(rest)
    dok_id = re.search(r"dok_id\s+(\w+)", rest)
    doctype = "Motion" if "motion" in kind.lower() else kind
    return DocumentMeta(
        doctype=doctype,
        rm=match["rm"],
        beteckning=match["nr"],
        date=date,
        dok_id=dok_id.group(1) if dok_id else None,
        authors=[Person(match["party"], match["party"], "parti")],
    )


def meta_from_filename(source: str) -> DocumentMeta:
    """Document type, party and year from naming conventions of the sources
    (``domain/profiles.py``)."""
    return meta_from_path(source)


#: ``dokintressent`` roles of the minister a question or interpellation is put to or
#: answered by; every other role (``undertecknare``, …) is an author.
MINISTER_ROLES = ("besvaradav", "stalldtill")
_ASKED_BY = re.compile(rf"(?<!besvarad )(?<!besvarat )\bav {_WHO}")
#: The third and fourth characters of a dok_id name its series: 11 written questions,
#: 12 answers to them (data.riksdagen.se, "Så funkar dokument-ID").
_ANSWER_DOK_ID = re.compile(r"^(?P<rm>[A-Z0-9]{2})12(?P<nr>\w+)$")


def as_list(value: Any) -> list[Any]:
    """Riksdagen JSON gives one item as an object and several as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def intressent_people(intressenter: Any) -> tuple[list[Person], Person | None]:
    """``dokintressent.intressent`` -> (authors, minister).

    The minister who answered (``besvaradav``) wins over the one the question was put to
    (``stalldtill``); neither is an author of the question.
    """
    authors: list[Person] = []
    ministers: dict[str, Person] = {}
    for item in as_list(intressenter):
        if not isinstance(item, dict) or not str(item.get("namn") or "").strip():
            continue
        name = " ".join(str(item["namn"]).split())
        party = item.get("partibet") or None
        role = item.get("roll") or None
        if role in MINISTER_ROLES:
            ministers.setdefault(role, Person(name, party, "statsråd"))
        else:
            authors.append(Person(name, party, role))
    minister = ministers.get("besvaradav") or ministers.get("stalldtill")
    return authors, minister


def asked_by(text: str | None) -> Person | None:
    """``"Svar på skriftlig fråga 2024/25:992 av Serkan Köse (S)"`` -> the asker; an
    "besvarad av …" is the minister, not the asker."""
    if not text:
        return None
    match = _ASKED_BY.search(" ".join(text.split()))
    if not match:
        return None
    return Person(" ".join(match["who"].split()), match["party"], "frågeställare")


def question_dok_id(answer_dok_id: str | None) -> str | None:
    """The dok_id of the written question an answer answers: ``HC12992`` -> ``HC11992``."""
    match = _ANSWER_DOK_ID.match(answer_dok_id or "")
    return f"{match['rm']}11{match['nr']}" if match else None


def question_reference(status: dict[str, Any]) -> DocumentRef | None:
    """The written question a ``dokumentstatus`` of an answer (``frs``) refers to.

    ``dokreferens.referens`` names it (``ref_dok_typ`` ``fr``); an answer without the
    reference answers the question of its own riksmöte and number (Riksdagen numbers an
    answer as its question), whose dok_id differs only in the series code.
    """
    dok_value = status.get("dokument")
    dok: dict[str, Any] = dok_value if isinstance(dok_value, dict) else {}
    refs = status.get("dokreferens")
    for ref in as_list(refs.get("referens") if isinstance(refs, dict) else None):
        if not isinstance(ref, dict):
            continue
        kind = (ref.get("ref_dok_typ") or "").lower()
        if kind == "fr" or (not kind and ref.get("referenstyp") in ("fråga", "fraga")):
            return DocumentRef(
                doctype=doctype_name("fr"),
                dok_id=ref.get("ref_dok_id") or None,
                rm=ref.get("ref_dok_rm") or None,
                beteckning=ref.get("ref_dok_bet") or None,
            )
    if (dok.get("doktyp") or dok.get("typ") or "").lower() != "frs":
        return None
    return DocumentRef(
        doctype=doctype_name("fr"),
        dok_id=question_dok_id(dok.get("dok_id")),
        rm=dok.get("rm") or None,
        beteckning=dok.get("beteckning") or None,
    )


def meta_from_manifest_record(record: dict[str, Any]) -> DocumentMeta:
    """Metadata from one line of a ``manifest.jsonl`` sidecar (g0vse, Riksdagen dumps)."""
    authors = [Person(name, None, "avsändare") for name in record.get("senders") or []]
    asker = record.get("asker")
    if isinstance(asker, dict) and asker.get("name"):
        authors.append(Person(asker["name"], asker.get("party"), "frågeställare"))
    minister = None
    if isinstance(record.get("minister"), dict) and record["minister"].get("name"):
        minister = Person(record["minister"]["name"], record["minister"].get("party"), "minister")
    dates_value = record.get("dates")
    dates: dict[str, Any] = dates_value if isinstance(dates_value, dict) else {}
    date = iso_date(record.get("published") or record.get("datum") or dates.get("sent"))
    section = record.get("section")
    question = None
    if isinstance(record.get("question"), dict):
        q = record["question"]
        asker_value = q.get("asker")
        q_author = None
        if isinstance(asker_value, dict) and asker_value.get("name"):
            q_author = Person(asker_value["name"], asker_value.get("party"), "frågeställare")
        question = DocumentRef(
            doctype=doctype_name("fr"),
            dok_id=q.get("dok_id"),
            rm=q.get("rm"),
            beteckning=q.get("beteckning"),
            author=q_author,
        )
        if q_author is not None and not authors:
            authors.append(q_author)
    return DocumentMeta(
        title=record.get("title") or record.get("titel") or "",
        doctype=SECTION_TYPES.get(section) if section else doctype_name(record.get("doktyp")),
        dok_id=record.get("dok_id"),
        rm=record.get("rm"),
        beteckning=record.get("beteckning"),
        date=date or (record.get("published_month") or None),
        authors=authors,
        minister=minister,
        url=record.get("url") or record.get("riksdagen_url"),
        question=question,
    )


#: Party code -> the party's Swedish name (domain/parties.toml).
PARTY_NAMES: dict[str, str] = party_names()


def metadata_line(meta: DocumentMeta) -> str:
    """The words a document's metadata adds to each of its passages for lexical search."""
    people = [p for p in [*meta.authors, meta.minister] if p is not None]
    parties = sorted({p.party for p in people if p.party})
    names = [p.name for p in people if p.role != "parti"]
    parts = [
        meta.doctype,
        meta.title,
        meta.rm,
        (meta.date or "")[:4],
        " ".join(PARTY_NAMES.get(party, party) for party in parties),
        " ".join(names),
    ]
    return " ".join(part for part in parts if part)


def markdown_title(text: str) -> str | None:
    """The first level-one heading of a Markdown text."""
    match = re.search(r"^#\s+(.+?)\s*#*\s*$", text, re.M)
    return match.group(1).strip() if match else None


def riksdagen_url(dok_id: str | None) -> str | None:
    return f"https://data.riksdagen.se/dokument/{dok_id}.html" if dok_id else None
