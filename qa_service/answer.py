"""Citations a person can paste into a draft."""

from __future__ import annotations

from .domain import Kind, kind_named
from .schema import Document, Passage


def document_label(document: Document) -> str:
    """``"Svar på fråga 2024/25:992"``, ``"Betänkande 2018/19:AU7"``, ``"Dir. 2014:15"``,
    ``"Pressmeddelande"``."""
    meta = document.meta
    known = kind_named(meta.doctype)  # its label is the document's own heading form
    kind = known.citation if known is not None else meta.doctype or "Dokument"
    question = meta.question
    if question is not None and question.rm and question.beteckning:
        # A written answer is cited by the number of the question it answers.
        return f"{kind} {question.rm}:{question.beteckning}"
    if meta.rm and meta.beteckning:
        return f"{kind} {meta.rm}:{meta.beteckning}"
    if meta.beteckning:
        own = (kind, known.abbreviation) if known is not None and known.abbreviation else (kind,)
        if meta.beteckning.lower().startswith(tuple(word.lower() for word in own)):
            return meta.beteckning  # "SOU 2014:16", "Dir. 2014:15" as the source writes it
        return f"{kind} {meta.beteckning}"
    return kind


def _authors(document: Document) -> str:
    people = [p for p in document.meta.authors if p.role != "parti"]
    question = document.meta.question
    if not people and question is not None and question.author is not None:
        people = [question.author]
    if not people:
        return ""
    first = people[0].label()
    return f"{first} m.fl." if len(people) > 1 else first


def _minister_word(kind: Kind | None) -> str:
    """How the citation names the document's minister: the addressee of a question
    ("till"), the one who answers ("besvarad av"), the sender of a press release ("från").
    A kind the table does not know keeps "till"."""
    if kind is None or kind.minister is None:
        return "till"
    return kind.minister


def citation(document: Document, passage: Passage | None = None) -> str:
    """A Swedish citation: type and beteckning, author, minister, title, date, page.

    "Interpellation 2014/15:6 av Elisabeth Svantesson (M) till Magdalena Andersson (S)",
    "Svar på fråga 2024/25:9001 av Anna Andersson (S) besvarad av Erik Exempelsson (L)",
    "Pressmeddelande från Johan Pehrson", as Riksdagen and regeringen.se head them.
    """
    meta = document.meta
    kind = kind_named(meta.doctype)
    parts = [document_label(document)]
    authors = _authors(document)
    if authors and (not meta.doctype or (kind is not None and kind.authored)):
        parts[0] += f" av {authors}"
    elif document.meta.authors and document.meta.authors[0].role == "parti":
        parts[0] += f" ({document.meta.authors[0].name})"
    if meta.minister is not None:
        parts[0] += f" {_minister_word(kind)} {meta.minister.label()}"
    if meta.title and meta.title not in parts[0]:
        parts.append(f"”{meta.title}”")
    if meta.date:
        parts.append(meta.date)
    if passage is not None and passage.page is not None:
        parts.append(f"s. {passage.page}")
    if passage is not None and passage.speaker:
        parts.append(f"anförande av {passage.speaker}")
    text = ", ".join(parts)
    return text if text.endswith(".") else text + "."  # "… m.fl." ends with its own


def citation_markdown(document: Document, passage: Passage | None = None) -> str:
    text = citation(document, passage)
    return f"[{text}]({document.meta.url})" if document.meta.url else text
