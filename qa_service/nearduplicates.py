"""Near-duplicate detection: word 3-gram shingles, hashed, compared by Jaccard similarity.

A passage's shingles are stored with the index (:func:`shingle_hashes`, one sorted array
per passage), so that a search compares a few sets of integers instead of cutting every
candidate's text into words again. The hash is CRC-32 of the lower-cased words joined
by spaces: stable across processes and machines, unlike Python's ``hash``.
"""

from __future__ import annotations

import re
import zlib

import numpy as np

SHINGLE_SIZE = 3
_WORD = re.compile(r"\w+")


def shingle_hashes(text: str, size: int = SHINGLE_SIZE) -> np.ndarray:
    """The sorted, distinct hashes of a text's lower-cased word ``size``-grams.

    A text of fewer than ``size`` words is one shingle of all its words; a text without
    words has none.
    """
    words = _WORD.findall(text.lower())
    if not words:
        return np.zeros(0, dtype=np.uint32)
    count = max(1, len(words) - size + 1)
    grams = (" ".join(words[i : i + size]).encode() for i in range(count))
    return np.unique(np.fromiter(map(zlib.crc32, grams), dtype=np.uint32, count=count))


def shingles(text: str, size: int = SHINGLE_SIZE) -> set[int]:
    """A text's shingles as a set, ready for :func:`jaccard`."""
    return set(shingle_hashes(text, size).tolist())


def jaccard(a: set[int], b: set[int]) -> float:
    """Shared shingles over all shingles of the two; 0 when either has none."""
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)


def near_duplicates(a: set[int], b: set[int], threshold: float) -> bool:
    """Whether ``jaccard(a, b) >= threshold``; sets whose sizes differ too much to get
    there (the smaller over the larger below the threshold) are not intersected."""
    small, large = sorted((len(a), len(b)))
    if not large or small < threshold * large:
        return False
    return jaccard(a, b) >= threshold
