"""The checks a request's values pass before the pipeline sees them (one place, with
the messages clients get)."""

from __future__ import annotations

import logging
from typing import Any

from .config import Settings
from .errors import InvalidRequest, NotFound
from .filters import FilterError, Filters, has_surrogates
from .query.analysis import MODES, Mode

logger = logging.getLogger(__name__)

#: Conversation ids are 32 hex digits; a longer string names none.
MAX_CONVERSATION_ID = 64


def question(value: Any, settings: Settings) -> str:
    """The question as text: NULs as spaces, stripped, not empty, not too long."""
    if not isinstance(value, str):
        raise InvalidRequest("'question' must be a string")
    if has_surrogates(value):
        raise InvalidRequest("'question' holds a lone surrogate, which is not text")
    value = value.replace("\x00", " ").strip()
    if not value:
        raise InvalidRequest("'question' must not be empty")
    if len(value) > settings.max_question_chars:
        raise InvalidRequest(f"'question' is longer than {settings.max_question_chars} characters")
    return value


def top_k(value: Any, settings: Settings) -> int:
    if value is None:
        return settings.default_top_k
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 5.0 is a whole number
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest("'top_k' must be a whole number")
    if not 1 <= value <= settings.max_top_k:
        raise InvalidRequest(f"'top_k' must lie between 1 and {settings.max_top_k}")
    return value


def mode(value: Any) -> Mode:
    for known in MODES:
        if value == known:
            return known
    raise InvalidRequest(f"'mode' must be one of {', '.join(MODES)}")


def filters(value: Filters | dict[str, Any] | None) -> Filters:
    if isinstance(value, Filters):
        return value
    try:
        return Filters.from_mapping(value or {})
    except FilterError as exc:
        raise InvalidRequest(str(exc)) from exc


def conversation_id(value: Any) -> str | None:
    """A conversation id that may name one (None: none given)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest("'conversation_id' must be a string")
    if has_surrogates(value) or len(value) > MAX_CONVERSATION_ID:
        raise NotFound("no conversation with that id")
    return value
