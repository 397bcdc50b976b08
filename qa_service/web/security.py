"""API keys, CORS and rate limits for /api/*.

- API keys: when ``QA_API_KEYS_SHA256`` lists SHA-256 digests, every /api/* request needs
  a key in ``X-API-Key`` whose digest is listed (compared in constant time). The chat
  page keeps working for people: loading ``/`` gives the browser a signed same-origin
  session cookie that the API accepts instead of a key. Without configured keys the API
  is open (local use).
- CORS: off unless ``QA_CORS_ORIGINS`` names origins; only those get CORS headers.
- Rate limit: ``QA_RATE_LIMIT`` per key (or per address without one), per worker.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import Flask, Response, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from ..config import Settings
from ..errors import QAError

API_KEY_HEADER = "X-API-Key"
OPEN_PATHS = frozenset({"/api/health", "/api/ready", "/api/openapi.json"})


class Unauthorized(QAError):
    status = 401
    code = "unauthorized"


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_is_valid(key: str | None, digests: tuple[str, ...]) -> bool:
    if not key:
        return False
    given = key_digest(key)
    # Check every digest so the time taken does not depend on which one matched.
    matched = False
    for digest in digests:
        matched |= hmac.compare_digest(given, digest.lower())
    return matched


def _client_key() -> str:
    key = request.headers.get(API_KEY_HEADER)
    return "key:" + key_digest(key) if key else "ip:" + get_remote_address()


def install(app: Flask, settings: Settings) -> None:
    digests = settings.api_keys_sha256
    origins = set(settings.cors_origins)

    @app.before_request
    def _authorise() -> Response | None:
        if request.method == "OPTIONS" and request.path.startswith("/api/"):
            return _preflight()
        if not digests or not request.path.startswith("/api/") or request.path in OPEN_PATHS:
            return None
        if key_is_valid(request.headers.get(API_KEY_HEADER), digests):
            return None
        if session.get("chat"):
            return None
        raise Unauthorized(f"a valid API key is required in the {API_KEY_HEADER} header")

    @app.after_request
    def _cors(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin and origin in origins and request.path.startswith("/api/"):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response

    def _preflight() -> Response:
        response = Response(status=204)
        origin = request.headers.get("Origin")
        if origin and origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE"
            response.headers["Access-Control-Allow-Headers"] = f"Content-Type, {API_KEY_HEADER}"
            response.headers["Access-Control-Max-Age"] = "600"
            response.headers["Vary"] = "Origin"
        return response

    limiter = Limiter(
        _client_key,
        app=app,
        default_limits=[settings.rate_limit] if settings.rate_limit else [],
        storage_uri="memory://",
        headers_enabled=True,
    )
    # Only the API is limited; pages, assets and probes are not.
    limiter.request_filter(
        lambda: not request.path.startswith("/api/") or request.path in OPEN_PATHS
    )


def mark_chat_session() -> Any:
    """Called by the chat page: this browser may use the API without a key."""
    session["chat"] = True
    session.permanent = True
