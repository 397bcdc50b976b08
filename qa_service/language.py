"""Which language a question is written in: Swedish (the corpus) or English.

BM25 over Swedish passages cannot match English words (only names), so an English
question is also searched with the Swedish terms of the domain glossary (``glossary.py``).
"""

from __future__ import annotations

import re

from .glossary import english_only_terms, glossary_spans
from .lexical import STOPWORDS

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
#: Function words of English questions that are not Swedish words too.
ENGLISH_WORDS = frozenset(
    "the a an is are was were be been what which who whom whose why how when where does do "
    "did of to for with without by from about according under their there this these those "
    "that it its can could should would will has have had not many much most and or any".split()
)


def is_english(text: str) -> bool:
    """Whether a question reads as English rather than Swedish.

    Function words decide a sentence ("What is the benefit cap?"); a string of keywords
    ("Public Employment Service budget 2024") without a Swedish function word reads as
    English when the glossary knows one of its English terms by another Swedish name.
    """
    words = [w.lower() for w in _WORD.findall(text)]
    english = sum(w in ENGLISH_WORDS for w in words)
    swedish = sum(w in STOPWORDS and w not in ENGLISH_WORDS for w in words)
    if english >= 2 and english > swedish:
        return True
    return swedish == 0 and bool(english_only_terms(text))


def glossary_share(text: str) -> float:
    """The share of an English text's own words (not its function words) that glossary
    phrases cover: how much of the question the lexical leg can read in Swedish once the
    glossary's terms are added (0.0 for a text with no such word)."""
    lowered = text.lower()
    spans = glossary_spans(lowered)
    words = [
        match
        for match in _WORD.finditer(lowered)
        if len(match.group()) > 2 and match.group() not in ENGLISH_WORDS
    ]
    if not words:
        return 0.0
    covered = sum(any(a <= m.start() < b for a, b in spans) for m in words)
    return covered / len(words)
