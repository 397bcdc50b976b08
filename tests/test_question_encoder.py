"""The question path without the library: the mapped word table, the described directory."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest

from qa_service.bundled_model import VERIFIED
from qa_service.compiled_query import (
    key_record,
    package_key,
    package_path,
    read_record,
    write_record,
)
from qa_service.config import BUNDLED_MODEL
from qa_service.embedding import (
    SentenceTransformerEmbedder,
    device_without_cuda,
    resolve_model,
)
from qa_service.question_encoder import (
    Located,
    PackagedQuestions,
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
    # A record whose type names no torch type is refused before anything is loaded.
    damaged = Located(model_dir, model_dir / "no-package.pt2", {**found, "dtype": "nn"})
    with pytest.raises(QuestionPathError, match="no such type"):
        PackagedQuestions(damaged)


def test_a_record_keeps_what_another_process_wrote_under_the_same_key(tmp_path: Path) -> None:
    record = tmp_path / "keys" / "record.json"
    write_record(record, {"key": "ab" * 32, "questions": DESCRIPTION})
    write_record(record, {"key": "ab" * 32})  # a key computed late by another worker
    assert read_record(record) == {"key": "ab" * 32, "questions": DESCRIPTION}
    write_record(record, {"key": "cd" * 32})  # another key: nothing of the old one stays
    assert read_record(record) == {"key": "cd" * 32}
    record.write_text('{"key": "not a digest"}', encoding="utf-8")
    assert read_record(record) == {}


def test_the_record_follows_the_model_files_not_the_bundled_models_own_check(
    tmp_path: Path,
) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    weights = model_dir / "model.safetensors"
    weights.write_bytes(b"weights")
    first = key_record(model_dir, "bfloat16", tmp_path)
    (model_dir / VERIFIED).write_text("{}", encoding="utf-8")
    (model_dir / f".{VERIFIED}.1234").write_text("{", encoding="utf-8")  # being written
    assert key_record(model_dir, "bfloat16", tmp_path) == first
    # The same bytes and modification time in a new file (cp -p, rsync -t): another record.
    copy = tmp_path / "copy"
    shutil.copy2(weights, copy)
    copy.replace(weights)
    assert key_record(model_dir, "bfloat16", tmp_path) != first


def test_the_package_key_follows_the_modules_after_the_transformer() -> None:
    import torch

    class Pooling(torch.nn.Module):
        def __init__(self, mode: str) -> None:
            super().__init__()
            self.mode = mode

        def get_config_dict(self) -> dict[str, str]:
            return {"pooling_mode": self.mode}

    layer = torch.nn.Linear(4, 4)
    dense = torch.nn.Linear(4, 2)
    alone = package_key(layer, "bfloat16")
    mean = package_key(layer, "bfloat16", [Pooling("mean")])
    assert len({alone, mean, package_key(layer, "bfloat16", [Pooling("cls")])}) == 3
    assert package_key(layer, "bfloat16", [Pooling("mean")]) == mean
    with_dense = package_key(layer, "bfloat16", [Pooling("mean"), dense])
    with torch.no_grad():
        dense.weight[0, 0] += 1e-3
    assert package_key(layer, "bfloat16", [Pooling("mean"), dense]) != with_dense


@pytest.mark.parametrize(
    ("setting", "cuda_build", "device"),
    [
        ("cpu", None, "cpu"),
        ("cpu", "12.4", "cpu"),
        ("auto", None, "cpu"),
        ("auto", "12.4", None),  # only asking CUDA tells
        ("cuda", None, None),
        ("cuda:1", "12.4", None),
    ],
)
def test_the_device_is_told_without_asking_cuda(
    monkeypatch: pytest.MonkeyPatch, setting: str, cuda_build: str | None, device: str | None
) -> None:
    import torch

    def asked() -> bool:
        raise AssertionError("CUDA was asked")

    monkeypatch.setattr(torch.version, "cuda", cuda_build)
    monkeypatch.setattr(torch.cuda, "is_available", asked)
    assert device_without_cuda(setting) == device
    embedder = SentenceTransformerEmbedder(BUNDLED_MODEL, device=setting)
    if device is None:
        assert embedder.questions_need_library()
    else:
        embedder.questions_need_library()  # whatever the cache holds, CUDA is not asked
