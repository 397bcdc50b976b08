"""BM25 over passages with Swedish Snowball stemming and Swedish stop words."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_SWEDISH

logger = logging.getLogger(__name__)

_TOKEN = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(STOPWORDS_SWEDISH)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("swedish")


def tokenize(text: str) -> list[str]:
    """Lower-cased Snowball-Swedish stems of the words, stop words and 1-letter words out."""
    words = [w for w in _TOKEN.findall(text.lower()) if len(w) > 1 and w not in STOPWORDS]
    stems: list[str] = _stemmer().stemWords(words)
    return stems


class LexicalIndex:
    """A bm25s index whose document ids are FAISS rows (0..n-1)."""

    def __init__(self, bm25: bm25s.BM25 | None, size: int) -> None:
        self._bm25 = bm25
        self.size = size

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        if not texts:
            return cls(None, 0)
        bm25 = bm25s.BM25()
        bm25.index([tokenize(t) or ["\u2205"] for t in texts], show_progress=False)
        return cls(bm25, len(texts))

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / "size").write_text(str(self.size))
        if self._bm25 is not None:
            self._bm25.save(str(path))

    @classmethod
    def load(cls, path: Path) -> LexicalIndex:
        size = int((path / "size").read_text())
        if size == 0:
            return cls(None, 0)
        bm25 = bm25s.BM25.load(str(path), mmap=True, show_progress=False)
        return cls(bm25, size)

    def search(
        self, query: str, k: int, *, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """``(row, score)`` pairs, best first; ``allowed`` is a 0/1 mask over rows."""
        tokens = tokenize(query)
        if self._bm25 is None or not tokens or k < 1:
            return []
        k = min(k, self.size)
        mask = allowed.astype(np.float32) if allowed is not None else None
        docs, scores = self._bm25.retrieve(
            [tokens], k=k, show_progress=False, weight_mask=mask, n_threads=1
        )
        return [(int(d), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]
