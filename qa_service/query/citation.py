"""Stage 6: the cited passages: each hit as the API's passage object, with a citation a
person can paste into a draft (:mod:`qa_service.answer`) and its permalink."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..answer import passage_dict
from ..schema import Hit

logger = logging.getLogger(__name__)


def permalink(passage_id: str) -> str:
    """The passage's page in the chat."""
    return f"/p/{passage_id}"


def cite(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """The passage objects of ``hits``, in their order."""
    return [passage_dict(hit, permalink(hit.passage.id)) for hit in hits]
