"""Where and in what precision the one embedder runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qa_service import embedding
from qa_service.config import BUNDLED_E5_MODEL
from qa_service.embedding import (
    Embedder,
    ModelError,
    SentenceTransformerEmbedder,
    choose_device,
    choose_precision,
)
from tests.test_bundled_model import TEXTS

needs_gpu = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine (CPU-only torch)"
)


@pytest.mark.parametrize(
    ("device", "setting", "bfloat16_cpu", "expected"),
    [
        ("cuda", "auto", False, "float16"),
        ("cuda:1", "auto", True, "float16"),
        ("cpu", "auto", True, "bfloat16"),
        ("cpu", "auto", False, "float32"),
        ("mps", "auto", True, "float32"),
        ("cpu", "float32", True, "float32"),
        ("cuda", "float32", False, "float32"),
        ("cpu", "bfloat16", False, "bfloat16"),
    ],
)
def test_precision_follows_the_device_and_the_cpu(
    monkeypatch: pytest.MonkeyPatch, device: str, setting: str, bfloat16_cpu: bool, expected: str
) -> None:
    monkeypatch.setattr(embedding, "cpu_has_bfloat16", lambda: bfloat16_cpu)
    assert choose_precision(device, setting) == expected


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ModelError, match="QA_PRECISION"):
        choose_precision("cpu", "int4")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_auto_is_the_cpu_without_a_gpu_and_cuda_is_refused() -> None:
    assert choose_device("auto") == "cpu"
    assert choose_device("cpu") == "cpu"
    with pytest.raises(ModelError, match="no CUDA device"):
        choose_device("cuda")


@pytest.mark.model
def test_bfloat16_keeps_the_float32_vectors(embedder: Embedder) -> None:
    full = SentenceTransformerEmbedder(BUNDLED_E5_MODEL, device="cpu", precision="float32")
    assert full.precision == "float32"
    reduced = embedder.encode_passages(TEXTS)
    cosines = np.einsum("ij,ij->i", reduced, full.encode_passages(TEXTS))
    assert cosines.min() >= 0.999
    question = TEXTS[0]
    assert float(embedder.encode_query(question) @ full.encode_query(question)) >= 0.999


@pytest.mark.model
def test_readiness_names_what_encodes(embedder: Embedder) -> None:
    assert embedder.query_encoder.startswith("sentence-transformers (cpu, ")
    graph = "compiled" if embedder.compiled_graph_loaded else "traced"  # type: ignore[attr-defined]
    assert embedder.query_encoder.endswith(f"questions {graph})")


@needs_gpu
@pytest.mark.model
def test_a_gpu_embeds_in_half_precision_like_the_cpu(embedder: Embedder) -> None:
    gpu = SentenceTransformerEmbedder(BUNDLED_E5_MODEL, device="auto")
    assert (gpu.device, gpu.precision) == ("cuda", "float16")
    cosines = np.einsum("ij,ij->i", gpu.encode_passages(TEXTS), embedder.encode_passages(TEXTS))
    assert cosines.min() >= 0.999
    assert float(gpu.encode_query(TEXTS[0]) @ embedder.encode_query(TEXTS[0])) >= 0.999
