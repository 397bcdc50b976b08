"""Readers, one module per format, chosen by suffix and (for XML and JSON) by content."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from .base import ReadResult, SkipFile
from .html import read_html
from .pdf import read_pdf
from .riksdagen import read_riksdagen_json, read_riksdagen_xml
from .tei import read_tei
from .text import read_markdown, read_text

__all__ = ["SUPPORTED_SUFFIXES", "ReadResult", "SkipFile", "read_document"]


def read_xml(path: Path, source: str) -> ReadResult:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise SkipFile(f"corrupt XML: {exc}") from exc
    tag = root.tag.rsplit("}", 1)[-1]
    if tag == "TEI":
        return read_tei(root)
    if tag == "dokumentstatus":
        return read_riksdagen_xml(root)
    raise SkipFile(f"unsupported XML (root element <{tag}>)")


_BY_SUFFIX: dict[str, Callable[[Path, str], ReadResult]] = {
    ".pdf": read_pdf,
    ".txt": read_text,
    ".text": read_text,
    ".md": read_markdown,
    ".markdown": read_markdown,
    ".html": read_html,
    ".htm": read_html,
    ".json": read_riksdagen_json,
    ".xml": read_xml,
}
SUPPORTED_SUFFIXES = frozenset(_BY_SUFFIX)


def read_document(path: Path, source: str) -> ReadResult:
    """Read one file; raises :class:`SkipFile` with a reason when it cannot be indexed."""
    reader = _BY_SUFFIX.get(path.suffix.lower())
    if reader is None:
        raise SkipFile(f"unsupported file type {path.suffix or '(no suffix)'!r}")
    if path.stat().st_size == 0:
        raise SkipFile("empty file")
    return reader(path, source)
