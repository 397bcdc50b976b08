"""The API's request and response models (pydantic): what crosses the HTTP and CLI
edges, validated there, and what the OpenAPI document is generated from.

Inside, the service passes these typed values; a response is read by attribute, or by
key like the JSON it becomes (``answer["found"]``), so callers that read the JSON shape
read the model the same way.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .config import Settings
from .filters import DATE_PATTERN

logger = logging.getLogger(__name__)

#: At most 1000 characters, at least one of them one the server does not strip: not
#: white space by ECMA's \s or Python's (which adds \x1c-\x1f and NEL), not NUL.
QUESTION_PATTERN = "[^\\s\\x00\\x1c-\\x1f\\x85]"
MAX_QUESTION_CHARS = Settings.max_question_chars
MAX_TOP_K = Settings.max_top_k


class Model(BaseModel):
    """A response model: dumped without the fields it was not given (``highlights`` of a
    passage outside an answer); readable by key as its JSON is."""

    model_config = ConfigDict(frozen=False)

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields or key not in self.model_fields_set:
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.model_fields_set

    def json_data(self) -> dict[str, Any]:
        """The JSON object (fields not given are left out)."""
        return self.model_dump(mode="json", exclude_unset=True)


class ErrorBody(Model):
    status: int
    code: str
    message: str


class Error(Model):
    """The one error shape of every 4xx and 5xx answer."""

    error: ErrorBody


class Person(Model):
    name: str
    party: str | None = None
    role: str | None = None


class DocumentRef(Model):
    """For a written answer: the question it answers."""

    doctype: str | None = None
    dok_id: str | None = None
    rm: str | None = None
    beteckning: str | None = None
    author: Person | None = None


class Document(Model):
    """A document's metadata."""

    id: str
    source: str
    title: str
    doctype: str | None = None
    dok_id: str | None = None
    rm: str | None = None
    beteckning: str | None = None
    date: str | None = None
    authors: list[Person] = Field(default_factory=list)
    minister: Person | None = None
    url: str | None = None
    organ: str | None = None
    question: DocumentRef | None = None
    page_count: int | None = None


class Passage(Model):
    """A cited passage of an answer or a search."""

    id: str
    rank: int = Field(ge=1)
    score: float
    text: str
    source: str
    page: int | None
    char_start: int = Field(ge=0)
    char_end: int = Field(ge=0)
    heading: str | None = None
    speaker: str | None = None
    party: str | None = None
    citation: str
    citation_markdown: str
    permalink: str
    also_in: list[str] = Field(default_factory=list)
    document: Document
    #: Character ranges of the quoted sentences in ``text`` (answers only).
    highlights: list[tuple[int, int]] = Field(default_factory=list)


class QuotedRange(Model):
    """Where a quoted sentence stands: its passage's rank, the passage, document offsets."""

    marker: int
    passage_id: str
    char_start: int
    char_end: int


class Sentence(QuotedRange):
    text: str
    #: The same sentence in other listed passages.
    also: list[QuotedRange] = Field(default_factory=list)


class Answer(Model):
    found: bool
    text: str
    sentences: list[Sentence] = Field(default_factory=list)


class AskResponse(Model):
    conversation_id: str | None = None
    question: str
    standalone_query: str
    answer: Answer
    passages: list[Passage]


class SearchResponse(Model):
    query: str
    index: str
    passages: list[Passage]


class Context(Model):
    """A passage inside its surrounding document text, cut at paragraph edges."""

    before: str
    passage: str
    after: str


class PassageDetail(Model):
    """One passage with its citation and surrounding text."""

    id: str
    text: str
    source: str
    page: int | None
    char_start: int
    char_end: int
    heading: str | None = None
    speaker: str | None = None
    party: str | None = None
    citation: str
    citation_markdown: str
    permalink: str
    also_in: list[str] = Field(default_factory=list)
    document: Document
    context: Context


class DocumentPassage(Model):
    id: str
    ordinal: int
    page: int | None
    char_start: int
    char_end: int
    heading: str | None = None
    speaker: str | None = None
    text: str
    permalink: str


class DocumentDetail(Document):
    """A document's metadata and its passages (without the full text)."""

    citation: str
    passages: list[DocumentPassage]


class Turn(Model):
    """One stored turn of a conversation."""

    question: str
    standalone_query: str
    answer: Answer | None = None
    passages: list[Passage] = Field(default_factory=list)
    created_at: float


class Conversation(Model):
    id: str
    turns: list[Turn]


class Facets(Model):
    """Values the filters can take in the loaded index."""

    doctypes: list[str]
    riksmoten: list[str]


class Health(Model):
    status: Literal["ok"] = "ok"


class IndexInfo(Model):
    build: str
    model: str | None = None
    query_encoder: str
    passages: int | None = None
    documents: int | None = None
    built_at: str | None = None


class Ready(Model):
    status: Literal["ready"] = "ready"
    index: IndexInfo


# -- requests ------------------------------------------------------------------------

Mode = Literal["hybrid", "dense", "lexical"]


class Filters(BaseModel):
    """Only passages of documents that meet every filter given (an empty value: none)."""

    model_config = ConfigDict(extra="forbid")

    doctype: str | None = Field(default=None, max_length=300, description="e.g. Interpellation")
    rm: str | None = Field(default=None, pattern="^$|^[0-9]{4}/[0-9]{2}$")
    date_from: str | None = Field(default=None, pattern="^$|" + DATE_PATTERN)
    date_to: str | None = Field(default=None, pattern="^$|" + DATE_PATTERN)
    party: str | None = Field(default=None, max_length=300)
    person: str | None = Field(default=None, max_length=300)
    source_prefix: str | None = Field(default=None, max_length=300)


class AskRequest(BaseModel):
    """A question, asked on its own or in a conversation."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(max_length=MAX_QUESTION_CHARS, pattern=QUESTION_PATTERN)
    top_k: int | None = Field(default=None, ge=1, le=MAX_TOP_K)
    filters: Filters | None = None
    mode: Mode = "hybrid"
    conversation_id: str | None = Field(default=None, max_length=64)


class SearchRequest(BaseModel):
    """A query for passages, touching no conversation (``GET /api/search``)."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field(max_length=MAX_QUESTION_CHARS, pattern=QUESTION_PATTERN)
    top_k: int | None = Field(default=None, ge=1, le=MAX_TOP_K)
    filters: Filters | None = None

    def as_ask(self) -> AskRequest:
        """The query as a question on its own (hybrid, no conversation), its values as
        checked."""
        return AskRequest.model_construct(question=self.q, top_k=self.top_k, filters=self.filters)
