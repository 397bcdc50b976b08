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


def locked_client(small_index, service, rate_limit: str = "60/minute"):  # type: ignore[no-untyped-def]
    settings = dataclasses.replace(
        small_index,
        api_keys_sha256=(key_digest(KEY),),
        secret_key="test-secret",
        cors_origins=("https://intranat.example",),
        rate_limit=rate_limit,
    )
    return create_app(settings, service=service).test_client()


@pytest.fixture
def locked(small_index, service):  # type: ignore[no-untyped-def]
    return locked_client(small_index, service)


@pytest.fixture
def limited(small_index, service):  # type: ignore[no-untyped-def]
    return locked_client(small_index, service, "5/minute")


def test_api_needs_a_key_when_keys_are_configured(locked) -> None:  # type: ignore[no-untyped-def]
    body = {"question": "yrkesvux"}
    response = locked.post("/api/ask", json=body)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert locked.post("/api/ask", json=body, headers={"X-API-Key": "fel"}).status_code == 401
    assert locked.post("/api/ask", json=body, headers={"X-API-Key": KEY}).status_code == 200
    assert locked.get("/api/health").status_code == 200


def sign_in(client, key: str = KEY, **headers: str):  # type: ignore[no-untyped-def]
    return client.post("/login", data={"key": key, "next": "/"}, headers=headers)


def test_the_chat_page_gives_no_session_without_a_key(locked) -> None:  # type: ignore[no-untyped-def]
    page = locked.get("/")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert "Set-Cookie" not in page.headers
    assert locked.post("/api/ask", json={"question": "yrkesvux"}).status_code == 401
    assert sign_in(locked, "fel").status_code == 401
    assert locked.post("/api/ask", json={"question": "yrkesvux"}).status_code == 401


def test_a_signed_in_session_may_use_the_chat_and_nothing_more(locked) -> None:  # type: ignore[no-untyped-def]
    signed = sign_in(locked)
    assert signed.status_code == 303 and signed.headers["Location"] == "/"
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert locked.get("/").status_code == 200
    data = locked.post("/api/ask", json={"question": "yrkesvux"}).get_json()
    assert locked.get(data["passages"][0]["permalink"]).status_code == 200
    assert locked.get(f"/api/conversations/{data['conversation_id']}").status_code == 200
    assert locked.get("/api/facets").status_code == 200
    # Machine endpoints need the key itself.
    for path in ("/api/search?q=sfi", f"/api/documents/{data['passages'][0]['document']['id']}"):
        response = locked.get(path)
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "forbidden"
    assert locked.get("/metrics").status_code == 403
    locked.post("/logout")
    assert locked.post("/api/ask", json={"question": "yrkesvux"}).status_code == 401


def test_a_session_ends_when_its_key_is_no_longer_listed(small_index, service, locked) -> None:  # type: ignore[no-untyped-def]
    sign_in(locked)
    cookie = locked.get_cookie("session")
    assert cookie is not None
    other = dataclasses.replace(
        small_index,
        api_keys_sha256=(key_digest("ny nyckel"),),
        secret_key="test-secret",
    )
    client = create_app(other, service=service).test_client()
    client.set_cookie("session", cookie.value)
    assert client.post("/api/ask", json={"question": "yrkesvux"}).status_code == 401


def test_permalinks_and_metrics_need_a_key(locked) -> None:  # type: ignore[no-untyped-def]
    top = locked.get("/api/search?q=yrkesvux", headers={"X-API-Key": KEY}).get_json()
    permalink = top["passages"][0]["permalink"]
    assert locked.get(permalink).status_code == 302
    assert locked.get("/metrics").status_code == 401
    assert locked.get(permalink, headers={"X-API-Key": KEY}).status_code == 200
    assert locked.get("/metrics", headers={"X-API-Key": KEY}).status_code == 200


def test_answers_behind_a_key_are_not_for_shared_caches(locked, client) -> None:  # type: ignore[no-untyped-def]
    response = locked.get("/api/search?q=yrkesvux", headers={"X-API-Key": KEY})
    assert "private" in response.headers["Cache-Control"]
    assert "public" not in response.headers["Cache-Control"]
    assert {"X-API-Key", "Cookie"} <= set(response.vary)
    open_api = client.get("/api/search?q=yrkesvux")
    assert "public" in open_api.headers["Cache-Control"]


def test_the_session_cookie_is_secure_behind_a_tls_proxy(small_index, service) -> None:  # type: ignore[no-untyped-def]
    settings = dataclasses.replace(
        small_index, api_keys_sha256=(key_digest(KEY),), secret_key="s", proxies=1
    )
    client = create_app(settings, service=service).test_client()
    over_tls = sign_in(client, **{"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.1.2.3"})
    assert "Secure" in over_tls.headers["Set-Cookie"]
    assert over_tls.headers["Strict-Transport-Security"].startswith("max-age=")
    # Without a proxy in front, a client's own X-Forwarded-Proto is not believed.
    direct = dataclasses.replace(settings, proxies=0)
    plain = sign_in(
        create_app(direct, service=service).test_client(), **{"X-Forwarded-Proto": "https"}
    )
    assert "Secure" not in plain.headers["Set-Cookie"]


def test_wrong_keys_count_against_the_address(limited) -> None:  # type: ignore[no-untyped-def]
    import secrets

    statuses = [
        limited.get("/api/search?q=sfi", headers={"X-API-Key": secrets.token_hex(8)}).status_code
        for _ in range(7)
    ]
    assert statuses == [401] * 5 + [429] * 2
    # Guessing at the sign-in page counts too.
    assert sign_in(limited, "gissning").status_code == 429


def test_sign_in_goes_back_only_to_this_service(locked) -> None:  # type: ignore[no-untyped-def]
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = locked.post("/login", data={"key": KEY, "next": target})
        assert response.headers["Location"] == "/"
    response = locked.post("/login", data={"key": KEY, "next": "/p/abc"})
    assert response.headers["Location"] == "/p/abc"


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


def test_rate_limit_answers_429_in_the_error_shape(limited) -> None:  # type: ignore[no-untyped-def]
    headers = {"X-API-Key": KEY}
    statuses = [limited.get("/api/search?q=sfi", headers=headers).status_code for _ in range(7)]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
    error = limited.get("/api/search?q=sfi", headers=headers).get_json()["error"]
    assert error["status"] == 429 and error["code"] == "too_many_requests"
    # Probes are never limited.
    assert limited.get("/api/health").status_code == 200


def test_open_api_by_default_has_no_cors(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/api/search?q=sfi", headers={"Origin": "https://x.example"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
