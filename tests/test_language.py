from __future__ import annotations

import pytest

from qa_service.language import is_english
from qa_service.retrieval import HybridRetriever


@pytest.mark.parametrize(
    ("question", "english"),
    [
        ("Which factors are used to draw up the map of exclusion areas?", True),
        ("Can gang criminals be deported without a conviction under the Tidö agreement?", True),
        ("How many people live in exclusion areas?", True),
        ("What does the government say about yrkesvux?", True),
        ("Hur många personer bor i utanförskapsområden?", False),
        ("Vad innebär det för de som har sjuk- och aktivitetsersättning?", False),
        ("Vad är jobbpremien och vem ska få den?", False),
        ("Tidöavtalet", False),
        ("Arbetsförmedlingen", False),
        ("", False),
    ],
)
def test_is_english(question: str, english: bool) -> None:
    assert is_english(question) is english


def test_english_questions_lean_on_the_dense_leg() -> None:
    hybrid = HybridRetriever(
        dense=None,  # type: ignore[arg-type]
        lexical=None,  # type: ignore[arg-type]
        weights=(1.0, 0.8),
        english_lexical_share=0.25,
    )
    assert hybrid.weights_for("Hur många bor i utanförskapsområden?") == (1.0, 0.8)
    assert hybrid.weights_for("How many people live in exclusion areas?") == (1.0, 0.2)
