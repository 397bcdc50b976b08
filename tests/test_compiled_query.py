"""The compiled question graph: built once in the background, then the same vectors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from qa_service import compiled_query
from qa_service.compiled_query import (
    cpu_signature,
    key_record,
    package_key,
    package_path,
    read_record,
    write_record,
)
from qa_service.config import BUNDLED_MODEL
from qa_service.embedding import SentenceTransformerEmbedder, resolve_model
from qa_service.question_encoder import PackagedQuestions, locate

pytestmark = [
    pytest.mark.model,
    # AOTInductor compiles C++: without a compiler a build fails once, is remembered, and
    # the traced graph serves; nothing here can be built.
    pytest.mark.skipif(
        not (shutil.which("g++") or shutil.which("c++")),
        reason="no C++ compiler on this machine: the question graph cannot be compiled",
    ),
]

QUESTIONS = [
    "Hur många bor i utanförskapsområden?",
    "What does the government do about segregation?",
    "bidragstak",
    "Och hur många av dem är barn?",
    # Longer than the model's window: truncated to its 256 word pieces like a passage.
    " ".join(["Arbetsförmedlingen ska rusta och matcha arbetssökande till jobb."] * 60),
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A model cache of its own, in which ``auto`` has built the package once."""
    root = tmp_path_factory.mktemp("model-cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("QA_MODEL_CACHE", str(root))
    try:
        yield root
    finally:
        patch.undo()


@pytest.fixture(scope="module")
def built(cache: Path) -> SentenceTransformerEmbedder:
    embedder = SentenceTransformerEmbedder(BUNDLED_MODEL, query_graph="auto")
    assert not embedder.compiled_graph_loaded
    embedder.encode_query(QUESTIONS[0])
    # Until the package is built, questions go through the traced graph.
    assert embedder.query_encoder.endswith("questions traced)")
    assert embedder.wait_for_compiled_graph(timeout=600)
    return embedder


def test_auto_builds_the_package_in_the_background_and_then_uses_it(
    built: SentenceTransformerEmbedder, cache: Path
) -> None:
    built.encode_query(QUESTIONS[1])
    assert built.query_encoder.endswith("questions compiled)")
    packages = list((cache / "compiled").glob("*.pt2"))
    assert [p.name for p in packages] == [built.compiled_package.name]
    assert not list((cache / "compiled").glob("*.partial*"))


@pytest.mark.parametrize("question", QUESTIONS)
def test_compiled_vectors_are_the_traced_graphs(
    built: SentenceTransformerEmbedder, question: str
) -> None:
    traced = SentenceTransformerEmbedder(BUNDLED_MODEL, query_graph="traced")
    eager = SentenceTransformerEmbedder(BUNDLED_MODEL, query_graph="eager")
    vector = built.encode_query(question)
    assert vector.shape == (traced.dimension,)
    assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-5)
    assert float(vector @ traced.encode_query(question)) >= 0.9999
    assert float(vector @ eager.encode_query(question)) >= 0.9999


def test_a_second_process_loads_the_package_without_building(
    built: SentenceTransformerEmbedder,
    cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("the package is there: nothing is built")

    # A cache whose package no process has described yet: the library's path loads it
    # and describes the directory for the next process.
    model_dir = _model_dir()
    record = read_record(key_record(model_dir, built.precision, cache))
    write_record(key_record(model_dir, built.precision, tmp_path), {"key": record["key"]})
    shutil.copy(built.compiled_package, package_path(record["key"], tmp_path))
    monkeypatch.setenv("QA_MODEL_CACHE", str(tmp_path))
    monkeypatch.setattr(compiled_query, "build_package", no_build)
    monkeypatch.setattr(compiled_query, "start_background_build", no_build)
    again = SentenceTransformerEmbedder(BUNDLED_MODEL, query_graph="compiled")
    assert again.questions_need_library()
    vector = again.encode_query(QUESTIONS[0])
    assert again.query_encoder.endswith("questions compiled)")
    assert float(vector @ built.encode_query(QUESTIONS[0])) >= 0.99999
    described = read_record(key_record(model_dir, built.precision, tmp_path))
    assert described["questions"] == record["questions"]
    assert not SentenceTransformerEmbedder(BUNDLED_MODEL).questions_need_library()


def test_a_question_the_package_alone_cannot_encode_goes_through_the_library(
    built: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = SentenceTransformerEmbedder(BUNDLED_MODEL, query_graph="auto")
    embedder.encode_query(QUESTIONS[1])
    assert "model" not in embedder.__dict__  # the library's model is not loaded

    def broken(self: PackagedQuestions, text: str) -> None:
        raise RuntimeError("the mapped table is gone")

    monkeypatch.setattr(PackagedQuestions, "__call__", broken)
    vector = embedder.encode_query(QUESTIONS[0])
    assert float(vector @ built.encode_query(QUESTIONS[0])) >= 0.99999
    assert "model" in embedder.__dict__  # the library answered


def test_a_damaged_package_is_removed_and_the_traced_graph_answers(
    built: SentenceTransformerEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_MODEL_CACHE", str(tmp_path))
    embedder = SentenceTransformerEmbedder(BUNDLED_MODEL, query_graph="auto")
    package = embedder.compiled_package
    package.parent.mkdir(parents=True, exist_ok=True)  # the key cache may be there
    package.write_bytes(built.compiled_package.read_bytes()[:4096])
    vector = embedder.encode_query(QUESTIONS[0])
    assert embedder.query_encoder.endswith("questions traced)")
    assert not package.exists()  # built again by the next process that needs it
    traced = SentenceTransformerEmbedder(BUNDLED_MODEL, query_graph="traced")
    assert float(vector @ traced.encode_query(QUESTIONS[0])) >= 0.9999


def test_a_failed_build_is_not_tried_again_by_auto(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_MODEL_CACHE", str(tmp_path))
    started: list[object] = []
    monkeypatch.setattr(
        compiled_query, "start_background_build", lambda *args: started.append(args)
    )
    embedder = SentenceTransformerEmbedder(BUNDLED_MODEL, query_graph="auto")
    failed = embedder.compiled_package.with_suffix(".failed")
    failed.parent.mkdir(parents=True, exist_ok=True)  # the key cache may be there
    failed.write_text("CalledProcessError: no C++ compiler\n", encoding="utf-8")
    embedder.encode_query(QUESTIONS[0])
    assert started == []
    assert embedder.query_encoder.endswith("questions traced)")


def test_the_package_key_follows_weights_precision_and_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    layer = torch.nn.Linear(4, 4)
    key = package_key(layer, "bfloat16")
    assert package_key(layer, "bfloat16") == key
    assert package_key(layer, "float32") != key
    with torch.no_grad():
        layer.weight[0, 0] += 1e-3
    changed = package_key(layer, "bfloat16")
    assert changed != key
    monkeypatch.setattr(compiled_query, "cpu_signature", lambda: "another cpu")
    assert package_key(layer, "bfloat16") != changed
    assert cpu_signature()  # this machine's flags are read


def test_the_package_key_is_remembered_while_the_model_files_are_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    layer = torch.nn.Linear(4, 4)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    weights = model_dir / "model.safetensors"
    weights.write_bytes(b"weights")
    computed: list[str] = []
    real = compiled_query.package_key

    def counting(transformer: object, precision: str, after: object = ()) -> str:
        computed.append(precision)
        return real(transformer, precision)

    monkeypatch.setattr(compiled_query, "package_key", counting)
    cache = tmp_path / "cache"
    key = compiled_query.cached_package_key(layer, "bfloat16", model_dir, cache)
    assert key == real(layer, "bfloat16") and computed == ["bfloat16"]
    # Another process (a second worker, the next start): read, not computed.
    assert compiled_query.cached_package_key(layer, "bfloat16", model_dir, cache) == key
    assert computed == ["bfloat16"]
    # Another precision, or a changed file: computed again.
    compiled_query.cached_package_key(layer, "float32", model_dir, cache)
    assert computed == ["bfloat16", "float32"]
    weights.write_bytes(b"other weights")
    compiled_query.cached_package_key(layer, "bfloat16", model_dir, cache)
    assert computed == ["bfloat16", "float32", "bfloat16"]
    # No directory (a hub name): always computed.
    compiled_query.cached_package_key(layer, "bfloat16", None, cache)
    assert len(computed) == 4


def test_loading_a_package_runs_no_instruction_set_probe(
    built: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from torch._inductor import cpu_vec_isa

    probes: list[object] = []
    monkeypatch.setattr(cpu_vec_isa.VecISA, "_probe_load", lambda self, path: probes.append(path))
    cpu_vec_isa.valid_vec_isa_list.cache_clear()
    try:
        runner = compiled_query.load_package(built.compiled_package)
    finally:
        cpu_vec_isa.valid_vec_isa_list.cache_clear()  # later builds probe for themselves
    assert probes == []
    monkeypatch.undo()
    # The same output as PyTorch's own wrapper (kept for another PyTorch or package).
    wrapped = compiled_query._load_with_the_wrapper(built.compiled_package)
    ids = built.tokenizer(["query: " + QUESTIONS[0]], return_tensors="pt")["input_ids"]
    words = built.model[0].auto_model.get_input_embeddings()
    with torch.no_grad():
        vector = runner(words(ids))
        assert torch.equal(vector, wrapped(words(ids)))
    assert tuple(vector.shape) == (1, built.dimension)  # the sentence vector, pooled


def test_a_package_loads_without_importing_the_compiler(
    built: SentenceTransformerEmbedder, cache: Path
) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from qa_service.compiled_query import load_package\n"
        f"load_package(Path({str(built.compiled_package)!r}))\n"
        "print('torch._inductor' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "False"


def _model_dir() -> Path:
    return Path(resolve_model(BUNDLED_MODEL))


def test_a_described_model_encodes_questions_without_the_library(
    built: SentenceTransformerEmbedder, cache: Path
) -> None:
    # A worker's start: a process of its own, in which nothing has imported the library.
    script = (
        "import json, sys\n"
        "from qa_service.embedding import SentenceTransformerEmbedder\n"
        f"embedder = SentenceTransformerEmbedder({BUNDLED_MODEL!r}, query_graph='auto')\n"
        "needs = embedder.questions_need_library()\n"
        f"vector = embedder.encode_query({QUESTIONS[0]!r})\n"
        "print(json.dumps({'needs': needs, 'encoder': embedder.query_encoder,\n"
        "    'library': sorted({'transformers', 'sentence_transformers'} & set(sys.modules)),\n"
        "    'vector': vector.tolist()}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "QA_MODEL_CACHE": str(cache)},
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["needs"] is False
    assert seen["library"] == []
    assert seen["encoder"].endswith("questions compiled)")
    assert float(np.asarray(seen["vector"]) @ built.encode_query(QUESTIONS[0])) >= 0.99999


@pytest.mark.parametrize("question", QUESTIONS)
def test_the_package_alone_gives_the_librarys_vectors(
    built: SentenceTransformerEmbedder, cache: Path, question: str
) -> None:
    found = locate(_model_dir(), built.precision, cache)
    assert found is not None and found.package == built.compiled_package
    alone = PackagedQuestions(found)
    assert alone.prompt == built.query_prompt
    eager = SentenceTransformerEmbedder(BUNDLED_MODEL, query_graph="eager")
    vector = alone(question)
    assert vector.shape == (built.dimension,)
    assert float(vector @ built.encode_query(question)) >= 0.99999
    assert float(vector @ eager.encode_query(question)) >= 0.9999


def test_a_damaged_described_package_leaves_the_library_to_answer(
    built: SentenceTransformerEmbedder, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = _model_dir()
    record = read_record(key_record(model_dir, built.precision, cache))
    assert record["questions"]
    write_record(key_record(model_dir, built.precision, tmp_path), record)
    package = package_path(record["key"], tmp_path)
    package.write_bytes(built.compiled_package.read_bytes()[:4096])
    monkeypatch.setenv("QA_MODEL_CACHE", str(tmp_path))
    embedder = SentenceTransformerEmbedder(BUNDLED_MODEL, query_graph="auto")
    assert not embedder.questions_need_library()  # as far as the files tell
    vector = embedder.encode_query(QUESTIONS[0])
    assert embedder.query_encoder.endswith("questions traced)")
    assert not package.exists()  # built again by the next process that needs it
    assert float(vector @ built.encode_query(QUESTIONS[0])) >= 0.9999
