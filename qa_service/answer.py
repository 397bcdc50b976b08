"""Citations a person can paste into a draft."""

from __future__ import annotations

from .schema import Document, Passage

#: How a document type is named when cited (the document's own heading form).
CITATION_LABELS = {"Svar på skriftlig fråga": "Svar på fråga"}
_AUTHORED = {"Svar på skriftlig fråga", "Interpellation", "Skriftlig fråga", "Motion"}


def document_label(document: Document) -> str:
    """``"Svar på fråga 2024/25:992"``, ``"Betänkande 2018/19:AU7"``, ``"Pressmeddelande"``."""
    meta = document.meta
    kind = CITATION_LABELS.get(meta.doctype or "", meta.doctype or "Dokument")
    question = meta.question
    if question is not None and question.rm and question.beteckning:
        # A written answer is cited by the number of the question it answers.
        return f"{kind} {question.rm}:{question.beteckning}"
    if meta.rm and meta.beteckning:
        return f"{kind} {meta.rm}:{meta.beteckning}"
    if meta.beteckning:
        if meta.beteckning.lower().startswith(kind.lower()):
            return meta.beteckning
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


def citation(document: Document, passage: Passage | None = None) -> str:
    """A Swedish citation: type and beteckning, author, title, date, page."""
    meta = document.meta
    parts = [document_label(document)]
    authors = _authors(document)
    if authors and (meta.doctype in _AUTHORED or not meta.doctype):
        parts[0] += f" av {authors}"
    elif document.meta.authors and document.meta.authors[0].role == "parti":
        parts[0] += f" ({document.meta.authors[0].name})"
    if meta.minister is not None:
        parts[0] += f" till {meta.minister.label()}"
    if meta.title and meta.title not in parts[0]:
        parts.append(f"”{meta.title}”")
    if meta.date:
        parts.append(meta.date)
    if passage is not None and passage.page is not None:
        parts.append(f"s. {passage.page}")
    if passage is not None and passage.speaker:
        parts.append(f"anförande av {passage.speaker}")
    return ", ".join(parts) + "."


def citation_markdown(document: Document, passage: Passage | None = None) -> str:
    text = citation(document, passage)
    return f"[{text}]({document.meta.url})" if document.meta.url else text
