"""The approximate dense index: a FAISS graph or inverted-file index over the passage
vectors, written beside the exact one once an index is large enough to need it.

The exact index (``vectors.faiss``, flat, memory-mapped) stays the store of the vectors:
the approximate one only proposes candidates, which the retriever scores again in full
precision with the document term (retrieval.DenseRetriever). Which kind, and with which
parameters, was chosen by measured recall@10 against exact search and latency on a
2-core machine (benchmarks/scale_benchmark.py, BENCHMARKS.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from .config import Settings

logger = logging.getLogger(__name__)

#: Vectors a trained index (IVF's centroids, SQ8's ranges) learns from at most.
TRAINING_SAMPLE = 100_000


@dataclass(frozen=True)
class ApproximateSettings:
    """How an approximate index is built and searched."""

    #: A build with at least this many passages gets an approximate index and the
    #: service searches it (fewer: exact search only).
    min_passages: int
    #: A FAISS index_factory description ("HNSW32,SQ8", "IVF4096,SQ8", ...).
    factory: str
    #: efSearch of a graph index, nprobe of an inverted-file one.
    search_breadth: int
    #: Candidates taken from the approximate index and scored again exactly.
    candidates: int
    #: efConstruction of a graph index (unused by the others).
    construction_breadth: int = 80


def approximate_settings(settings: Settings) -> ApproximateSettings:
    """The approximate index the settings ask for."""
    return ApproximateSettings(
        min_passages=settings.approximate_min_passages,
        factory=settings.approximate_index,
        search_breadth=settings.approximate_search_breadth,
        candidates=settings.approximate_candidates,
    )


def build_approximate(
    vectors: np.ndarray, settings: ApproximateSettings, *, seed: int = 0
) -> faiss.Index:
    """An approximate inner-product index over ``vectors`` (rows are FAISS ids)."""
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.index_factory(matrix.shape[1], settings.factory, faiss.METRIC_INNER_PRODUCT)
    graph = _graph(index)
    if graph is not None:
        graph.efConstruction = settings.construction_breadth
    if not index.is_trained:
        rng = np.random.default_rng(seed)
        sample = matrix
        if len(matrix) > TRAINING_SAMPLE:
            sample = matrix[np.sort(rng.choice(len(matrix), TRAINING_SAMPLE, replace=False))]
        index.train(sample)
    index.add(matrix)
    logger.info("built approximate index %s over %s vectors", settings.factory, len(matrix))
    return index


def search_parameters(
    index: faiss.Index, breadth: int, selector: Any | None = None
) -> faiss.SearchParameters:
    """The index's search parameters: ``breadth`` as efSearch or nprobe, and a selector
    of the allowed rows (applied inside the search, before its top-k is cut)."""
    if _graph(index) is not None:
        return faiss.SearchParametersHNSW(efSearch=breadth, sel=selector)  # type: ignore[attr-defined]
    ivf = _inverted_file(index)
    if ivf is not None:
        return faiss.SearchParametersIVF(nprobe=breadth, sel=selector)  # type: ignore[call-arg]
    return faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]


def allowed_selector(allowed: np.ndarray) -> tuple[Any, np.ndarray]:
    """A FAISS selector of the rows a 0/1 mask allows, and the bitmap it reads (which
    must outlive the search)."""
    bits = np.packbits(np.asarray(allowed, dtype=bool), bitorder="little")
    return faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits)), bits


def _graph(index: faiss.Index) -> Any | None:
    hnsw = getattr(faiss.downcast_index(index), "hnsw", None)
    return hnsw


def _inverted_file(index: faiss.Index) -> Any | None:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None
