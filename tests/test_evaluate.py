from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa_service.evaluate import Question, QuestionFileError, load_questions, score, summarise


def hits(*sources: str) -> list[tuple[str, str]]:
    return [(s, f"text of {s}") for s in sources]


@pytest.mark.parametrize(
    ("relevant", "ranked", "hit", "rr", "ndcg"),
    [
        (("a",), ("a", "b", "c"), True, 1.0, 1.0),
        (("a",), ("b", "a", "c"), True, 0.5, 0.6309),
        (("a",), ("b", "c", "d", "e", "f", "a"), False, 1 / 6, 0.3562),
        (("a",), ("b", "c"), False, 0.0, 0.0),
        (("a", "b"), ("a", "a", "b"), True, 1.0, (1 + 1 / 2) / (1 + 0.6309)),
    ],
)
def test_score(relevant, ranked, hit, rr, ndcg) -> None:  # type: ignore[no-untyped-def]
    question = Question("q", "?", relevant)
    result = score(question, hits(*ranked), 5)
    assert result.hit is hit
    assert result.reciprocal_rank == pytest.approx(rr)
    assert result.ndcg == pytest.approx(ndcg, abs=1e-3)


def test_evidence_is_matched_on_normalised_text() -> None:
    question = Question("q", "?", ("a",), evidence="Text   OF a")
    assert score(question, hits("b", "a"), 5).evidence is True
    assert score(question, hits("b", "c"), 5).evidence is False


def test_summarise() -> None:
    results = [
        score(Question("1", "?", ("a",), evidence="text of a"), hits("a"), 5),
        score(Question("2", "?", ("a",)), hits("b"), 5),
    ]
    summary = summarise(results, 5)
    assert summary == {
        "questions": 2,
        "hit@5": 0.5,
        "evidence@5": 1.0,
        "mrr@10": 0.5,
        "ndcg@10": 0.5,
    }


def test_bad_question_file(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "x"}\n', encoding="utf-8")
    with pytest.raises(QuestionFileError, match=":1:"):
        load_questions(path)


@pytest.mark.model
def test_qa_eval_cli_with_a_follow_up(tmp_path: Path, runner, small_index) -> None:  # type: ignore[no-untyped-def]
    from qa_service.cli import main

    path = tmp_path / "q.jsonl"
    lines = [
        {
            "id": "a",
            "question": "Hur många bor i utanförskapsområden?",
            "relevant": ["svar-pa-fraga-2024-25-992.txt"],
            "evidence": "710 000",
        },
        {
            "id": "b",
            "question": "Och hur många av dem är barn?",
            "follows": "a",
            "relevant": ["svar-pa-fraga-2024-25-992.txt"],
            "evidence": "170 000 är barn",
        },
    ]
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), "utf-8")
    result = runner.invoke(
        main, ["eval", str(path), "--index", str(small_index.index_dir), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["summary"]["hit@5"] == 1.0
    assert report["summary"]["follow_ups"]["evidence@5"] == 1.0
