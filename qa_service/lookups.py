"""Looking things up in the loaded build: a passage in its context, a document with its
passages, the values the filters can take."""

from __future__ import annotations

import logging
from typing import Any

from .answer import citation, passage_dict
from .errors import NotFound
from .query.citation import permalink
from .schema import Hit
from .store import IndexReader

logger = logging.getLogger(__name__)


def passage(reader: IndexReader, passage_id: str) -> dict[str, Any]:
    found = reader.passage(passage_id)
    if found is None:
        raise NotFound(f"no passage with id {passage_id!r}")
    _row, item = found
    document = reader.document(item.doc_id)
    if document is None:  # pragma: no cover
        raise NotFound(f"no document for passage {passage_id!r}")
    data = passage_dict(Hit(item, document, 0.0, 0), permalink(item.id))
    data.pop("rank")
    data.pop("score")
    data["context"] = _context(document.text, item.char_start, item.char_end)
    return data


def document(reader: IndexReader, doc_id: str) -> dict[str, Any]:
    """A document's metadata and its passages (without the full text)."""
    found = reader.document(doc_id)
    if found is None:
        raise NotFound(f"no document with id {doc_id!r}")
    data = found.to_dict()
    data["citation"] = citation(found)
    data["passages"] = [
        {
            "id": p.id,
            "ordinal": p.ordinal,
            "page": p.page,
            "char_start": p.char_start,
            "char_end": p.char_end,
            "heading": p.heading,
            "speaker": p.speaker,
            "text": p.text,
            "permalink": permalink(p.id),
        }
        for _, p in reader.passages_of(doc_id)
    ]
    return data


def facets(reader: IndexReader) -> dict[str, list[str]]:
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
    return {"doctypes": doctypes, "riksmoten": riksmoten}


def _context(text: str, start: int, end: int, margin: int = 1500) -> dict[str, Any]:
    """The passage inside its surrounding document text, cut at paragraph edges."""
    lo = max(0, start - margin)
    hi = min(len(text), end + margin)
    if lo > 0:
        cut = text.find("\n\n", lo, start)
        lo = cut + 2 if cut >= 0 else lo
    if hi < len(text):
        cut = text.rfind("\n\n", end, hi)
        hi = cut if cut >= 0 else hi
    return {"before": text[lo:start], "passage": text[start:end], "after": text[end:hi]}
