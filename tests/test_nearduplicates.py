from __future__ import annotations

import zlib

import numpy as np
import pytest

from qa_service.nearduplicates import jaccard, near_duplicates, shingle_hashes, shingles


def crc(gram: str) -> int:
    return zlib.crc32(gram.encode())


@pytest.mark.parametrize(
    ("text", "grams"),
    [
        ("", []),
        ("  –  ", []),
        ("Bidragstak", ["bidragstak"]),
        ("yrkesvux i kommunerna", ["yrkesvux i kommunerna"]),
        ("Totalt bor 710 000", ["totalt bor 710", "bor 710 000"]),
        # Case and punctuation do not count; a repeated gram is one shingle.
        ("Ett, två. TRE! ett två tre", ["ett två tre", "två tre ett", "tre ett två"]),
        ("två ord", ["två ord"]),
    ],
)
def test_shingle_hashes(text: str, grams: list[str]) -> None:
    hashes = shingle_hashes(text)
    assert hashes.dtype == np.uint32
    assert hashes.tolist() == sorted({crc(g) for g in grams})
    assert shingles(text) == {crc(g) for g in grams}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (
            "Totalt bor 710 000 personer i dessa områden",
            "totalt bor 710 000 personer i dessa områden.",
            1.0,
        ),
        ("Totalt bor 710 000 personer i dessa områden", "helt annan text om något annat", 0.0),
        ("", "Totalt bor 710 000 personer", 0.0),
        # Four shingles each, three shared: 3 / (4 + 4 - 3).
        ("a b c d e f", "a b c d e g", 3 / 5),
    ],
)
def test_jaccard(a: str, b: str, expected: float) -> None:
    assert jaccard(shingles(a), shingles(b)) == pytest.approx(expected)
    assert jaccard(shingles(b), shingles(a)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("a", "b", "threshold"),
    [
        (set(range(10)), set(range(10)), 0.6),
        (set(range(10)), set(range(6)), 0.6),  # exactly 6 / 10
        (set(range(10)), set(range(5)), 0.6),  # sizes too far apart
        (set(range(10)), set(range(3, 13)), 0.6),  # 7 / 13
        (set(range(10)), set(range(2, 12)), 0.6),  # 8 / 12
        (set(), set(), 0.6),
        (set(range(4)), set(range(100)), 0.0),
    ],
)
def test_near_duplicates_agrees_with_jaccard(a: set[int], b: set[int], threshold: float) -> None:
    expected = bool(a) and bool(b) and jaccard(a, b) >= threshold
    assert near_duplicates(a, b, threshold) is expected
    assert near_duplicates(b, a, threshold) is expected
