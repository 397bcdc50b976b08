"""Looking things up in the loaded build: a passage in its context, a document with its
passages, the values the filters can take."""

from __future__ import annotations

import logging

from .answer import citation
from .errors import NotFound
from .models import Context, DocumentDetail, DocumentPassage, Facets, PassageDetail
from .query.citation import passage_model, permalink
from .schema import Hit
from .store import IndexReader

logger = logging.getLogger(__name__)


def passage(reader: IndexReader, passage_id: str) -> PassageDetail:
    found = reader.passage(passage_id)
    if found is None:
        raise NotFound(f"no passage with id {passage_id!r}")
    _row, item = found
    document = reader.document(item.doc_id)
    if document is None:  # pragma: no cover
        raise NotFound(f"no document for passage {passage_id!r}")
    data = passage_model(Hit(item, document, 0.0, 1)).model_dump(exclude={"rank", "score"})
    context = _context(document.text, item.char_start, item.char_end)
    return PassageDetail(**data, context=context)


def document(reader: IndexReader, doc_id: str) -> DocumentDetail:
    """A document's metadata and its passages (without the full text)."""
    found = reader.document(doc_id)
    if found is None:
        raise NotFound(f"no document with id {doc_id!r}")
    passages = [
        DocumentPassage(
            id=p.id,
            ordinal=p.ordinal,
            page=p.page,
            char_start=p.char_start,
            char_end=p.char_end,
            heading=p.heading,
            speaker=p.speaker,
            text=p.text,
            permalink=permalink(p.id),
        )
        for _, p in reader.passages_of(doc_id)
    ]
    return DocumentDetail(**found.to_dict(), citation=citation(found), passages=passages)


def facets(reader: IndexReader) -> Facets:
    """Values the filters can take in the loaded index (for the chat's menus)."""
    db = reader.db
    doctypes = [
        r[0]
        for r in db.execute(
            "SELECT doctype FROM documents WHERE doctype IS NOT NULL "
            "GROUP BY doctype ORDER BY COUNT(*) DESC, doctype"
        )
    ]
    riksmoten = [
        r[0]
        for r in db.execute(
            "SELECT DISTINCT rm FROM documents WHERE rm IS NOT NULL ORDER BY rm DESC"
        )
    ]
    return Facets(doctypes=doctypes, riksmoten=riksmoten)


def _context(text: str, start: int, end: int, margin: int = 1500) -> Context:
    """The passage inside its surrounding document text, cut at paragraph edges."""
    lo = max(0, start - margin)
    hi = min(len(text), end + margin)
    if lo > 0:
        cut = text.find("\n\n", lo, start)
        lo = cut + 2 if cut >= 0 else lo
    if hi < len(text):
        cut = text.rfind("\n\n", end, hi)
        hi = cut if cut >= 0 else hi
    return Context(before=text[lo:start], passage=text[start:end], after=text[end:hi])
