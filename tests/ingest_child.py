"""`qa ingest` in a child process that can stop at a phase of its work until killed.

Run as ``python -m tests.ingest_child ingest DIR --index PATH`` (the arguments of ``qa``).
``QA_TEST_PAUSE_AT`` names the phase to stop in, ``QA_TEST_MARK`` a file written once the
child has stopped there:

- ``read``: between reading two files;
- ``embed``: before the first passages are embedded;
- ``write``: one document written into the new build;
- ``vectors``: vectors, database and lexical index written, the manifest not yet;
- ``publish``: the build complete, the index link not yet swapped to it;
- ``link``: a segment publish's new segment written, the previous segments not yet linked;
- ``segment``: the first segment of a build written out (``QA_BUILD_SEGMENT_PASSAGES``).

The embedding model is the fast stand-in of ``tests/fake_embedder.py``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from qa_service import ingest, store
from qa_service.cli import main
from tests.fake_embedder import FakeEmbedder


def _stop(phase: str) -> None:
    Path(os.environ["QA_TEST_MARK"]).write_text(phase, encoding="utf-8")
    while True:
        time.sleep(1)


def _stop_at(
    owner: Any, name: str, phase: str, *, after_calls: int = 0, before: bool = True
) -> None:
    original = getattr(owner, name)
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if before and calls > after_calls:
            _stop(phase)
        result = original(*args, **kwargs)
        if not before and calls > after_calls:
            _stop(phase)
        return result

    setattr(owner, name, wrapper)


PHASES = {
    "read": lambda: _stop_at(ingest, "process_file", "read", after_calls=1),
    "embed": lambda: _stop_at(FakeEmbedder, "encode_passages", "embed"),
    "write": lambda: _stop_at(store.IndexWriter, "add_document", "write", before=False),
    "vectors": lambda: _stop_at(store, "_write_json_atomically", "vectors"),
    "publish": lambda: _stop_at(store, "_swap_symlink", "publish"),
    "link": lambda: _stop_at(store, "_link_tree", "link"),
    "segment": lambda: _stop_at(store.IndexWriter, "_flush", "segment", before=False),
}


if __name__ == "__main__":
    ingest.make_embedder = lambda settings: FakeEmbedder()  # type: ignore[assignment,return-value]
    phase = os.environ.get("QA_TEST_PAUSE_AT")
    if phase:
        PHASES[phase]()
    sys.exit(main(sys.argv[1:], prog_name="qa"))
