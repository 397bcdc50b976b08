"""QAService: the facade the CLI and the web layer share. No Flask in here."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, wraps
from pathlib import Path
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

import faiss
import numpy as np

from .answer import citation, passage_dict
from .config import Settings, answer_thresholds
from .conversation import Context, ConversationStore, Turn, is_follow_up, standalone_query
from .embedding import Embedder, QueryVectors, make_embedder
from .errors import IndexUnavailable, InvalidRequest, NotFound
from .extractive import QUOTE_MIN_SCORE, choose_sentences, find_sentence
from .filters import FilterError, Filters, allowed_rows, has_surrogates
from .hints import DocumentFacts, HintIndex, Hints, document_facts, read_hints
from .language import is_english
from .lexical import LexicalIndex
from .nearduplicates import shingles
from .retrieval import (
    Candidate,
    DenseRetriever,
    ExpandedLexicalRetriever,
    HybridRetriever,
    LexicalRetriever,
    diversify,
    lift_hinted,
    reassign_document_slots,
    rrf,
    within_document_order,
)
from .schema import Hit, Passage
from .store import (
    LEXICAL,
    IndexReader,
    IndexStoreError,
    check_compatible,
    check_vector_agreement,
)

logger = logging.getLogger(__name__)

Mode = Literal["dense", "lexical", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "lexical", "hybrid")
RELOAD_CHECK_SECONDS = 2.0
#: Conversation ids are 32 hex digits; a longer string names none.
MAX_CONVERSATION_ID = 64
#: A published build that failed to open is tried again after this long.
RETRY_FAILED_SECONDS = 60.0
#: RRF weights of a follow-up's rankings: the literal question, the standalone query, and
#: the standalone query within the documents the previous turn cited (BENCHMARKS.md).
FOLLOW_UP_WEIGHTS = (0.5, 1.0, 0.5)
#: A question with no pronoun still continues the conversation when the best BM25 score
#: within the previous turn's documents reaches this share of the corpus-wide best.
CONTINUITY_RATIO = 0.5
# A single query vector gains nothing from FAISS's OpenMP threads, and their spinning
# competes with the embedding engine's threads for the same cores: on 2 cores the dense
# leg took 28 ms with 2 FAISS threads and 14.5 ms with one (p50, BENCHMARKS.md).
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


@dataclass
class _Loaded:
    """One published build with its retrievers; replaced whole on reload."""

    reader: IndexReader
    dense: DenseRetriever
    lexical: LexicalRetriever
    hybrid: HybridRetriever
    #: Each document's kind, parties, half-years and people, for the question's hints.
    facts: dict[str, DocumentFacts]
    #: Which documents meet each hint, and every person's name for reading them.
    hint_index: HintIndex

    def retriever(self, mode: Mode) -> DenseRetriever | LexicalRetriever | HybridRetriever:
        if mode == "dense":
            return self.dense
        if mode == "lexical":
            return self.lexical
        return self.hybrid


class QAService:
    """Loads the index once, answers questions with cited passages."""

    def __init__(self, settings: Settings, *, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder: Embedder = embedder or make_embedder(settings)
        self.query_vectors = QueryVectors(self.embedder.encode_query, settings.query_cache)
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()
        self._checked_at = 0.0
        #: The build that last failed to open, and why (it is not tried again).
        self._failed: tuple[Path, str, float] | None = None
        faiss.omp_set_num_threads(FAISS_QUERY_THREADS)

    # -- index lifecycle -------------------------------------------------------------
    def load(self) -> None:
        """Open the published index (raises :class:`IndexUnavailable` when unusable)."""
        with self._lock:
            self._loaded = self._open()

    def _open(self) -> _Loaded:
        index_path = self.settings.index_dir
        try:
            reader = IndexReader(index_path)
            if check_compatible(reader.manifest, model=self.settings.model, dimension=None):
                check_vector_agreement(reader, self.embedder.encode_passages)
        except IndexStoreError as exc:
            raise IndexUnavailable(str(exc)) from exc
        try:
            lexical = LexicalIndex.load(reader.build_path / LEXICAL)
            if lexical.size != reader.passage_count:
                raise ValueError(f"{lexical.size} of {reader.passage_count} passages")
            # bm25s maps its arrays lazily: one search reads them all.
            lexical.search("index", 1)
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise IndexUnavailable(
                f"the index build {reader.build_path.name} is damaged ({LEXICAL}/: {exc}); "
                "publish a new one with `qa ingest`"
            ) from exc
        # Feedback fused as a ranking of its own leaves the dense leg itself unmoved.
        separate = self.settings.dense_feedback_ranking_weight > 0
        dense = DenseRetriever(
            reader.vectors,
            self._encode_query,
            document_vectors=reader.document_vectors,
            passage_documents=reader.passage_documents,
            document_weight=self.settings.document_weight,
            feedback=0 if separate else self.settings.dense_feedback_passages,
            feedback_weight=self.settings.dense_feedback_weight,
        )
        lexical_retriever = LexicalRetriever(lexical)
        hybrid = HybridRetriever(
            dense,
            self.lexical_leg(reader, lexical),
            depth=self.settings.candidate_depth,
            rrf_k=self.settings.rrf_k,
            weights=(self.settings.dense_weight, self.settings.lexical_weight),
            glossary_weight=self.settings.glossary_weight,
            feedback=(
                self.settings.dense_feedback_passages,
                self.settings.dense_feedback_weight,
                self.settings.dense_feedback_ranking_weight,
            ),
            fusion=self.settings.fusion,
            coverage_passages=self.settings.coverage_passages,
        )
        logger.info(
            "loaded index %s (%s passages, model %s)",
            reader.build_path.name,
            reader.passage_count,
            reader.manifest.get("model"),
        )
        facts = {doc_id: document_facts(*columns) for doc_id, *columns in reader.document_columns()}
        return _Loaded(reader, dense, lexical_retriever, hybrid, facts, HintIndex(facts))

    def lexical_leg(self, reader: IndexReader, lexical: LexicalIndex) -> LexicalRetriever:
        """The hybrid's lexical leg: BM25, with RM3-style feedback when configured."""
        if self.settings.lexical_feedback_passages <= 0:
            return LexicalRetriever(lexical)

        def texts(rows: list[int]) -> list[str]:
            found = reader.passages_by_rows(rows)
            return [found[row].text for row in rows if row in found]

        return ExpandedLexicalRetriever(
            lexical,
            texts,
            passages=self.settings.lexical_feedback_passages,
            terms=self.settings.lexical_feedback_terms,
            weight=self.settings.lexical_feedback_weight,
        )

    def _encode_query(self, text: str) -> np.ndarray:
        vector = self.query_vectors(text)
        loaded = self._loaded
        if loaded is not None and vector.shape[-1] != loaded.reader.vectors.d:
            raise IndexUnavailable(
                f"the model gives {vector.shape[-1]}-dimensional vectors but the index holds "
                f"{loaded.reader.vectors.d}: rebuild the index with `qa ingest`"
            )
        return vector

    def maybe_reload(self) -> bool:
        """Switch to a newly published build, if any; cheap enough to call per request.

        A build that cannot be opened (damaged, built for another model) is tried again
        only after ``RETRY_FAILED_SECONDS`` or once another is published; meanwhile the
        worker keeps the build it has, or, having none, answers 503 with the reason.
        """
        now = time.monotonic()
        if now - self._checked_at < RELOAD_CHECK_SECONDS and self._loaded is not None:
            return False
        self._checked_at = now
        current = self._loaded
        target = self.settings.index_dir.resolve()
        if current is not None and current.reader.build_path == target:
            return False
        with self._lock:
            if self._loaded is not current:
                return False
            failed = self._failed
            if failed is not None and failed[0] == target and now < failed[2]:
                if current is None:
                    raise IndexUnavailable(failed[1])
                return False
            try:
                fresh = self._open()
            except IndexUnavailable as exc:
                self._failed = (target, exc.message, now + RETRY_FAILED_SECONDS)
                if current is None:
                    raise
                name = current.reader.build_path.name
                logger.error("published index not loaded, keeping build %s: %s", name, exc)
                return False
            self._failed = None
            # Requests holding the old build keep it alive until they finish.
            self._loaded = fresh
        return True

    @property
    def loaded(self) -> _Loaded:
        self.maybe_reload()
        if self._loaded is None:
            raise IndexUnavailable("the index is not loaded")
        return self._loaded

    @property
    def loaded_passages(self) -> int | None:
        """Passages in the loaded build, or None before the first load."""
        loaded = self._loaded
        return loaded.reader.passage_count if loaded is not None else None

    def warm_up(self) -> None:
        """Load the model now rather than on the first question."""
        self.embedder.encode_query("uppvärmning")

    # -- questions -------------------------------------------------------------------
    def validate_question(self, question: Any) -> str:
        if not isinstance(question, str):
            raise InvalidRequest("'question' must be a string")
        if has_surrogates(question):
            raise InvalidRequest("'question' holds a lone surrogate, which is not text")
        question = question.replace("\x00", " ").strip()
        if not question:
            raise InvalidRequest("'question' must not be empty")
        if len(question) > self.settings.max_question_chars:
            raise InvalidRequest(
                f"'question' is longer than {self.settings.max_question_chars} characters"
            )
        return question

    def validate_top_k(self, top_k: Any) -> int:
        if top_k is None:
            return self.settings.default_top_k
        if isinstance(top_k, float) and top_k.is_integer():
            top_k = int(top_k)  # JSON has one number type: 5.0 is a whole number
        if isinstance(top_k, bool) or not isinstance(top_k, int):
            raise InvalidRequest("'top_k' must be a whole number")
        if not 1 <= top_k <= self.settings.max_top_k:
            raise InvalidRequest(f"'top_k' must lie between 1 and {self.settings.max_top_k}")
        return top_k

    @_one_request
    def search(
        self,
        question: Any,
        top_k: Any = None,
        *,
        filters: Filters | dict[str, Any] | None = None,
        mode: Mode = "hybrid",
        rewritten: str | None = None,
        focus: Sequence[str] = (),
    ) -> list[Hit]:
        """The best passages for a question, diversified, filtered, ranked from 1.

        ``rewritten`` is a follow-up's standalone query; ``focus`` the documents the
        previous turn cited, searched again with it.
        """
        query = self.validate_question(question)
        k = self.validate_top_k(top_k)
        if mode not in MODES:
            raise InvalidRequest(f"'mode' must be one of {', '.join(MODES)}")
        if not isinstance(filters, Filters):
            try:
                filters = Filters.from_mapping(filters or {})
            except FilterError as exc:
                raise InvalidRequest(str(exc)) from exc
        loaded = self.loaded
        reader = loaded.reader
        mask = allowed_rows(reader.db, filters, reader.passage_count)
        # Over-fetch so that the per-document cap and duplicate folding still fill k.
        depth = max(k * 4, k + 20)
        retriever = loaded.retriever(mode)
        ranking = retriever.search(query, depth, allowed=mask)
        if mode == "hybrid" and self.settings.fusion != "rrf":
            # The fused order as reciprocal ranks: the hint lift and the answer's scores
            # keep the scale they were measured on, whichever fusion chose the order.
            ranking = rrf([ranking], k=self.settings.rrf_k)
        rewritten = rewritten if rewritten and rewritten != query else None
        focus_mask = self._focus_mask(reader, focus, mask) if focus else None
        if rewritten or focus_mask is not None:
            # A follow-up: the standalone query leads, the literal question still counts,
            # and the documents the conversation was just about get a ranking of their own.
            literal_weight, rewritten_weight, focus_weight = FOLLOW_UP_WEIGHTS
            rankings = [ranking]
            weights = [literal_weight if rewritten else 1.0]
            if rewritten:
                rankings.append(retriever.search(rewritten, depth, allowed=mask))
                weights.append(rewritten_weight)
            if focus_mask is not None:
                rankings.append(retriever.search(rewritten or query, depth, allowed=focus_mask))
                weights.append(focus_weight)
            ranking = rrf(rankings, k=self.settings.rrf_k, weights=weights)
        people = loaded.hint_index.people
        hints = read_hints(rewritten or query, people) if mode == "hybrid" else Hints()
        hinted_mask = self._hinted_mask(loaded, hints, mask)
        if hinted_mask is not None:
            # The documents that meet every hint the question gives get a BM25 ranking of
            # their own, so one that the whole corpus's words rank deep still becomes a
            # candidate (BM25 here measured as well as the hybrid, at a third of the cost).
            hinted = loaded.lexical.search(rewritten or query, depth, allowed=hinted_mask)
            ranking = rrf(
                [ranking, hinted],
                k=self.settings.rrf_k,
                weights=[1.0, self.settings.hint_ranking_weight],
            )
        rows = [row for row, _ in ranking]
        passages = reader.passages_by_rows(rows)
        candidates = [
            Candidate(row, score, passages[row].doc_id, passages[row].text, [])
            for row, score in ranking
            if row in passages
        ]
        if mode == "hybrid":
            candidates = lift_hinted(candidates, hints, loaded.facts, self.settings.hint_weight)
            if self.settings.passage_rescoring_documents > 0:
                candidates = self._rescore_documents(
                    loaded, rewritten or query, candidates, passages, mask
                )

        def fingerprint(candidate: Candidate) -> set[int]:
            stored = reader.passage_shingles(candidate.row)
            return stored if stored is not None else shingles(candidate.text)

        chosen = diversify(
            candidates, k, per_document=self.settings.per_document_cap, fingerprint=fingerprint
        )
        hits: list[Hit] = []
        extra = reader.passages_by_rows([r for c in chosen for r in c.also_in])
        for rank, candidate in enumerate(chosen, start=1):
            passage = passages[candidate.row]
            document = reader.document(passage.doc_id)
            if document is None:  # pragma: no cover - the database is consistent
                continue
            also = [extra[r].id for r in candidate.also_in if r in extra]
            hits.append(Hit(passage, document, candidate.score, rank, also, candidate.row))
        return hits

    def _rescore_documents(
        self,
        loaded: _Loaded,
        query: str,
        candidates: list[Candidate],
        passages: dict[int, Passage],
        allowed: np.ndarray | None,
    ) -> list[Candidate]:
        """Refill the first documents' places with their best passages, every passage of
        each scored against the question (``passage_rescoring_documents``)."""
        documents: list[str] = []
        for candidate in candidates:
            if candidate.doc_id not in documents:
                documents.append(candidate.doc_id)
                if len(documents) == self.settings.passage_rescoring_documents:
                    break
        reader = loaded.reader
        groups = {doc: reader.rows_of_documents([doc]) for doc in documents}
        if allowed is not None:
            groups = {doc: rows[allowed[rows]] for doc, rows in groups.items()}
        every = np.concatenate(list(groups.values())) if groups else np.zeros(0, np.int64)
        if len(every) == 0:
            return candidates
        similar = loaded.dense.similarities(query, every.tolist()).tolist()
        dense = dict(zip(every.tolist(), similar, strict=True))
        within = np.zeros(reader.passage_count, dtype=bool)
        within[every] = True
        found = loaded.lexical.search(query, len(every), allowed=within)
        lexical = dict(found)
        orders = {
            doc: within_document_order(
                rows.tolist(),
                [dense[r] for r in rows.tolist()],
                lexical,
                rrf_k=self.settings.rrf_k,
                fusion=self.settings.fusion,
                lexical_weight=self._within_coverage(loaded, query, rows, found),
            )
            for doc, rows in groups.items()
        }
        # Only as many of a document's passages as it can show are read.
        cap = self.settings.per_document_cap or len(every)
        wanted = [r for order in orders.values() for r in order[: cap + 2] if r not in passages]
        passages.update(reader.passages_by_rows(wanted))
        texts = {row: p.text for row, p in passages.items()}
        return reassign_document_slots(candidates, orders, texts)

    def _within_coverage(
        self, loaded: _Loaded, query: str, rows: np.ndarray, found: list[tuple[int, float]]
    ) -> float:
        """BM25's weight within one document: its term coverage over the document's first
        ``coverage_passages`` BM25 passages (1 without coverage scaling)."""
        if self.settings.coverage_passages <= 0:
            return 1.0
        own = set(rows.tolist())
        first = [row for row, _ in found if row in own][: self.settings.coverage_passages]
        return loaded.lexical.term_coverage(query, first)

    @staticmethod
    def _focus_mask(
        reader: IndexReader, focus: Sequence[str], allowed: np.ndarray | None
    ) -> np.ndarray | None:
        rows = reader.rows_of_documents(list(focus))
        if len(rows) == 0:
            return None
        mask = np.zeros(reader.passage_count, dtype=bool)
        mask[rows] = True
        if allowed is not None:
            mask &= allowed
        return mask if mask.any() else None

    def _hinted_mask(
        self, loaded: _Loaded, hints: Hints, allowed: np.ndarray | None
    ) -> np.ndarray | None:
        """The rows of the documents that meet every hint (None: no hint, or no such
        document, or every document)."""
        if not hints or self.settings.hint_ranking_weight <= 0:
            return None
        meeting = loaded.hint_index.meeting_all(hints)
        if not meeting or len(meeting) == loaded.hint_index.size:
            return None
        return self._focus_mask(loaded.reader, sorted(meeting), allowed)

    def converse(
        self,
        question: Any,
        top_k: Any = None,
        *,
        history: Sequence[Context] = (),
        filters: Filters | dict[str, Any] | None = None,
        mode: Mode = "hybrid",
    ) -> tuple[str, list[Hit]]:
        """Search for a question asked after ``history``: (standalone query, hits).

        A question that leans on earlier turns is rewritten with their topic words and
        also searched within the documents the previous turn cited; a self-contained
        question is searched as it stands, whatever came before.
        """
        query = self.validate_question(question)
        if not history:
            return query, self.search(query, top_k, filters=filters, mode=mode)
        focus = history[-1].doc_ids
        if is_follow_up(query):
            standalone = standalone_query(query, [c.standalone_query for c in history])
        elif self._continues(query, focus):
            # No pronoun, but the conversation's documents answer it about as well as the
            # whole corpus does ("Hur många fanns i åtgärden i augusti?"): stay with them.
            standalone = query
        else:
            return query, self.search(query, top_k, filters=filters, mode=mode)
        hits = self.search(
            query, top_k, filters=filters, mode=mode, rewritten=standalone, focus=focus
        )
        return standalone, hits

    def _continues(self, query: str, focus: Sequence[str]) -> bool:
        """Whether the focus documents match a question nearly as well as the corpus."""
        loaded = self.loaded
        mask = self._focus_mask(loaded.reader, focus, None)
        best = loaded.lexical.search(query, 1)
        if mask is None or not best or best[0][1] <= 0:
            return False
        inside = loaded.lexical.search(query, 1, allowed=mask)
        return bool(inside) and inside[0][1] >= CONTINUITY_RATIO * best[0][1]

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
        query = self.validate_question(question)
        history: list[Context] = []
        if conversation_id is not None:
            if not isinstance(conversation_id, str):
                raise InvalidRequest("'conversation_id' must be a string")
            if has_surrogates(conversation_id) or len(conversation_id) > MAX_CONVERSATION_ID:
                raise NotFound("no conversation with that id")
            if not self.conversations.exists(conversation_id):
                raise NotFound(f"no conversation with id {conversation_id!r}")
            history = [t.context for t in self.conversations.turns(conversation_id)]
        standalone, hits = self.converse(query, top_k, history=history, filters=filters, mode=mode)
        passages = [passage_dict(hit, f"/p/{hit.passage.id}") for hit in hits]
        if is_english(standalone):
            # Swedish sentences cannot be matched word for word to an English question:
            # of eleven English questions, the best-matching sentence was the answer in two.
            answer = no_quote(passages, NOT_QUOTED_IN_ENGLISH)
        else:
            min_terms, min_similarity = answer_thresholds(self.settings)
            close = min_similarity <= 0 or self.closeness(standalone, hits) >= min_similarity
            answer = build_answer(
                standalone,
                hits,
                passages,
                min_terms=min_terms,
                close_enough=close,
                similarity=self._sentence_similarity(standalone),
                similarity_weight=self.settings.quote_similarity_weight,
                similarity_candidates=self.settings.quote_similarity_candidates,
            )
        result: dict[str, Any] = {
            "question": query,
            "standalone_query": standalone,
            "answer": answer,
            "passages": passages,
        }
        if remember:
            if conversation_id is None:
                conversation_id = self.conversations.create()
            self.conversations.append(conversation_id, Turn(query, standalone, result, time.time()))
            result = {"conversation_id": conversation_id, **result}
        return result

    def _sentence_similarity(self, query: str) -> Callable[[list[str]], np.ndarray] | None:
        """The embedding model's similarity of sentences (encoded as passages) to the
        question, for choosing the quote (None: not asked for)."""
        if self.settings.quote_similarity_weight <= 0:
            return None

        def similarity(texts: list[str]) -> np.ndarray:
            vector = np.asarray(self.query_vectors(query), dtype=np.float32).reshape(-1)
            vectors = self.embedder.encode_passages(texts, batch_size=len(texts))
            return np.einsum("ij,j->i", vectors, vector)  # no BLAS threads (BENCHMARKS.md)

        return similarity

    def closeness(self, query: str, hits: Sequence[Hit]) -> float:
        """How similar the most similar listed passage is to the question (the embedding
        model's cosine; -1 without passages)."""
        rows = [hit.row for hit in hits if hit.row is not None]
        if not rows:
            return -1.0
        return float(np.max(self.loaded.dense.similarities(query, rows)))

    @cached_property
    def conversations(self) -> ConversationStore:
        days = self.settings.conversation_days
        return ConversationStore(self.settings.conversations_db, max_age_days=days or None)

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        if not self.conversations.exists(conversation_id):
            raise NotFound(f"no conversation with id {conversation_id!r}")
        turns = self.conversations.turns(conversation_id)
        return {
            "id": conversation_id,
            "turns": [
                {
                    "question": t.question,
                    "standalone_query": t.standalone_query,
                    "answer": t.answer.get("answer"),
                    "passages": t.answer.get("passages", []),
                    "created_at": t.created_at,
                }
                for t in turns
            ],
        }

    def delete_conversation(self, conversation_id: str) -> None:
        if not self.conversations.delete(conversation_id):
            raise NotFound(f"no conversation with id {conversation_id!r}")

    # -- lookups -------------------------------------------------------------------
    def passage(self, passage_id: str) -> dict[str, Any]:
        reader = self.loaded.reader
        found = reader.passage(passage_id)
        if found is None:
            raise NotFound(f"no passage with id {passage_id!r}")
        _row, passage = found
        document = reader.document(passage.doc_id)
        if document is None:  # pragma: no cover
            raise NotFound(f"no document for passage {passage_id!r}")
        data = passage_dict(Hit(passage, document, 0.0, 0), f"/p/{passage.id}")
        data.pop("rank")
        data.pop("score")
        data["context"] = _context(document.text, passage.char_start, passage.char_end)
        return data

    def document(self, doc_id: str) -> dict[str, Any]:
        """A document's metadata and its passages (without the full text)."""
        reader = self.loaded.reader
        document = reader.document(doc_id)
        if document is None:
            raise NotFound(f"no document with id {doc_id!r}")
        data = document.to_dict()
        data["citation"] = citation(document)
        data["passages"] = [
            {
                "id": p.id,
                "ordinal": p.ordinal,
                "page": p.page,
                "char_start": p.char_start,
                "char_end": p.char_end,
                "heading": p.heading,
                "speaker": p.speaker,
                "text": p.text,
                "permalink": f"/p/{p.id}",
            }
            for _, p in reader.passages_of(doc_id)
        ]
        return data

    def lookup(
        self, question: Any, top_k: Any = None, *, filters: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Passages for another system: like :meth:`ask` but touching no conversation."""
        query = self.validate_question(question)
        hits = self.search(query, top_k, filters=filters)
        return {
            "query": query,
            "index": self.index_version,
            "passages": [passage_dict(hit, f"/p/{hit.passage.id}") for hit in hits],
        }

    @property
    def index_version(self) -> str:
        """Names the loaded build; changes whenever a new index is published."""
        return self.loaded.reader.build_path.name

    def facets(self) -> dict[str, list[str]]:
        """Values the filters can take in the loaded index (for the chat's menus)."""
        db = self.loaded.reader.db
        doctypes = [
            r[0]
            for r in db.execute(
                "SELECT doctype FROM documents WHERE doctype IS NOT NULL "
                "GROUP BY doctype ORDER BY COUNT(*) DESC, doctype"
            )
        ]
        riksmoten = [
            r[0]
            for r in db.execute(
                "SELECT DISTINCT rm FROM documents WHERE rm IS NOT NULL ORDER BY rm DESC"
            )
        ]
        return {"doctypes": doctypes, "riksmoten": riksmoten}

    def health(self) -> dict[str, Any]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    def ready(self) -> dict[str, Any]:
        """Readiness: the index is loaded and a turn can be stored; what the index holds.

        503 while either is not so: a conversation database on a read-only or full disk
        fails every ``/api/ask``, so the service is not ready then (the probe writes and
        commits one row, as a turn does).
        """
        loaded = self.loaded
        self.conversations.check_writable()
        manifest = loaded.reader.manifest
        return {
            "status": "ready",
            "index": {
                "build": loaded.reader.build_path.name,
                "model": manifest.get("model"),
                "query_encoder": self.embedder.query_encoder,
                "passages": manifest.get("passages"),
                "documents": manifest.get("documents"),
                "built_at": manifest.get("built_at"),
            },
        }


NOTHING_FOUND = "Jag hittade inget i dokumenten som besvarar frågan."
NOT_QUOTED_IN_ENGLISH = (
    "Svar citeras bara för frågor på svenska; se källorna nedan. "
    "(Answers are quoted for questions in Swedish only; see the sources below.)"
)


def no_quote(passages: list[dict[str, Any]], text: str) -> dict[str, Any]:
    """An answer that quotes nothing (``text`` says why); the passages are still listed."""
    for item in passages:
        item["highlights"] = []
    return {"found": False, "text": text, "sentences": []}


def build_answer(
    question: str,
    hits: list[Hit],
    passages: list[dict[str, Any]],
    *,
    min_terms: float = QUOTE_MIN_SCORE,
    close_enough: bool = True,
    similarity: Callable[[list[str]], Any] | None = None,
    similarity_weight: float = 0.0,
    similarity_candidates: int = 4,
) -> dict[str, Any]:
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
    )
    if not chosen or not close_enough:
        return no_quote(passages, NOTHING_FOUND)
    for item in passages:
        item["highlights"] = []
    sentences: list[dict[str, Any]] = []
    quoted: list[str] = []
    for choice in chosen:
        hit = hits[choice.passage_index]
        sentence = choice.sentence
        passages[choice.passage_index]["highlights"].append([sentence.start, sentence.end])
        # The same sentence in other listed passages (a press release quoting the answer
        # to a written question): cite them all, so the primary source is never lost.
        also: list[dict[str, Any]] = []
        for index, other in enumerate(hits):
            if index == choice.passage_index:
                continue
            found = find_sentence(other.passage.text, sentence.text)
            if found is not None:
                passages[index]["highlights"].append([found.start, found.end])
                also.append(
                    {
                        "marker": other.rank,
                        "passage_id": other.passage.id,
                        "char_start": other.passage.char_start + found.start,
                        "char_end": other.passage.char_start + found.end,
                    }
                )
        sentences.append(
            {
                "text": sentence.text,
                "marker": hit.rank,
                "passage_id": hit.passage.id,
                "char_start": hit.passage.char_start + sentence.start,
                "char_end": hit.passage.char_start + sentence.end,
                "also": also,
            }
        )
        markers = "".join(f"[{m}]" for m in [hit.rank, *(a["marker"] for a in also)])
        quoted.append(f"{sentence.text} {markers}")
    text = " ".join(quoted)
    return {"found": True, "text": text, "sentences": sentences}


def _context(text: str, start: int, end: int, margin: int = 1500) -> dict[str, Any]:
    """The passage inside its surrounding document text, cut at paragraph edges."""
    lo = max(0, start - margin)
    hi = min(len(text), end + margin)
    if lo > 0:
        cut = text.find("\n\n", lo, start)
        lo = cut + 2 if cut >= 0 else lo
    if hi < len(text):
        cut = text.rfind("\n\n", end, hi)
        hi = cut if cut >= 0 else hi
    return {"before": text[lo:start], "passage": text[start:end], "after": text[end:hi]}
