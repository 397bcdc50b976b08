"""Liveness and readiness of a worker."""

from __future__ import annotations

import logging

from .conversation import ConversationStore
from .models import Health, IndexInfo, Ready
from .store import IndexReader

logger = logging.getLogger(__name__)


def health() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


def ready(reader: IndexReader, conversations: ConversationStore, query_encoder: str) -> Ready:
    """Readiness: the index is loaded and a turn can be stored; what the index holds.

    503 while either is not so: a conversation database on a read-only or full disk
    fails every ``/api/ask``, so the service is not ready then (the probe writes and
    commits one row, as a turn does).
    """
    conversations.check_writable()
    manifest = reader.manifest
    info = IndexInfo(
        build=reader.build_path.name,
        model=manifest.get("model"),
        query_encoder=query_encoder,
        passages=manifest.get("passages"),
        documents=manifest.get("documents"),
        built_at=manifest.get("built_at"),
    )
    return Ready(status="ready", index=info)
