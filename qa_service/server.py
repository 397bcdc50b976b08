"""The production server: gunicorn's asyncio worker in front of the Flask app.

Each worker reads requests on an asyncio event loop and hands only *complete* requests
(head and body) to a small pool of threads that run the Flask app. A client that sends
half a request head or half a body and then waits holds a coroutine, not a thread, so
any number of slow clients cannot starve ``/api/health`` or anyone else (with gunicorn's
threaded worker, eight such connections held every thread of two workers).

gunicorn's own answers to malformed requests (400, 414, 431, 501) use the API's one JSON
error shape, like every answer of the app.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_to_bytes

from gunicorn.app.base import BaseApplication
from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi

from .config import Settings

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Codes of gunicorn's own error answers, named as the app names them.
_ERROR_CODES = {
    400: "bad_request",
    413: "request_entity_too_large",
    414: "request_uri_too_long",
    431: "request_header_fields_too_large",
    501: "not_implemented",
}


def error_body(status: int, message: str) -> bytes:
    """The API's error shape, for answers given before the app sees the request."""
    code = _ERROR_CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    error = {"status": status, "code": code, "message": message}
    return json.dumps({"error": error}).encode("ascii")


class JSONErrorProtocol(ASGIProtocol):
    """gunicorn's HTTP/1 protocol with its error answers in the API's JSON shape."""

    def _send_error_response(
        self, status: int, message: str, extra_headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        # gunicorn's message may quote the request; it goes in the body only, JSON-escaped.
        body = error_body(status, message or reason)
        extra = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "X-Content-Type-Options: nosniff\r\n"
            f"{extra}"
            "Connection: close\r\n\r\n"
        )
        self._safe_write(head.encode("latin-1"))
        self._safe_write(body)


#: How often a booting worker tells the master it is alive (gunicorn's ``timeout`` is 30 s).
BOOT_HEARTBEAT_SECONDS = 1.0


def with_heartbeat(work: Callable[[], Any], beat: Callable[[], None], interval: float) -> Any:
    """Run ``work`` on a thread and call ``beat`` every ``interval`` seconds until it is
    done; its result, or its exception raised here."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # raised again on the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="qa-boot", daemon=True)
    thread.start()
    while True:
        thread.join(interval)
        if not thread.is_alive():
            break
        beat()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


class QAWorker(gasgi.ASGIWorker):
    """gunicorn's asyncio worker, answering its own errors in JSON."""

    def init_process(self) -> None:
        # The worker builds its protocol by the module's name ``ASGIProtocol`` and offers
        # no setting for another; this process runs only this worker.
        gasgi.ASGIProtocol = JSONErrorProtocol
        super().init_process()

    def load_wsgi(self) -> None:
        # gunicorn's master kills a worker that has not reported within ``timeout`` (30 s),
        # booting or not: a worker loading a large index (or loading beside another on a
        # busy machine) reports while it loads, so it is not killed and started again.
        with_heartbeat(super().load_wsgi, self.notify, BOOT_HEARTBEAT_SECONDS)


class WSGIBridge:
    """An ASGI application that runs a WSGI app on a pool of threads.

    The request body is read on the event loop, up to ``max_body`` bytes, before a
    thread is taken; a larger body is refused with 413 without reading it all. The
    app's answers are small (JSON, pages, static files) and are sent whole.
    """

    def __init__(self, app: WSGIApp, *, threads: int, max_body: int) -> None:
        self.app = app
        self.max_body = max_body
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="qa-request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets here
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._send_error(send, 413, f"the request body is over {self.max_body} bytes")
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                # The client left, or sent its body too slowly: no thread was taken. The
                # answer most likely reaches nobody, but it is what the access log shows.
                await self._send_error(send, 400, "the request body did not arrive whole")
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await self._send_error(send, 413, f"the request body is over {self.max_body} bytes")
                return
            if not message.get("more_body", False):
                break
        environ = wsgi_environ(scope, bytes(body))
        loop = asyncio.get_running_loop()
        status, headers, chunks = await loop.run_in_executor(self.executor, self._run, environ)
        content = b"".join(chunks)
        bodiless = status < 200 or status in (204, 304)
        if not bodiless and not any(name == b"content-length" for name, _ in headers):
            headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _run(self, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], list[bytes]]:
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return lambda data: chunks.append(data)

        chunks: list[bytes] = []
        result = self.app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        return int(status.split(" ", 1)[0]), encoded, chunks

    async def _send_error(self, send: Send, status: int, message: str) -> None:
        body = error_body(status, message)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.executor.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # gunicorn refuses such a request before it gets here
    return None


def wsgi_environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The WSGI environ of an ASGI HTTP request whose body has been read."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    raw_path = raw_path.split(b"?", 1)[0]
    server = scope.get("server") or ("127.0.0.1", 80)
    client = scope.get("client")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", ""),
        # WSGI carries the path's bytes, percent-decoded, as a latin-1 string (PEP 3333).
        "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]) if server[1] is not None else "",
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        environ["REMOTE_PORT"] = str(client[1])
    for name, value in scope["headers"]:
        key = name.decode("latin-1").upper().replace("-", "_")
        if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
            continue  # the body is read whole: its length is what it holds
        if key == "CONTENT_TYPE":
            environ[key] = value.decode("latin-1")
            continue
        key = "HTTP_" + key
        text = value.decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    return environ


class GunicornServer(BaseApplication):
    """gunicorn run from Python so that ``qa serve`` needs no separate config file."""

    def __init__(self, settings: Settings, options: dict[str, Any], threads: int) -> None:
        self.settings = settings
        self.options = options
        self.threads = threads
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        # Runs in each worker (no app preload): every worker opens the index itself; the
        # index's files are memory-mapped, so the pages are shared by the OS. The
        # libraries were imported by the master (preload_libraries) before the fork.
        from .web import create_app

        if self.settings.worker_torch_threads:
            import torch

            # A worker answers one question at a time per thread of its own; PyTorch's
            # threads beyond it compete with the request's Python for the cores.
            torch.set_num_threads(self.settings.worker_torch_threads)

        app = create_app(self.settings)
        # The index and the model, side by side; the worker takes connections (and so
        # answers /api/ready) only once both are loaded.
        app.extensions["qa"].start()
        return WSGIBridge(app, threads=self.threads, max_body=self.settings.max_request_bytes)


#: What every worker imports, imported once by the master before it forks the workers
#: (their pages then shared): PyTorch, sentence-transformers and the service's modules
#: took 4.9 of a worker's 10.6 s start at 100,000 passages (BENCHMARKS.md). Only imports:
#: no model, index, thread pool or connection is made in the master.
PRELOADED_MODULES = (
    "numpy",
    "faiss",
    "bm25s",
    "torch",
    "tokenizers",
    "qa_service.web",
    "qa_service.service",
    "qa_service.compiled_query",
)
#: What a worker imports besides when its questions need the library: when the model's
#: compiled package and its description are there (question_encoder), they do not, and
#: importing them would be 4-8 s of the master's start for nothing.
LIBRARY_MODULES = ("transformers", "sentence_transformers")


def modules_to_preload(settings: Settings) -> tuple[str, ...]:
    """What the master imports for its workers, as the settings' model needs."""
    from .embedding import ModelError, SentenceTransformerEmbedder

    try:
        needs_library = SentenceTransformerEmbedder.from_settings(settings).questions_need_library()
    except (ModelError, OSError) as exc:  # the workers say it, each in its log
        logger.warning("cannot tell whether questions need the library: %s", exc)
        needs_library = True
    return PRELOADED_MODULES + (LIBRARY_MODULES if needs_library else ())


def preload_libraries(modules: Iterable[str] = PRELOADED_MODULES) -> list[str]:
    """Import ``modules`` (those that import here: a missing optional one is skipped);
    the names imported."""
    import importlib

    done = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            logger.warning("not preloaded: %s (%s)", name, exc)
            continue
        done.append(name)
    return done


def serve(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    """Run gunicorn until it is stopped."""
    # Metrics of all workers are added up through files in this directory.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="qa-metrics-"))
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "qa_service.server.QAWorker",
        # Connections each worker holds open at once (slow ones cost a coroutine each).
        "worker_connections": 1000,
        # A worker whose event loop does not report in this long is restarted; a body
        # not received within this time ends its request.
        "timeout": 30,
        "graceful_timeout": 10,
        "keepalive": 5,
        "accesslog": "-",
        "limit_request_line": 8190,
        # Which forwarded headers to believe is the app's decision (QA_PROXIES).
        "forwarded_allow_ips": "",
    }
    preload_libraries(modules_to_preload(settings))
    GunicornServer(settings, options, threads).run()
