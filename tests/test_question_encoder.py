"""The question path without the library: the mapped word table, the described directory."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest

from qa_service.compiled_query import key_record, package_path, write_record
from qa_service.config import BUNDLED_MODEL
from qa_service.embedding import SentenceTransformerEmbedder, resolve_model
from qa_service.question_encoder import (
    QuestionPathError,
    as_torch,
    describe,
    locate,
    mapped_tensor,
)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_the_mapped_table_gives_the_rows_safetensors_stores(tmp_path: Path, dtype: str) -> None:
    import torch
    from safetensors.torch import save_file

    table = torch.randn(50, 8).to(getattr(torch, dtype))
    path = tmp_path / "model.safetensors"
    save_file({"other.bias": torch.zeros(3), "embeddings.word_embeddings.weight": table}, path)
    mapped = mapped_tensor(path, "embeddings.word_embeddings.weight")
    stored = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}[dtype]
    ids = [7, 0, 49, 7]
    rows = as_torch(mapped[ids], stored, torch.float32)
    assert torch.equal(rows, table[ids].float())
    whole = as_torch(mapped, stored, table.dtype)  # read-only pages: copied, not shared
    assert torch.equal(whole, table)


def _header(content: dict[str, object]) -> bytes:
    raw = json.dumps(content).encode()
    return struct.pack("<Q", len(raw)) + raw


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a safetensors file"),
        (struct.pack("<Q", 2**40), "not a safetensors file"),
        (struct.pack("<Q", 5) + b"{nope", "not a safetensors file"),
        (_header({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}), "no tensor"),
        (
            _header({"words": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}}),
            "no tensor",
        ),
        (
            _header({"words": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 16]}}),
            "does not fit",
        ),
    ],
)
def test_a_file_that_is_not_the_table_is_refused(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(data + bytes(16))
    with pytest.raises(QuestionPathError, match=message):
        mapped_tensor(path, "words")


DESCRIPTION = {
    "tokenizer": "tokenizer.json",
    "words": {"file": "model.safetensors", "tensor": "w", "stored": "F32"},
    "dtype": "float32",
    "window": 16,
    "query_prompt": "",
}


def _described(tmp_path: Path, questions: dict[str, object]) -> tuple[Path, Path]:
    model_dir = tmp_path / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "model.safetensors").write_bytes(b"weights")
    cache = tmp_path / "cache"
    key = "ab" * 32
    write_record(key_record(model_dir, "bfloat16", cache), {"key": key, "questions": questions})
    package = package_path(key, cache)
    package.write_bytes(b"package")
    return model_dir, cache


def test_a_described_directory_is_located_while_its_files_are_unchanged(tmp_path: Path) -> None:
    model_dir, cache = _described(tmp_path, DESCRIPTION)
    found = locate(model_dir, "bfloat16", cache)
    assert found is not None and found.description == DESCRIPTION
    assert found.package == package_path("ab" * 32, cache)
    assert locate(model_dir, "float32", cache) is None  # another precision: another record
    weights = model_dir / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert locate(model_dir, "bfloat16", cache) is None  # a changed file: the library


def test_no_description_or_no_package_is_not_located(tmp_path: Path) -> None:
    model_dir, cache = _described(tmp_path, {})  # described as needing the library
    assert locate(model_dir, "bfloat16", cache) is None
    model_dir, cache = _described(tmp_path / "other", DESCRIPTION)
    package_path("ab" * 32, cache).unlink()
    assert locate(model_dir, "bfloat16", cache) is None


@pytest.mark.model
def test_the_description_is_checked_against_the_model(
    minilm: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    model_dir = Path(resolve_model(BUNDLED_MODEL))
    found = describe(minilm.model, model_dir)
    assert found["words"]["tensor"].endswith("word_embeddings.weight")
    assert found["window"] == minilm.model.max_seq_length
    # The same tokenizer without the weights: no file holds the word vectors.
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("modules.json", "tokenizer.json"):
        shutil.copy(model_dir / name, copy / name)
    with pytest.raises(QuestionPathError, match="holds the word vectors"):
        describe(minilm.model, copy)
    # A tokenizer that keeps capitals, which the model's does not: other word pieces.
    tokenizer = json.loads((copy / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["normalizer"]["lowercase"] = False
    (copy / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    with pytest.raises(QuestionPathError, match="word pieces"):
        describe(minilm.model, copy)
