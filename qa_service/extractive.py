"""Extractive answers: the sentences of the top passages that best answer the question.

Pure functions over strings and offsets; the service supplies the passages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from .answer_types import AnswerType, expected_answer, states_value
from .lexical import tokenize

_SENTENCE = re.compile(r"[^.!?…\n]+(?:[.!?…]+[\"”')\]]*|\n|$)")
#: Names how :func:`sentences` cuts a passage: stored sentence vectors line up with its
#: sentences only if they were cut the same way (change it with the pattern).
SENTENCE_SPLITTER = "extractive.sentences v1"


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int  # offset in the passage text
    end: int


@dataclass(frozen=True)
class Chosen:
    passage_index: int
    sentence: Sentence
    score: float


def sentences(text: str) -> list[Sentence]:
    """Sentences of a passage with their offsets; abbreviation-safe enough for ranking."""
    out: list[Sentence] = []
    for match in _SENTENCE.finditer(text):
        raw = match.group(0)
        stripped = raw.strip()
        if len(stripped) < 3:
            continue
        start = match.start() + (len(raw) - len(raw.lstrip()))
        out.append(Sentence(stripped, start, start + len(stripped)))
    return out


_CLOSES = re.compile(r"[.!?…:;\"”')\]]$")
#: A line this short with no closing punctuation is a heading or a label.
HEADING_WORDS = 8


def reads_as_heading(sentence: str) -> bool:
    """A short line that names rather than says ("Moderaternas valmanifest 2022",
    "2018/19:AU7"): no closing punctuation, not a list item, at most ``HEADING_WORDS``
    words. Such lines are not quoted as answers."""
    text = sentence.strip()
    return (
        not _CLOSES.search(text)
        and not text.startswith(("•", "-", "–", "*"))
        and len(text.split()) <= HEADING_WORDS
    )


def sentence_score(query_terms: Collection[str], sentence: str, weights: dict[str, float]) -> float:
    """Weighted share of the question's terms the sentence contains.

    The sums are exact (``math.fsum``), so the score does not depend on the order the
    terms come in: a set of strings is iterated in another order in every process."""
    if not query_terms:
        return 0.0
    terms = set(tokenize(sentence))
    total = math.fsum(weights.get(t, 1.0) for t in query_terms)
    hit = math.fsum(weights.get(t, 1.0) for t in query_terms if t in terms)
    # Very long sentences match by accident; short exact ones are better quotes.
    length_penalty = 1.0 / (1.0 + max(0, len(terms) - 40) / 40)
    return hit / total * length_penalty if total else 0.0


def term_weights(query_terms: set[str], passages: Sequence[str]) -> dict[str, float]:
    """An idf over the candidate passages: terms every passage has say little."""
    n = len(passages) or 1
    sets = [set(tokenize(p)) for p in passages]
    return {t: math.log(1 + n / (1 + sum(t in s for s in sets))) + 0.1 for t in query_terms}


#: A quoted sentence holds at least this weighted share of the question's terms
#: (BENCHMARKS.md, "nothing found").
QUOTE_MIN_SCORE = 0.34
#: The quote is taken from this many first passages.
QUOTE_PASSAGES = 3


def choose_sentences(
    question: str,
    passages: Sequence[str],
    *,
    max_sentences: int = 3,
    min_score: float = QUOTE_MIN_SCORE,
    min_best: float | None = None,
    passages_considered: int = QUOTE_PASSAGES,
    similarity: Callable[[list[str]], Sequence[float]] | None = None,
    similarity_weight: float = 0.0,
    similarity_candidates: int = 4,
    rank_prior: float = 0.05,
    sentence_similarities: Sequence[Sequence[float] | None] | None = None,
    sentence_weight: float = 0.0,
    sentence_min_similarity: float = 0.0,
    expected_value: bool = False,
) -> list[Chosen]:
    """The 1–3 best-scoring sentences among the first passages, in reading order per
    passage rank. A passage's rank adds a small prior so the best passage is preferred:
    ``rank_prior`` for the first, falling by equal steps (``Settings.quote_rank_prior``).

    Sentences below ``min_score`` are left out; when none reaches it, the best one alone
    is still quoted if it reaches ``min_best``.

    With ``similarity`` (the embedding model's similarity of each given sentence to the
    question), the first ``similarity_candidates`` sentences that qualify are reordered
    by their term score plus ``similarity_weight`` times their similarity above the
    least similar of them; which sentences qualify does not change.

    With ``sentence_similarities`` (per considered passage, the stored similarity of each
    of its :func:`sentences` to the question, None where unknown) and a
    ``sentence_weight``, every sentence of those passages competes by
    :func:`with_sentence_similarity`; whether anything is quoted is decided by the terms,
    unless ``sentence_min_similarity`` is above 0: a sentence at least that similar to
    the question is then quoted too, whatever words it shares.

    With ``expected_value``, a question that asks for a quantity or a time
    (:func:`qa_service.answer_types.expected_answer`) whose chosen sentences state none
    has the sentence that does added beside the best one (:func:`with_expected_value`).
    """
    query_terms = set(tokenize(question))
    kind = expected_answer(question) if expected_value else None
    every: list[Chosen] = []
    considered = list(passages[:passages_considered])
    weights = term_weights(query_terms, considered)
    scored: list[Chosen] = []
    similar: list[tuple[Chosen, float]] = []
    for index, text in enumerate(considered):
        prior = rank_prior * (passages_considered - index) / passages_considered
        cut = sentences(text)
        known = sentence_similarities[index] if sentence_similarities is not None else None
        aligned = known is not None and len(known) == len(cut) and sentence_weight > 0
        for position, sentence in enumerate(cut):
            if reads_as_heading(sentence.text):
                continue
            score = sentence_score(query_terms, sentence.text, weights)
            if kind is not None:
                every.append(Chosen(index, sentence, score + prior))
            if score > 0:
                scored.append(Chosen(index, sentence, score + prior))
            if aligned:
                assert known is not None
                similar.append((Chosen(index, sentence, score + prior), float(known[position])))
    scored.sort(key=lambda c: (-c.score, c.passage_index, c.sentence.start))
    best = [c for c in scored if c.score >= min_score]
    if not best and min_best is not None and scored and scored[0].score >= min_best:
        best = scored[:1]
    if similar and (best or sentence_min_similarity > 0):
        bar = min(c.score for c in best) if best else None
        best = with_sentence_similarity(similar, sentence_weight, bar, sentence_min_similarity)
    elif similarity is not None and similarity_weight > 0 and len(best) > 1:
        best = rerank_by_similarity(best, similarity, similarity_weight, similarity_candidates)
    picked: list[Chosen] = []
    seen: set[str] = set()
    for candidate in best:
        key = candidate.sentence.text.lower()
        if key in seen:
            continue
        seen.add(key)
        picked.append(candidate)
        if len(picked) == max_sentences:
            break
    if kind is not None and picked:
        picked = with_expected_value(picked, every, kind, question, max_sentences)
    return picked


def with_expected_value(
    picked: Sequence[Chosen],
    candidates: Sequence[Chosen],
    kind: AnswerType,
    question: str,
    max_sentences: int,
) -> list[Chosen]:
    """``picked`` (best first) with the sentence of ``candidates`` (every quotable
    sentence, with its score) that states a value of ``kind`` beside the first, when none
    of ``picked`` states one (pure).

    The sentence comes from the first one's passage (the best by term score, then the
    nearest after the first): the sentence that names a task or a sum's purpose and the
    one that gives its date or amount are neighbours in an official text, while a number
    from another document answers another question. The two are quoted in their reading
    order and the last of ``picked`` makes room; a passage with no such sentence leaves
    ``picked`` as it was.
    """
    if any(states_value(c.sentence.text, kind, question) for c in picked):
        return list(picked)
    first = picked[0]
    same = [
        c
        for c in candidates
        if c.passage_index == first.passage_index and states_value(c.sentence.text, kind, question)
    ]
    if not same:
        return list(picked)

    def order(c: Chosen) -> tuple[float, int, int]:
        after = c.sentence.start - first.sentence.start
        return (-c.score, 0 if after > 0 else 1, abs(after))

    value = min(same, key=order)
    pair = [value, first] if value.sentence.start < first.sentence.start else [first, value]
    return (pair + list(picked[1:]))[:max_sentences]


def with_sentence_similarity(
    candidates: Sequence[tuple[Chosen, float]],
    weight: float,
    bar: float | None,
    min_similarity: float = 0.0,
) -> list[Chosen]:
    """Sentences ``(chosen with its term score, similarity to the question)`` ordered by
    term score plus ``weight`` times the similarity above the least similar of them, best
    first; those below ``bar`` (the lowest term score that qualified; None: none did) are
    left out unless their similarity reaches ``min_similarity`` (above 0). A sentence that
    qualified by its terms still does, and one that shares few words with the question
    can join when it is close to it in meaning."""
    if not candidates:
        return []
    floor = min(similarity for _, similarity in candidates)
    combined = [
        Chosen(c.passage_index, c.sentence, c.score + weight * (similarity - floor))
        for c, similarity in candidates
    ]
    similar = {
        (c.passage_index, c.sentence.start)
        for c, similarity in candidates
        if min_similarity > 0 and similarity >= min_similarity
    }
    combined.sort(key=lambda c: (-c.score, c.passage_index, c.sentence.start))
    return [
        c
        for c in combined
        if (bar is not None and c.score >= bar) or (c.passage_index, c.sentence.start) in similar
    ]


def rerank_by_similarity(
    chosen: Sequence[Chosen],
    similarity: Callable[[list[str]], Sequence[float]],
    weight: float,
    candidates: int,
) -> list[Chosen]:
    """The first ``candidates`` of ``chosen`` (best first) reordered by score plus
    ``weight`` times their similarity above the least similar of them; the rest follow
    unchanged. Scores are kept as they were (the quoting threshold reads them)."""
    head, tail = list(chosen[:candidates]), list(chosen[candidates:])
    values = [float(v) for v in similarity([c.sentence.text for c in head])]
    floor = min(values)
    order = sorted(
        range(len(head)),
        key=lambda i: (-(head[i].score + weight * (values[i] - floor)), i),
    )
    return [head[i] for i in order] + tail


def normalise(text: str) -> str:
    """Lower case, every run of white space one space: how quotes are compared."""
    return " ".join(text.lower().split())


def find_sentence(text: str, wanted: str) -> Sentence | None:
    """The sentence of ``text`` that reads as ``wanted`` (case and spacing aside)."""
    key = normalise(wanted)
    return next((s for s in sentences(text) if normalise(s.text) == key), None)
