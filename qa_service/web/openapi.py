"""The OpenAPI 3 description of the JSON API, served at ``/api/openapi.json``."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..filters import DATE_PATTERN

_STRING_OR_NULL = {"type": ["string", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "code", "message"],
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
            },
        }
    },
}

PERSON = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "party": _STRING_OR_NULL, "role": _STRING_OR_NULL},
}

DOCUMENT = {
    "type": "object",
    "required": ["id", "source", "title"],
    "properties": {
        "id": {"type": "string"},
        "source": {"type": "string"},
        "title": {"type": "string"},
        "doctype": _STRING_OR_NULL,
        "dok_id": _STRING_OR_NULL,
        "rm": _STRING_OR_NULL,
        "beteckning": _STRING_OR_NULL,
        "date": _STRING_OR_NULL,
        "authors": {"type": "array", "items": {"$ref": "#/components/schemas/Person"}},
        "minister": {"oneOf": [{"$ref": "#/components/schemas/Person"}, {"type": "null"}]},
        "url": _STRING_OR_NULL,
        "organ": _STRING_OR_NULL,
        "question": {
            "description": "For a written answer: the question it answers.",
            "oneOf": [
                {
                    "type": "object",
                    "properties": {
                        "doctype": _STRING_OR_NULL,
                        "dok_id": _STRING_OR_NULL,
                        "rm": _STRING_OR_NULL,
                        "beteckning": _STRING_OR_NULL,
                        "author": {
                            "oneOf": [{"$ref": "#/components/schemas/Person"}, {"type": "null"}]
                        },
                    },
                },
                {"type": "null"},
            ],
        },
        "page_count": _INT_OR_NULL,
    },
}

PASSAGE = {
    "type": "object",
    "required": [
        "id",
        "rank",
        "score",
        "text",
        "source",
        "page",
        "char_start",
        "char_end",
        "citation",
        "document",
    ],
    "properties": {
        "id": {"type": "string"},
        "rank": {"type": "integer", "minimum": 1},
        "score": {"type": "number"},
        "text": {"type": "string"},
        "source": {"type": "string"},
        "page": _INT_OR_NULL,
        "char_start": {"type": "integer", "minimum": 0},
        "char_end": {"type": "integer", "minimum": 0},
        "heading": _STRING_OR_NULL,
        "speaker": _STRING_OR_NULL,
        "party": _STRING_OR_NULL,
        "citation": {"type": "string"},
        "citation_markdown": {"type": "string"},
        "permalink": {"type": "string"},
        "also_in": {"type": "array", "items": {"type": "string"}},
        "highlights": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
        },
        "document": {"$ref": "#/components/schemas/Document"},
    },
}

#: Where a quoted sentence stands: the rank of its passage, the passage, document offsets.
QUOTED_RANGE: dict[str, Any] = {
    "type": "object",
    "required": ["marker", "passage_id", "char_start", "char_end"],
    "properties": {
        "marker": {"type": "integer"},
        "passage_id": {"type": "string"},
        "char_start": {"type": "integer"},
        "char_end": {"type": "integer"},
    },
}

ANSWER = {
    "type": "object",
    "required": ["found", "text", "sentences"],
    "properties": {
        "found": {"type": "boolean"},
        "text": {"type": "string"},
        "sentences": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["text", *QUOTED_RANGE["required"]],
                "properties": {
                    "text": {"type": "string"},
                    **QUOTED_RANGE["properties"],
                    "also": {
                        "type": "array",
                        "description": "The same sentence in other listed passages.",
                        "items": QUOTED_RANGE,
                    },
                },
            },
        },
    },
}

FILTERS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "doctype": {"type": "string", "maxLength": 300, "description": "e.g. Interpellation"},
        # An empty value is no filter.
        "rm": {"type": "string", "pattern": "^$|^[0-9]{4}/[0-9]{2}$"},
        "date_from": {"type": "string", "pattern": "^$|" + DATE_PATTERN},
        "date_to": {"type": "string", "pattern": "^$|" + DATE_PATTERN},
        "party": {"type": "string", "maxLength": 300},
        "person": {"type": "string", "maxLength": 300},
        "source_prefix": {"type": "string", "maxLength": 300},
    },
}

#: At most 1000 characters, at least one of them one the server does not strip: not
#: white space by ECMA's \s or Python's (which adds \x1c-\x1f and NEL), not NUL.
QUESTION = {"type": "string", "maxLength": 1000, "pattern": "[^\\s\\x00\\x1c-\\x1f\\x85]"}

ASK_REQUEST = {
    "type": "object",
    "required": ["question"],
    "additionalProperties": False,
    "properties": {
        "question": QUESTION,
        "top_k": {"type": "integer", "minimum": 1, "maximum": 50},
        "filters": {"$ref": "#/components/schemas/Filters"},
        "mode": {"type": "string", "enum": ["hybrid", "dense", "lexical"]},
        "conversation_id": {"type": "string", "maxLength": 64},
    },
}

ASK_RESPONSE = {
    "type": "object",
    "required": ["question", "standalone_query", "answer", "passages"],
    "properties": {
        "conversation_id": {"type": "string"},
        "question": {"type": "string"},
        "standalone_query": {"type": "string"},
        "answer": {"$ref": "#/components/schemas/Answer"},
        "passages": {"type": "array", "items": {"$ref": "#/components/schemas/Passage"}},
    },
}


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
        "operationId": "getConversation",
        "parameters": {"conversation_id": _CONVERSATION},
    },
    "DeleteConversation": {
        "operationId": "deleteConversation",
        "parameters": {"conversation_id": _CONVERSATION},
    },
    "GetPassage": {
        "operationId": "getPassage",
        "parameters": {"passage_id": "$response.body#/passages/0/id"},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": _error("Invalid request"),
    "401": _error("Missing or wrong API key"),
    "404": _error("Not found"),
    "413": _error("Request body too large"),
    "429": _error("Too many requests"),
    "503": _error("Index not available"),
}


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def openapi_document() -> dict[str, Any]:
    search_params = [
        _query("q", QUESTION, required=True),
        _query("top_k", {"type": "integer", "minimum": 1, "maximum": 50}),
        *(
            _query(name, schema)
            for name, schema in FILTERS["properties"].items()  # type: ignore[attr-defined]
        ),
    ]
    passage_schema = {"$ref": "#/components/schemas/Passage"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "qa_service",
            "version": __version__,
            "description": "Answers with cited passages from Swedish parliamentary documents.",
        },
        "components": {
            "schemas": {
                "Error": ERROR,
                "Person": PERSON,
                "Document": DOCUMENT,
                "Passage": PASSAGE,
                "Answer": ANSWER,
                "Filters": FILTERS,
                "AskRequest": ASK_REQUEST,
                "AskResponse": ASK_RESPONSE,
            },
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
        "paths": {
            "/api/ask": {
                "post": {
                    "operationId": "ask",
                    "summary": "Answer a question with cited passages (in a conversation)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/AskRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            **_json({"$ref": "#/components/schemas/AskResponse"}),
                            "links": ASK_LINKS,
                        },
                        **_ERRORS,
                    },
                }
            },
            "/api/search": {
                "get": {
                    "operationId": "search",
                    "summary": "Passages for a query; cacheable, no conversation",
                    "parameters": search_params,
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["query", "index", "passages"],
                                "properties": {
                                    "query": {"type": "string"},
                                    "index": {"type": "string"},
                                    "passages": {"type": "array", "items": passage_schema},
                                },
                            }
                        ),
                        "304": {"description": "Not modified (ETag matched)"},
                        **_ERRORS,
                    },
                }
            },
            "/api/passages/{passage_id}": {
                "get": {
                    "operationId": "getPassage",
                    "summary": "One passage with its citation and surrounding text",
                    "parameters": [_path_id("passage_id")],
                    "responses": {"200": _json({"type": "object"}), **_ERRORS},
                }
            },
            "/api/documents/{doc_id}": {
                "get": {
                    "operationId": "getDocument",
                    "summary": "A document's metadata and passages",
                    "parameters": [_path_id("doc_id")],
                    "responses": {"200": _json({"type": "object"}), **_ERRORS},
                }
            },
            "/api/conversations/{conversation_id}": {
                "get": {
                    "operationId": "getConversation",
                    "summary": "A conversation's turns with their cited passages",
                    "parameters": [_path_id("conversation_id")],
                    "responses": {"200": _json({"type": "object"}), **_ERRORS},
                },
                "delete": {
                    "operationId": "deleteConversation",
                    "summary": "Delete a conversation",
                    "parameters": [_path_id("conversation_id")],
                    "responses": {"204": {"description": "Deleted"}, **_ERRORS},
                },
            },
            "/api/facets": {
                "get": {
                    "operationId": "getFacets",
                    "summary": "Values the filters can take",
                    "responses": {"200": _json({"type": "object"}), **_ERRORS},
                }
            },
            "/api/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness",
                    "responses": {"200": _json({"type": "object"})},
                }
            },
            "/api/ready": {
                "get": {
                    "operationId": "ready",
                    "summary": "Readiness and the loaded index's manifest",
                    "responses": {"200": _json({"type": "object"}), **_ERRORS},
                }
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "getOpenAPI",
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"})},
                }
            },
        },
    }
