from __future__ import annotations

import pytest

from qa_service.language import glossary_share, is_english


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
        # Keywords: an English term the glossary knows by another Swedish name, and no
        # Swedish function word.
        ("Unemployment among immigrants", True),
        ("Public Employment Service budget 2024", True),
        ("Tidö agreement deportation rules", True),
        ("Segregation och integration?", False),
        ("integration segregation migration", False),  # spelled the same in Swedish
        ("Reform av a-kassan", False),
        ("Bidragstak", False),
    ],
)
def test_is_english(question: str, english: bool) -> None:
    assert is_english(question) is english


@pytest.mark.parametrize(
    ("question", "share"),
    [
        # Every word of the question is a glossary phrase's.
        ("What is the benefit cap?", 1.0),
        # Three of five: "public employment service" of public, employment, service,
        # decide, taskrunner.
        ("What did the Public Employment Service decide about Taskrunner?", 0.6),
        # Digits and words of two letters are not counted ("in", "IS").
        ("How many new start jobs were there in 2023?", 1.0),
        ("Who won the football match?", 0.0),
        # Whole words only: "police-led" is not the glossary's "police".
        ("police-led patrols", 0.0),
        ("the", 0.0),
        ("", 0.0),
    ],
)
def test_glossary_share(question: str, share: float) -> None:
    assert glossary_share(question) == pytest.approx(share)
