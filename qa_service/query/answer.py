"""Stage 5: the answer: the sentences of the first passages that best answer the
question, quoted with markers [n], and each passage's highlights. The sentence choice
itself is :mod:`qa_service.extractive` (pure functions over strings)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from ..config import Settings, answer_thresholds
from ..extractive import QUOTE_MIN_SCORE, QUOTE_PASSAGES, choose_sentences, find_sentence
from ..hints import without_hint_words
from ..lexical import tokenize
from ..models import Answer, Passage, QuotedRange, Sentence
from ..schema import Hit
from .analysis import QueryAnalysis
from .candidates import DenseLeg
from .sentences import SentenceVectors

logger = logging.getLogger(__name__)

#: The embedding model's similarity of sentences to the question (one per sentence).
Similarity = Callable[[list[str]], Sequence[float]]


def closeness(dense: DenseLeg, query: str, hits: Sequence[Hit]) -> float:
    """How similar the most similar listed passage is to the question (the embedding
    model's cosine; -1 without passages)."""
    rows = [hit.row for hit in hits if hit.row is not None]
    if not rows:
        return -1.0
    return float(np.max(dense.similarities(query, rows)))


def answer(
    analysis: QueryAnalysis,
    hits: list[Hit],
    passages: list[Passage],
    *,
    settings: Settings,
    dense: DenseLeg,
    similarity: Similarity | None,
    sentence_vectors: SentenceVectors | None = None,
) -> Answer:
    """The answer object for the hits of an analysed question (adds the highlights)."""
    standalone = analysis.standalone
    if analysis.query.english:
        # Swedish sentences cannot be matched word for word to an English question:
        # of eleven English questions, the best-matching sentence was the answer in two.
        return no_quote(passages, NOT_QUOTED_IN_ENGLISH)
    min_terms, min_similarity = answer_thresholds(settings)
    close = min_similarity <= 0 or closeness(dense, standalone, hits) >= min_similarity
    stored = None
    if sentence_vectors is not None and settings.quote_sentence_weight > 0:
        stored = quoted_similarities(sentence_vectors, standalone, hits, QUOTE_PASSAGES)
    return build_answer(
        quoted_question(standalone, analysis),
        hits,
        passages,
        min_terms=min_terms,
        close_enough=close,
        similarity=similarity if settings.quote_similarity_weight > 0 else None,
        similarity_weight=settings.quote_similarity_weight,
        similarity_candidates=settings.quote_similarity_candidates,
        rank_prior=settings.quote_rank_prior,
        sentence_similarities=stored,
        sentence_weight=settings.quote_sentence_weight,
        sentence_min_similarity=settings.quote_sentence_min_similarity,
        expected_value=settings.quote_expected_value,
    )


def quoted_question(standalone: str, analysis: QueryAnalysis) -> str:
    """The words a quoted sentence is matched on: the question without the words that
    named its hints (:func:`qa_service.hints.without_hint_words`), unless nothing of
    weight would be left ("Vad säger Moderaternas valmanifest?")."""
    left = without_hint_words(standalone, analysis.hints)
    return left if tokenize(left) else standalone


def quoted_similarities(
    sentence_vectors: SentenceVectors, query: str, hits: Sequence[Hit], count: int
) -> list[Sequence[float] | None]:
    """The stored similarity of each sentence of the first ``count`` hits to the
    question (None for a hit that is not a row of the index)."""
    first = list(hits[:count])
    rows = [hit.row for hit in first if hit.row is not None]
    found = iter(sentence_vectors.similarities(query, rows))
    return [next(found).tolist() if hit.row is not None else None for hit in first]


NOTHING_FOUND = "Jag hittade inget i dokumenten som besvarar frågan."
NOT_QUOTED_IN_ENGLISH = (
    "Svar citeras bara för frågor på svenska; se källorna nedan. "
    "(Answers are quoted for questions in Swedish only; see the sources below.)"
)


def no_quote(passages: list[Passage], text: str) -> Answer:
    """An answer that quotes nothing (``text`` says why); the passages are still listed."""
    for item in passages:
        item.highlights = []
    return Answer(found=False, text=text, sentences=[])


def build_answer(
    question: str,
    hits: list[Hit],
    passages: list[Passage],
    *,
    min_terms: float = QUOTE_MIN_SCORE,
    close_enough: bool = True,
    similarity: Similarity | None = None,
    similarity_weight: float = 0.0,
    similarity_candidates: int = 4,
    rank_prior: float = 0.05,
    sentence_similarities: Sequence[Sequence[float] | None] | None = None,
    sentence_weight: float = 0.0,
    sentence_min_similarity: float = 0.0,
    expected_value: bool = False,
) -> Answer:
    """Quote the best sentences with markers [n] (n = the passage's rank) and add each
    passage's ``highlights`` (character ranges in the passage text).

    Nothing is quoted when no sentence holds ``min_terms`` of the question's weighted
    terms, or when the passages are not ``close_enough`` to the question in meaning. A
    lower ``min_terms`` than the quoting threshold admits the best sentence alone.
    """
    texts = [hit.passage.text for hit in hits]
    chosen = choose_sentences(
        question,
        texts,
        min_score=max(min_terms, QUOTE_MIN_SCORE),
        min_best=min_terms,
        similarity=similarity if close_enough else None,
        similarity_weight=similarity_weight,
        similarity_candidates=similarity_candidates,
        rank_prior=rank_prior,
        sentence_similarities=sentence_similarities if close_enough else None,
        sentence_weight=sentence_weight,
        sentence_min_similarity=sentence_min_similarity,
        expected_value=expected_value,
    )
    if not chosen or not close_enough:
        return no_quote(passages, NOTHING_FOUND)
    for item in passages:
        item.highlights = []
    sentences: list[Sentence] = []
    quoted: list[str] = []
    for choice in chosen:
        hit = hits[choice.passage_index]
        sentence = choice.sentence
        passages[choice.passage_index].highlights.append((sentence.start, sentence.end))
        # The same sentence in other listed passages (a press release quoting the answer
        # to a written question): cite them all, so the primary source is never lost.
        also: list[QuotedRange] = []
        for index, other in enumerate(hits):
            if index == choice.passage_index:
                continue
            found = find_sentence(other.passage.text, sentence.text)
            if found is not None:
                passages[index].highlights.append((found.start, found.end))
                also.append(
                    QuotedRange(
                        marker=other.rank,
                        passage_id=other.passage.id,
                        char_start=other.passage.char_start + found.start,
                        char_end=other.passage.char_start + found.end,
                    )
                )
        sentences.append(
            Sentence(
                text=sentence.text,
                marker=hit.rank,
                passage_id=hit.passage.id,
                char_start=hit.passage.char_start + sentence.start,
                char_end=hit.passage.char_start + sentence.end,
                also=also,
            )
        )
        markers = "".join(f"[{m}]" for m in [hit.rank, *(a.marker for a in also)])
        quoted.append(f"{sentence.text} {markers}")
    return Answer(found=True, text=" ".join(quoted), sentences=sentences)
