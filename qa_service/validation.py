"""The checks a request's values pass at the HTTP and CLI edges, before the service sees
them: one place, with the messages clients get."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from .config import Settings
from .errors import InvalidRequest, NotFound
from .filters import FilterError, Filters, has_surrogates
from .models import AskRequest, SearchRequest
from .models import Filters as RequestFilters
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


def filters(value: Filters | RequestFilters | Mapping[str, Any] | None) -> Filters:
    if isinstance(value, Filters):
        return value
    if isinstance(value, RequestFilters):
        value = value.model_dump(exclude_none=True)
    try:
        return Filters.from_mapping(dict(value or {}))
    except FilterError as exc:
        raise InvalidRequest(str(exc)) from exc


def conversation_id(value: Any, exists: Callable[[str], bool] | None = None) -> str | None:
    """A conversation id that names one (None: none given). A value that cannot be an id
    names no conversation, as an unknown id: both are 404. With ``exists``, an id whose
    conversation is not stored is 404 here, before the request's other values are checked
    (the order clients have always met)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise NotFound(f"no conversation with id {value!r}")
    if has_surrogates(value) or len(value) > MAX_CONVERSATION_ID:
        raise NotFound("no conversation with that id")
    if exists is not None and not exists(value):
        raise NotFound(f"no conversation with id {value!r}")
    return value


ASK_FIELDS = frozenset(AskRequest.model_fields)
FILTER_FIELDS = tuple(RequestFilters.model_fields)
SEARCH_PARAMS = frozenset({"q", "top_k", *FILTER_FIELDS})


def request_filters(checked: Filters) -> RequestFilters | None:
    return None if checked.is_empty() else RequestFilters(**checked.to_dict())


def ask_request(
    body: Mapping[str, Any],
    settings: Settings,
    conversation_exists: Callable[[str], bool] | None = None,
) -> AskRequest:
    """``POST /api/ask``'s JSON object (or the CLI's values) as a checked request.

    The checks run in the order clients have always met them, with the same messages: an
    unknown ``conversation_id`` (looked up with ``conversation_exists``) is 404 before the
    values after the question are checked.
    """
    unknown = set(body) - ASK_FIELDS
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    if "question" not in body:
        raise InvalidRequest("'question' is required")
    given_filters = body.get("filters")
    if given_filters is not None and not isinstance(given_filters, dict):
        raise InvalidRequest("'filters' must be an object")
    given_mode = body.get("mode", "hybrid")
    if not isinstance(given_mode, str):
        raise InvalidRequest("'mode' must be a string")
    text = question(body["question"], settings)
    conversation = conversation_id(body.get("conversation_id"), conversation_exists)
    k = top_k(body.get("top_k"), settings)
    checked_mode = mode(given_mode)
    checked = filters(given_filters)
    return AskRequest.model_construct(
        question=text,
        top_k=k,
        filters=request_filters(checked),
        mode=checked_mode,
        conversation_id=conversation,
    )


def asked(
    question: str,
    top_k: int | None,
    filters: Mapping[str, str] | None,
    mode: str,
    settings: Settings,
) -> AskRequest:
    """A question and its values given as arguments (not JSON) as a checked request, with
    the checks and messages of :func:`ask_request`."""
    given = {"question": question, "top_k": top_k, "filters": filters, "mode": mode}
    return ask_request(given, settings)


def search_request(args: Mapping[str, str], settings: Settings) -> SearchRequest:
    """``GET /api/search``'s query parameters as a checked request."""
    unknown = set(args) - SEARCH_PARAMS
    if unknown:
        raise InvalidRequest(f"unknown query parameter(s): {', '.join(sorted(unknown))}")
    if "q" not in args:
        raise InvalidRequest("query parameter 'q' is required")
    given_k: int | None = None
    if args.get("top_k") is not None:
        try:
            given_k = int(args["top_k"])
        except ValueError as exc:
            raise InvalidRequest("'top_k' must be a whole number") from exc
    text = question(args["q"], settings)
    k = top_k(given_k, settings)
    checked = filters({key: args[key] for key in FILTER_FIELDS if key in args})
    return SearchRequest.model_construct(q=text, top_k=k, filters=request_filters(checked))
