from __future__ import annotations

import zlib

import numpy as np
import pytest

from qa_service.nearduplicates import jaccard, shingle_hashes, shingles


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
