"""JSON API: validate, call the service, serialise. Nothing else lives here."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from .. import validation
from ..errors import InvalidRequest
from ..service import QAService
from .openapi import openapi_document

api = Blueprint("api", __name__, url_prefix="/api")


def _service() -> QAService:
    service: QAService = current_app.extensions["qa"]
    return service


def _json_body() -> dict[str, Any]:
    if not request.is_json:
        raise InvalidRequest(
            "the request body must be a JSON object (Content-Type: application/json)"
        )
    try:
        data = json.loads(request.get_data(cache=True))
    except RecursionError as exc:
        # Python's parser gives up near 1,000 levels; no request of this API nests deeper
        # than three.
        raise InvalidRequest("the request body is nested too deeply") from exc
    except ValueError as exc:  # not JSON, or not UTF-8
        raise InvalidRequest(f"the request body must be a JSON object ({exc})") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return data


@api.post("/ask")
def ask() -> Any:
    service = _service()
    exists = service.conversations.exists
    request = validation.ask_request(_json_body(), service.settings, exists)
    return jsonify(service.ask(request).json_data())


@api.get("/conversations/<conversation_id>")
def conversation(conversation_id: str) -> Any:
    return jsonify(_service().conversation(conversation_id).json_data())


@api.delete("/conversations/<conversation_id>")
def delete_conversation(conversation_id: str) -> Any:
    _service().delete_conversation(conversation_id)
    return "", 204


@api.get("/search")
def search() -> Any:
    service = _service()
    result = service.lookup(validation.search_request(request.args, service.settings))
    response = jsonify(result.json_data())
    # Same index build + same query => same answer: let proxies and clients cache it.
    response.set_etag(hashlib.sha256(response.get_data()).hexdigest()[:32])
    if current_app.config.get("QA_KEYS_REQUIRED"):
        # Behind keys, an answer is for the client that asked: no shared cache keeps it.
        response.cache_control.private = True
    else:
        response.cache_control.public = True
    response.cache_control.max_age = 300
    return response.make_conditional(request)


@api.get("/documents/<doc_id>")
def document(doc_id: str) -> Any:
    return jsonify(_service().document(doc_id).json_data())


@api.get("/passages/<passage_id>")
def passage(passage_id: str) -> Any:
    return jsonify(_service().passage(passage_id).json_data())


@api.get("/facets")
def facets() -> Any:
    return jsonify(_service().facets().json_data())


@api.get("/health")
def health() -> Any:
    return jsonify(_service().health().json_data())


@api.get("/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_document())


@api.get("/ready")
def ready() -> Any:
    return jsonify(_service().ready().json_data())
