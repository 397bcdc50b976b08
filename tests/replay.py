"""A local stand-in for data.riksdagen.se: replays recorded ``dokumentstatus`` payloads.

``/dokumentstatus/<dok_id>.json`` serves the payload's bytes. ``/dokumentlista/`` answers
searches in the documented format, built from the payloads' ``dokument`` fields: filters
``doktyp``, ``rm``, ``from``/``tom`` (on ``datum``), ``sok`` (words in the title or the
body), pages ``p`` of size ``sz``; counters as strings; ``dokument`` a single object when
there is one hit; ``@nasta_sida`` as it is reported to come back (``http:``, another
host, no ``utformat=json``), so a client that followed it would leave 127.0.0.1 and fail.
Past ``deep_limit`` pages the search answers 500, as deep paging is reported to stop.

Faults are queued per path and used up one per request: a status (with headers, e.g.
``Retry-After``), a delay (a time-out for the client), a truncated body (fewer bytes than
``Content-Length``), an HTML error page, any body.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

DATA = Path(__file__).resolve().parent / "data" / "riksdagen"


@dataclass
class Fault:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: bytes | None = None
    truncate: bool = False  # send half the body under the whole body's Content-Length
    content_type: str | None = None


HTML_ERROR = Fault(
    body=b"<!DOCTYPE html><html><body><h1>Tillf\xc3\xa4lligt fel</h1></body></html>",
    content_type="text/html; charset=utf-8",
)


def load_payloads(paths: list[Path]) -> dict[str, bytes]:
    """dok_id -> the file's bytes, for every ``dokumentstatus`` JSON file given."""
    payloads: dict[str, bytes] = {}
    for path in paths:
        raw = path.read_bytes()
        dok = json.loads(raw)["dokumentstatus"]["dokument"]
        payloads[dok["dok_id"]] = raw
    return payloads


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html).lower()


def _hit(dok_id: str, raw: bytes) -> dict[str, Any]:
    """The search hit of one payload ({} when the payload is not a dokumentstatus)."""
    try:
        dok = json.loads(raw)["dokumentstatus"]["dokument"]
    except (ValueError, KeyError, TypeError):
        return {}
    hit = {key: dok.get(key, "") for key in ("rm", "beteckning", "doktyp", "titel", "datum")}
    hit.update(
        dok_id=dok_id,
        systemdatum=dok.get("systemdatum", ""),
        organ=dok.get("organ", ""),
        dokument_url_text=f"//data.riksdagen.se/dokument/{dok_id}.text",
        _text=(dok.get("titel", "") + " " + _text(dok.get("html") or "")).lower(),
    )
    return hit


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out closed its end: nothing to report


class Replay:
    def __init__(self, payloads: dict[str, bytes], deep_limit: int = 100) -> None:
        self.payloads = dict(payloads)
        self.deep_limit = deep_limit
        self.faults: dict[str, list[Fault]] = {}
        self.requests: list[str] = []
        self.agents: set[str] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        #: ``http://127.0.0.1:<port>`` once started.
        self.base_url = ""
        self._hits: dict[str, tuple[bytes, dict[str, Any]]] = {}

    # What the tests change while the server runs.
    def fault(self, path: str, *faults: Fault) -> None:
        with self._lock:
            self.faults.setdefault(path, []).extend(faults)

    def put(self, raw: bytes) -> str:
        dok_id = json.loads(raw)["dokumentstatus"]["dokument"]["dok_id"]
        with self._lock:
            self.payloads[dok_id] = raw
        return str(dok_id)

    def document_requests(self) -> list[str]:
        return [p for p in self.requests if p.startswith("/dokumentstatus/")]

    # The service.
    def hits(self) -> list[dict[str, Any]]:
        with self._lock:
            raws = dict(self.payloads)
            for dok_id, raw in raws.items():
                cached = self._hits.get(dok_id)
                if cached is None or cached[0] is not raw:
                    self._hits[dok_id] = (raw, _hit(dok_id, raw))
            hits = [self._hits[d][1] for d in raws]
        return sorted((h for h in hits if h), key=lambda h: (h["datum"], h["dok_id"]))

    def search(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        hits = self.hits()
        for key in ("doktyp", "rm"):
            if query.get(key):
                hits = [h for h in hits if h[key] == query[key]]
        if query.get("from"):
            hits = [h for h in hits if h["datum"][:10] >= query["from"]]
        if query.get("tom"):
            hits = [h for h in hits if h["datum"][:10] <= query["tom"]]
        if query.get("sok"):
            words = query["sok"].lower().split()
            hits = [h for h in hits if all(w in h["_text"] for w in words)]
        size = int(query.get("sz", "20"))
        page = int(query.get("p", "1"))
        pages = max(1, -(-len(hits) // size)) if hits else 0
        if page > self.deep_limit:
            return 500, {"error": "deep paging is not supported"}
        chosen = [
            {k: v for k, v in h.items() if not k.startswith("_")}
            for h in hits[(page - 1) * size : page * size]
        ]
        listing: dict[str, Any] = {
            "@ms": "12",
            "@traffar": str(len(hits)),
            "@sida": str(page),
            "@sidor": str(pages),
            "@traff_fran": str((page - 1) * size + 1),
            "@traff_till": str((page - 1) * size + len(chosen)),
        }
        if page < pages:
            params = {k: v for k, v in query.items() if k not in ("utformat", "p")}
            listing["@nasta_sida"] = "http://data.riksdagen.se/dokumentlista/?" + urlencode(
                {**params, "p": page + 1}
            )
        if len(chosen) == 1:
            listing["dokument"] = chosen[0]
        elif chosen:
            listing["dokument"] = chosen
        return 200, {"dokumentlista": listing}

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        with self._lock:
            self.requests.append(handler.path)
            self.agents.add(handler.headers.get("User-Agent", ""))
            queue = self.faults.get(url.path)
            fault = queue.pop(0) if queue else None
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and (fault.status != 200 or fault.body is not None):
            body = fault.body if fault.body is not None else b'{"error": "fault"}'
            self._send(handler, fault.status, body, fault.content_type, fault.headers)
            return
        status, body, ctype = self._answer(url.path, parse_qs(url.query))
        if fault and fault.truncate:
            handler.send_response(status)
            handler.send_header("Content-Type", ctype)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body[: len(body) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            return
        self._send(handler, status, body, ctype, {})

    def _answer(self, path: str, raw_query: dict[str, list[str]]) -> tuple[int, bytes, str]:
        query = {k: v[0] for k, v in raw_query.items()}
        json_type = "application/json; charset=utf-8"
        if path.rstrip("/") == "/dokumentlista":
            status, data = self.search(query)
            return status, json.dumps(data, ensure_ascii=False).encode(), json_type
        match = re.fullmatch(r"/dokumentstatus/([A-Za-z0-9_-]+)\.json", path)
        if match:
            with self._lock:
                raw = self.payloads.get(match[1])
            if raw is not None:
                return 200, raw, json_type
        return 404, HTML_ERROR.body or b"", "text/html; charset=utf-8"

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: dict[str, str],
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type or "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)

    # Running it.
    def start(self) -> str:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                replay.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
