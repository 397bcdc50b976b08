"""Property-based API tests generated from /api/openapi.json: no 5xx, no schema violation.

Each operation on its own with data that fits the schema and data that does not
(negative: every answer must then be a 4xx), and stateful runs that follow the schema's
links: ask, follow up in the conversation, read it back, delete it.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core.control import SkipTest

pytestmark = pytest.mark.model

SETTINGS = {
    "derandomize": True,
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
    "database": None,
}


@pytest.fixture
def schema(app):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi_document(schema, mode) -> None:  # type: ignore[no-untyped-def]
    schema.config.generation.update(modes=[mode])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    tested = 0
    for operation in operations:
        try:
            strategy = operation.as_strategy(generation_mode=mode)

            @given(case=strategy)
            @settings(max_examples=40, **SETTINGS)
            def check(case) -> None:  # type: ignore[no-untyped-def]
                case.call_and_validate()

            check()
            tested += 1
        except SkipTest:
            # Nothing of this operation can be made invalid (a bare string path id).
            assert mode is GenerationMode.NEGATIVE
    assert tested >= (9 if mode is GenerationMode.POSITIVE else 2)


def test_conversations_statefully(schema) -> None:  # type: ignore[no-untyped-def]
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    machine = schema.as_state_machine()
    machine.run(settings=settings(max_examples=25, stateful_step_count=6, **SETTINGS))
