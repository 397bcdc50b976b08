"""The OpenAPI document is generated from the models, validates, and a client generated
from it (openapi-python-client, offline) calls a real ``qa serve`` with typed results."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from openapi_spec_validator import validate

from qa_service.config import Settings
from qa_service.web.openapi import openapi_document
from tests.conftest import write_small_corpus
from tests.servers import Server, start_server

OPERATIONS = {
    ("/api/ask", "post"): "ask",
    ("/api/search", "get"): "search",
    ("/api/passages/{passage_id}", "get"): "passage",
    ("/api/documents/{doc_id}", "get"): "document",
    ("/api/conversations/{conversation_id}", "get"): "conversation",
    ("/api/conversations/{conversation_id}", "delete"): "deleteConversation",
    ("/api/facets", "get"): "facets",
    ("/api/health", "get"): "health",
    ("/api/ready", "get"): "ready",
    ("/api/openapi.json", "get"): "openapi",
}


def test_the_document_validates() -> None:
    validate(openapi_document())  # type: ignore[arg-type]


def test_every_operation_has_an_id_a_tag_and_named_schemas() -> None:
    document = openapi_document()
    found = {
        (path, method): operation["operationId"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert found == OPERATIONS
    for item in document["paths"].values():
        for operation in item.values():
            assert operation["tags"], operation["operationId"]
    schemas = document["components"]["schemas"]
    for name in ("AskRequest", "AskResponse", "SearchResponse", "Passage", "Document", "Error"):
        assert schemas[name]["title"] == name
    ok = document["paths"]["/api/search"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SearchResponse"
    }


def test_a_broken_document_does_not_validate() -> None:
    """The validator is not a formality: an operation without its id's type fails it."""
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    broken = json.loads(json.dumps(openapi_document()))
    broken["paths"]["/api/ask"]["post"]["operationId"] = 7
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client openapi-python-client generates from the document (no network)."""
    base = tmp_path_factory.mktemp("client")
    (base / "openapi.json").write_text(json.dumps(openapi_document()), encoding="utf-8")
    (base / "config.yml").write_text("post_hooks: []\n", encoding="utf-8")
    generator = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    assert generator is not None, "openapi-python-client is a dev dependency"
    subprocess.run(
        [
            generator,
            "generate",
            "--path",
            str(base / "openapi.json"),
            "--meta",
            "none",
            "--config",
            str(base / "config.yml"),
            "--output-path",
            str(base / "qa_client"),
        ],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(base))
    try:
        yield importlib.import_module("qa_client")
    finally:
        sys.path.remove(str(base))
        for name in [n for n in sys.modules if n == "qa_client" or n.startswith("qa_client.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, small_index: Settings) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("live")
    settings = Settings(index_dir=small_index.index_dir, conversations_db=base / "c.sqlite3")
    server = start_server(base, settings, write_small_corpus(base / "corpus"))
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.model
def test_a_generated_client_calls_the_server_with_typed_results(
    client_package: ModuleType, live: Server
) -> None:
    api = importlib.import_module("qa_client.api")
    models = importlib.import_module("qa_client.models")
    ask = importlib.import_module("qa_client.api.questions.ask")
    search = importlib.import_module("qa_client.api.questions.search")
    document = importlib.import_module("qa_client.api.documents.document")
    passage = importlib.import_module("qa_client.api.documents.passage")
    assert api is not None
    client = client_package.Client(base_url=live.url, raise_on_unexpected_status=True)

    answered = ask.sync(
        client=client, body=models.AskRequest(question="Hur många bor i utanförskapsområden?")
    )
    assert isinstance(answered, models.AskResponse)
    assert isinstance(answered.answer, models.Answer) and answered.answer.found is True
    first = answered.passages[0]
    assert isinstance(first, models.Passage) and "710 000" in first.text
    assert isinstance(first.document, models.Document)

    found = search.sync(client=client, q="yrkesvux", top_k=2)
    assert isinstance(found, models.SearchResponse)
    assert 1 <= len(found.passages) <= 2 and found.passages[0].rank == 1

    shown = passage.sync(first.id, client=client)
    assert isinstance(shown, models.PassageDetail)
    assert shown.id == first.id and isinstance(shown.context, models.Context)

    listed = document.sync(first.document.id, client=client)
    assert isinstance(listed, models.DocumentDetail)
    assert first.id in [p.id for p in listed.passages]

    missing = passage.sync("nope", client=client)
    assert isinstance(missing, models.Error) and missing.error.status == 404
