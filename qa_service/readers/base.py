"""What every reader returns, and the one exception that means "skip this file"."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..schema import DocumentMeta, Section


class SkipFile(Exception):
    """The file cannot be indexed; ``reason`` is shown in the ingest report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ReadResult:
    meta: DocumentMeta
    sections: list[Section]
    reader: str
    page_count: int | None = None
    #: Whether the sections are layout text (line-wrapped) that needs reflowing.
    reflow: bool = True
    warnings: list[str] = field(default_factory=list)


class Reader(Protocol):
    def __call__(self, path: Path, source: str) -> ReadResult: ...


def decode_text(data: bytes) -> tuple[str, str | None]:
    """Decode bytes as UTF-8, falling back to cp1252; refuse binary data.

    Returns the text and a warning when a fallback was needed.
    """
    if b"\x00" in data[:8192]:
        raise SkipFile("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "not valid UTF-8; decoded as cp1252"
