"""The web chat in a real browser: Debian's Chromium driven by Playwright, headless."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (make test installs it when run as root)",
    ),
]


@pytest.fixture(scope="module")
def base_url(small_index, service) -> Iterator[str]:  # type: ignore[no-untyped-def]
    from qa_service.web import create_app

    server = make_server("127.0.0.1", 0, create_app(small_index, service=service), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator:  # type: ignore[type-arg]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser, base_url):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    page = context.new_page()
    page.goto(base_url + "/")
    yield page
    context.close()


def ask(page, question: str) -> None:  # type: ignore[no-untyped-def]
    count = page.locator("article.turn").count()
    page.fill("#question", question)
    page.keyboard.press("Enter")
    page.locator("article.turn").nth(count).wait_for()


def test_ask_follow_up_copy_and_permalink(page) -> None:  # type: ignore[no-untyped-def]
    ask(page, "Hur många personer bor i utanförskapsområden?")
    first = page.locator("article.turn").nth(0)
    assert "710 000 personer" in first.locator(".answer").inner_text()
    assert "Svar på fråga 2024/25:992" in first.locator(".passage .citation").first.inner_text()
    assert "710 000" in first.locator(".passage mark").first.inner_text()

    ask(page, "Och hur många av dem är barn?")
    second = page.locator("article.turn").nth(1)
    assert "170 000 är barn" in second.locator(".passage").first.inner_text()

    first.locator("button.copy").first.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("Svar på fråga 2024/25:992")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)

    first.locator("a.marker").first.click()
    assert page.url.endswith("#t1-p1")
    with page.expect_navigation():
        first.locator("a.permalink").first.click()
    assert "/p/" in page.url
    assert "710 000" in page.locator("mark#passage").inner_text()


def test_new_conversation_starts_over(page) -> None:  # type: ignore[no-untyped-def]
    ask(page, "Vad är nytt med jobbskatteavdraget?")
    page.click("#new")
    assert page.locator("article.turn").count() == 0
    ask(page, "Och hur många av dem är barn?")
    # Without the earlier turn there is nothing to lean on: no rewrite happened.
    assert page.locator("article.turn").count() == 1


def test_script_text_is_shown_literally(page) -> None:  # type: ignore[no-untyped-def]
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    ask(page, "skript som text om sfi")
    texts = page.locator(".passage .text").all_inner_texts()
    assert any("<script>alert(1)</script>" in t for t in texts)
    link = page.locator(".passage", has_text="<script>").locator("a.permalink")
    with page.expect_navigation():
        link.click()
    assert "<script>alert(1)</script>" in page.locator(".context").inner_text()
    assert dialogs == []


def test_keyboard_only_and_filters(page) -> None:  # type: ignore[no-untyped-def]
    # The question field has focus on arrival; Tab reaches the send button next.
    assert page.evaluate("document.activeElement.id") == "question"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "send"
    page.click("#filters summary")
    page.select_option("#f-doctype", "Interpellation")
    ask(page, "yrkesvux")
    turn = page.locator("article.turn").last
    metas = turn.locator(".passage .meta").all_inner_texts()
    assert metas and all(m.startswith("Interpellation") for m in metas)


def test_chat_and_permalink_work_under_the_content_security_policy(browser, base_url) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context()
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    response = page.goto(base_url + "/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    ask(page, "Hur många personer bor i utanförskapsområden?")
    assert "710 000" in page.locator("article.turn .answer").first.inner_text()
    # The filter menus are filled by the script from /api/facets.
    assert page.locator("#f-doctype option").count() > 1
    with page.expect_navigation():
        page.locator("a.permalink").first.click()
    assert "710 000" in page.locator("mark#passage").inner_text()
    # The style sheet applied: the header has its background colour.
    colour = page.evaluate("getComputedStyle(document.querySelector('.top')).backgroundColor")
    assert colour == "rgb(11, 83, 148)"
    assert violations == []
    context.close()


@pytest.fixture(scope="module")
def sidecar_url(tmp_path_factory, embedder) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A server over a document whose manifest.jsonl record gives a javascript: link."""
    import json

    from qa_service.config import Settings
    from qa_service.ingest import run_ingest
    from qa_service.service import QAService
    from qa_service.web import create_app

    base = tmp_path_factory.mktemp("sidecar")
    corpus = base / "corpus"
    corpus.mkdir()
    (corpus / "svar.md").write_text(
        "# Svar om yrkesvux\n\nYrkesvux byggs ut i Malmö med tusen nya platser.\n",
        encoding="utf-8",
    )
    record = {
        "file": "svar.md",
        "title": "Svar om yrkesvux",
        "url": "javascript:alert(document.domain)",
    }
    (corpus / "manifest.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    settings = Settings(index_dir=base / "index", conversations_db=base / "c.sqlite3")
    run_ingest([corpus], settings, embedder=embedder, progress=False)
    service = QAService(settings, embedder=embedder)
    service.load()
    server = make_server("127.0.0.1", 0, create_app(settings, service=service), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def test_a_javascript_link_from_a_sidecar_never_runs(browser, sidecar_url) -> None:  # type: ignore[no-untyped-def]
    import json
    import urllib.request

    with urllib.request.urlopen(sidecar_url + "/api/search?q=yrkesvux") as response:
        passage = json.loads(response.read())["passages"][0]
    assert passage["document"]["url"] is None
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(sidecar_url + passage["permalink"])
    assert "Yrkesvux byggs ut" in page.locator("mark#passage").inner_text()
    assert page.locator("a[href^='javascript']").count() == 0
    # Were one there, the policy would still refuse it: a javascript: URL is inline script.
    page.evaluate(
        "() => { const a = document.createElement('a'); a.href = 'javascript:alert(1)';"
        " a.id = 'planted'; a.textContent = 'x'; document.body.appendChild(a); }"
    )
    page.click("#planted")
    page.wait_for_timeout(300)
    assert dialogs == []
    context.close()
