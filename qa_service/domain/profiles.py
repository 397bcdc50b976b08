"""Source profiles: what one source of documents does its own way, as data and small
functions, so the readers and the ingest stay general.

A profile may say how the source names its files (a file-name rule gives a kind, a party
and a date), where its paths hold a kind and a number (ferenda's
``propregeringen/downloaded/1998-99/130/``), which folders of its paths are kinds of
document, which suffix its page titles carry, and what a kind of its documents says only
in its text (regeringen.se's press releases name their minister only where they quote
them). :func:`meta_from_path`, :func:`clean_title` and :func:`complete_from_text` apply
every profile.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..schema import DocumentMeta, Person
from . import kind_named, regeringen_kinds

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileNameRule:
    """A file stem (lower case) of the source and the kind of document it names; the
    groups ``party``, ``rm`` (``202425``) and ``year`` give the rest."""

    pattern: re.Pattern[str]
    kind: str
    title: Callable[[dict[str, str]], str] | None = None


@dataclass(frozen=True)
class PathNumber:
    """Where a source's paths hold a document's number: ``pattern`` (searched in the
    path) gives ``number`` and either ``rm`` (a riksmöte as ``1998-99`` or ``1999-2000``)
    or ``year``. A number within a riksmöte is its beteckning ("Proposition 1998/99:130");
    a number within a year is written as the kind writes it ("Dir. 2016:15", "SOU
    2013:75"), with the kind's abbreviation or name (``kinds.toml``)."""

    pattern: re.Pattern[str]
    kind: str


@dataclass(frozen=True)
class SourceProfile:
    name: str
    file_names: tuple[FileNameRule, ...] = ()
    #: Paths that hold the document's kind and number, tried before ``folders``.
    path_numbers: tuple[PathNumber, ...] = ()
    #: A folder of a path (anywhere above the file) -> the kind of its documents.
    folders: dict[str, str] = field(default_factory=dict)
    #: Suffixes the source puts after its page titles.
    title_suffixes: tuple[str, ...] = ()
    #: Kind -> who the minister of such a document is, read from its text.
    minister_from_text: dict[str, Callable[[str], Person | None]] = field(default_factory=dict)


_QUOTED_MINISTER = re.compile(
    r"\bsäger (?P<role>[a-zåäö][a-zåäö ,-]*?minister(?: med ansvar för [a-zåäö ]+?)?) "
    r"(?P<name>[A-ZÅÄÖ][\w-]+(?: [A-ZÅÄÖ][\w-]+){1,2})"
)


def quoted_minister(text: str) -> Person | None:
    """The first minister a press release quotes: "…, säger arbetsmarknads- och
    integrationsminister Johan Pehrson." -> Person("Johan Pehrson", None, role)."""
    match = _QUOTED_MINISTER.search(text)
    if not match:
        return None
    return Person(match["name"], None, " ".join(match["role"].split()))


def _party_document_title(groups: dict[str, str]) -> str:
    return f"{groups['kind']} {groups['year']} ({groups['party'].upper()})"


#: regeringen.se, as mirrored by g0vse (sections as the first folders) and as saved pages.
REGERINGEN = SourceProfile(
    name="regeringen.se",
    folders=regeringen_kinds(),
    title_suffixes=(" - Regeringen.se",),
    minister_from_text={"Pressmeddelande": quoted_minister},
)

#: The party documents collected by airiksdagen: ``partiprogram-s-2025.txt`` and the like.
PARTY_DOCUMENTS = SourceProfile(
    name="party documents",
    file_names=(
        FileNameRule(re.compile(r"^budgetmotion-(?P<party>[a-z]+)-(?P<rm>\d{6})$"), "Motion"),
        FileNameRule(
            re.compile(r"^partiprogram-(?P<party>[a-z]+)-(?P<year>\d{4})$"),
            "Partiprogram",
            _party_document_title,
        ),
        FileNameRule(
            re.compile(r"^valmanifest-(?P<year>\d{4})-(?P<party>[a-z]+)$"),
            "Valmanifest",
            _party_document_title,
        ),
        FileNameRule(
            re.compile(r"^tidoavtalet-(?P<year>\d{4})$"), "Överenskommelse", lambda _: "Tidöavtalet"
        ),
    ),
)


def _ferenda_series(folder: str, number_in: str, kind: str) -> PathNumber:
    when = r"(?P<rm>\d{4}-\d{2,4})" if number_in == "rm" else r"(?P<year>\d{4})"
    return PathNumber(re.compile(rf"(?:^|/){folder}/downloaded/{when}/(?P<number>\d+)/"), kind)


#: ferenda's copies of regeringen.se's series (``propregeringen/downloaded/1998-99/130/``,
#: ``dirregeringen/downloaded/2016/15/``): the pages say their kind and number only in
#: their text ("ID-nummer: prop. 1998/99:130"), the path in its folders.
FERENDA = SourceProfile(
    name="ferenda (regeringen.se's series)",
    path_numbers=(
        _ferenda_series("propregeringen", "rm", "Proposition"),
        _ferenda_series("dirregeringen", "year", "Kommittédirektiv"),
        _ferenda_series("souregeringen", "year", "SOU"),
        _ferenda_series("dsregeringen", "year", "Ds"),
    ),
)

PROFILES: tuple[SourceProfile, ...] = (PARTY_DOCUMENTS, REGERINGEN, FERENDA)


def meta_from_path(source: str) -> DocumentMeta:
    """Kind of document, party and year from the naming conventions of the sources."""
    stem = PurePosixPath(source).stem.lower()
    for profile in PROFILES:
        for rule in profile.file_names:
            match = rule.pattern.match(stem)
            if match:
                return _meta_from_file_name(rule, {**match.groupdict(), "kind": rule.kind})
    for profile in PROFILES:
        for numbered in profile.path_numbers:
            found = numbered.pattern.search(source)
            if found:
                return _meta_from_path_number(numbered.kind, found.groupdict())
    parts = PurePosixPath(source).parts
    for part in parts[:-1]:
        for profile in PROFILES:
            if part in profile.folders:
                return DocumentMeta(doctype=profile.folders[part])
    return DocumentMeta()


def _meta_from_path_number(kind: str, groups: dict[str, str]) -> DocumentMeta:
    if groups.get("rm"):
        return DocumentMeta(
            doctype=kind, rm=groups["rm"].replace("-", "/"), beteckning=groups["number"]
        )
    known = kind_named(kind)
    label = (known.abbreviation or known.name) if known is not None else kind
    return DocumentMeta(doctype=kind, beteckning=f"{label} {groups['year']}:{groups['number']}")


def _meta_from_file_name(rule: FileNameRule, groups: dict[str, str]) -> DocumentMeta:
    meta = DocumentMeta(doctype=rule.kind)
    if groups.get("party"):
        party = groups["party"].upper()
        meta.authors = [Person(party, party, "parti")]
    if groups.get("rm"):
        rm = groups["rm"]
        meta.rm = f"{rm[:4]}/{rm[4:]}"
    if groups.get("year"):
        meta.date = groups["year"]
    if rule.title is not None:
        meta.title = rule.title(groups)
    return meta


def clean_title(title: str) -> str:
    """A page title without the suffix its source puts after every title."""
    for profile in PROFILES:
        for suffix in profile.title_suffixes:
            title = title.removesuffix(suffix)
    return title


def complete_from_text(meta: DocumentMeta, text: str) -> DocumentMeta:
    """Fill in what a kind of document of some source says only in its text."""
    if meta.minister is None:
        for profile in PROFILES:
            read = profile.minister_from_text.get(meta.doctype or "")
            if read is not None:
                meta.minister = read(text)
                if meta.minister is not None:
                    break
    return meta
