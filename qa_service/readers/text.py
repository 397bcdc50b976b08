"""Plain text and Markdown."""

from __future__ import annotations

import re
from pathlib import Path

from ..metadata import markdown_title, parse_text_header
from ..schema import DocumentMeta, Section
from .base import ReadResult, SkipFile, decode_text

_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_)(?=\S)(.+?)(?<=\S)\1")


def markdown_to_text(text: str) -> str:
    """Markdown markup removed, paragraphs kept: headings, emphasis, links, list bullets."""
    out = []
    for line in text.split("\n"):
        line = re.sub(r"^\s{0,3}#{1,6}\s+", "", line)
        line = re.sub(r"^\s*[-*+]\s+", "• ", line)
        line = re.sub(r"^\s*>\s?", "", line)
        line = _MD_LINK.sub(r"\1", line)
        line = _MD_EMPHASIS.sub(r"\2", line)
        out.append(line)
    return "\n".join(out)


def read_text(path: Path, source: str) -> ReadResult:
    raw, warning = decode_text(path.read_bytes())
    if not raw.strip():
        raise SkipFile("empty file")
    meta, body = parse_text_header(raw)
    result = ReadResult(meta=meta, sections=[Section(body)], reader="text")
    if warning:
        result.warnings.append(warning)
    return result


def read_markdown(path: Path, source: str) -> ReadResult:
    raw, warning = decode_text(path.read_bytes())
    if not raw.strip():
        raise SkipFile("empty file")
    title = markdown_title(raw)
    # The title is metadata; the body starts after its heading line.
    body = re.sub(r"^\s*#\s+.+\n?", "", raw, count=1) if title else raw
    result = ReadResult(
        meta=DocumentMeta(title=title or ""),
        sections=[Section(markdown_to_text(body))],
        reader="markdown",
        # Markdown paragraphs are explicit (blank lines): no layout reflow.
        reflow=False,
    )
    if warning:
        result.warnings.append(warning)
    return result
