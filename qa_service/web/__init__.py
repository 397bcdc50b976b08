"""Flask application factory; the service lives in ``app.extensions["qa"]``."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from ..config import Settings
from ..errors import QAError
from ..service import QAService

logger = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str) -> tuple[Any, int]:
    """The one JSON error shape: ``{"error": {"status", "code", "message"}}``."""
    return jsonify({"error": {"status": status, "code": code, "message": message}}), status


def create_app(settings: Settings | None = None, *, service: QAService | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.config["SECRET_KEY"] = settings.secret_key or secrets.token_hex(32)
    app.config["SESSION_COOKIE_SAMESITE"] = "Strict"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    qa = service or QAService(settings)
    app.extensions["qa"] = qa

    from . import metrics, security
    from .api import api
    from .chat import chat

    app.register_blueprint(api)
    app.register_blueprint(chat)
    metrics.install(app)
    security.install(app, settings)

    @app.errorhandler(QAError)
    def handle_domain_error(exc: QAError) -> tuple[Any, int]:
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        code = (exc.name or "error").lower().replace(" ", "_")
        response, _ = error_response(status, code, exc.description or exc.name or "error")
        # The exception's own headers say what the client can do next (405: Allow).
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, status

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> tuple[Any, int]:
        logger.exception("unhandled error")
        return error_response(500, "internal_error", "internal server error")

    return app
