"""The production server: gunicorn, several workers, the index loaded once per worker."""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

from gunicorn.app.base import BaseApplication

from .config import Settings

logger = logging.getLogger(__name__)


class GunicornServer(BaseApplication):
    """gunicorn run from Python so that ``qa serve`` needs no separate config file."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        # Runs in each worker (no preload): every worker opens the index itself; the
        # FAISS vectors are memory-mapped, so the pages are shared by the OS.
        from .web import create_app

        app = create_app(self.settings)
        service = app.extensions["qa"]
        service.load()
        service.warm_up()
        return app


def serve(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    """Run gunicorn until it is stopped."""
    # Metrics of all workers are added up through files in this directory.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="qa-metrics-"))
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 120,
        "graceful_timeout": 30,
        "accesslog": "-",
        "limit_request_line": 8190,
    }
    GunicornServer(settings, options).run()
