"""QAService: the facade the CLI and the web layer share: it loads and reloads the
index, runs the query pipeline (:mod:`qa_service.query`) and looks things up. No Flask."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from functools import cached_property, wraps
from typing import Any, Concatenate, ParamSpec, TypeVar

import faiss
import numpy as np

from . import health, lookups, validation
from .config import Settings
from .conversation import Context, ConversationStore, Turn
from .embedding import Embedder, QueryVectors, make_embedder
from .errors import IndexUnavailable, NotFound
from .filters import Filters
from .hints import Hints
from .loading import Builds, open_index
from .query import answer, pipeline
from .query.analysis import Mode, QueryAnalysis
from .query.citation import cite
from .query.pipeline import QueryIndex
from .schema import Hit

logger = logging.getLogger(__name__)

RELOAD_CHECK_SECONDS = 2.0
#: A published build that failed to open is tried again after this long.
RETRY_FAILED_SECONDS = 60.0
# One query vector gains nothing from FAISS's OpenMP threads, whose spinning competes with
# the embedding engine's for the same cores: on 2 cores the dense leg took 28 ms with 2
# FAISS threads and 14.5 ms with one (p50, BENCHMARKS.md).
FAISS_QUERY_THREADS = 1

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _one_request(
    method: Callable[Concatenate[QAService, _P], _R],
) -> Callable[Concatenate[QAService, _P], _R]:
    """A request encodes each of its texts once, whether or not vectors are kept."""

    @wraps(method)
    def wrapper(self: QAService, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.query_vectors.one_request():
            return method(self, *args, **kwargs)

    return wrapper


class QAService:
    """Loads the index once, answers questions with cited passages."""

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder: Embedder = embedder or make_embedder(settings)
        self.query_vectors = QueryVectors(self.embedder.encode_query, settings.query_cache)
        self.builds = Builds(
            lambda: open_index(self.settings, self.embedder, self.query_vectors),
            lambda: self.settings.index_dir.resolve(),
        )
        faiss.omp_set_num_threads(FAISS_QUERY_THREADS)

    def load(self) -> None:
        """Open the published index (raises :class:`IndexUnavailable` when unusable)."""
        self.builds.load()

    def maybe_reload(self) -> bool:
        """Switch to a newly published build, if any; cheap enough to call per request."""
        return self.builds.maybe_reload(RELOAD_CHECK_SECONDS, RETRY_FAILED_SECONDS)

    @property
    def loaded(self) -> QueryIndex:
        self.maybe_reload()
        if self.builds.current is None:
            raise IndexUnavailable("the index is not loaded")
        return self.builds.current

    @property
    def loaded_passages(self) -> int | None:
        """Passages in the loaded build, or None before the first load."""
        current = self.builds.current
        return current.reader.passage_count if current is not None else None

    @property
    def index_version(self) -> str:
        """Names the loaded build; changes whenever a new index is published."""
        return self.loaded.reader.build_path.name

    def warm_up(self) -> None:
        """Load the model now rather than on the first question."""
        self.embedder.encode_query("uppvärmning")

    # -- questions -------------------------------------------------------------------
    def _run(
        self,
        question: Any,
        top_k: Any,
        history: Sequence[Context],
        filters: Filters | dict[str, Any] | None,
        mode: Any,
    ) -> tuple[QueryIndex, QueryAnalysis, list[Hit]]:
        s = self.settings
        query, k = validation.question(question, s), validation.top_k(top_k, s)
        mode, checked = validation.mode(mode), validation.filters(filters)
        index = self.loaded
        analysis = pipeline.analyse_question(index, query, history=history, mode=mode, settings=s)
        return (
            index,
            analysis,
            pipeline.search(index, analysis, k, filters=checked, mode=mode, settings=s),
        )

    @_one_request
    def search(
        self,
        question: Any,
        top_k: Any = None,
        *,
        filters: Filters | dict[str, Any] | None = None,
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        """The best passages for a question, diversified, filtered, ranked from 1."""
        return self._run(question, top_k, (), filters, mode)[2]

    @_one_request
    def converse(
        self,
        question: Any,
        top_k: Any = None,
        *,
        history: Sequence[Context] = (),
        filters: Filters | dict[str, Any] | None = None,
        mode: Mode = "hybrid",
    ) -> tuple[str, list[Hit]]:
        """Search for a question asked after ``history``: (standalone query, hits)."""
        _, analysis, hits = self._run(question, top_k, history, filters, mode)
        return analysis.standalone, hits

    @_one_request
    def ask(
        self,
        question: Any,
        top_k: Any = None,
        *,
        filters: Filters | dict[str, Any] | None = None,
        mode: Mode = "hybrid",
        conversation_id: Any = None,
        remember: bool = True,
    ) -> dict[str, Any]:
        """The API's answer object: the question, an extractive answer, cited passages.

        With ``remember`` the turn is stored in a conversation (a new one when no
        ``conversation_id`` is given) and follow-ups are rewritten with earlier turns.
        """
        validation.question(question, self.settings)
        conversation_id = validation.conversation_id(conversation_id)
        history: list[Context] = []
        if conversation_id is not None:
            if not self.conversations.exists(conversation_id):
                raise NotFound(f"no conversation with id {conversation_id!r}")
            history = [t.context for t in self.conversations.turns(conversation_id)]
        index, analysis, hits = self._run(question, top_k, history, filters, mode)
        similarity = pipeline.sentence_similarity(
            self.query_vectors, self.embedder.encode_passages, analysis.standalone
        )
        result = pipeline.respond(
            index, analysis, hits, settings=self.settings, similarity=similarity
        )
        if remember:
            conversation_id = conversation_id or self.conversations.create()
            self.conversations.append(
                conversation_id,
                Turn(analysis.question.text, analysis.standalone, result, time.time()),
            )
            result = {"conversation_id": conversation_id, **result}
        return result

    # The stages as the service's tests reach them.
    def _continues(self, question: str, focus: Sequence[str]) -> bool:
        return pipeline.continues(self.loaded, question, focus, self.settings)

    def _hinted_mask(
        self, index: QueryIndex, hints: Hints, allowed: np.ndarray | None
    ) -> np.ndarray | None:
        return pipeline.hinted_mask(index, hints, allowed, self.settings)

    def closeness(self, query: str, hits: Sequence[Hit]) -> float:
        """How similar the most similar listed passage is to the question (-1: none)."""
        return answer.closeness(self.loaded.retrievers.dense, query, hits)

    def lookup(
        self, question: Any, top_k: Any = None, *, filters: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Passages for another system: like :meth:`ask` but touching no conversation."""
        query = validation.question(question, self.settings)
        hits = self.search(query, top_k, filters=filters)
        passages = cite(hits)
        return {"query": query, "index": self.index_version, "passages": passages}

    # -- conversations and lookups ---------------------------------------------------
    @cached_property
    def conversations(self) -> ConversationStore:
        days = self.settings.conversation_days
        return ConversationStore(self.settings.conversations_db, max_age_days=days or None)

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        if not self.conversations.exists(conversation_id):
            raise NotFound(f"no conversation with id {conversation_id!r}")
        turns = self.conversations.turns(conversation_id)
        return {"id": conversation_id, "turns": [turn.shown() for turn in turns]}

    def delete_conversation(self, conversation_id: str) -> None:
        if not self.conversations.delete(conversation_id):
            raise NotFound(f"no conversation with id {conversation_id!r}")

    def passage(self, passage_id: str) -> dict[str, Any]:
        return lookups.passage(self.loaded.reader, passage_id)

    def document(self, doc_id: str) -> dict[str, Any]:
        """A document's metadata and its passages (without the full text)."""
        return lookups.document(self.loaded.reader, doc_id)

    def facets(self) -> dict[str, list[str]]:
        return lookups.facets(self.loaded.reader)

    def health(self) -> dict[str, Any]:
        return health.health()

    def ready(self) -> dict[str, Any]:
        return health.ready(self.loaded.reader, self.conversations, self.embedder.query_encoder)
