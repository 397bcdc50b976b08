"""What every reader returns, and the one exception that means "skip this file"."""

from __future__ import annotations

import codecs
import re
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


#: Byte order marks, longest first: the UTF-32 LE mark starts with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
#: What each byte 0x80-0xFF means in cp1252, keyed by the lone surrogate that
#: ``surrogateescape`` leaves for it; the five bytes cp1252 leaves undefined become U+FFFD.
_CP1252_BYTES = {
    0xDC00 + byte: bytes([byte]).decode("cp1252", errors="replace") for byte in range(0x80, 0x100)
}
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
#: How much of a file is looked at to tell text from binary data.
_SNIFF = 8192


def decode_text(data: bytes) -> tuple[str, str | None]:
    """Decode a text file's bytes; refuse binary data.

    A byte order mark decides (UTF-8, UTF-16, UTF-32); UTF-16 without one is recognised
    by its zero bytes. Otherwise the text is UTF-8, and only the bytes that are not valid
    UTF-8 (a Latin-1 "ö" pasted into a UTF-8 file) are read as cp1252, so one stray byte
    does not turn every "ö" of the file into "Ã¶". Returns the text and a warning when
    something had to be guessed or replaced.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _decode_wide(data[len(bom) :], encoding, guessed=False)
    if b"\x00" in data[:_SNIFF]:
        wide = utf16_without_bom(data[:_SNIFF])
        if wide is None:
            raise SkipFile("binary file (contains NUL bytes)")
        return _decode_wide(data, wide, guessed=True)
    text = data.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="surrogateescape")
    invalid = len(_ESCAPED_BYTE.findall(text))
    if not invalid:
        return text, None
    text = text.translate(_CP1252_BYTES)
    if invalid == sum(1 for byte in data if byte >= 0x80):
        return text, "not valid UTF-8; decoded as cp1252"
    return text, f"not valid UTF-8: {invalid} byte(s) decoded as cp1252, the rest as UTF-8"


def utf16_without_bom(head: bytes) -> str | None:
    """``utf-16-le`` or ``utf-16-be`` when the zero bytes are the high bytes of UTF-16
    text (ASCII and the Swedish letters all have one), else None."""
    pairs = len(head) // 2
    if pairs < 2:
        return None
    even = head[0 : pairs * 2 : 2].count(0)
    odd = head[1 : pairs * 2 : 2].count(0)
    for zeros, other, encoding in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if zeros >= 0.5 * pairs and other <= 0.02 * pairs:
            # errors="replace": the sample may end inside a surrogate pair.
            text = head[: pairs * 2].decode(encoding, errors="replace")
            readable = sum(1 for c in text if c.isprintable() or c in "\n\r\t\f")
            if readable >= 0.95 * len(text):
                return encoding
    return None


def _decode_wide(data: bytes, encoding: str, *, guessed: bool) -> tuple[str, str | None]:
    name = encoding.upper()
    warning = f"no byte order mark; read as {name}" if guessed else None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        text = data.decode(encoding, errors="replace")
        warning = f"not valid {name}; undecodable bytes replaced"
    if "\x00" in text[:_SNIFF]:
        raise SkipFile("binary file (contains NUL characters)")
    return text, warning
