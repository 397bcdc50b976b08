"""PDF through pypdf: one section per page, page numbers kept, headers/footers removed."""

from __future__ import annotations

import logging
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import DependencyError, PdfReadError

from ..cleaning import normalize_unicode, repeated_page_lines, strip_page_furniture
from ..schema import DocumentMeta, Section
from .base import ReadResult, SkipFile

logger = logging.getLogger(__name__)

# A page whose letters are mostly outside any alphabet is a broken font map, not text.
_MIN_LETTER_SHARE = 0.5


def _letter_share(text: str) -> float:
    visible = [c for c in text if not c.isspace()]
    if not visible:
        return 0.0
    return sum(c.isalpha() for c in visible) / len(visible)


def drop_garbled_lines(page: str) -> tuple[str, int]:
    """Drop lines holding control characters: glyphs a broken font map could not decode."""
    kept, dropped = [], 0
    for line in page.split("\n"):
        if any(ord(c) < 32 and c not in "\t\r" for c in line):
            dropped += 1
        else:
            kept.append(line)
    return "\n".join(kept), dropped


def read_pdf(path: Path, source: str) -> ReadResult:
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise SkipFile("encrypted PDF (needs a password)")
            except (NotImplementedError, PdfReadError, DependencyError) as exc:
                raise SkipFile(f"encrypted PDF ({exc})") from exc
        raw_pages = [page.extract_text() or "" for page in reader.pages]
    except SkipFile:
        raise
    except Exception as exc:  # pypdf raises many kinds of errors on broken files
        raise SkipFile(f"corrupt PDF: {type(exc).__name__}: {exc}") from exc
    if not raw_pages:
        raise SkipFile("PDF has no pages")
    pages = [normalize_unicode(text) for text in raw_pages]
    if not any(page.strip() for page in pages):
        raise SkipFile(f"no text layer (image-only PDF, {len(pages)} pages); needs OCR")
    all_text = "".join(pages)
    if _letter_share(all_text) < _MIN_LETTER_SHARE:
        raise SkipFile("text layer is unreadable (broken font encoding)")
    decoded = [drop_garbled_lines(page) for page in pages]
    pages = [text for text, _ in decoded]
    garbled = sum(count for _, count in decoded)
    furniture = repeated_page_lines(pages)
    sections = [
        Section(strip_page_furniture(text, furniture), page=number)
        for number, text in enumerate(pages, start=1)
        if text.strip()
    ]
    meta = DocumentMeta()
    info = reader.metadata
    title = str(info.title) if info is not None and info.title else ""
    if len(title.strip()) > 3 and not title.startswith("Microsoft Word"):
        meta.title = " ".join(title.split())
    result = ReadResult(meta=meta, sections=sections, reader="pdf", page_count=len(pages))
    if garbled:
        result.warnings.append(f"{garbled} lines dropped: unreadable font encoding")
    empty = len(pages) - len(sections)
    if empty:
        result.warnings.append(f"{empty} of {len(pages)} pages have no text layer")
    return result
