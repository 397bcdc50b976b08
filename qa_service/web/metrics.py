"""Prometheus metrics: request counts and latencies by endpoint, passages in the index.

Under gunicorn each worker is a process; when ``PROMETHEUS_MULTIPROC_DIR`` is set (``qa
serve`` sets it) the numbers of all workers are collected together.
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("qa_requests_total", "HTTP requests", ["endpoint", "method", "status"])
LATENCY = Histogram(
    "qa_request_seconds",
    "Time to answer a request",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
)
PASSAGES = Gauge("qa_index_passages", "Passages in the loaded index", multiprocess_mode="max")
#: Methods counted by name; any other (made up by a client) counts as "other", so that a
#: client cannot create a new series with every request.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def install(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        g.qa_started = time.perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        started = getattr(g, "qa_started", None)
        if started is not None:
            LATENCY.labels(endpoint).observe(time.perf_counter() - started)
        method = request.method if request.method in METHODS else "other"
        REQUESTS.labels(endpoint, method, str(response.status_code)).inc()
        return response

    @app.get("/metrics")
    def metrics() -> Any:
        passages = app.extensions["qa"].loaded_passages
        if passages is not None:
            PASSAGES.set(passages)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            body = generate_latest(registry)
        else:
            body = generate_latest()
        return Response(body, mimetype=CONTENT_TYPE_LATEST)
