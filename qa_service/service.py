"""QAService: the facade the CLI and the web layer share: it loads and reloads the
index, runs the query pipeline (:mod:`qa_service.query`) and looks things up. No Flask."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import cached_property

from . import health, lookups, validation
from . import models as m
from .config import Settings
from .conversation import Context, ConversationStore
from .embedding import Embedder, QueryVectors, make_embedder
from .loading import Builds, open_index, start_side_by_side
from .query import answer
from .query.analysis import Mode
from .query.pipeline import Pipeline, QueryIndex
from .schema import Hit

logger = logging.getLogger(__name__)

RELOAD_CHECK_SECONDS = 2.0


class QAService:
    """Loads the index once, answers questions with cited passages."""

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder: Embedder = embedder or make_embedder(settings)
        self.query_vectors = QueryVectors(self.embedder.encode_query, settings.query_cache)
        opened = lambda: open_index(self.settings, self.embedder, self.query_vectors)  # noqa: E731
        self.builds = Builds(opened, lambda: self.settings.index_dir.resolve())

    def load(self) -> None:
        """Open the published index (raises :class:`IndexUnavailable` when unusable)."""
        self.builds.load()

    def maybe_reload(self) -> bool:
        """Switch to a newly published build, if any; cheap enough to call per request."""
        return self.builds.maybe_reload(RELOAD_CHECK_SECONDS)

    @property
    def loaded(self) -> QueryIndex:
        self.maybe_reload()
        return self.builds.serving()

    @property
    def loaded_passages(self) -> int | None:
        return self.builds.passage_count

    @property
    def index_version(self) -> str:
        """Names the loaded build; changes whenever a new index is published."""
        return self.loaded.reader.build_path.name

    def start(self) -> None:
        """A worker's start: the index opened while the model loads and answers a first
        question (:func:`loading.start_side_by_side`: an unusable index is logged, a model
        that cannot load raises)."""
        start_side_by_side(self.load, self.warm_up)

    def warm_up(self) -> None:
        """Load the model now rather than on the first question."""
        self.embedder.encode_query("uppvärmning")

    # -- questions -------------------------------------------------------------------
    @property
    def stages(self) -> Pipeline:
        """The query stages with the settings as they are now."""
        return Pipeline(self.settings, self.query_vectors, self.embedder.encode_passages)

    def converse(
        self,
        question: str,
        top_k: int | None = None,
        *,
        history: Sequence[Context] = (),
        filters: Mapping[str, str] | None = None,
        mode: Mode = "hybrid",
    ) -> tuple[str, list[Hit]]:
        """Search for a question asked after ``history``: (standalone query, hits)."""
        request = validation.asked(question, top_k, filters, mode, self.settings)
        analysis, hits = self.stages.run(self.loaded, request, history)
        return analysis.standalone, hits

    def search(
        self,
        question: str,
        top_k: int | None = None,
        *,
        filters: Mapping[str, str] | None = None,
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        """The best passages for a question, diversified, filtered, ranked from 1."""
        return self.converse(question, top_k, filters=filters, mode=mode)[1]

    def ask(
        self,
        request: m.AskRequest | str,
        top_k: int | None = None,
        *,
        filters: Mapping[str, str] | None = None,
        mode: Mode = "hybrid",
        remember: bool = True,
    ) -> m.AskResponse:
        """The answer with its cited passages, to a checked request (or a question with
        ``top_k``, ``filters`` and ``mode``, checked here); with ``remember``, stored as a
        turn of its conversation (a new one when none)."""
        if isinstance(request, str):
            request = validation.asked(request, top_k, filters, mode, self.settings)
        cid = request.conversation_id  # without one, no conversation store is opened
        history = self.conversations.contexts(cid) if cid is not None else []
        result = self.stages.ask(self.loaded, request, history)
        if remember:
            self.conversations.record(cid, result.question, result)
        return result

    def lookup(self, request: m.SearchRequest) -> m.SearchResponse:
        """Passages for another system: like :meth:`ask` but touching no conversation."""
        return self.stages.lookup(self.loaded, request)

    def closeness(self, query: str, hits: Sequence[Hit]) -> float:
        """How similar the most similar listed passage is to the question (-1: none)."""
        return answer.closeness(self.loaded.retrievers.dense, query, hits)

    # -- conversations and lookups ---------------------------------------------------
    @cached_property
    def conversations(self) -> ConversationStore:
        return ConversationStore.from_settings(self.settings)

    def conversation(self, conversation_id: str) -> m.Conversation:
        return self.conversations.shown(conversation_id)

    def delete_conversation(self, conversation_id: str) -> None:
        self.conversations.remove(conversation_id)

    def passage(self, passage_id: str) -> m.PassageDetail:
        return lookups.passage(self.loaded.reader, passage_id)

    def document(self, doc_id: str) -> m.DocumentDetail:
        """A document's metadata and its passages (without the full text)."""
        return lookups.document(self.loaded.reader, doc_id)

    def facets(self) -> m.Facets:
        return lookups.facets(self.loaded.reader)

    def health(self) -> m.Health:
        return health.health()

    def ready(self) -> m.Ready:
        return health.ready(self.loaded.reader, self.conversations, self.embedder.query_encoder)
