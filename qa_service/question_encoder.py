"""Questions encoded without the sentence-transformers library or the loaded model.

A worker of the service encodes one question at a time and, with the default settings,
nothing else (passages are encoded by the ingest job). With a compiled package
(:mod:`qa_service.compiled_query`) the transformer, the pooling and the normalisation are
inside the package, so a question needs besides only its word pieces (the model's own
``tokenizer.json``, read by the ``tokenizers`` library that the model's tokenizer wraps)
and their rows of the word-embedding table, read from the model's safetensors file
memory-mapped (its pages are then shared by every worker). Importing sentence-transformers
and loading the model were most of a worker's start (BENCHMARKS.md, "The question path
without the library").

What a model directory needs for this is described once, by a process that holds the
model and its package (:func:`describe`): where the tokenizer and the table are, the
model's window and question prompt. There it is checked that the tokenizer gives the
library's word pieces and that the file holds the model's table; the description is kept
in the directory's key record (:func:`qa_service.compiled_query.key_record`), so a
changed model file ends it and the library's path is taken again.
"""

from __future__ import annotations

import json
import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .compiled_query import key_record, load_package, package_path, read_record, write_record

logger = logging.getLogger(__name__)

#: Texts whose word pieces the tokenizer must give as the library's tokenizer does (an
#: accented word, spaces of other kinds, a text longer than any window).
TOKENIZER_SAMPLES = (
    "uppvärmning",
    "Hur många bor i utanförskapsområden?  Och\u00a0hur många av dem är barn?",
    "What does the government do about segregation (2024/25:992)?",
    " ".join(["Arbetsförmedlingen ska rusta och matcha arbetssökande till jobb."] * 80),
)

#: safetensors' element types, as numpy reads them (bfloat16 as its raw 16 bits).
_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}
#: A header larger than this is not a safetensors header.
_MAX_HEADER = 100 * 2**20


class QuestionPathError(ValueError):
    """A model directory's files do not give the package's questions."""


def safetensors_header(path: Path) -> tuple[int, dict[str, Any]]:
    """Where the data of ``path`` starts, and its header (the format's eight-byte length,
    then JSON naming each tensor's type, shape and byte range)."""
    with open(path, "rb") as file:
        raw = file.read(8)
        if len(raw) != 8:
            raise QuestionPathError(f"{path} is not a safetensors file")
        (length,) = struct.unpack("<Q", raw)
        if length > _MAX_HEADER:
            raise QuestionPathError(f"{path} is not a safetensors file")
        try:
            header = json.loads(file.read(length))
        except ValueError as exc:
            raise QuestionPathError(f"{path} is not a safetensors file: {exc}") from exc
    if not isinstance(header, dict):
        raise QuestionPathError(f"{path} is not a safetensors file")
    return 8 + length, header


def mapped_tensor(path: Path, name: str) -> np.ndarray:
    """Tensor ``name`` of the safetensors file ``path``, memory-mapped read-only.

    safetensors' own ``get_slice`` reads one row per call (1.4 ms for a question's 14
    word pieces, a fifth of its encoding); a mapped array gives all rows at once and
    shares its pages between processes.
    """
    start, header = safetensors_header(path)
    info = header.get(name)
    if not isinstance(info, dict) or info.get("dtype") not in _DTYPES:
        raise QuestionPathError(f"{path} holds no tensor {name} of a floating type")
    begin, end = info["data_offsets"]
    dtype = np.dtype(_DTYPES[info["dtype"]])
    shape = tuple(int(n) for n in info["shape"])
    if end - begin != dtype.itemsize * int(np.prod(shape)):
        raise QuestionPathError(f"{path}: the byte range of {name} does not fit its shape")
    return np.memmap(path, dtype=dtype, mode="r", offset=start + begin, shape=shape)


def as_torch(rows: np.ndarray, stored: str, dtype: Any) -> Any:
    """``rows`` read from a tensor stored as ``stored`` (safetensors' type) as a torch
    tensor of ``dtype``."""
    import torch

    if not rows.flags.writeable or not rows.flags.c_contiguous:  # a mapped table: copied
        rows = np.array(rows)
    tensor = torch.from_numpy(rows)
    if stored == "BF16":
        tensor = tensor.view(torch.bfloat16)
    return tensor.to(dtype)


def _transformer_dir(model_dir: Path) -> Path:
    """The directory of a sentence-transformers model's first module (its transformer)."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        return model_dir / str(modules[0].get("path", ""))
    except (OSError, ValueError, IndexError, AttributeError) as exc:
        raise QuestionPathError(f"{model_dir} names no first module: {exc}") from exc


#: Rows of the word table compared at a time (a copy of the whole table would be 384 MB
#: for a multilingual model).
_ROWS_AT_A_TIME = 8192


def _equal(mapped: np.ndarray, stored: str, weight: Any) -> bool:
    """Whether the mapped table read as the model reads it is ``weight``, row by row."""
    import torch

    for start in range(0, len(mapped), _ROWS_AT_A_TIME):
        rows = as_torch(mapped[start : start + _ROWS_AT_A_TIME], stored, weight.dtype)
        if not torch.equal(rows, weight[start : start + _ROWS_AT_A_TIME]):
            return False
    return True


def _word_table(directory: Path, weight: Any) -> dict[str, str]:
    """The safetensors file of ``directory`` and the tensor in it equal to ``weight``."""
    shape = list(weight.shape)
    for path in sorted(directory.glob("*.safetensors")):
        _, header = safetensors_header(path)
        for name, info in header.items():
            if not isinstance(info, dict) or info.get("shape") != shape:
                continue
            if info.get("dtype") not in _DTYPES:
                continue
            if _equal(mapped_tensor(path, name), info["dtype"], weight):
                return {"file": path.name, "tensor": name, "stored": info["dtype"]}
    raise QuestionPathError(f"no safetensors file of {directory} holds the word vectors")


def describe(model: Any, model_dir: Path) -> dict[str, Any]:
    """How the questions of ``model`` (a loaded sentence-transformers model, from
    ``model_dir``) are encoded with its package alone; checked against the model."""
    directory = _transformer_dir(model_dir)
    tokenizer_file = directory / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise QuestionPathError(f"{directory} has no tokenizer.json")
    window = int(model.max_seq_length)
    prompt = str((getattr(model, "prompts", None) or {}).get("query", ""))
    own = load_tokenizer(tokenizer_file, window)
    for text in [start + sample for start in {"", prompt} for sample in TOKENIZER_SAMPLES]:
        library = model.tokenizer([text], truncation=True, max_length=window)["input_ids"][0]
        if own.encode(text).ids != list(library):
            raise QuestionPathError(f"{tokenizer_file} does not give the library's word pieces")
    weight = model[0].auto_model.get_input_embeddings().weight.detach()
    table = _word_table(directory, weight)
    return {
        "tokenizer": str(tokenizer_file.relative_to(model_dir)),
        "words": {**table, "file": str((directory / table["file"]).relative_to(model_dir))},
        "dtype": str(weight.dtype).removeprefix("torch."),
        "window": window,
        "query_prompt": prompt,
    }


def load_tokenizer(path: Path, window: int) -> Any:
    """The ``tokenizers`` tokenizer of ``path``, truncating to ``window`` word pieces
    (special tokens included, as the library truncates) and padding nothing."""
    import tokenizers

    tokenizer = tokenizers.Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(window)
    return tokenizer


def remember(model: Any, model_dir: Path, precision: str, cache: Path | None = None) -> None:
    """Describe ``model``'s questions in its directory's key record, unless that record
    holds no key yet (it is written with the package's key) or a description already."""
    record = key_record(model_dir, precision, cache)
    known = read_record(record)
    if not known or "questions" in known:
        return
    try:
        known["questions"] = describe(model, model_dir)
    except QuestionPathError as exc:
        logger.info("questions of %s need the library: %s", model_dir, exc)
        known["questions"] = {}
    write_record(record, known)


@dataclass(frozen=True)
class Located:
    """A model directory's compiled package and how its questions are encoded."""

    model_dir: Path
    package: Path
    description: dict[str, Any]


def locate(model_dir: Path, precision: str, cache: Path | None = None) -> Located | None:
    """The package and description of ``model_dir`` as its files are now, if both are
    there (read without the library)."""
    known = read_record(key_record(model_dir, precision, cache))
    description = known.get("questions")
    if not description:
        return None
    package = package_path(str(known["key"]), cache)
    return Located(model_dir, package, description) if package.is_file() else None


class PackagedQuestions:
    """One question at a time: word pieces, their word vectors, the package's vector.

    Not thread-safe (the caller holds its lock, as it does for the library's path).
    """

    def __init__(self, located: Located, *, prompt: str | None = None) -> None:
        import torch

        found = located.description
        try:
            words = found["words"]
            self.window = int(found["window"])
            self.prompt = str(found["query_prompt"]) if prompt is None else prompt
            self._tokenizer = load_tokenizer(located.model_dir / found["tokenizer"], self.window)
            self._table = mapped_tensor(located.model_dir / words["file"], words["tensor"])
            self._stored = str(words["stored"])
            self._dtype = getattr(torch, str(found["dtype"]), None)
            if not isinstance(self._dtype, torch.dtype):
                raise ValueError(f"no such type {found['dtype']!r}")
        except (KeyError, TypeError, ValueError, OSError, AttributeError) as exc:
            raise QuestionPathError(f"{located.model_dir}: {exc}") from exc
        self._runner = load_package(located.package)
        # A package or table that loads but does not give a unit vector is refused now,
        # not on every question.
        vector = self("uppvärmning")
        if vector.ndim != 1 or not np.all(np.isfinite(vector)):
            raise QuestionPathError(f"{located.package} gives no vector")
        if abs(float(np.linalg.norm(vector)) - 1.0) > 1e-3:
            raise QuestionPathError(f"{located.package} gives vectors that are not unit")

    def __call__(self, text: str) -> np.ndarray:
        import torch

        ids = self._tokenizer.encode(self.prompt + text).ids
        rows = as_torch(self._table[ids], self._stored, self._dtype)
        with torch.no_grad():
            vector = self._runner(rows.unsqueeze(0))[0]
        return np.asarray(vector.float().numpy(), dtype=np.float32)
