"""Give an index built before document vectors existed its ``documents.npy``.

Usage: .venv/bin/python benchmarks/add_document_vectors.py --index indexes/bench-e5

`qa ingest` writes document vectors itself and adds them to an older build on its next
run, but only when the build's other settings still match (a new splitter re-embeds
everything). This helper embeds just the documents' metadata lines with the index's model
and writes them into the existing build, so query-time measurements can run on a large
index without rebuilding it. Not for a build a service is reading.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from qa_service.config import Settings
from qa_service.embedding import make_embedder
from qa_service.ingest import document_context
from qa_service.store import DOCUMENT_VECTORS, PASSAGE_DOCUMENTS, IndexReader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True)
    args = parser.parse_args()
    reader = IndexReader(args.index)
    settings = Settings.from_env(index_dir=args.index, model=reader.manifest["model"])
    embedder = make_embedder(settings)
    documents = list(reader.documents())
    position = {doc.id: i for i, doc in enumerate(documents)}
    owners = np.zeros(reader.passage_count, dtype=np.int32)
    for row, doc_id in reader.db.execute("SELECT row, doc_id FROM passages"):
        owners[row] = position[doc_id]
    started = time.perf_counter()
    vectors = embedder.encode_passages([document_context(d.meta) for d in documents])
    np.save(reader.build_path / DOCUMENT_VECTORS, vectors.astype(np.float32))
    np.save(reader.build_path / PASSAGE_DOCUMENTS, owners)
    print(
        f"{len(documents)} document vectors for {reader.passage_count} passages in "
        f"{time.perf_counter() - started:.1f} s -> {reader.build_path}"
    )


if __name__ == "__main__":
    main()
