"""HTML pages (regeringen.se) and the HTML bodies inside Riksdagen open data."""

from __future__ import annotations

import html as html_lib
from html.parser import HTMLParser
from pathlib import Path

from ..domain.profiles import clean_title
from ..schema import DocumentMeta, Section
from .base import ReadResult, SkipFile, decode_text

_BLOCK = frozenset(
    "address article aside blockquote body br dd div dl dt fieldset figcaption figure "
    "h1 h2 h3 h4 h5 h6 hr li main ol p pre section table tbody thead tfoot tr ul "
    "caption".split()
)
_CELL = frozenset({"td", "th"})
_SKIP = frozenset(
    "script style noscript template head nav form button select option svg iframe object".split()
)
_VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())


class _TextExtractor(HTMLParser):
    """Collects text; inline elements are joined as-is so words split by spans stay whole."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._current: list[str] = []
        self._skip_depth = 0
        self._in_title = False
        self.title = ""
        #: Index of the block where the first <h1> starts: page chrome lies before it.
        self.h1_block: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _SKIP and tag not in _VOID:
            self._skip_depth += 1
        elif tag in _BLOCK:
            self._flush()
            if tag == "h1" and self.h1_block is None and not self._skip_depth:
                self.h1_block = len(self.blocks)
        elif tag in _CELL:
            self._current.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _SKIP and tag not in _VOID:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _BLOCK:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
            return
        if self._skip_depth:
            return
        self._current.append(data)

    def _flush(self) -> None:
        text = " ".join("".join(self._current).split())
        if text:
            self.blocks.append(text)
        self._current = []

    def close(self) -> None:
        super().close()
        self._flush()


def html_to_text(markup: str, *, from_h1: bool = False) -> tuple[str, str]:
    """Return ``(title, text)``: blocks become paragraphs separated by a blank line.

    With ``from_h1`` a page's text starts at its first ``<h1>`` (navigation lies before).
    """
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    blocks = parser.blocks
    if from_h1 and parser.h1_block is not None:
        blocks = blocks[parser.h1_block :]
    return " ".join(parser.title.split()), "\n\n".join(blocks)


def unescape_if_escaped(markup: str) -> str:
    """Some Riksdagen XML carries its HTML escaped twice (``&lt;br&gt;``)."""
    if "<" not in markup and "&lt;" in markup:
        return html_lib.unescape(markup)
    return markup


def read_html(path: Path, source: str) -> ReadResult:
    raw, warning = decode_text(path.read_bytes())
    title, text = html_to_text(raw, from_h1=True)
    title = clean_title(title)
    if not text.strip():
        raise SkipFile("no text in the HTML page")
    result = ReadResult(
        meta=DocumentMeta(title=title), sections=[Section(text)], reader="html", reflow=False
    )
    if warning:
        result.warnings.append(warning)
    return result
