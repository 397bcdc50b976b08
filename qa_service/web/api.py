"""JSON API: validate, call the service, serialise. Nothing else lives here."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from ..errors import InvalidRequest
from ..filters import Filters
from ..service import QAService
from .openapi import openapi_document

api = Blueprint("api", __name__, url_prefix="/api")

ASK_FIELDS = {"question", "top_k", "filters", "mode", "conversation_id"}


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
    body = _json_body()
    unknown = set(body) - ASK_FIELDS
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    if "question" not in body:
        raise InvalidRequest("'question' is required")
    filters = body.get("filters")
    if filters is not None and not isinstance(filters, dict):
        raise InvalidRequest("'filters' must be an object")
    mode = body.get("mode", "hybrid")
    if not isinstance(mode, str):
        raise InvalidRequest("'mode' must be a string")
    result = _service().ask(
        body["question"],
        body.get("top_k"),
        filters=filters,
        mode=mode,  # type: ignore[arg-type]
        conversation_id=body.get("conversation_id"),
    )
    return jsonify(result)


@api.get("/conversations/<conversation_id>")
def conversation(conversation_id: str) -> Any:
    return jsonify(_service().conversation(conversation_id))


@api.delete("/conversations/<conversation_id>")
def delete_conversation(conversation_id: str) -> Any:
    _service().delete_conversation(conversation_id)
    return "", 204


SEARCH_PARAMS = {"q", "top_k", *Filters.__dataclass_fields__}


@api.get("/search")
def search() -> Any:
    args = request.args
    unknown = set(args) - SEARCH_PARAMS
    if unknown:
        raise InvalidRequest(f"unknown query parameter(s): {', '.join(sorted(unknown))}")
    if "q" not in args:
        raise InvalidRequest("query parameter 'q' is required")
    top_k: Any = args.get("top_k")
    if top_k is not None:
        try:
            top_k = int(top_k)
        except ValueError as exc:
            raise InvalidRequest("'top_k' must be a whole number") from exc
    filters = {key: args[key] for key in Filters.__dataclass_fields__ if key in args}
    result = _service().lookup(args["q"], top_k, filters=filters)
    response = jsonify(result)
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
    return jsonify(_service().document(doc_id))


@api.get("/passages/<passage_id>")
def passage(passage_id: str) -> Any:
    return jsonify(_service().passage(passage_id))


@api.get("/facets")
def facets() -> Any:
    return jsonify(_service().facets())


@api.get("/health")
def health() -> Any:
    return jsonify(_service().health())


@api.get("/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_document())


@api.get("/ready")
def ready() -> Any:
    return jsonify(_service().ready())
