from __future__ import annotations

import pytest

pytestmark = pytest.mark.model

QUESTION = "Hur många personer bor i utanförskapsområden?"


def test_ask_returns_cited_passages(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/api/ask", json={"question": QUESTION, "top_k": 3})
    assert response.status_code == 200
    data = response.get_json()
    assert data["question"] == QUESTION
    top = data["passages"][0]
    assert "710 000" in top["text"]
    for key in (
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
    ):
        assert key in top
    assert top["rank"] == 1
    assert top["source"] == "svar-pa-fraga-2024-25-992.txt"
    assert top["page"] is None
    assert top["citation"].startswith("Svar på fråga 2024/25:992 av Serkan Köse (S)")
    assert top["document"]["doctype"] == "Svar på skriftlig fråga"
    assert top["document"]["authors"][0]["name"] == "Serkan Köse"


def test_passage_offsets_point_into_document_text(client, service) -> None:  # type: ignore[no-untyped-def]
    data = client.post("/api/ask", json={"question": "yrkesvux"}).get_json()
    for p in data["passages"]:
        document = service.loaded.reader.document(p["document"]["id"])
        assert document.text[p["char_start"] : p["char_end"]] == p["text"]


def test_passage_lookup_and_permalink(client) -> None:  # type: ignore[no-untyped-def]
    top = client.post("/api/ask", json={"question": QUESTION}).get_json()["passages"][0]
    data = client.get(f"/api/passages/{top['id']}").get_json()
    assert data["text"] == top["text"]
    assert data["context"]["passage"] == top["text"]
    page = client.get(top["permalink"])
    assert page.status_code == 200
    assert "710 000" in page.get_data(as_text=True)


def test_health(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/api/health").get_json() == {"status": "ok"}
    ready = client.get("/api/ready").get_json()
    assert ready["status"] == "ready" and ready["index"]["passages"] > 0
    assert ready["index"]["model"] == "bundled:multilingual-e5-small"
    assert ready["index"]["query_encoder"].startswith("sentence-transformers (cpu, ")


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"json": {}}, 400, "'question' is required"),
        ({"json": {"question": ""}}, 400, "must not be empty"),
        ({"json": {"question": "   "}}, 400, "must not be empty"),
        ({"json": {"question": 42}}, 400, "must be a string"),
        ({"json": {"question": None}}, 400, "must be a string"),
        ({"json": {"question": "x" * 1001}}, 400, "longer than 1000"),
        ({"json": {"question": "jobb", "top_k": 0}}, 400, "between 1 and 50"),
        ({"json": {"question": "jobb", "top_k": 51}}, 400, "between 1 and 50"),
        ({"json": {"question": "jobb", "top_k": "5"}}, 400, "whole number"),
        ({"json": {"question": "jobb", "top_k": True}}, 400, "whole number"),
        ({"json": {"question": "jobb", "filters": []}}, 400, "'filters' must be an object"),
        ({"json": {"question": "jobb", "filters": {"rm": "2023"}}}, 400, "riksmöte"),
        ({"json": {"question": "jobb", "mode": "magic"}}, 400, "'mode' must be one of"),
        ({"json": ["question"]}, 400, "JSON object"),
        ({"data": "{not json", "content_type": "application/json"}, 400, "JSON object"),
        ({"data": "question=x", "content_type": "text/plain"}, 400, "JSON object"),
        ({"data": "x" * 70_000, "content_type": "application/json"}, 413, ""),
    ],
)
def test_bad_requests_get_one_json_error_shape(client, kwargs, status, message) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/api/ask", **kwargs)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert set(error) == {"status", "code", "message"}
    assert error["status"] == status
    assert message in error["message"]


def test_null_bytes_are_not_a_server_error(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/api/ask", json={"question": "jobb\x00skatteavdrag"})
    assert response.status_code == 200


def test_unknown_routes_and_methods(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/api/nope").get_json()["error"]["status"] == 404
    assert client.get("/api/ask").get_json()["error"]["status"] == 405
    assert client.get("/api/passages/doesnotexist").get_json()["error"]["code"] == "not_found"


def test_chat_page_is_served_without_external_assets(client) -> None:  # type: ignore[no-untyped-def]
    html = client.get("/").get_data(as_text=True)
    assert "<form" in html
    assert "http://" not in html and "https://" not in html
    assert client.get("/static/chat.js").status_code == 200


def test_cli_ask_json_matches_api(client, runner, small_index) -> None:  # type: ignore[no-untyped-def]
    import json

    from qa_service.cli import main

    result = runner.invoke(
        main, ["ask", QUESTION, "--index", str(small_index.index_dir), "-k", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    api = client.post("/api/ask", json={"question": QUESTION, "top_k": 3}).get_json()
    api.pop("conversation_id")
    assert json.loads(result.output) == api


def test_cli_ask_text_and_missing_index(runner, small_index, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from qa_service.cli import main

    result = runner.invoke(main, ["ask", QUESTION, "--index", str(small_index.index_dir)])
    assert result.exit_code == 0
    assert "[1] Svar på fråga 2024/25:992" in result.output
    missing = runner.invoke(main, ["ask", QUESTION, "--index", str(tmp_path / "none")])
    assert missing.exit_code == 1
    assert "run `qa ingest" in missing.output


def test_extractive_answer_quotes_the_seed_sentence(client) -> None:  # type: ignore[no-untyped-def]
    data = client.post("/api/ask", json={"question": QUESTION}).get_json()
    answer = data["answer"]
    assert answer["found"]
    first = answer["sentences"][0]
    assert "710 000 personer" in first["text"] and "varav 170 000 är barn" in first["text"]
    assert answer["text"].startswith(first["text"]) and f"[{first['marker']}]" in answer["text"]
    cited = data["passages"][first["marker"] - 1]
    assert cited["id"] == first["passage_id"]
    start, end = cited["highlights"][0]
    assert cited["text"][start:end] == first["text"]
    assert first["char_start"] == cited["char_start"] + start


def test_unanswerable_question_says_so(client) -> None:  # type: ignore[no-untyped-def]
    answer = client.post(
        "/api/ask", json={"question": "Vilket lag vann fotbolls-VM 1958?"}
    ).get_json()["answer"]
    assert not answer["found"] and "hittade inget" in answer["text"]


def test_a_question_the_passages_only_share_words_with_finds_nothing(
    service, small_index, embedder
) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from qa_service.service import QAService

    question = "Hur många personer bor på Mars?"
    # Its words match the seed's "Totalt bor 710 000 personer …", its meaning does not.
    assert service.ask(question, remember=False)["answer"]["found"] is False
    assert service.closeness(question, service.search(question, 5)) < 0.84
    terms_only = QAService(
        dataclasses.replace(small_index, answer_min_similarity=0.0), embedder=embedder
    )
    terms_only.load()
    assert terms_only.ask(question, remember=False)["answer"]["found"] is True
    asked = service.ask("Hur många personer bor i utanförskapsområden?", remember=False)
    assert asked["answer"]["found"] is True


def test_an_english_question_gets_its_sources_and_no_quote(client) -> None:  # type: ignore[no-untyped-def]
    data = client.post(
        "/api/ask", json={"question": "How many people live in exclusion areas?"}
    ).get_json()
    assert data["answer"]["found"] is False and data["answer"]["sentences"] == []
    assert "Swedish only" in data["answer"]["text"]
    assert data["passages"] and data["passages"][0]["document"]["source"].startswith("svar-pa")


def test_conversation_follow_up_reaches_the_right_passage(client) -> None:  # type: ignore[no-untyped-def]
    first = client.post("/api/ask", json={"question": QUESTION}).get_json()
    cid = first["conversation_id"]
    second = client.post(
        "/api/ask", json={"question": "Och hur många av dem är barn?", "conversation_id": cid}
    ).get_json()
    assert second["conversation_id"] == cid
    assert "utanförskapsområden" in second["standalone_query"]
    assert "170 000 är barn" in second["passages"][0]["text"]
    turns = client.get(f"/api/conversations/{cid}").get_json()["turns"]
    assert [t["question"] for t in turns] == [QUESTION, "Och hur många av dem är barn?"]
    assert turns[1]["passages"][0]["id"] == second["passages"][0]["id"]
    assert client.delete(f"/api/conversations/{cid}").status_code == 204
    assert client.get(f"/api/conversations/{cid}").status_code == 404


def test_self_contained_question_is_not_dragged_back(client) -> None:  # type: ignore[no-untyped-def]
    cid = client.post("/api/ask", json={"question": QUESTION}).get_json()["conversation_id"]
    data = client.post(
        "/api/ask",
        json={"question": "Vad är nytt med jobbskatteavdraget?", "conversation_id": cid},
    ).get_json()
    assert data["standalone_query"] == "Vad är nytt med jobbskatteavdraget?"
    assert "jobbskatteavdrag" in data["passages"][0]["text"].lower()
    alone = client.post(
        "/api/ask", json={"question": "Vad är nytt med jobbskatteavdraget?"}
    ).get_json()
    assert [p["id"] for p in data["passages"]] == [p["id"] for p in alone["passages"]]


def test_question_without_pronoun_continues_when_the_cited_documents_answer_it(
    service,
) -> None:  # type: ignore[no-untyped-def]
    from qa_service.conversation import Context

    interpellation = next(
        d.id for d in service.loaded.reader.documents() if d.source.startswith("ipq/")
    )
    # "Platserna" points back to the yrkesvux interpellation: its document answers best.
    assert service.stages.continues(
        service.loaded, "Räcker platserna i Malmö och Göteborg?", [interpellation]
    )
    assert not service.stages.continues(
        service.loaded, "Hur mycket förstärks jobbskatteavdraget?", [interpellation]
    )
    history = [Context("Vad vill Anna Andersson med yrkesvux?", (interpellation,))]
    _, hits = service.converse("Räcker platserna i Malmö och Göteborg?", history=history)
    assert hits[0].document.id == interpellation


def test_unknown_conversation_is_404(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/api/ask", json={"question": "x", "conversation_id": "nope"})
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_script_in_document_text_is_shown_as_text(client) -> None:  # type: ignore[no-untyped-def]
    data = client.post("/api/ask", json={"question": "skript som text om sfi"}).get_json()
    passage = next(p for p in data["passages"] if "<script>" in p["text"])
    assert "<script>alert(1)</script>" in passage["text"]  # JSON carries the text as is
    page = client.get(passage["permalink"]).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page


def test_facets(client) -> None:  # type: ignore[no-untyped-def]
    data = client.get("/api/facets").get_json()
    assert "Svar på skriftlig fråga" in data["doctypes"] and "Interpellation" in data["doctypes"]
    assert data["riksmoten"] == ["2024/25", "2022/23"]


def test_every_api_route_is_in_the_openapi_document(app, client) -> None:  # type: ignore[no-untyped-def]
    import re

    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, (path, method)


def test_search_is_cacheable_and_touches_no_conversation(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/api/search", query_string={"q": "yrkesvux", "top_k": 2})
    assert response.status_code == 200
    data = response.get_json()
    assert len(data["passages"]) == 2 and "conversation_id" not in data
    etag = response.headers["ETag"]
    assert "public" in response.headers["Cache-Control"]
    again = client.get(
        "/api/search", query_string={"q": "yrkesvux", "top_k": 2}, headers={"If-None-Match": etag}
    )
    assert again.status_code == 304
    filtered = client.get(
        "/api/search", query_string={"q": "yrkesvux", "doctype": "Interpellation"}
    ).get_json()
    assert {p["document"]["doctype"] for p in filtered["passages"]} == {"Interpellation"}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "'q' is required"),
        ({"q": "x", "top_k": "many"}, "whole number"),
        ({"q": "x", "top_k": "0"}, "between 1 and 50"),
        ({"q": "x", "colour": "red"}, "unknown query parameter"),
        ({"q": "x", "date_from": "igår"}, "date_from"),
    ],
)
def test_search_bad_parameters(client, query, message) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/api/search", query_string=query)
    assert response.status_code == 400
    assert message in response.get_json()["error"]["message"]


def test_document_lookup(client) -> None:  # type: ignore[no-untyped-def]
    top = client.post("/api/ask", json={"question": QUESTION}).get_json()["passages"][0]
    data = client.get(f"/api/documents/{top['document']['id']}").get_json()
    assert data["source"] == "svar-pa-fraga-2024-25-992.txt"
    assert data["citation"].startswith("Svar på fråga 2024/25:992")
    assert top["id"] in [p["id"] for p in data["passages"]]
    assert client.get("/api/documents/nope").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"question": "jobb", "topk": 3},
        {"question": "jobb", "extra": None},
        {"question": "x" * 10_000},
        {"question": ["lista"]},
        {"question": {"a": 1}},
        {"question": "jobb", "conversation_id": 5},
    ],
)
def test_more_bad_bodies_are_4xx(client, body) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/api/ask", json=body)
    assert 400 <= response.status_code < 500
    assert set(response.get_json()["error"]) == {"status", "code", "message"}


def test_cli_ask_with_filters(runner, small_index) -> None:  # type: ignore[no-untyped-def]
    import json

    from qa_service.cli import main

    args = ["ask", "yrkesvux", "--index", str(small_index.index_dir), "--json"]
    result = runner.invoke(main, [*args, "--doctype", "Interpellation", "--rm", "2022/23"])
    assert result.exit_code == 0, result.output
    passages = json.loads(result.output)["passages"]
    assert passages and {p["document"]["doctype"] for p in passages} == {"Interpellation"}
    bad = runner.invoke(main, [*args, "--rm", "2023"])
    assert bad.exit_code == 1 and "riksmöte" in bad.output


def test_question_pattern_agrees_with_what_the_server_strips() -> None:
    import re

    from qa_service.web.openapi import QUESTION

    pattern = re.compile(str(QUESTION["pattern"]))
    for code in range(0x3100):
        char = chr(code)
        accepted = bool(char.replace("\x00", " ").strip())
        assert bool(pattern.search(char)) == accepted, hex(code)


def test_the_documents_meeting_a_questions_hints_get_their_own_ranking(service) -> None:  # type: ignore[no-untyped-def]
    from qa_service.hints import read_hints

    loaded = service.loaded
    interpellation = next(d.id for d in loaded.reader.documents() if d.source.startswith("ipq/"))
    hints = read_hints("Vad säger interpellationen om yrkesvux?", loaded.hint_index.people)
    mask = service.stages.hinted_mask(loaded, hints, None)
    assert mask is not None
    assert mask.nonzero()[0].tolist() == loaded.reader.rows_of_documents([interpellation]).tolist()
    assert service.stages.hinted_mask(loaded, read_hints("Vad är yrkesvux?"), None) is None
    hits = service.search("Vad säger interpellationen om yrkesvux?", 3)
    assert hits[0].document.id == interpellation


# -- issue 15: input that gave 500s, and contract gaps ----------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"question": ' + "[" * 1000 + "]" * 1000 + "}", "nested too deeply"),
        ('{"question": "\\ud800"}', "lone surrogate"),
        ('{"question": "sfi", "filters": {"person": "\\ud800"}}', "lone surrogate"),
        ('{"question": "sfi", "filters": {"source_prefix": "a\\udfff"}}', "lone surrogate"),
        ('{"question": "sfi", "conversation_id": "\\ud800"}', "no conversation"),
        ('{"question": "sfi", "filters": {"person": "' + "x" * 50_001 + '"}}', "longer than"),
        ('{"question": "sfi", "filters": {"doctyp": "Motion"}}', "unknown filter"),
        ('{"question": "sfi", "filters": {"date_from": "2024-13-45"}}', "date_from"),
        ('{"question": "sfi", "filters": {"date_to": "2023-02-30"}}', "date_to"),
        ('{"question": "sfi", "filters": {"date_from": "٢٠٢٤"}}', "date_from"),
        ('{"question": "sfi", "filters": {"rm": "٢٠٢٢/٢٣"}}', "riksmöte"),
        (b'{"question": "\xff\xfe"}', "JSON object"),
    ],
)
def test_input_that_gave_500s_is_a_4xx(client, data, message) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/api/ask", data=data, content_type="application/json")
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert set(error) == {"status", "code", "message"}
    assert message in error["message"]


def test_a_person_filter_matches_percent_and_underscore_literally(client) -> None:  # type: ignore[no-untyped-def]
    found = client.get("/api/search", query_string={"q": "yrkesvux", "person": "Anna"}).get_json()
    assert found["passages"]
    for wildcard in ("%", "_", "A_na"):
        data = client.get("/api/search", query_string={"q": "yrkesvux", "person": wildcard})
        assert data.status_code == 200 and data.get_json()["passages"] == []


def test_a_405_says_what_is_allowed(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/api/ask")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"POST"}
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_made_up_methods_share_one_metrics_series(client) -> None:  # type: ignore[no-untyped-def]
    for method in ("FOO", "BAR", "XYZZY"):
        assert client.open("/api/health", method=method).status_code == 405
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'method="other"' in metrics
    assert "FOO" not in metrics and "XYZZY" not in metrics


def test_every_answer_carries_security_headers(client) -> None:  # type: ignore[no-untyped-def]
    for path in ("/", "/api/health", "/static/chat.js", "/api/nope"):
        headers = client.get(path).headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
    csp = client.get("/").headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://data.riksdagen.se/dokument/HA10999", True),
        ("http://www.regeringen.se/x", True),
        ("javascript:alert(document.domain)", False),
        ("JaVaScRiPt:alert(1)", False),
        (" javascript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("vbscript:msgbox(1)", False),
        ("//evil.example/x", False),
        ("https:///nohost", False),
        (None, False),
    ],
)
def test_a_document_link_is_a_web_address_or_nothing(url, kept) -> None:  # type: ignore[no-untyped-def]
    from qa_service.schema import DocumentMeta

    meta = DocumentMeta(title="t", url=url)
    assert meta.url == (url.strip() if kept else None)
    assert DocumentMeta.from_dict({"title": "t", "url": url}).url == meta.url
