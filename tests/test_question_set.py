"""The committed question set is sound: every source exists, every evidence sentence is in
one of its relevant documents (as the ingestion job cleans them)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from qa_service.evaluate import load_questions, normalise
from qa_service.ingest import SourceFile, build_document
from qa_service.readers import read_document
from tests.conftest import ROOT, SEED, SHARED, needs_shared

QUESTIONS = ROOT / "eval" / "questions.jsonl"


def _path(source: str) -> Path:
    return SEED if source == SEED.name else SHARED / "corpus" / source


@cache
def _clean_text(source: str) -> str:
    path = _path(source)
    document, _ = build_document(SourceFile(path, source), read_document(path, source), "", None)
    return normalise(document.text)


def test_question_set_shape() -> None:
    questions = load_questions(QUESTIONS)
    assert len(questions) >= 60
    ids = [q.id for q in questions]
    assert len(ids) == len(set(ids))
    raw = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines()]
    follow_ups = [r for r in raw if r.get("follows")]
    assert len(follow_ups) >= 3
    assert all(r["follows"] in ids for r in follow_ups)


@needs_shared
@pytest.mark.parametrize("question", load_questions(QUESTIONS), ids=lambda q: q.id)
def test_sources_exist_and_evidence_is_in_them(question) -> None:  # type: ignore[no-untyped-def]
    for source in question.relevant:
        assert _path(source).is_file(), source
    if question.evidence:
        needle = normalise(question.evidence)
        assert any(needle in _clean_text(s) for s in question.relevant), question.evidence


HELD_OUT = [
    ROOT / "eval" / "heldout" / "questions.jsonl",
    ROOT / "eval" / "heldout2" / "questions.jsonl",
    ROOT / "eval" / "heldout3" / "questions.jsonl",
    ROOT / "eval" / "heldout4" / "questions.jsonl",
    ROOT / "eval" / "heldout5" / "questions.jsonl",
    ROOT / "eval" / "heldout6" / "questions.jsonl",
    ROOT / "eval" / "heldout7" / "questions.jsonl",
    ROOT / "eval" / "heldout8" / "questions.jsonl",
    ROOT / "eval" / "heldout9" / "questions.jsonl",
    ROOT / "eval" / "heldout10" / "questions.jsonl",
]
HELD_OUT_QUESTIONS = [q for path in HELD_OUT for q in load_questions(path)]


@pytest.mark.parametrize("path", HELD_OUT, ids=lambda p: p.parent.name)
def test_held_out_sets_shape(path: Path) -> None:
    questions = load_questions(path)
    assert len(questions) >= 40
    ids = [q.id for q in questions]
    assert len(ids) == len(set(ids))
    assert all(q.kind for q in questions)
    assert all(q.follows in ids for q in questions if q.follows)
    assert sum(q.kind == "paraphrase" for q in questions) * 3 >= len(questions) - 1


@needs_shared
@pytest.mark.parametrize("question", HELD_OUT_QUESTIONS, ids=lambda q: q.id)
def test_held_out_evidence_is_in_the_first_relevant_document(question) -> None:  # type: ignore[no-untyped-def]
    for source in question.relevant:
        assert _path(source).is_file(), source
    assert normalise(question.evidence) in _clean_text(question.relevant[0])
