"""Which sentence the answer quotes: is it the question's evidence sentence?

Usage: .venv/bin/python benchmarks/quote_choice.py --index indexes/bench-e5v2

For the self-contained Swedish questions of eval/questions.jsonl with an evidence
sentence that one of the listed passages holds, it counts answers whose first quoted
sentence is the evidence (one holds the other), whose first sentence holds at least 70 %
of the evidence's words, and whose quoted sentences hold it anywhere. It also compares
two ways of picking one sentence among the candidates (the sentences of the first three
passages that hold a question term): the term score the answer uses, and the embedding
model's similarity of each sentence (embedded as a passage) to the question.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from qa_service.config import Settings
from qa_service.evaluate import load_questions
from qa_service.extractive import normalise, sentence_score, sentences, term_weights
from qa_service.lexical import tokenize
from qa_service.models import AskRequest
from qa_service.service import QAService

ROOT = Path(__file__).resolve().parent.parent


def is_evidence(evidence: str, text: str) -> bool:
    a, b = normalise(evidence), normalise(text)
    return bool(b) and (a in b or b in a)


def mostly_evidence(evidence: str, text: str) -> bool:
    words = set(normalise(evidence).split())
    return len(words & set(normalise(text).split())) >= 0.7 * len(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, default=ROOT / "eval" / "questions.jsonl")
    args = parser.parse_args()
    settings = Settings.from_env(
        index_dir=args.index, conversations_db=Path(tempfile.mkdtemp()) / "c.sqlite3"
    )
    service = QAService(settings)
    service.load()
    questions = [
        q
        for q in load_questions(args.questions)
        if q.evidence and not q.follows and not q.filters and not q.id.startswith("en-")
    ]
    counts = dict.fromkeys(
        ["questions", "answered", "first_is_evidence", "first_mostly_evidence", "any_quoted"], 0
    )
    pick = {"term_score": 0, "similarity": 0}
    for question in questions:
        assert question.evidence is not None
        hits = service.search(question.question, 5)
        if not any(is_evidence(question.evidence, h.passage.text) for h in hits):
            continue
        counts["questions"] += 1
        answer = service.ask(AskRequest(question=question.question, top_k=5), remember=False).answer
        quoted = [s.text for s in answer.sentences]
        if quoted:
            counts["answered"] += 1
            counts["first_is_evidence"] += is_evidence(question.evidence, quoted[0])
            counts["first_mostly_evidence"] += mostly_evidence(question.evidence, quoted[0])
            counts["any_quoted"] += any(
                is_evidence(question.evidence, t) or mostly_evidence(question.evidence, t)
                for t in quoted
            )
        texts = [h.passage.text for h in hits[:3]]
        terms = set(tokenize(question.question))
        weights = term_weights(terms, texts)
        candidates = [
            (sentence_score(terms, s.text, weights) + 0.05 * (3 - i) / 3, s.text)
            for i, text in enumerate(texts)
            for s in sentences(text)
            if sentence_score(terms, s.text, weights) > 0
        ]
        if not candidates:
            continue
        vectors = service.embedder.encode_passages([text for _, text in candidates])
        similarity = vectors @ service.query_vectors(question.question)
        by_terms = max(range(len(candidates)), key=lambda j: candidates[j][0])
        pick["term_score"] += is_evidence(question.evidence, candidates[by_terms][1])
        pick["similarity"] += is_evidence(
            question.evidence, candidates[int(np.argmax(similarity))][1]
        )
    print(json.dumps({"answers": counts, "one_sentence_picked_by": pick}, indent=1))


if __name__ == "__main__":
    main()
