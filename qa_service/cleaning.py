"""Pure ``str -> str`` functions that turn extracted text into clean Swedish prose.

Each function does one thing and is tested by a table in ``tests/test_cleaning.py``.
``clean_text`` strings them together in the order the ingestion job uses.
"""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Sequence

SOFT_HYPHEN = "\u00ad"
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)
_SPACES = dict.fromkeys(map(ord, "\u00a0\u2007\u202f\u2009\u200a\u3000\t\f\v"), " ")

# Words that follow a suspended compound: "arbetsmarknads- och integrationsminister".
_SUSPENSION_FOLLOWERS = frozenset(
    "och eller samt respektive resp. som till liksom men utan än".split()
)
_SENTENCE_END = re.compile(r"[.!?:;…\"”)]$")
_BARE_PAGE_NUMBER = re.compile(r"^\s*(?:s\.|sid\.?|sida)?\s*[-–]?\s*\d{1,4}\s*[-–]?\s*$", re.I)
# A line is "wrapped" (page layout) when lines are bounded by a page width.
_WRAPPED_P90_MAX = 130


def normalize_unicode(text: str) -> str:
    """NFC, unify line ends, drop soft hyphens and zero-width characters, plain spaces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text)
    return text.translate(_INVISIBLE).translate(_SPACES)


def repair_hyphenation(text: str) -> str:
    """Undo end-of-line hyphenation, keeping real hyphens and suspended compounds.

    ``"arbets-\\nmarknaden"`` becomes ``"arbetsmarknaden"``, ``"arbetsmarknads-\\noch"``
    becomes ``"arbetsmarknads- och"`` and ``"EU-\\nkommissionen"`` keeps its hyphen.
    """

    def join(match: re.Match[str]) -> str:
        left, right = match.group(1), match.group(2)
        if right.lower() in _SUSPENSION_FOLLOWERS or right.startswith(("och", "eller")):
            return f"{left}- {right}"
        if left[-1].isupper() or left[-1].isdigit() or right[0].isupper() or right[0].isdigit():
            return f"{left}-{right}"
        return f"{left}{right}"

    return re.sub(r"(\w+)-[ \t]*\n[ \t]*(\w[\w.]*)", join, text)


def _paragraph_breaks_everywhere(lines: Sequence[str]) -> bool:
    lengths = sorted(len(line.strip()) for line in lines if line.strip())
    if not lengths:
        return True
    p90 = lengths[min(len(lengths) - 1, int(len(lengths) * 0.9))]
    return p90 > _WRAPPED_P90_MAX


def reflow_lines(text: str) -> str:
    """Join layout line breaks into paragraphs separated by one blank line.

    Handles text pulled out of PDFs where every line is followed by blank lines and
    some lines start with a stray space. Text whose lines are already paragraphs
    (long lines) keeps each line as its own paragraph.
    """
    lines = text.split("\n")
    nonempty = [i for i, line in enumerate(lines) if line.strip()]
    if not nonempty:
        return ""
    if _paragraph_breaks_everywhere(lines):
        return "\n\n".join(" ".join(lines[i].split()) for i in nonempty)

    followed_by_blank = sum(1 for i in nonempty if i + 1 < len(lines) and not lines[i + 1].strip())
    double_spaced = len(nonempty) >= 4 and followed_by_blank / len(nonempty) > 0.6
    # In double-spaced extraction a single blank line is only a line break.
    blank_run_for_paragraph = 2 if double_spaced else 1

    typical = statistics.median(len(lines[i].strip()) for i in nonempty) or 1
    paragraphs: list[list[str]] = [[]]
    blank_run = 0
    previous_raw = ""
    for raw in lines:
        if not raw.strip():
            blank_run += 1
            continue
        current = paragraphs[-1]
        if (current and blank_run >= blank_run_for_paragraph) or (
            current and _ends_paragraph(previous_raw, raw, typical)
        ):
            paragraphs.append([])
        paragraphs[-1].append(raw.strip())
        previous_raw = raw
        blank_run = 0
    out = []
    for para in paragraphs:
        if para:
            joined = repair_hyphenation("\n".join(para)).replace("\n", " ")
            out.append(" ".join(joined.split()))
    return "\n\n".join(out)


def _ends_paragraph(previous_raw: str, next_raw: str, typical: float) -> bool:
    prev = previous_raw.strip()
    nxt = next_raw.strip()
    starts_new = nxt[:1].isupper() or nxt[:1].isdigit() or nxt[:1] in "•–-*"
    short = len(prev) < 0.6 * typical
    if _SENTENCE_END.search(prev) and previous_raw.endswith("  "):
        return True
    return short and starts_new


def drop_bare_page_numbers(text: str) -> str:
    """Remove lines that hold nothing but a page number ("12", "- 12 -", "s. 12")."""
    return "\n".join(line for line in text.split("\n") if not _BARE_PAGE_NUMBER.match(line))


def _furniture_key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split())).lower()


def repeated_page_lines(pages: Sequence[str], edge_lines: int = 2) -> set[str]:
    """Keys of header/footer lines: lines at a page's edge that recur on most pages."""
    if len(pages) < 3:
        return set()
    counts: Counter[str] = Counter()
    for page in pages:
        lines = [line for line in page.split("\n") if line.strip()]
        if len(lines) <= 2 * edge_lines:
            continue  # a short page is all content; its lines are no evidence of furniture
        edges = {_furniture_key(line) for line in lines[:edge_lines] + lines[-edge_lines:]}
        counts.update(edges)
    threshold = max(3, len(pages) // 2)
    return {key for key, n in counts.items() if n >= threshold and len(key) <= 120}


def strip_page_furniture(page: str, furniture: set[str]) -> str:
    """Drop the header/footer lines found by :func:`repeated_page_lines` from one page."""
    if not furniture:
        return page
    return "\n".join(
        line
        for line in page.split("\n")
        if not line.strip() or _furniture_key(line) not in furniture
    )


def drop_repeated_short_lines(text: str, min_repeats: int = 5, max_chars: int = 40) -> str:
    """Remove short lines that recur many times (running heads in text exports)."""
    lines = text.split("\n")
    counts = Counter(_furniture_key(line) for line in lines if line.strip())
    noisy = {
        key
        for key, n in counts.items()
        if n >= min_repeats and len(key) <= max_chars and not _SENTENCE_END.search(key)
    }
    if not noisy:
        return text
    return "\n".join(line for line in lines if _furniture_key(line) not in noisy)


_LIST_ITEM = re.compile(r"\n(?=[ \t]*•)")


def collapse_whitespace(text: str) -> str:
    """One space between words, one blank line between paragraphs, no edge space; a list
    item ("• …") keeps the line it starts, so a list is not run together into one line."""
    paragraphs = re.split(r"\n\s*\n", text)
    cleaned = (
        "\n".join(line for line in (" ".join(item.split()) for item in _LIST_ITEM.split(p)) if line)
        for p in paragraphs
    )
    return "\n\n".join(p for p in cleaned if p)


def clean_text(text: str, *, reflow: bool = True) -> str:
    """The full cleaning pipeline for one section of extracted text."""
    text = normalize_unicode(text)
    text = drop_bare_page_numbers(text)
    if reflow:
        text = reflow_lines(text)
    return collapse_whitespace(text)
