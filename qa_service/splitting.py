"""Token-aware, sentence-aware splitting into passages with offsets and pages.

Sizes are counted with the embedding model's own tokenizer: all-MiniLM-L6-v2 reads 256
word pieces and Swedish words break into many, so a character budget would be cut off
silently by the model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

logger = logging.getLogger(__name__)

# Paragraphs first, then lines, sentences, clauses, words; characters only as a last resort.
SEPARATORS = ["\n\n", "\n", r"(?<=[.!?…])\s+", r"(?<=[;:])\s+", r"(?<=,)\s+", r"\s+", ""]


_MAX_CHARS_PER_TOKEN = 24
_FLOOR_TOKENS = 16


def hard_split(text: str, count_tokens: Callable[[str], int], budget: int) -> list[tuple[int, str]]:
    """Cut ``text`` into the longest prefixes that fit ``budget`` (binary search)."""
    pieces: list[tuple[int, str]] = []
    start = 0
    while start < len(text):
        lo, hi = start + 1, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count_tokens(text[start:mid]) <= budget:
                lo = mid
            else:
                hi = mid - 1
        pieces.append((start, text[start:lo]))
        start = lo
    return pieces


@dataclass(frozen=True)
class SectionSpan:
    """Where a reader's section lies in the document's cleaned text."""

    start: int
    end: int
    page: int | None = None
    heading: str | None = None
    speaker: str | None = None
    party: str | None = None


@dataclass(frozen=True)
class Chunk:
    text: str
    char_start: int
    char_end: int
    span: SectionSpan


def _splitter(
    count_tokens: Callable[[str], int], chunk_tokens: int, overlap_tokens: int
) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        separators=SEPARATORS,
        is_separator_regex=True,
        # Separators stay in the text, so every chunk is a true substring of the section.
        keep_separator=True,
        chunk_size=chunk_tokens,
        chunk_overlap=overlap_tokens,
        length_function=count_tokens,
        strip_whitespace=True,
    )


def split_text(
    text: str,
    *,
    count_tokens: Callable[[str], int],
    chunk_tokens: int,
    overlap_tokens: int,
) -> list[tuple[int, str]]:
    """Split one section into ``(offset, chunk)`` pairs, every chunk within the budget."""
    if not text.strip():
        return []
    overlap = min(overlap_tokens, chunk_tokens // 4)
    ceiling = chunk_tokens * _MAX_CHARS_PER_TOKEN

    def measure(piece: str) -> int:
        # Tokenizing a whole 300 kB section only to learn it is too long is the slow
        # part of splitting; no real text averages this many characters per token.
        # Erring here only ever splits more; emitted chunks are counted exactly below.
        return chunk_tokens + 1 if len(piece) > ceiling else count_tokens(piece)

    pieces = _splitter(measure, chunk_tokens, overlap).split_text(text)
    result: list[tuple[int, str]] = []
    cursor = 0
    previous_end = 0
    for piece in pieces:
        start = _locate(text, piece, cursor, previous_end)
        too_long = count_tokens(piece) > chunk_tokens
        if too_long and chunk_tokens <= _FLOOR_TOKENS:
            # Tokenizers need not be additive (SentencePiece marks word starts): when the
            # splitter cannot get under a small budget, cut by characters, exactly.
            result.extend(
                (start + offset, s) for offset, s in hard_split(piece, count_tokens, chunk_tokens)
            )
        elif too_long:
            # Re-joining splits can add a token or two; split such a piece again, smaller.
            sub = split_text(
                piece,
                count_tokens=count_tokens,
                chunk_tokens=max(_FLOOR_TOKENS, chunk_tokens * 3 // 4),
                overlap_tokens=overlap,
            )
            result.extend((start + offset, s) for offset, s in sub)
        else:
            result.append((start, piece))
        cursor = start + 1
        previous_end = start + len(piece)
    return result


def _locate(text: str, piece: str, cursor: int, previous_end: int) -> int:
    """Offset of ``piece``: after the previous chunk's start, overlapping it least.

    Repetitive text holds the same string in many places. A chunk either overlaps the
    end of its predecessor (the latest occurrence starting by ``previous_end``) or
    follows it (the first occurrence after).
    """
    position = text.find(piece, max(0, cursor))
    if position < 0:
        position = text.find(piece)
    if position < 0:  # pragma: no cover - the splitter only ever returns substrings
        raise ValueError("splitter returned text that is not in the section")
    while position < previous_end:
        following = text.find(piece, position + 1)
        if following < 0 or following > previous_end:
            break
        position = following
    return position


def split_sections(
    text: str,
    spans: Sequence[SectionSpan],
    *,
    count_tokens: Callable[[str], int],
    chunk_tokens: int,
    overlap_tokens: int,
) -> list[Chunk]:
    """Split each section of a document; a passage never crosses a page or a speech."""
    chunks: list[Chunk] = []
    seen: set[tuple[int, int]] = set()
    for span in spans:
        section = text[span.start : span.end]
        for offset, piece in split_text(
            section,
            count_tokens=count_tokens,
            chunk_tokens=chunk_tokens,
            overlap_tokens=overlap_tokens,
        ):
            start = span.start + offset
            # Re-splitting overlapping pieces can yield the same stretch twice: one
            # passage per stretch of text (a passage's id derives from it).
            if (start, start + len(piece)) in seen:
                continue
            seen.add((start, start + len(piece)))
            chunks.append(Chunk(piece, start, start + len(piece), span))
    return chunks
