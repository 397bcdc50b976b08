from __future__ import annotations

import pytest

from qa_service import validation
from qa_service.config import Settings
from qa_service.errors import InvalidRequest
from qa_service.models import Filters, SearchRequest


def test_arguments_are_checked_as_a_json_body_is() -> None:
    settings = Settings()
    asked = validation.asked("  Vad är yrkesvux?  ", None, {"party": "M"}, "dense", settings)
    body = {"question": "  Vad är yrkesvux?  ", "filters": {"party": "M"}, "mode": "dense"}
    assert asked == validation.ask_request(body, settings)
    assert (asked.question, asked.top_k, asked.mode) == ("Vad är yrkesvux?", 5, "dense")
    with pytest.raises(InvalidRequest, match="'mode' must be one of"):
        validation.asked("Vad är yrkesvux?", None, None, "fuzzy", settings)
    with pytest.raises(InvalidRequest, match="'top_k' must lie between"):
        validation.asked("Vad är yrkesvux?", 0, None, "hybrid", settings)


def test_a_search_is_asked_as_a_question_on_its_own() -> None:
    filters = Filters(party="M")
    search = SearchRequest.model_construct(q="yrkesvux", top_k=3, filters=filters)
    asked = search.as_ask()
    assert (asked.question, asked.top_k, asked.filters) == ("yrkesvux", 3, filters)
    assert (asked.mode, asked.conversation_id) == ("hybrid", None)
