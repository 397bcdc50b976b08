"""A server worker's start: the index and the model loaded side by side, the worker
reporting to gunicorn's master while it loads, the libraries imported before the fork."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest

from qa_service.config import Settings
from qa_service.embedding import ModelError, SentenceTransformerEmbedder
from qa_service.errors import IndexUnavailable
from qa_service.ingest import run_ingest
from qa_service.loading import check_build, open_index
from qa_service.server import (
    PRELOADED_MODULES,
    modules_to_preload,
    preload_libraries,
    with_heartbeat,
)
from qa_service.service import QAService
from tests.conftest import write_small_corpus
from tests.fake_embedder import FakeEmbedder


def test_heartbeat_beats_while_the_work_runs_and_returns_its_result() -> None:
    beats: list[int] = []
    enough = threading.Event()

    def beat() -> None:
        beats.append(1)
        if len(beats) == 3:
            enough.set()

    def work() -> str:
        # Finishes only once beaten three times: the beats come while it runs.
        assert enough.wait(30)
        return "loaded"

    assert with_heartbeat(work, beat, 0.01) == "loaded"
    assert len(beats) >= 3


def test_heartbeat_raises_the_work_s_error_on_the_caller_s_thread() -> None:
    def work() -> None:
        raise ModelError("no model")

    with pytest.raises(ModelError, match="no model"):
        with_heartbeat(work, lambda: None, 0.01)


def test_preload_imports_what_it_can_and_skips_a_missing_module() -> None:
    assert preload_libraries(["json", "no_such_module_of_qa_service"]) == ["json"]


@pytest.mark.parametrize(
    ("answer", "library"),
    [(True, True), (False, False), (ModelError("no such model"), True)],
)
def test_the_master_imports_the_library_only_when_questions_need_it(
    monkeypatch: pytest.MonkeyPatch, answer: bool | Exception, library: bool
) -> None:
    def needs(self: SentenceTransformerEmbedder) -> bool:
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(SentenceTransformerEmbedder, "questions_need_library", needs)
    modules = modules_to_preload(Settings())
    assert set(PRELOADED_MODULES) <= set(modules)
    assert ("sentence_transformers" in modules) is library
    assert ("transformers" in modules) is library


class WaitingEmbedder(FakeEmbedder):
    """Its warm-up question waits until the service has its index: it returns only if the
    index is opened while the model loads, not after."""

    def __init__(self) -> None:
        self.service: QAService | None = None
        self.saw_index_while_loading: bool | None = None
        self.questions = 0

    def encode_query(self, text: str) -> np.ndarray:
        if self.saw_index_while_loading is None:
            assert self.service is not None
            opened = threading.Event()
            for _ in range(3000):
                if self.service.builds.current is not None:
                    opened.set()
                    break
                opened.wait(0.01)
            self.saw_index_while_loading = opened.is_set()
        self.questions += 1
        return super().encode_query(text)


@pytest.fixture
def fake_index(tmp_path: Path) -> Settings:
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = Settings(
        index_dir=tmp_path / "index", conversations_db=tmp_path / "c.db", model="fake"
    )
    run_ingest([corpus], settings, embedder=FakeEmbedder(), progress=False)
    return settings


def test_start_opens_the_index_while_the_model_loads_and_returns_with_both(
    fake_index: Settings,
) -> None:
    embedder = WaitingEmbedder()
    service = QAService(fake_index, embedder=embedder)
    embedder.service = service
    service.start()
    assert embedder.saw_index_while_loading is True
    assert embedder.questions == 1  # the warm-up question: the model is loaded
    assert service.builds.current is not None
    assert service.ready().status == "ready"
    assert service.search("yrkesvux", 3)


def test_start_without_a_usable_index_loads_the_model_and_answers_503(tmp_path: Path) -> None:
    settings = Settings(
        index_dir=tmp_path / "missing", conversations_db=tmp_path / "c.db", model="fake"
    )
    embedder = FakeEmbedder()
    calls: list[str] = []
    embedder.encode_query = lambda text: calls.append(text) or np.ones(16, np.float32)  # type: ignore[method-assign]
    service = QAService(settings, embedder=embedder)
    service.start()  # logged, not raised: the worker boots and says why it is not ready
    assert calls == ["uppvärmning"]
    with pytest.raises(IndexUnavailable):
        service.ready()


def test_start_raises_when_the_model_cannot_load_after_the_index_thread_ends(
    fake_index: Settings,
) -> None:
    embedder = FakeEmbedder()

    def broken(text: str) -> np.ndarray:
        raise ModelError("cannot load embedding model")

    embedder.encode_query = broken  # type: ignore[method-assign]
    service = QAService(fake_index, embedder=embedder)
    with pytest.raises(ModelError):
        service.start()
    assert service.builds.current is not None  # the index thread was waited for
    assert not [t for t in threading.enumerate() if t.name == "qa-open-index"]


def test_the_masters_check_opens_the_build_without_its_documents(fake_index: Settings) -> None:
    embedder = FakeEmbedder()
    checked = open_index(fake_index, embedder, embedder.encode_query, documents=False)
    full = open_index(fake_index, embedder, embedder.encode_query)
    assert checked.facts == {} and full.facts
    assert checked.reader.passage_count == full.reader.passage_count
    check_build(fake_index)  # a usable build passes
    with pytest.raises(IndexUnavailable):
        check_build(dataclasses.replace(fake_index, index_dir=fake_index.index_dir / "none"))
