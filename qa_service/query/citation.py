"""Stage 6: the cited passages: each hit as the API's passage, with a citation a person
can paste into a draft (:mod:`qa_service.answer`) and its permalink."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..answer import citation, citation_markdown
from ..models import Document, Passage
from ..schema import Document as StoredDocument
from ..schema import Hit

logger = logging.getLogger(__name__)


def permalink(passage_id: str) -> str:
    """The passage's page in the chat."""
    return f"/p/{passage_id}"


def document_model(document: StoredDocument) -> Document:
    return Document.model_validate(document.to_dict())


def passage_model(hit: Hit) -> Passage:
    """The API's passage of one hit."""
    passage, document = hit.passage, hit.document
    return Passage(
        id=passage.id,
        rank=hit.rank,
        score=round(hit.score, 6),
        text=passage.text,
        source=document.source,
        page=passage.page,
        char_start=passage.char_start,
        char_end=passage.char_end,
        heading=passage.heading,
        speaker=passage.speaker,
        party=passage.party,
        citation=citation(document, passage),
        citation_markdown=citation_markdown(document, passage),
        permalink=permalink(passage.id),
        also_in=hit.also_in,
        document=document_model(document),
    )


def cite(hits: Sequence[Hit]) -> list[Passage]:
    """The passages of ``hits``, in their order."""
    return [passage_model(hit) for hit in hits]
