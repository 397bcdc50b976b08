"""Stage 4: the fused ranking re-ranked into hits: the first passages re-ordered by
their best sentence (with a build's sentence vectors), passages whose documents meet the
question's hints lifted, the first documents' places refilled by their best passages,
near-duplicates folded and each document capped (diversify)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..config import Settings
from ..hints import DocumentFacts, Hints, hint_match
from ..nearduplicates import near_duplicates, shingles
from ..retrieval import Ranking, rrf
from ..schema import Hit, Passage
from ..store import IndexReader
from .analysis import Mode, QueryAnalysis, QueryText
from .candidates import Retrievers
from .fusion import FusionWeights

logger = logging.getLogger(__name__)


@dataclass
class Candidate:
    row: int
    score: float
    doc_id: str
    text: str
    also_in: list[int]


def diversify(
    candidates: Sequence[Candidate],
    k: int,
    *,
    per_document: int = 2,
    duplicate_threshold: float = 0.6,
    fingerprint: Callable[[Candidate], set[int]] | None = None,
) -> list[Candidate]:
    """Keep the best ``k``: near-duplicates fold into the first (``also_in``) and no
    document contributes more than ``per_document`` passages (0: no cap).

    ``fingerprint`` gives a candidate's shingles (stored ones, in the service); without
    it they are cut from the candidate's text.
    """
    fingerprint = fingerprint or (lambda candidate: shingles(candidate.text))
    kept: list[Candidate] = []
    kept_shingles: list[set[int]] = []
    per_doc: dict[str, int] = {}
    for candidate in candidates:
        grams = fingerprint(candidate)
        duplicate_of = next(
            (
                i
                for i, other in enumerate(kept_shingles)
                if near_duplicates(grams, other, duplicate_threshold)
            ),
            None,
        )
        if duplicate_of is not None:
            kept[duplicate_of].also_in.append(candidate.row)
            continue
        if per_document and per_doc.get(candidate.doc_id, 0) >= per_document:
            continue
        if len(kept) == k:
            continue
        per_doc[candidate.doc_id] = per_doc.get(candidate.doc_id, 0) + 1
        kept.append(candidate)
        kept_shingles.append(grams)
    return kept


def lift_hinted(
    candidates: Sequence[Candidate],
    hints: Hints,
    facts: Mapping[str, DocumentFacts],
    weight: float,
) -> list[Candidate]:
    """Re-rank fused candidates: a passage whose document meets the question's hints
    (party, kind, year, person) has its score multiplied by ``1 + weight * share met``.

    A multiplier moves a document far: at 0.5, one that meets every hint rises above every
    one that meets none and scores less than 1.5 times its score, which is most of the top
    of a fused ranking. Off by default; the hinted documents' own ranking
    (``FusionWeights.hinted``) brings them in.
    """
    if not hints or weight <= 0:
        return list(candidates)
    lifted = []
    for candidate in candidates:
        document = facts.get(candidate.doc_id)
        share = hint_match(hints, document) if document is not None else 0.0
        lifted.append(dataclasses.replace(candidate, score=candidate.score * (1 + weight * share)))
    return sorted(lifted, key=lambda c: -c.score)


def within_document_order(
    rows: Sequence[int],
    dense_scores: Sequence[float],
    lexical_scores: Mapping[int, float],
    *,
    rrf_k: int = 60,
) -> list[int]:
    """One document's passages ordered by RRF of their dense and BM25 ranks among
    the document's own passages (a passage with no question term gets no lexical rank).

    Every passage of the document is scored, not only those that reached the fused
    candidates, so the passage that holds the answer is not lost because one leg ranked
    it below its corpus-wide cut.
    """
    dense = sorted(zip(rows, dense_scores, strict=True), key=lambda p: (-p[1], p[0]))
    lexical = sorted(
        ((row, lexical_scores[row]) for row in rows if lexical_scores.get(row, 0.0) > 0),
        key=lambda p: (-p[1], p[0]),
    )
    return [row for row, _ in rrf([dense, lexical], k=rrf_k)]


def reassign_document_slots(
    candidates: Sequence[Candidate],
    orders: Mapping[str, Sequence[int]],
    texts: Mapping[int, str],
) -> list[Candidate]:
    """The fused list with the places each document in ``orders`` holds refilled by
    that document's passages in its own order: the documents keep their places and
    scores, only which of their passages fill them changes (pure)."""
    queues = {doc: list(rows) for doc, rows in orders.items()}
    out: list[Candidate] = []
    for candidate in candidates:
        queue = queues.get(candidate.doc_id)
        if queue is None:
            out.append(candidate)
            continue
        row = next((r for r in queue if r in texts), None)
        if row is None:
            continue
        queue.remove(row)
        out.append(Candidate(row, candidate.score, candidate.doc_id, texts[row], []))
    return out


def rescore_documents(
    query: QueryText,
    candidates: list[Candidate],
    passages: dict[int, Passage],
    *,
    reader: IndexReader,
    retrievers: Retrievers,
    documents_to_rescore: int,
    per_document_cap: int,
    allowed: np.ndarray | None,
    rrf_k: int,
) -> list[Candidate]:
    """Refill the first documents' places with their best passages, every passage of
    each scored against the question (``passage_rescoring_documents``); ``passages`` gains
    those read."""
    documents: list[str] = []
    for candidate in candidates:
        if candidate.doc_id not in documents:
            documents.append(candidate.doc_id)
            if len(documents) == documents_to_rescore:
                break
    groups = {doc: reader.rows_of_documents([doc]) for doc in documents}
    if allowed is not None:
        groups = {doc: rows[allowed[rows]] for doc, rows in groups.items()}
    every = np.concatenate(list(groups.values())) if groups else np.zeros(0, np.int64)
    if len(every) == 0:
        return candidates
    similar = retrievers.dense.similarities(query.text, every.tolist()).tolist()
    dense = dict(zip(every.tolist(), similar, strict=True))
    within = np.zeros(reader.passage_count, dtype=bool)
    within[every] = True
    lexical = dict(retrievers.bm25.search_text(query.lexical, len(every), allowed=within))
    orders = {
        doc: within_document_order(
            rows.tolist(), [dense[r] for r in rows.tolist()], lexical, rrf_k=rrf_k
        )
        for doc, rows in groups.items()
    }
    # Only as many of a document's passages as it can show are read.
    cap = per_document_cap or len(every)
    wanted = [r for order in orders.values() for r in order[: cap + 2] if r not in passages]
    passages.update(reader.passages_by_rows(wanted))
    texts = {row: p.text for row, p in passages.items()}
    return reassign_document_slots(candidates, orders, texts)


def rerank(
    analysis: QueryAnalysis,
    ranking: Ranking,
    k: int,
    *,
    mode: Mode,
    reader: IndexReader,
    retrievers: Retrievers,
    facts: Mapping[str, DocumentFacts],
    allowed: np.ndarray | None,
    settings: Settings,
    weights: FusionWeights,
) -> list[Hit]:
    """The best ``k`` hits of the fused ranking, ranked from 1."""
    sentence_vectors = retrievers.sentences
    if mode != "lexical" and sentence_vectors is not None:
        ranking = sentence_vectors.rescore(
            analysis.query.text,
            ranking,
            passages=settings.sentence_rescoring_passages,
            weight=settings.sentence_rescoring_weight,
            method=settings.sentence_rescoring_method,
            rrf_k=weights.rrf_k,
        )
    passages = reader.passages_by_rows([row for row, _ in ranking])
    candidates = [
        Candidate(row, score, passages[row].doc_id, passages[row].text, [])
        for row, score in ranking
        if row in passages
    ]
    if mode == "hybrid":
        candidates = lift_hinted(candidates, analysis.hints, facts, weights.hint_lift)
        if settings.passage_rescoring_documents > 0:
            candidates = rescore_documents(
                analysis.query,
                candidates,
                passages,
                reader=reader,
                retrievers=retrievers,
                documents_to_rescore=settings.passage_rescoring_documents,
                per_document_cap=settings.per_document_cap,
                allowed=allowed,
                rrf_k=weights.rrf_k,
            )

    def fingerprint(candidate: Candidate) -> set[int]:
        stored = reader.passage_shingles(candidate.row)
        return stored if stored is not None else shingles(candidate.text)

    chosen = diversify(
        candidates, k, per_document=settings.per_document_cap, fingerprint=fingerprint
    )
    hits: list[Hit] = []
    extra = reader.passages_by_rows([r for c in chosen for r in c.also_in])
    for rank, candidate in enumerate(chosen, start=1):
        passage = passages[candidate.row]
        document = reader.document(passage.doc_id)
        if document is None:  # pragma: no cover - the database is consistent
            continue
        also = [extra[r].id for r in candidate.also_in if r in extra]
        hits.append(Hit(passage, document, candidate.score, rank, also, candidate.row))
    return hits
