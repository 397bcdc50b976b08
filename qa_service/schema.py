"""The data that flows from readers to the API: sections, documents, passages, hits."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Person:
    name: str
    party: str | None = None
    role: str | None = None

    def label(self) -> str:
        return f"{self.name} ({self.party})" if self.party else self.name


@dataclass(frozen=True)
class DocumentRef:
    """Another document this one belongs to: the written question a written answer answers."""

    doctype: str | None = None  # a Swedish label, e.g. "Skriftlig fråga"
    dok_id: str | None = None
    rm: str | None = None
    beteckning: str | None = None
    author: Person | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentRef:
        author = data.get("author")
        return cls(
            doctype=data.get("doctype"),
            dok_id=data.get("dok_id"),
            rm=data.get("rm"),
            beteckning=data.get("beteckning"),
            author=Person(**author) if isinstance(author, dict) else None,
        )


@dataclass
class Section:
    """One unit a reader yields: a PDF page, a document body, a debate speech."""

    text: str
    page: int | None = None
    heading: str | None = None
    speaker: str | None = None
    party: str | None = None


@dataclass
class DocumentMeta:
    """What a source says about a document; every field is optional but the title."""

    title: str = ""
    doctype: str | None = None  # a Swedish label: "Svar på skriftlig fråga", "Motion", …
    dok_id: str | None = None
    rm: str | None = None  # riksmöte, e.g. "2024/25"
    beteckning: str | None = None  # e.g. "992", "AU7"
    date: str | None = None  # ISO date
    authors: list[Person] = field(default_factory=list)
    minister: Person | None = None
    url: str | None = None
    organ: str | None = None
    #: For a written answer: the question it answers (number and who asked it).
    question: DocumentRef | None = None

    def __post_init__(self) -> None:
        # A document's link is shown on pages and pasted into drafts: only web addresses
        # (a "javascript:" URL from a sidecar would run script on the permalink page).
        self.url = web_link(self.url)

    def merge(self, other: DocumentMeta) -> DocumentMeta:
        """Fields of ``other`` fill the gaps of this one (this one wins)."""
        values = {}
        for f in dataclasses.fields(self):
            mine = getattr(self, f.name)
            values[f.name] = mine if mine else getattr(other, f.name)
        if self.question and other.question and not self.question.author:
            # The question's asker may come from elsewhere (a sidecar the fetch wrote).
            values["question"] = dataclasses.replace(self.question, author=other.question.author)
        return DocumentMeta(**values)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentMeta:
        data = dict(data)
        data["authors"] = [Person(**p) for p in data.get("authors") or []]
        data["minister"] = Person(**data["minister"]) if data.get("minister") else None
        question = data.get("question")
        data["question"] = DocumentRef.from_dict(question) if isinstance(question, dict) else None
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


#: The schemes a document's link may have.
LINK_SCHEMES = frozenset({"http", "https"})


def web_link(url: Any) -> str | None:
    """``url`` if it is an absolute http(s) address with a host, else None."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in LINK_SCHEMES or not parts.netloc:
        return None
    return url


def document_id(source: str) -> str:
    """A document's id: stable for a given source path."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:16]


def passage_id(source: str, char_start: int, text: str) -> str:
    """A passage's id: stable while the file's cleaned text does not change."""
    digest = hashlib.sha1(f"{source}\x00{char_start}\x00{text}".encode()).hexdigest()
    return digest[:16]


@dataclass
class Passage:
    id: str
    doc_id: str
    ordinal: int
    text: str
    char_start: int
    char_end: int
    page: int | None = None
    heading: str | None = None
    speaker: str | None = None
    party: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Document:
    id: str
    source: str
    sha256: str
    meta: DocumentMeta
    text: str
    reader: str
    page_count: int | None = None

    def to_dict(self, with_text: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "source": self.source, **self.meta.to_dict()}
        data["page_count"] = self.page_count
        if with_text:
            data["text"] = self.text
        return data


@dataclass
class Hit:
    passage: Passage
    document: Document
    score: float
    rank: int = 0
    also_in: list[str] = field(default_factory=list)
    #: The passage's row in the index (None: not from a search).
    row: int | None = None
