from __future__ import annotations

import pytest

from qa_service.language import is_english


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
