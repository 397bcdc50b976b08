"""The OpenAPI 3.1 description of the JSON API, served at ``/api/openapi.json``,
generated from the request and response models (:mod:`qa_service.models`).

Every operation has an id, a tag and named component schemas, so a generated client has
``ask()`` returning an ``AskResponse``.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import __version__
from .. import models as m

logger = logging.getLogger(__name__)

REF = "#/components/schemas/{model}"
#: The question's schema (at most 1000 characters, one the server does not strip).
QUESTION: dict[str, Any] = m.AskRequest.model_json_schema()["properties"]["question"]
#: Every model a request or an answer uses; their schemas are the document's components.
MODELS: tuple[type[BaseModel], ...] = (
    m.Error,
    m.AskRequest,
    m.AskResponse,
    m.SearchResponse,
    m.PassageDetail,
    m.DocumentDetail,
    m.Conversation,
    m.Facets,
    m.Health,
    m.Ready,
)

#: What a client does next with an answer: follow up in its conversation, read it back,
#: delete it, look at a cited passage (stateful tests walk these).
_CONVERSATION = "$response.body#/conversation_id"
ASK_LINKS = {
    "FollowUp": {
        "operationId": "ask",
        "requestBody": {
            "question": "Och hur många av dem är barn?",
            "conversation_id": _CONVERSATION,
        },
    },
    "GetConversation": {
        "operationId": "conversation",
        "parameters": {"conversation_id": _CONVERSATION},
    },
    "DeleteConversation": {
        "operationId": "deleteConversation",
        "parameters": {"conversation_id": _CONVERSATION},
    },
    "GetPassage": {
        "operationId": "passage",
        "parameters": {"passage_id": "$response.body#/passages/0/id"},
    },
}

_ERRORS = {
    "400": "Invalid request",
    "401": "Missing or wrong API key",
    "404": "Not found",
    "413": "Request body too large",
    "429": "Too many requests",
    "503": "Index not available",
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _responses(model: type[BaseModel] | None, *, errors: bool = True) -> dict[str, Any]:
    answers: dict[str, Any] = {"200": _json(model)} if model is not None else {}
    if errors:
        answers.update({status: _json(m.Error, text) for status, text in _ERRORS.items()})
    return answers


def _operation(
    operation_id: str, tag: str, summary: str, responses: dict[str, Any], **more: Any
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        **more,
        "responses": responses,
    }


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _search_parameters(schemas: dict[str, Any]) -> list[dict[str, Any]]:
    """``GET /api/search`` takes the request's fields and each filter as a parameter."""
    request = m.SearchRequest.model_json_schema(ref_template=REF)
    filters = schemas["Filters"]["properties"]
    parameters = [
        {"name": "q", "in": "query", "required": True, "schema": request["properties"]["q"]},
        {
            "name": "top_k",
            "in": "query",
            "required": False,
            "schema": _not_null(request["properties"]["top_k"]),
        },
    ]
    for name, schema in filters.items():
        parameters.append(
            {"name": name, "in": "query", "required": False, "schema": _not_null(schema)}
        )
    return parameters


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is given or absent, never null: the schema without the null."""
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if len(options) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    return {**options[0], **rest}


@cache
def openapi_document() -> dict[str, Any]:
    _, defs = models_json_schema([(model, "validation") for model in MODELS], ref_template=REF)
    schemas: dict[str, Any] = defs["$defs"]
    ask_ok = {**_json(m.AskResponse), "links": ASK_LINKS}
    conversation_id = [_path_id("conversation_id")]
    paths = {
        "/api/ask": {
            "post": _operation(
                "ask",
                "questions",
                "Answer a question with cited passages (in a conversation)",
                {**_responses(None), "200": ask_ok},
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": _ref(m.AskRequest)}},
                },
            )
        },
        "/api/search": {
            "get": _operation(
                "search",
                "questions",
                "Passages for a query; cacheable, no conversation",
                {
                    **_responses(m.SearchResponse),
                    "304": {"description": "Not modified (ETag matched)"},
                },
                parameters=_search_parameters(schemas),
            )
        },
        "/api/passages/{passage_id}": {
            "get": _operation(
                "passage",
                "documents",
                "One passage with its citation and surrounding text",
                _responses(m.PassageDetail),
                parameters=[_path_id("passage_id")],
            )
        },
        "/api/documents/{doc_id}": {
            "get": _operation(
                "document",
                "documents",
                "A document's metadata and passages",
                _responses(m.DocumentDetail),
                parameters=[_path_id("doc_id")],
            )
        },
        "/api/conversations/{conversation_id}": {
            "get": _operation(
                "conversation",
                "conversations",
                "A conversation's turns with their cited passages",
                _responses(m.Conversation),
                parameters=conversation_id,
            ),
            "delete": _operation(
                "deleteConversation",
                "conversations",
                "Delete a conversation",
                {"204": {"description": "Deleted"}, **_responses(None)},
                parameters=conversation_id,
            ),
        },
        "/api/facets": {
            "get": _operation(
                "facets", "documents", "Values the filters can take", _responses(m.Facets)
            )
        },
        "/api/health": {
            "get": _operation("health", "service", "Liveness", _responses(m.Health, errors=False))
        },
        "/api/ready": {
            "get": _operation(
                "ready", "service", "Readiness and the loaded index's manifest", _responses(m.Ready)
            )
        },
        "/api/openapi.json": {
            "get": _operation(
                "openapi",
                "service",
                "This document",
                {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "qa_service",
            "version": __version__,
            "description": "Answers with cited passages from Swedish parliamentary documents.",
        },
        "tags": [
            {"name": "questions", "description": "Ask and search"},
            {"name": "documents", "description": "Passages, documents and the filters' values"},
            {"name": "conversations", "description": "A conversation's turns"},
            {"name": "service", "description": "Liveness, readiness, this document"},
        ],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
        "paths": paths,
    }
