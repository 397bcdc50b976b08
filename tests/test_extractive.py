from __future__ import annotations

import math

import pytest

from qa_service.extractive import (
    Chosen,
    Sentence,
    choose_sentences,
    find_sentence,
    reads_as_heading,
    rerank_by_similarity,
    sentence_score,
    sentences,
)
from qa_service.lexical import tokenize

PASSAGE = (
    "Den visar att 180 områden i 66 kommuner har så stora utmaningar att de kan betecknas "
    "som utanförskapsområden. Totalt bor 710 000 personer i dessa områden, varav 170 000 "
    "är barn. Regeringen är beslutsam att göra det som krävs."
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("En mening. En till!", ["En mening.", "En till!"]),
        ("Fråga? Svar.", ["Fråga?", "Svar."]),
        ("Rubrik\nText här.", ["Rubrik", "Text här."]),
        ("Citat: ”Det lönar sig.” Sedan mer.", ["Citat: ”Det lönar sig.”", "Sedan mer."]),
        ("", []),
    ],
)
def test_sentences(text: str, expected: list[str]) -> None:
    found = sentences(text)
    assert [s.text for s in found] == expected
    assert all(text[s.start : s.end] == s.text for s in found)


def test_choose_sentences_quotes_the_number() -> None:
    chosen = choose_sentences("Hur många personer bor i utanförskapsområden?", [PASSAGE])
    assert chosen
    assert chosen[0].sentence.text.startswith("Totalt bor 710 000 personer")


@pytest.mark.parametrize(
    ("line", "heading"),
    [
        ("Moderaternas valmanifest 2022", True),
        ("2018/19:AU7", True),
        ("Arbetsmarknadsutskottets betänkande", True),
        ("Samordnare är Gulan Avci.", False),  # short, but a sentence
        ("• Bygga ut antalet praktikplatser med 30 000", False),  # a list item says
        ("- Fler ska gå från bidrag till arbete", False),
        ("Så här säger ministern:", False),
        ("Regeringen vill att fler utrikes födda kvinnor ska komma i arbete snabbare", False),
    ],
)
def test_reads_as_heading(line: str, heading: bool) -> None:
    assert reads_as_heading(line) is heading


def test_a_heading_is_not_quoted_even_when_it_holds_the_words() -> None:
    text = "Moderaternas valmanifest 2022\n\nVi vill bygga ut praktikplatserna i hela landet."
    question = "Vad lovade Moderaterna om praktikplatser i valmanifestet 2022?"
    chosen = choose_sentences(question, [text], min_score=0.0)
    # The heading holds three of the question's terms, the sentence one.
    assert [c.sentence.text for c in chosen] == ["Vi vill bygga ut praktikplatserna i hela landet."]


def test_nothing_relevant_gives_no_sentences() -> None:
    assert choose_sentences("Vad kostar en fotbollsarena i Umeå?", [PASSAGE]) == []


def test_prefers_better_passage_on_ties() -> None:
    text = "Yrkesvux byggs ut i hela landet."
    chosen = choose_sentences("yrkesvux", [text, text + " Mer."])
    assert chosen[0].passage_index == 0
    assert len(chosen) == 1  # the same sentence is quoted once


@pytest.mark.parametrize(
    ("text", "wanted", "found"),
    [
        (
            "Inledning. Totalt bor 710 000 personer där. Slut.",
            "Totalt bor 710 000 personer där.",
            (11, 43),
        ),
        (
            "Inledning.\nTOTALT bor  710 000 personer där.",
            "Totalt bor 710 000 personer där.",
            (11, 44),
        ),
        ("Totalt bor 700 000 personer där.", "Totalt bor 710 000 personer där.", None),
        ("", "Något.", None),
    ],
)
def test_find_sentence(text: str, wanted: str, found: tuple[int, int] | None) -> None:
    sentence = find_sentence(text, wanted)
    assert (None if sentence is None else (sentence.start, sentence.end)) == found
    if sentence is not None:
        assert text[sentence.start : sentence.end] == sentence.text


def test_answer_cites_every_listed_passage_with_the_same_sentence() -> None:
    from qa_service.query.answer import build_answer
    from qa_service.query.citation import cite
    from qa_service.schema import Document, DocumentMeta, Hit, Passage

    quote = "Totalt bor 710 000 personer i dessa områden, varav 170 000 är barn."
    texts = [
        f"Debattartikel. {quote} Problemet är inte nytt.",
        "Något helt annat om sfi.",
        "Något annat om yrkesvux.",
        f"Svar på fråga. {quote}",
    ]
    hits = []
    for rank, text in enumerate(texts, start=1):
        doc = Document(f"d{rank}", f"s{rank}.txt", "", DocumentMeta(title=f"T{rank}"), text, "text")
        passage = Passage(f"p{rank}", doc.id, 0, text, 100, 100 + len(text))
        hits.append(Hit(passage, doc, 1.0 / rank, rank))
    passages = cite(hits)
    answer = build_answer(
        "Hur många personer bor i områdena och hur många är barn?", hits, passages
    )
    first = answer["sentences"][0]
    assert (first["marker"], first["text"]) == (1, quote)
    assert [(a["marker"], a["passage_id"]) for a in first["also"]] == [(4, "p4")]
    assert answer["text"].startswith(f"{quote} [1][4]")
    start = texts[3].index(quote)
    assert first["also"][0]["char_start"] == 100 + start
    assert passages[3]["highlights"] == [(start, start + len(quote))]
    assert passages[1]["highlights"] == []


def test_answer_says_nothing_found_when_the_passages_are_not_close_in_meaning() -> None:
    from qa_service.query.answer import NOTHING_FOUND, build_answer
    from qa_service.query.citation import cite
    from qa_service.schema import Document, DocumentMeta, Hit, Passage

    text = "Totalt bor 710 000 personer i dessa områden, varav 170 000 är barn."
    doc = Document("d", "s.txt", "", DocumentMeta(title="T"), text, "text")
    hits = [Hit(Passage("p", "d", 0, text, 0, len(text)), doc, 1.0, 1)]
    question = "Hur många personer bor i områdena?"
    assert build_answer(question, hits, cite(hits), close_enough=True)["found"] is True
    answer = build_answer(question, hits, cite(hits), close_enough=False)
    assert (answer["found"], answer["text"], answer["sentences"]) == (False, NOTHING_FOUND, [])


TWO = "Regeringen satsar på yrkesvux i kommunerna. Vädret var fint i går."


@pytest.mark.parametrize(
    ("min_score", "min_best", "quoted"),
    [
        (0.34, None, []),  # the best sentence holds too few of the question's terms
        (0.34, 0.2, ["Regeringen satsar på yrkesvux i kommunerna."]),  # alone
        (0.34, 0.3, []),
        (0.1, None, ["Regeringen satsar på yrkesvux i kommunerna."]),
    ],
)
def test_the_best_sentence_alone_when_none_reaches_the_quoting_threshold(
    min_score: float, min_best: float | None, quoted: list[str]
) -> None:
    # The best sentence holds about a quarter of the question's weighted terms.
    question = (
        "Hur mycket satsar regeringen på yrkesvux för arbetslösa unga kvinnor och män i "
        "Malmö och Göteborg under hösten?"
    )
    chosen = choose_sentences(question, [TWO], min_score=min_score, min_best=min_best)
    assert [c.sentence.text for c in chosen] == quoted


def _chosen(text: str, score: float) -> Chosen:
    return Chosen(0, Sentence(text, 0, len(text)), score)


@pytest.mark.parametrize(
    ("scores", "similarities", "weight", "candidates", "expected"),
    [
        # Weight 0: the term order stays.
        ([0.9, 0.8, 0.7], [0.80, 0.90, 0.85], 0.0, 4, ["a", "b", "c"]),
        # A clearly closer sentence overtakes a slightly better term match.
        ([0.9, 0.8, 0.7], [0.80, 0.90, 0.85], 2.0, 4, ["b", "a", "c"]),
        # Similarity counts above the least similar: a small edge is not enough.
        ([0.9, 0.5, 0.7], [0.80, 0.90, 0.85], 2.0, 4, ["a", "c", "b"]),
        # Only the first candidates are reordered; the rest follow as they were.
        ([0.9, 0.8, 0.7], [0.80, 0.81, 0.99], 2.0, 2, ["a", "b", "c"]),
    ],
)
def test_rerank_by_similarity(
    scores: list[float],
    similarities: list[float],
    weight: float,
    candidates: int,
    expected: list[str],
) -> None:
    chosen = [_chosen(t, s) for t, s in zip("abc", scores, strict=True)]
    by_text = dict(zip("abc", similarities, strict=True))

    def similarity(texts: list[str]) -> list[float]:
        return [by_text[t] for t in texts]

    out = rerank_by_similarity(chosen, similarity, weight, candidates)
    assert [c.sentence.text for c in out] == expected
    # Scores are kept: the quoting threshold reads them.
    assert sorted(c.score for c in out) == sorted(scores)


def test_similarity_reorders_the_quote_but_not_what_qualifies() -> None:
    question = "Hur många personer bor i utanförskapsområden?"
    plain = choose_sentences(question, [PASSAGE])
    asked: list[list[str]] = []

    def similarity(texts: list[str]) -> list[float]:
        asked.append(texts)
        return [0.9 if "710 000" in t else 0.7 for t in texts]

    with_similarity = choose_sentences(
        question, [PASSAGE], similarity=similarity, similarity_weight=5.0
    )
    assert {c.sentence.text for c in with_similarity} == {c.sentence.text for c in plain}
    assert with_similarity[0].sentence.text.startswith("Totalt bor 710 000")
    assert len(asked) == (1 if len(plain) > 1 else 0)


TASK = (
    "Regeringen uppdrar åt Vetenskapsrådet att göra en kartläggning av forskning om "
    "mekanismer som orsakar och befäster segregation. Kartläggningen ska omfatta "
    "nationella och internationella resultat. Uppdraget ska redovisas senast den 1 juni "
    "2018. För genomförandet disponeras 2 000 000 kronor."
)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # The task's own sentence shares the words; the one with the date answers.
        (
            "När ska Vetenskapsrådets kartläggning av forskning om segregation redovisas?",
            ["Regeringen uppdrar", "Uppdraget ska redovisas senast den 1 juni 2018."],
        ),
        (
            "Hur mycket pengar får Vetenskapsrådet för kartläggningen av segregation?",
            ["Regeringen uppdrar", "För genomförandet disponeras 2 000 000 kronor."],
        ),
        # A question that asks for no value is quoted as before.
        ("Vad ska Vetenskapsrådet kartlägga om segregation?", ["Regeringen uppdrar"]),
    ],
)
def test_the_sentence_with_the_asked_value_is_quoted_beside_the_best(
    question: str, expected: list[str]
) -> None:
    chosen = choose_sentences(question, [TASK], max_sentences=2, expected_value=True)
    texts = [c.sentence.text for c in chosen]
    assert [t[: len(e)] for t, e in zip(texts, expected, strict=False)] == expected
    assert len(texts) >= len(expected)
    without = choose_sentences(question, [TASK], max_sentences=2)
    if len(expected) > 1:
        assert expected[1] not in [c.sentence.text for c in without]


def test_the_value_comes_from_the_best_sentences_passage_only() -> None:
    other = "Skolverket får 5 000 000 kronor för ett annat uppdrag om segregation."
    task = "Regeringen uppdrar åt Vetenskapsrådet att kartlägga forskning om segregation."
    question = "Hur mycket får Vetenskapsrådet för att kartlägga forskning om segregation?"
    chosen = choose_sentences(question, [task, other], max_sentences=1, expected_value=True)
    assert [c.sentence.text for c in chosen] == [task]


def test_a_quote_that_states_the_value_is_left_as_it_is() -> None:
    question = "Hur många personer bor i utanförskapsområden?"
    assert choose_sentences(question, [PASSAGE], expected_value=True) == choose_sentences(
        question, [PASSAGE]
    )


WORDS = {"arbete": 0.1, "bidrag": 0.2, "bidragstak": 0.3, "aktivitetskrav": 0.7}


@pytest.mark.parametrize(
    "order",
    [
        ("arbete", "bidrag", "bidragstak", "aktivitetskrav"),
        ("aktivitetskrav", "bidragstak", "bidrag", "arbete"),
        ("bidrag", "aktivitetskrav", "arbete", "bidragstak"),
        ("bidragstak", "arbete", "aktivitetskrav", "bidrag"),
    ],
)
def test_a_sentence_scores_the_same_whatever_order_the_terms_come_in(
    order: tuple[str, ...],
) -> None:
    # Sums of these weights differ in their last bit by the order they are added in; the
    # order of a set of strings differs between processes (hash randomisation), so a
    # plain sum let two workers rank near-equal sentences differently.
    sentence = "Arbete, bidrag och bidragstak."
    held = set(tokenize(sentence))
    expected = math.fsum(w for t, w in WORDS.items() if t in held) / math.fsum(WORDS.values())
    assert sentence_score(order, sentence, WORDS) == expected
