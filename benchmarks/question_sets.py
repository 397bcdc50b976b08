"""The development set and the held-out set side by side, by kind of question.

Usage:
  .venv/bin/python benchmarks/question_sets.py --index indexes/shared [--json]

For each set (eval/questions.jsonl, the development set the ranking was built on;
eval/heldout/questions.jsonl, written on randomly drawn documents and used to choose the
fusion; eval/heldout2/questions.jsonl, written after that choice on documents drawn
afterwards; eval/heldout3/questions.jsonl, written after issue 13's follow-up and
sentence-vector work on documents drawn afterwards; held-out 4 and 5, written after the
sentence leg and after the titled vectors of ``embedded_titles.py``; held-out 6, written
after hints stopped lifting the fused score by default; held-out 7, after the hinted
documents' ranking was halved; held-out 8, after the quote stopped counting the words that
named the hints) and each mode (dense, lexical,
hybrid): hit@5, evidence@5 and MRR@10 in all and by kind. Held-out questions carry
their kind; development questions are grouped as English (by the service's own language
test), follow-ups and topic changes (asked inside their
conversations), and the rest. The hybrid's answers are also checked for the quoted
sentence: whether an answer quotes the evidence sentence (one holds the other, or the
quote holds 70 % of its words), asked through ``QAService.ask`` as the API asks them,
follow-ups in their conversation.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from quote_choice import is_evidence, mostly_evidence

from qa_service.config import Settings
from qa_service.evaluate import Question, evaluate, load_questions, summarise
from qa_service.language import is_english
from qa_service.models import AskRequest, AskResponse
from qa_service.service import QAService

ROOT = Path(__file__).resolve().parent.parent
SETS = {
    "development": ROOT / "eval" / "questions.jsonl",
    "held-out": ROOT / "eval" / "heldout" / "questions.jsonl",
    "held-out 2": ROOT / "eval" / "heldout2" / "questions.jsonl",
    "held-out 3": ROOT / "eval" / "heldout3" / "questions.jsonl",
    "held-out 4": ROOT / "eval" / "heldout4" / "questions.jsonl",
    "held-out 5": ROOT / "eval" / "heldout5" / "questions.jsonl",
    "held-out 6": ROOT / "eval" / "heldout6" / "questions.jsonl",
    "held-out 7": ROOT / "eval" / "heldout7" / "questions.jsonl",
    "held-out 8": ROOT / "eval" / "heldout8" / "questions.jsonl",
    "held-out 9": ROOT / "eval" / "heldout9" / "questions.jsonl",
    "held-out 10": ROOT / "eval" / "heldout10" / "questions.jsonl",
}


def kind_of(question: Question) -> str:
    if question.kind:
        return question.kind
    if question.follows:
        return "new_topic" if question.new_topic else "follow_up"
    return "english" if is_english(question.question) else "swedish"


def by_kind(report: dict[str, Any], questions: list[Question], k: int) -> dict[str, Any]:
    from qa_service.evaluate import QuestionResult

    kinds = {q.id: kind_of(q) for q in questions}
    groups: dict[str, list[QuestionResult]] = defaultdict(list)
    for row in report["results"]:
        result = QuestionResult(**row)
        groups[kinds[result.id]].append(result)
        if kinds[result.id] not in ("follow_up", "new_topic"):
            groups["all (asked alone)"].append(result)
    return {kind: summarise(results, k) for kind, results in sorted(groups.items())}


def asked(service: QAService, questions: list[Question]) -> list[tuple[Question, AskResponse]]:
    """Every question asked through ``QAService.ask`` as the API asks it, follow-ups in
    their conversation, with its answer."""
    conversations: dict[str, str] = {}
    out: list[tuple[Question, AskResponse]] = []
    for question in questions:
        earlier = conversations.get(question.follows) if question.follows else None
        answer = service.ask(
            AskRequest(question=question.question, top_k=5, conversation_id=earlier)
        )
        conversations[question.id] = answer.conversation_id or ""
        out.append((question, answer))
    return out


def quotes(
    service: QAService,
    questions: list[Question],
    answers: list[tuple[Question, AskResponse]] | None = None,
) -> dict[str, Any]:
    """How many answers quote the evidence sentence, in all and by kind, and how many
    quote anything (``answered``: the rest say that nothing was found); ``answers`` are
    the questions' answers when already asked (:func:`asked`)."""
    # Per key: answers quoting the evidence, answers quoting anything, questions.
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for question, answer in answers if answers is not None else asked(service, questions):
        if not question.evidence:
            continue
        quoted = [s.text for s in answer.answer.sentences]
        found = any(
            is_evidence(question.evidence, text) or mostly_evidence(question.evidence, text)
            for text in quoted
        )
        for key in ("all", kind_of(question)):
            counts[key][0] += found
            counts[key][1] += answer.answer.found
            counts[key][2] += 1
    ordered = sorted(counts.items())
    result: dict[str, Any] = {key: f"{n} / {total}" for key, (n, _, total) in ordered}
    result["answered"] = {key: f"{n} / {total}" for key, (_, n, total) in ordered}
    return result


def chosen_sets(names: str) -> dict[str, Path]:
    """The sets named, comma-separated (all when none)."""
    return {name: SETS[name] for name in names.split(",") if name} or SETS


def loaded_service(index: Path) -> QAService:
    """A service on ``index`` with the settings of the environment and a conversation
    store of its own."""
    settings = Settings.from_env(
        index_dir=index, conversations_db=Path(tempfile.mkdtemp()) / "c.sqlite3"
    )
    service = QAService(settings)
    service.load()
    return service


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sets", default="", help="names, comma-separated (default: all)")
    args = parser.parse_args()
    service = loaded_service(args.index)
    result: dict[str, Any] = {"index": str(args.index), "passages": service.loaded_passages}
    for name, path in chosen_sets(args.sets).items():
        if not path.exists():
            continue
        questions = load_questions(path)
        result[name] = {
            mode: by_kind(evaluate(service, questions, mode=mode, k=5), questions, 5)
            for mode in ("dense", "lexical", "hybrid")
        }
        result[name]["quoted sentence is the evidence (hybrid)"] = quotes(service, questions)
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
