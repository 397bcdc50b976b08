"""Stage 2: the rankings the retrievers give for an analysed question, each named and
weighted, as the tree :func:`qa_service.query.fusion.fuse` folds into one.

A hybrid search of one text has up to five legs: ``dense``, ``lexical`` (BM25, with RM3
feedback when configured), ``dense_feedback`` (the dense leg moved towards its first
passages), ``sentences`` (every passage by its best sentence, with a build's sentence
vectors) and ``glossary`` (the dense leg searched with an English question's Swedish
terms: the multilingual model alone ranks Swedish passages poorly for an English
question, BENCHMARKS.md; its weight follows how much of the question the glossary reads).
A follow-up searches the ``question``, its ``standalone`` query and, within the previous
turn's documents, the ``focus``; a question that continues the conversation without a
pronoun its own words, the ``topic`` (its words with the earlier turns' topic words) and
the ``focus`` of the topic; the documents that meet every hint of the question get a BM25
ranking of their own, ``hinted_documents``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..config import Settings
from ..hints import HintIndex, Hints
from ..retrieval import Ranking
from .analysis import Continues, Mode, QueryAnalysis, QueryText
from .fusion import FusionWeights, NamedRanking
from .sentences import SentenceVectors

logger = logging.getLogger(__name__)


class DenseLeg(Protocol):
    def search(
        self,
        query: str,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        also: Sequence[int] = (),
    ) -> Ranking: ...

    def feedback_search(
        self,
        query: str,
        ranking: Ranking,
        k: int,
        *,
        passages: int,
        weight: float,
        allowed: np.ndarray | None = None,
    ) -> Ranking: ...

    def similarities(self, query: str, rows: Sequence[int]) -> np.ndarray: ...

    def search_vector(
        self,
        vector: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        *,
        also: np.ndarray | None = None,
    ) -> Ranking: ...


class LexicalLeg(Protocol):
    def search_text(self, text: str, k: int, *, allowed: np.ndarray | None = None) -> Ranking: ...

    def term_coverage(self, text: str, rows: Sequence[int]) -> float: ...


class Rows(Protocol):
    """Which rows of the index hold which documents' passages."""

    @property
    def passage_count(self) -> int: ...

    def rows_of_documents(self, doc_ids: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Retrievers:
    """The loaded build's retrievers, composed here, searched by the stages."""

    dense: DenseLeg
    #: The hybrid's lexical leg (BM25, with RM3 feedback when configured).
    lexical: LexicalLeg
    #: Plain BM25: the lexical mode, the hinted documents, the continuity test.
    bm25: LexicalLeg
    #: The build's sentence vectors (None: a build without them).
    sentences: SentenceVectors | None = None


def search_text(
    text: QueryText,
    name: str,
    weight: float,
    *,
    mode: Mode,
    retrievers: Retrievers,
    depth: int,
    allowed: np.ndarray | None,
    settings: Settings,
    weights: FusionWeights,
) -> NamedRanking:
    """One text searched in ``mode``: a leaf, or for the hybrid a node of its legs."""
    if mode == "dense":
        return NamedRanking(
            name, weight, retrievers.dense.search(text.text, depth, allowed=allowed)
        )
    if mode == "lexical":
        return NamedRanking(
            name, weight, retrievers.bm25.search_text(text.lexical, depth, allowed=allowed)
        )
    legs_depth = max(depth, settings.candidate_depth)
    lexical = retrievers.lexical.search_text(text.lexical, legs_depth, allowed=allowed)
    # An approximate dense leg scores BM25's finds as well: each of them that belongs to
    # the exact dense top is in the dense ranking (passages neither leg found may still
    # be missing from it).
    found = [row for row, _ in lexical]
    dense = retrievers.dense.search(text.text, legs_depth, allowed=allowed, also=found)
    if retrievers.sentences is not None and settings.sentence_dense_passages > 0:
        # The dense leg's first passages re-ordered by their best sentence, then fused.
        dense = retrievers.sentences.rescore(
            text.text,
            dense,
            passages=settings.sentence_dense_passages,
            weight=settings.sentence_rescoring_weight,
            method=settings.sentence_rescoring_method,
            rrf_k=weights.rrf_k,
        )
    lexical_weight = weights.lexical
    if weights.coverage_passages > 0:
        # BM25 counts as much as its best first passage holds of the question's words.
        first = [row for row, _ in lexical[: weights.coverage_passages]]
        lexical_weight *= retrievers.lexical.term_coverage(text.lexical, first)
    # The glossary's terms stand for as much of an English question as they cover: what
    # they leave unread, only the dense leg reads.
    share = share_weight(text.glossary_share, weights.glossary_by_share)
    glossary_weight = weights.glossary * share
    legs = [
        NamedRanking("dense", weights.dense, dense),
        NamedRanking("lexical", lexical_weight, lexical),
    ]
    if retrievers.sentences is not None and weights.sentences > 0:
        # Every passage scored by its best sentence: a passage one of whose sentences
        # answers the question can rank although its vector, of all its text, does not
        # (it helped English questions most, paraphrases not: BENCHMARKS.md).
        by_sentence = retrievers.sentences.search(text.text, legs_depth, allowed=allowed)
        legs.append(NamedRanking("sentences", weights.sentences, by_sentence))
    passages, moved = settings.dense_feedback_passages, settings.dense_feedback_weight
    if weights.dense_feedback > 0 and passages > 0 and dense:
        # The feedback search is a ranking of its own; the dense leg itself is unmoved.
        moved_ranking = retrievers.dense.feedback_search(
            text.text, dense, legs_depth, passages=passages, weight=moved, allowed=allowed
        )
        legs.append(NamedRanking("dense_feedback", weights.dense_feedback, moved_ranking))
    if glossary_weight > 0 and text.glossary:
        glossary = retrievers.dense.search(" ".join(text.glossary), legs_depth, allowed=allowed)
        legs.append(NamedRanking("glossary", glossary_weight, glossary))
    return NamedRanking(name, weight, parts=tuple(legs), limit=depth, method=weights.hybrid_method)


def share_weight(share: float, strength: float) -> float:
    """A weight's factor when it follows ``share`` (0..1) by ``strength`` (0: not at all,
    1: in proportion): ``1 - strength + strength * share`` (pure)."""
    return 1.0 - strength + strength * share


def document_mask(
    rows: Rows, doc_ids: Sequence[str], allowed: np.ndarray | None
) -> np.ndarray | None:
    """The rows of ``doc_ids`` that ``allowed`` allows (None: there are none)."""
    found = rows.rows_of_documents(list(doc_ids))
    if len(found) == 0:
        return None
    mask = np.zeros(rows.passage_count, dtype=bool)
    mask[found] = True
    if allowed is not None:
        mask &= allowed
    return mask if mask.any() else None


def hinted_documents(hints: Hints, index: HintIndex, weight: float) -> list[str] | None:
    """The documents that meet every hint (None: no hint, no such document, or all)."""
    if not hints or weight <= 0:
        return None
    meeting = index.meeting_all(hints)
    if not meeting or len(meeting) == index.size:
        return None
    return sorted(meeting)


def candidate_rankings(
    analysis: QueryAnalysis,
    *,
    mode: Mode,
    retrievers: Retrievers,
    rows: Rows,
    hint_index: HintIndex,
    depth: int,
    allowed: np.ndarray | None,
    settings: Settings,
    weights: FusionWeights,
) -> NamedRanking:
    """Every ranking searched for the question, as the tree fusion folds."""

    def search(text: QueryText, name: str, weight: float, mask: np.ndarray | None) -> NamedRanking:
        return search_text(
            text,
            name,
            weight,
            mode=mode,
            retrievers=retrievers,
            depth=depth,
            allowed=mask,
            settings=settings,
            weights=weights,
        )

    rewritten = analysis.rewritten
    question_weight = weights.follow_up_question if rewritten else 1.0
    searches = [search(analysis.question, "question", question_weight, allowed)]
    if rewritten is not None:
        searches.append(search(rewritten, "standalone", weights.follow_up_standalone, allowed))
    focus_text = analysis.query
    if analysis.topic is not None and weights.continuing_topic > 0:
        # A question that continues without a pronoun ("Vad kostar reformen?"): its own
        # words rarely name the topic, the earlier turns' words do.
        focus_text = analysis.topic
        searches.append(search(focus_text, "topic", weights.continuing_topic, allowed))
    focus = document_mask(rows, analysis.focus, allowed) if analysis.focus else None
    if focus is not None:
        searches.append(search(focus_text, "focus", weights.follow_up_focus, focus))
    parts = [NamedRanking("follow_up", 1.0, parts=tuple(searches))]
    hinted_weight = weights.hinted(analysis.hints)
    hinted = hinted_documents(analysis.hints, hint_index, hinted_weight)
    hinted_mask = document_mask(rows, hinted, allowed) if hinted else None
    if hinted_mask is not None:
        # A document the whole corpus's words rank deep still becomes a candidate (BM25
        # here measured as well as the hybrid, at a third of the cost).
        ranking = retrievers.bm25.search_text(analysis.query.lexical, depth, allowed=hinted_mask)
        parts.append(NamedRanking("hinted_documents", hinted_weight, ranking))
    return NamedRanking("candidates", 1.0, parts=tuple(parts))


def continuity(retrievers: Retrievers, rows: Rows, ratio: float) -> Continues:
    """The test of a question with no pronoun: do the previous turn's documents match it
    (best BM25 score within them) at least ``ratio`` times as well as the whole corpus?"""

    def continues(text: QueryText, focus: Sequence[str]) -> bool:
        mask = document_mask(rows, focus, None)
        best = retrievers.bm25.search_text(text.lexical, 1)
        if mask is None or not best or best[0][1] <= 0:
            return False
        inside = retrievers.bm25.search_text(text.lexical, 1, allowed=mask)
        return bool(inside) and inside[0][1] >= ratio * best[0][1]

    return continues


def found_within(retrievers: Retrievers, rows: Rows) -> Continues:
    """The test of a continuing question: is its best BM25 passage in the whole corpus one
    of the previous turn's documents' (then it finds them on its own words)?"""

    def found(text: QueryText, focus: Sequence[str]) -> bool:
        mask = document_mask(rows, focus, None)
        best = retrievers.bm25.search_text(text.lexical, 1)
        return mask is not None and bool(best) and bool(mask[best[0][0]])

    return found
