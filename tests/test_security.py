from __future__ import annotations

import dataclasses

import pytest

from qa_service.config import ConfigError, Settings
from qa_service.web import create_app
from qa_service.web.security import key_digest, key_is_valid

pytestmark = pytest.mark.model

KEY = "intranät-nyckel-1"


@pytest.mark.parametrize(
    ("key", "digests", "valid"),
    [
        (KEY, (key_digest(KEY),), True),
        (KEY, (key_digest("annan"), key_digest(KEY).upper()), True),
        ("fel", (key_digest(KEY),), False),
        ("", (key_digest(KEY),), False),
        (None, (key_digest(KEY),), False),
        (KEY, (), False),
    ],
)
def test_key_is_valid(key: str | None, digests: tuple[str, ...], valid: bool) -> None:
    assert key_is_valid(key, digests) is valid


def test_keys_need_a_secret_and_must_be_digests() -> None:
    with pytest.raises(ConfigError, match="QA_SECRET_KEY"):
        Settings.from_env({"QA_API_KEYS_SHA256": key_digest(KEY)})
    with pytest.raises(ConfigError, match="digests"):
        Settings.from_env({"QA_API_KEYS_SHA256": KEY, "QA_SECRET_KEY": "s"})


@pytest.fixture
def locked(small_index, service):  # type: ignore[no-untyped-def]
    settings = dataclasses.replace(
        small_index,
        api_keys_sha256=(key_digest(KEY),),
        secret_key="test-secret",
        cors_origins=("https://intranat.example",),
        rate_limit="5/minute",
    )
    return create_app(settings, service=service).test_client()


def test_api_needs_a_key_when_keys_are_configured(locked) -> None:  # type: ignore[no-untyped-def]
    body = {"question": "yrkesvux"}
    response = locked.post("/api/ask", json=body)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert locked.post("/api/ask", json=body, headers={"X-API-Key": "fel"}).status_code == 401
    assert locked.post("/api/ask", json=body, headers={"X-API-Key": KEY}).status_code == 200
    assert locked.get("/api/health").status_code == 200


def test_chat_page_session_may_use_the_api(locked) -> None:  # type: ignore[no-untyped-def]
    assert locked.get("/").status_code == 200
    assert locked.post("/api/ask", json={"question": "yrkesvux"}).status_code == 200


def test_cors_only_for_configured_origins(locked) -> None:  # type: ignore[no-untyped-def]
    headers = {"X-API-Key": KEY, "Origin": "https://intranat.example"}
    response = locked.get("/api/search?q=yrkesvux", headers=headers)
    assert response.headers["Access-Control-Allow-Origin"] == "https://intranat.example"
    other = locked.get("/api/search?q=yrkesvux", headers={**headers, "Origin": "https://x.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = locked.options(
        "/api/ask",
        headers={"Origin": "https://intranat.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 204
    assert "X-API-Key" in preflight.headers["Access-Control-Allow-Headers"]


def test_rate_limit_answers_429_in_the_error_shape(locked) -> None:  # type: ignore[no-untyped-def]
    headers = {"X-API-Key": KEY}
    statuses = [locked.get("/api/search?q=sfi", headers=headers).status_code for _ in range(7)]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
    error = locked.get("/api/search?q=sfi", headers=headers).get_json()["error"]
    assert error["status"] == 429 and error["code"] == "too_many_requests"
    # Probes are never limited.
    assert locked.get("/api/health").status_code == 200


def test_open_api_by_default_has_no_cors(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/api/search?q=sfi", headers={"Origin": "https://x.example"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
