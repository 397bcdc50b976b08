"""Passages embedded with their document's kind and title: a copy of a build whose
vectors are made from "Kind: title", the section's heading (when the passage does not
begin with it) and the passage's text, measured on the question sets against the build
it was copied from, and as a leg of its own beside the build's dense leg.

Usage:
  .venv/bin/python benchmarks/embedded_titles.py build --index indexes/shared --out DIR
  .venv/bin/python benchmarks/question_sets.py --index DIR --json       # and on the original
  .venv/bin/python benchmarks/embedded_titles.py leg --index indexes/shared --titled DIR \\
      [--weights 0,0.5,1] [--sets development,held-out 4]

``build`` copies the published build (a one-segment build: its files as they are) to
``DIR/<build>`` with ``DIR/current`` pointing at it, and writes a new ``vectors.faiss``
there: every passage, in row order, embedded by the service's passage encoder with the
text above. Only the vectors differ; the lexical index, the documents and the passages
are the original's, so the two builds' figures differ by the dense leg alone.

``leg`` loads both builds and asks every question through the original build's
hybrid with one more leg, the titled build's dense ranking of the same text at each
weight (0: the original build as it is); hit@5 / evidence@5 / MRR@10 and the follow-ups'.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from question_sets import SETS

import qa_service.query.candidates as candidates
from qa_service.config import Settings
from qa_service.embedding import make_embedder
from qa_service.evaluate import evaluate, load_questions
from qa_service.query.analysis import QueryText
from qa_service.query.fusion import NamedRanking
from qa_service.service import QAService


def titled_text(text: str, heading: str | None, doctype: str | None, title: str | None) -> str:
    """ "Kind: title" (either alone when the other is missing), the heading unless the
    text starts with it, then the text."""
    line = ": ".join(part for part in (doctype, title) if part)
    lines = [line] if line else []
    if heading and not text.startswith(heading):
        lines.append(heading)
    return "\n".join([*lines, text])


def build(index: Path, out: Path) -> dict[str, Any]:
    source = index.resolve()
    target = out / source.name
    if not target.exists():
        shutil.copytree(source, target)
    (out / "current").unlink(missing_ok=True)
    (out / "current").symlink_to(source.name)
    with sqlite3.connect(target / "passages.sqlite3") as db:
        rows = db.execute(
            "SELECT p.text, p.heading, d.doctype, d.title FROM passages p"
            " JOIN documents d ON d.id = p.doc_id ORDER BY p.row"
        ).fetchall()
    texts = [titled_text(*row) for row in rows]
    embedder = make_embedder(Settings.from_env())
    started = time.perf_counter()
    vectors = embedder.encode_passages(texts, batch_size=32, progress=True)
    seconds = time.perf_counter() - started
    flat = faiss.IndexFlatIP(int(vectors.shape[1]))
    flat.add(np.asarray(vectors, dtype=np.float32))
    faiss.write_index(flat, str(target / "vectors.faiss"))
    return {"passages": len(texts), "embed_seconds": round(seconds, 1), "build": str(target)}


def load(index: Path) -> QAService:
    settings = Settings.from_env(
        index_dir=index, conversations_db=Path(tempfile.mkdtemp()) / "c.sqlite3"
    )
    service = QAService(settings)
    service.load()
    return service


def leg(index: Path, titled: Path, weights: list[float], sets: list[str]) -> list[dict[str, Any]]:
    service, other = load(index), load(titled)
    titled_dense = other.loaded.retrievers.dense
    search_text = candidates.search_text
    weight = {"now": 0.0}

    def with_titled_leg(text: QueryText, *args: Any, **kwargs: Any) -> NamedRanking:
        node = search_text(text, *args, **kwargs)
        if kwargs["mode"] != "hybrid" or weight["now"] <= 0:
            return node
        depth = max(kwargs["depth"], kwargs["settings"].candidate_depth)
        ranking = titled_dense.search(text.text, depth, allowed=kwargs["allowed"])
        parts = (*node.parts, NamedRanking("titled", weight["now"], ranking))
        return NamedRanking(
            node.name, node.weight, parts=parts, limit=node.limit, method=node.method
        )

    candidates.search_text = with_titled_leg
    results = []
    for value in weights:
        weight["now"] = value
        for name in sets:
            summary = evaluate(service, load_questions(SETS[name]), mode="hybrid", k=5)["summary"]
            follow = summary.get("follow_ups", {})
            results.append(
                {
                    "weight": value,
                    "set": name,
                    "hybrid": [summary["hit@5"], summary["evidence@5"], summary["mrr@10"]],
                    "follow_ups": [follow.get("hit@5"), follow.get("mrr@10")],
                }
            )
            print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=("build", "leg"))
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--out", type=Path, help="build: where the titled copy goes")
    parser.add_argument("--titled", type=Path, help="leg: the titled copy's directory")
    parser.add_argument("--weights", default="0,0.5,1")
    parser.add_argument("--sets", default="", help="names, comma-separated (default: all)")
    args = parser.parse_args()
    if args.command == "build":
        if args.out is None:
            parser.error("build needs --out")
        args.out.mkdir(parents=True, exist_ok=True)
        print(json.dumps(build(args.index, args.out), indent=1))
        return
    if args.titled is None:
        parser.error("leg needs --titled")
    sets = [name for name in args.sets.split(",") if name] or [
        name for name, path in SETS.items() if path.exists()
    ]
    titled = args.titled / "current" if (args.titled / "current").exists() else args.titled
    leg(args.index, titled, [float(w) for w in args.weights.split(",")], sets)


if __name__ == "__main__":
    main()
