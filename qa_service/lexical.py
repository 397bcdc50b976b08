"""BM25 over passages with Swedish Snowball stemming and Swedish stop words."""

from __future__ import annotations

import array
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_SWEDISH

from .convex_fusion import idf, term_coverage

logger = logging.getLogger(__name__)

_TOKEN = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(STOPWORDS_SWEDISH)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("swedish")


def _words(text: str) -> list[str]:
    """Lower-cased words, stop words and 1-letter words out."""
    return [w for w in _TOKEN.findall(text.lower()) if len(w) > 1 and w not in STOPWORDS]


def tokenize(text: str) -> list[str]:
    """Lower-cased Snowball-Swedish stems of the words, stop words and 1-letter words out."""
    stems: list[str] = _stemmer().stemWords(_words(text))
    return stems


#: Bump when what goes into the lexical index changes: the next ingest rebuilds it.
LEXICAL_VERSION = 2
_MIN_COMPOUND = 10
_MIN_PART = 4
_MIN_PART_COUNT = 5


class Decompounder:
    """Splits Swedish compounds into two known words: "utanförskapsområden" ->
    "utanförskap" + "områden" (a linking -s- is dropped).

    A part counts as a word when it occurs on its own at least ``min_count`` times in the
    corpus. The parts are added to a passage's terms (the compound stays), so a question
    about "områden med utanförskap" finds "utanförskapsområden".
    """

    def __init__(self, counts: Counter[str], min_count: int = _MIN_PART_COUNT) -> None:
        self.counts = counts
        self.min_count = min_count
        self._cache: dict[str, tuple[str, ...]] = {}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Decompounder:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(w for w in _TOKEN.findall(text.lower()) if len(w) >= _MIN_PART)
        return cls(counts)

    def split(self, word: str) -> tuple[str, ...]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        best: tuple[int, str, str] | None = None
        if len(word) >= _MIN_COMPOUND:
            for i in range(_MIN_PART, len(word) - _MIN_PART + 1):
                left, right = word[:i], word[i:]
                if self.counts.get(right, 0) < self.min_count:
                    continue
                for candidate in (left, left[:-1] if left.endswith("s") else ""):
                    if len(candidate) < _MIN_PART:
                        continue
                    support = min(self.counts.get(candidate, 0), self.counts[right])
                    if support >= self.min_count and (best is None or support > best[0]):
                        best = (support, candidate, right)
        parts = (best[1], best[2]) if best else ()
        self._cache[word] = parts
        return parts


def tokenize_with_parts(text: str, decompounder: Decompounder) -> list[str]:
    """Like :func:`tokenize`, with the parts of compound words added after each compound."""
    expanded: list[str] = []
    for word in _words(text):
        expanded.append(word)
        expanded.extend(decompounder.split(word))
    stems: list[str] = _stemmer().stemWords(expanded)
    return stems


def token_ids(
    texts: Iterable[str], decompounder: Decompounder
) -> tuple[list[array.array[int]], dict[str, int]]:
    """Each text's stems (:func:`tokenize_with_parts`; a text without any: one stand-in)
    as ids, and the stems' ids, for ``bm25s.BM25.index``.

    Compact arrays of ids rather than lists of stems: 4 bytes a token instead of ~60, so
    a million passages' tokens take 0.7 GB rather than ~9 GB while the index is built
    (BENCHMARKS.md, "A million passages"). The index is the one the stems would give.
    """
    vocabulary: dict[str, int] = {}
    ids: list[array.array[int]] = []
    for text in texts:
        stems = tokenize_with_parts(text, decompounder) or ["\u2205"]
        ids.append(array.array("i", (vocabulary.setdefault(s, len(vocabulary)) for s in stems)))
    return ids, vocabulary


class LexicalIndex:
    """A bm25s index whose document ids are FAISS rows (0..n-1)."""

    def __init__(self, bm25: bm25s.BM25 | None, size: int) -> None:
        self._bm25 = bm25
        self.size = size

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        """Index passages; compound parts are added on the passage side only (measured:
        adding them to questions too ranks the exact compound lower)."""
        if not texts:
            return cls(None, 0)
        decompounder = Decompounder.from_texts(texts)
        bm25 = bm25s.BM25()
        bm25.index(token_ids(texts, decompounder), show_progress=False)
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
        if self.empty or not tokens or k < 1:
            return []
        scores = self._scores(tokens, allowed)
        return self._top(scores, k)

    @property
    def empty(self) -> bool:
        return self._bm25 is None

    def _scores(self, tokens: list[str], allowed: np.ndarray | None) -> np.ndarray:
        """Every row's BM25 score for the stems (0 where ``allowed`` is 0)."""
        assert self._bm25 is not None
        mask = allowed.astype(np.float32) if allowed is not None else None
        scores: np.ndarray = self._bm25.get_scores(tokens, weight_mask=mask)
        return scores

    def _postings(self, term: str) -> np.ndarray | None:
        """The rows holding a stemmed term, ascending (None: not in the index)."""
        if self._bm25 is None:
            return None
        position = self._bm25.vocab_dict.get(term)
        if position is None:
            return None
        indptr = self._bm25.scores["indptr"]
        postings: np.ndarray = self._bm25.scores["indices"][indptr[position] : indptr[position + 1]]
        return postings

    def document_frequency(self, term: str) -> int:
        """In how many passages a stemmed term occurs (0: not in the index)."""
        postings = self._postings(term)
        return 0 if postings is None else len(postings)

    def term_coverage(self, query: str, rows: Sequence[int]) -> float:
        """The largest idf-weighted share of the question's stems that one of the
        passages at ``rows`` holds (:func:`qa_service.convex_fusion.term_coverage`)."""
        stems = list(dict.fromkeys(tokenize(query)))
        if self.empty or not stems or not rows:
            return 0.0
        wanted = np.asarray(rows, dtype=np.int64)
        holders: list[set[str]] = [set() for _ in rows]
        weights: dict[str, float] = {}
        for stem in stems:
            postings = self._postings(stem)
            if postings is None:
                weights[stem] = idf(0, self.size)
                continue
            weights[stem] = idf(len(postings), self.size)
            # bm25s keeps each term's rows in ascending order (a canonical CSC matrix), so a
            # binary search finds them: 0.15 ms a question against 1.17 ms with np.isin,
            # which sorts a common stem's whole posting list (p50, BENCHMARKS.md).
            at = np.minimum(np.searchsorted(postings, wanted), len(postings) - 1)
            for i in np.flatnonzero(postings[at] == wanted):
                holders[int(i)].add(stem)
        return term_coverage(weights, holders)

    def search_expanded(
        self,
        query: str,
        k: int,
        feedback_texts: Callable[[list[int]], list[str]],
        *,
        passages: int = 5,
        terms: int = 10,
        weight: float = 0.3,
        allowed: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """BM25 with RM3-style feedback: the ``terms`` best terms of the question's first
        ``passages`` passages (:func:`expansion_terms`) are searched too, their BM25
        scores added at ``weight``."""
        tokens = tokenize(query)
        if self.empty or not tokens or k < 1:
            return []
        scores = self._scores(tokens, allowed)
        first = self._top(scores, passages)
        if first and terms > 0 and weight > 0:
            texts = feedback_texts([row for row, _ in first])
            extra = expansion_terms(
                tokens,
                [tokenize(t) for t in texts],
                [score for _, score in first],
                self.document_frequency,
                self.size,
                terms,
            )
            if extra:
                scores = scores + weight * self._scores(extra, allowed)
        return self._top(scores, k)

    @staticmethod
    def _top(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
        # Only passages holding a query term score above zero. Selecting among them alone
        # spares numpy's partition the thousands of equal zeros that slow it down tenfold
        # (the lexical leg over 29,768 passages: 1.0 ms with bm25s's own top-k, 0.5 ms
        # with this; BENCHMARKS.md).
        matching = np.flatnonzero(scores > 0)
        if len(matching) > k:
            values = scores[matching]
            kth = -np.partition(-values, k - 1)[k - 1]
            # Ties at the cut go to the lowest rows, so the result never depends on how
            # the partition happened to order equal scores.
            tied = matching[values == kth]
            above = matching[values > kth]
            matching = np.concatenate([above, tied[: k - len(above)]])
        order = matching[np.lexsort((matching, -scores[matching]))]  # best first, then row
        return [(int(row), float(scores[row])) for row in order]


def lucene_idf(df: int, size: int) -> float:
    """bm25s's idf (its default, Lucene's): ``log(1 + (N - df + 0.5) / (df + 0.5))``."""
    return math.log(1 + (size - df + 0.5) / (df + 0.5))


class SegmentedLexicalIndex(LexicalIndex):
    """BM25 over a build of several segments (store.py), each its own bm25s index over
    its rows, searched as one index over every row.

    bm25s stores each (term, passage) score with the term's idf baked in, from its own
    segment's statistics; here each segment's scores of a term are rescaled by
    ``idf(global df, N) / idf(segment df, segment N)``, so a term weighs the same in
    every segment, as in one index over all of them (deleted rows count until a merge,
    as in Lucene). What stays of the segment: the length normalisation (its mean
    passage length) and its compound splitting (from its own passages' words);
    tests/test_segments.py measures how alike the rankings are.
    """

    def __init__(
        self, parts: Sequence[tuple[int, LexicalIndex]], deleted: np.ndarray | None = None
    ) -> None:
        super().__init__(None, sum(part.size for _, part in parts))
        self.parts = [(offset, part) for offset, part in parts if part._bm25 is not None]
        #: Rows that score nothing (deleted since their segment was written).
        self.deleted = deleted

    @property
    def empty(self) -> bool:
        return not self.parts

    def document_frequency(self, term: str) -> int:
        return sum(part.document_frequency(term) for _, part in self.parts)

    def _postings(self, term: str) -> np.ndarray | None:
        found = [
            postings.astype(np.int64) + offset
            for offset, part in self.parts
            if (postings := part._postings(term)) is not None
        ]
        return np.concatenate(found) if found else None

    def _scores(self, tokens: list[str], allowed: np.ndarray | None) -> np.ndarray:
        scores = np.zeros(self.size, dtype=np.float32)
        for token in tokens:  # a stem twice in the question counts twice, as in bm25s
            frequency = self.document_frequency(token)
            if frequency == 0:
                continue
            wanted = lucene_idf(frequency, self.size)
            for offset, part in self.parts:
                bm25 = part._bm25
                assert bm25 is not None
                position = bm25.vocab_dict.get(token)
                if position is None:
                    continue
                indptr = bm25.scores["indptr"]
                start, end = int(indptr[position]), int(indptr[position + 1])
                factor = wanted / lucene_idf(end - start, part.size)
                rows = bm25.scores["indices"][start:end].astype(np.int64) + offset
                # One term's rows are distinct: a plain fancy-index add is exact.
                scores[rows] += bm25.scores["data"][start:end] * np.float32(factor)
        if self.deleted is not None:
            scores[self.deleted] = 0
        if allowed is not None:
            scores *= allowed.astype(np.float32)
        return scores


def expansion_terms(
    query: Sequence[str],
    feedback: Sequence[Sequence[str]],
    weights: Sequence[float],
    document_frequency: Callable[[str], int],
    size: int,
    count: int,
) -> list[str]:
    """RM3-style expansion: the ``count`` stems of the feedback passages (tokenised, with
    their retrieval scores as ``weights``) that score best by the passages' weighted
    share of the term, times its idf over the ``size`` passages; the question's own
    stems are left out (pure; ties by the stem)."""
    total = sum(weights) or 1.0
    relevance: dict[str, float] = {}
    own = set(query)
    for stems, weight in zip(feedback, weights, strict=True):
        if not stems:
            continue
        for stem, times in Counter(stems).items():
            if stem in own or stem.isdigit():
                continue
            relevance[stem] = relevance.get(stem, 0.0) + weight / total * times / len(stems)
    scored = []
    for stem, value in relevance.items():
        df = document_frequency(stem)
        if df < 2:  # a word of one passage says nothing about the others
            continue
        scored.append((value * math.log(size / df), stem))
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    return [stem for _, stem in scored[:count]]
