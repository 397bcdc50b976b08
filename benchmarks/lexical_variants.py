"""Lexical (BM25) variants measured on the question set, over an existing index's passages.

Usage: .venv/bin/python benchmarks/lexical_variants.py --index indexes/bench-shared

Each variant rebuilds a bm25s index in memory from the index's passages and scores the
self-contained questions of eval/questions.jsonl (hit@5, evidence@5, MRR@10), with the
service's per-document cap of 2. Variants: the passage text with title and heading (the
first version), with the document metadata line, with compound parts on the passage side,
on the question side, or on both.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import bm25s

from qa_service.evaluate import load_questions, score
from qa_service.lexical import Decompounder, tokenize, tokenize_with_parts
from qa_service.metadata import metadata_line
from qa_service.schema import DocumentMeta
from qa_service.store import IndexReader

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    args = parser.parse_args()
    reader = IndexReader(args.index)
    rows = reader.db.execute(
        "SELECT p.text, p.heading, d.title, d.source, d.meta_json FROM passages p "
        "JOIN documents d ON d.id = p.doc_id ORDER BY p.row"
    ).fetchall()
    questions = [q for q in load_questions(ROOT / "eval" / "questions.jsonl") if not q.follows]
    plain = [f"{title}\n{heading or ''}\n{text}" for text, heading, title, _, _ in rows]
    enriched = [
        f"{metadata_line(DocumentMeta.from_dict(json.loads(meta)))}\n{heading or ''}\n{text}"
        for text, heading, _, _, meta in rows
    ]
    parts = Decompounder.from_texts(enriched)

    def with_parts(text: str) -> list[str]:
        return tokenize_with_parts(text, parts)

    def run(
        name: str,
        texts: list[str],
        doc_tok: Callable[[str], list[str]],
        query_tok: Callable[[str], list[str]],
    ) -> dict[str, object]:
        bm25 = bm25s.BM25()
        bm25.index([doc_tok(t) or ["\u2205"] for t in texts], show_progress=False)
        results = []
        for question in questions:
            ids, _ = bm25.retrieve(
                [query_tok(question.question) or ["\u2205"]], k=60, show_progress=False
            )
            ranked: list[tuple[str, str]] = []
            per_doc: Counter[str] = Counter()
            for i in ids[0]:
                source = rows[i][3]
                if per_doc[source] < 2:
                    per_doc[source] += 1
                    ranked.append((source, rows[i][0]))
            results.append(score(question, ranked[:10], 5))
        n = len(results)
        with_evidence = [r for r in results if r.evidence is not None]
        line = {
            "variant": name,
            "hit@5": round(sum(r.hit for r in results) / n, 3),
            "evidence@5": round(
                sum(bool(r.evidence) for r in with_evidence) / len(with_evidence), 3
            ),
            "mrr@10": round(sum(r.reciprocal_rank for r in results) / n, 3),
        }
        print(json.dumps(line, ensure_ascii=False), flush=True)
        return line

    run("title + heading + text", plain, tokenize, tokenize)
    run("metadata line + heading + text", enriched, tokenize, tokenize)
    run("metadata, compound parts in passages and questions", enriched, with_parts, with_parts)
    run("metadata, compound parts in questions only", enriched, tokenize, with_parts)
    run("metadata, compound parts in passages only (chosen)", enriched, with_parts, tokenize)


if __name__ == "__main__":
    main()
