"""The stages run in order for one question, over one loaded build of the index."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .. import validation
from ..config import Settings
from ..conversation import Context
from ..embedding import QueryVectors
from ..filters import Filters, allowed_rows
from ..hints import DocumentFacts, HintIndex, Hints
from ..models import AskRequest, AskResponse, SearchRequest, SearchResponse
from ..schema import Hit
from ..store import IndexReader
from .analysis import Mode, QueryAnalysis, QueryText, analyse
from .answer import Similarity, answer
from .candidates import (
    Retrievers,
    candidate_rankings,
    continuity,
    document_mask,
    found_within,
    hinted_documents,
)
from .citation import cite
from .fusion import FusionWeights, fuse
from .reranking import rerank

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueryIndex:
    """One published build as the stages see it; replaced whole on reload."""

    reader: IndexReader
    retrievers: Retrievers
    #: Each document's kind, parties, half-years and people, for the question's hints.
    facts: dict[str, DocumentFacts]
    #: Which documents meet each hint, and every person's name for reading them.
    hint_index: HintIndex


def analyse_question(
    index: QueryIndex,
    question: str,
    *,
    history: Sequence[Context] = (),
    mode: Mode = "hybrid",
    settings: Settings,
) -> QueryAnalysis:
    """Stage 1 with the build's people and its continuity test."""
    return analyse(
        question,
        history=history,
        mode=mode,
        people=index.hint_index.people,
        continues=continuity(index.retrievers, index.reader, settings.continuity_ratio),
        found_alone=found_within(index.retrievers, index.reader),
    )


def search(
    index: QueryIndex,
    analysis: QueryAnalysis,
    k: int,
    *,
    filters: Filters,
    mode: Mode,
    settings: Settings,
) -> list[Hit]:
    """Stages 2-4: the best ``k`` passages, diversified, filtered, ranked from 1."""
    reader = index.reader
    weights = FusionWeights.from_settings(settings)
    allowed = allowed_rows(reader.db, filters, reader.passage_count)
    # Over-fetch so that the per-document cap and duplicate folding still fill k.
    depth = max(k * 4, k + 20)
    rankings = candidate_rankings(
        analysis,
        mode=mode,
        retrievers=index.retrievers,
        rows=reader,
        hint_index=index.hint_index,
        depth=depth,
        allowed=allowed,
        settings=settings,
        weights=weights,
    )
    fused = fuse(rankings, rrf_k=weights.rrf_k)
    return rerank(
        analysis,
        fused,
        k,
        mode=mode,
        reader=reader,
        retrievers=index.retrievers,
        facts=index.facts,
        allowed=allowed,
        settings=settings,
        weights=weights,
    )


def sentence_similarity(
    query_vector: Callable[[str], np.ndarray],
    encode_passages: Callable[..., np.ndarray],
    query: str,
) -> Similarity:
    """The embedding model's similarity of sentences (encoded as passages) to ``query``."""

    def similarity(texts: list[str]) -> list[float]:
        vector = np.asarray(query_vector(query), dtype=np.float32).reshape(-1)
        vectors = encode_passages(texts, batch_size=len(texts))
        # einsum: no BLAS threads (BENCHMARKS.md).
        return [float(v) for v in np.einsum("ij,j->i", vectors, vector)]

    return similarity


def respond(
    index: QueryIndex,
    analysis: QueryAnalysis,
    hits: list[Hit],
    *,
    settings: Settings,
    similarity: Similarity | None = None,
) -> AskResponse:
    """Stages 5-6: the answer with its cited passages (without a conversation)."""
    passages = cite(hits)
    found = answer(
        analysis,
        hits,
        passages,
        settings=settings,
        dense=index.retrievers.dense,
        similarity=similarity,
        sentence_vectors=index.retrievers.sentences,
    )
    return AskResponse(
        question=analysis.question.text,
        standalone_query=analysis.standalone,
        answer=found,
        passages=passages,
    )


@dataclass(frozen=True)
class Pipeline:
    """The stages for one request over a build, with what they need besides the build: the
    settings, the question vectors (each text of a request is encoded once) and the
    encoder of passages (the answer's sentences are compared with the question by it)."""

    settings: Settings
    vectors: QueryVectors
    encode_passages: Callable[..., np.ndarray]

    def run(
        self, index: QueryIndex, request: AskRequest, history: Sequence[Context] = ()
    ) -> tuple[QueryAnalysis, list[Hit]]:
        """Stages 1-4 for a checked request: its analysis and its best passages."""
        settings, mode = self.settings, request.mode
        analysis = analyse_question(
            index, request.question, history=history, mode=mode, settings=settings
        )
        k, filters = request.top_k or settings.default_top_k, validation.filters(request.filters)
        with self.vectors.one_request():
            return analysis, search(
                index, analysis, k, filters=filters, mode=mode, settings=settings
            )

    def ask(
        self, index: QueryIndex, request: AskRequest, history: Sequence[Context] = ()
    ) -> AskResponse:
        """Stages 1-6 for a checked request: the answer with its cited passages (not yet
        a turn of any conversation)."""
        with self.vectors.one_request():
            analysis, hits = self.run(index, request, history)
            query = analysis.standalone
            similarity = sentence_similarity(self.vectors, self.encode_passages, query)
            return respond(index, analysis, hits, settings=self.settings, similarity=similarity)

    def lookup(self, index: QueryIndex, request: SearchRequest) -> SearchResponse:
        """Stages 1-4 and 6 for a checked search: the cited passages, with the build's name."""
        _, hits = self.run(index, request.as_ask())
        build = index.reader.build_path.name
        return SearchResponse(query=request.q, index=build, passages=cite(hits))

    def continues(self, index: QueryIndex, question: str, focus: Sequence[str]) -> bool:
        """Whether ``focus`` answers a question with no pronoun nearly as well as the
        corpus."""
        test = continuity(index.retrievers, index.reader, self.settings.continuity_ratio)
        return test(QueryText.read(question), focus)

    def hinted_mask(
        self, index: QueryIndex, hints: Hints, allowed: np.ndarray | None
    ) -> np.ndarray | None:
        """The rows of the documents that meet every hint (None: no such ranking)."""
        weight = FusionWeights.from_settings(self.settings).hinted(hints)
        documents = hinted_documents(hints, index.hint_index, weight)
        return document_mask(index.reader, documents, allowed) if documents else None
