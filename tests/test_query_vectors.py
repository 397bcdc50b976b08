from __future__ import annotations

import numpy as np
import pytest

from qa_service.embedding import QueryVectors


class Counting:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, text: str) -> np.ndarray:
        self.texts.append(text)
        return np.full(3, float(len(text)), dtype=np.float32)


@pytest.mark.parametrize(
    ("size", "asked", "encoded", "kept"),
    [
        (2, ["a", "a", "bb"], ["a", "bb"], 2),
        # The least recently used goes first: "a" was asked again, so "bb" leaves.
        (2, ["a", "bb", "a", "ccc", "a", "bb"], ["a", "bb", "ccc", "bb"], 2),
        (0, ["a", "a"], ["a", "a"], 0),
        (1, ["a", "bb", "a"], ["a", "bb", "a"], 1),
    ],
)
def test_query_vectors_encode_each_text_once_while_kept(
    size: int, asked: list[str], encoded: list[str], kept: int
) -> None:
    encode = Counting()
    vectors = QueryVectors(encode, size)
    for text in asked:
        assert vectors(text).tolist() == [float(len(text))] * 3
    assert encode.texts == encoded
    assert len(vectors) == kept
    vectors.clear()
    assert len(vectors) == 0


@pytest.mark.parametrize("size", [0, 1])
def test_one_request_encodes_each_text_once_whatever_is_kept(size: int) -> None:
    encode = Counting()
    vectors = QueryVectors(encode, size)
    with vectors.one_request():
        for text in ["a", "bb", "a", "bb"]:
            vectors(text)
        with vectors.one_request():  # nested: still the same request
            vectors("a")
        vectors("bb")
    assert encode.texts == ["a", "bb"]
    vectors("a")  # a later request: kept only while the cache holds it
    assert encode.texts == ["a", "bb", "a"]


def test_a_kept_vector_cannot_be_changed_by_its_caller() -> None:
    vector = QueryVectors(Counting(), 4)("a")
    with pytest.raises(ValueError):
        vector[0] = 9.0


@pytest.mark.model
def test_a_follow_up_encodes_each_distinct_query_once(small_index, embedder) -> None:  # type: ignore[no-untyped-def]
    from qa_service.conversation import Context
    from qa_service.service import QAService

    service = QAService(small_index, embedder=embedder)
    service.load()
    asked: list[str] = []
    encode = service.query_vectors._encode
    service.query_vectors._encode = lambda text: asked.append(text) or encode(text)
    interpellation = next(
        d.id for d in service.loaded.reader.documents() if d.source.startswith("ipq/")
    )
    history = [Context("Vad vill Anna Andersson med yrkesvux?", (interpellation,))]
    standalone, hits = service.converse("Hur många platser finns det?", history=history)
    assert standalone != "Hur många platser finns det?"
    # The literal question and the standalone one, each once: the standalone query is
    # searched everywhere and within the previous answer's documents.
    assert sorted(asked) == sorted(["Hur många platser finns det?", standalone])
    assert hits[0].document.id == interpellation


@pytest.mark.model
def test_an_answer_encodes_its_question_once_with_nothing_kept(small_index, embedder) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from qa_service.service import QAService

    service = QAService(dataclasses.replace(small_index, query_cache=0), embedder=embedder)
    service.load()
    asked: list[str] = []
    encode = service.query_vectors._encode
    service.query_vectors._encode = lambda text: asked.append(text) or encode(text)
    question = "Vad vill Anna Andersson med yrkesvux?"
    result = service.ask(question, remember=False)
    assert result["passages"]
    # Searched, then the listed passages' closeness to it measured: one encoding.
    assert asked == [question]
    service.ask(question, remember=False)
    assert asked == [question, question]  # nothing is kept between requests


@pytest.mark.parametrize(("raw", "size"), [("0", 0), ("1000", 1000)])
def test_query_cache_setting(raw: str, size: int) -> None:
    from qa_service.config import Settings

    assert Settings.from_env({"QA_QUERY_CACHE": raw}).query_cache == size


def test_negative_query_cache_is_a_clear_error() -> None:
    from qa_service.config import ConfigError, Settings

    with pytest.raises(ConfigError, match="QA_QUERY_CACHE"):
        Settings.from_env({"QA_QUERY_CACHE": "-1"})
