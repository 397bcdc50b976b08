"""The web chat page and passage permalinks (server-rendered, no external assets)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template

from ..service import QAService

chat = Blueprint(
    "chat", __name__, template_folder="templates", static_folder="static", static_url_path="/static"
)


@chat.get("/")
def index() -> Any:
    return render_template("chat.html")


@chat.get("/p/<passage_id>")
def permalink(passage_id: str) -> Any:
    service: QAService = current_app.extensions["qa"]
    return render_template("passage.html", p=service.passage(passage_id))
