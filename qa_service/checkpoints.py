"""Embedded vectors checkpointed in blocks, so an interrupted ingest resumes where it was.

The passages to embed are put in a fixed order (longest first, so each block holds texts
of about one length and pads little) and cut into blocks. Each block's vectors are
written, as soon as they are computed, to a file named by a digest of the model's
settings and the block's texts, beside the builds of the index
(``indexes/.<name>.checkpoints/``, apart from the builds so that removing abandoned
builds never removes them). A later run of the same ingest meets the same blocks and reads them back
instead of embedding them; since a block is the same texts in the same batch, the vectors
are the same numbers a clean run computes. The published index is not touched by any of
this; the checkpoints are removed once a build is published.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

logger = logging.getLogger(__name__)


def checkpoints_dir(index_path: Path) -> Path:
    """Where the checkpoints of the builds of ``index_path`` are kept."""
    return index_path.parent / f".{index_path.name}.checkpoints"


def embedding_order(texts: Sequence[str]) -> list[int]:
    """Indices of ``texts``, longest first (ties in their given order)."""
    return sorted(range(len(texts)), key=lambda i: -len(texts[i]))


class VectorCheckpoints:
    """Blocks of vectors under ``directory``, keyed by the settings and the block's texts."""

    def __init__(self, directory: Path, settings: dict[str, Any]) -> None:
        self.directory = directory
        self._salt = json.dumps(settings, sort_keys=True).encode()

    def _path(self, texts: Sequence[str]) -> Path:
        digest = hashlib.sha256(self._salt)
        for text in texts:
            digest.update(b"\0")
            digest.update(text.encode("utf-8", "surrogatepass"))
        return self.directory / f"{digest.hexdigest()}.npy"

    def load(self, texts: Sequence[str]) -> np.ndarray | None:
        """The block's vectors from an earlier run, or None."""
        path = self._path(texts)
        try:
            vectors = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            if path.exists():
                logger.warning("ignoring an unreadable checkpoint %s: %s", path.name, exc)
            return None
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            return None
        return np.asarray(vectors, dtype=np.float32)

    def save(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Write the block's vectors aside and rename them into place."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(texts)
        handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                np.save(out, np.asarray(vectors, dtype=np.float32), allow_pickle=False)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class EmbedResult:
    vectors: np.ndarray
    embedded: int
    resumed: int


def embed_in_blocks(
    texts: Sequence[str],
    encode: Callable[[list[str]], np.ndarray],
    *,
    block: int,
    checkpoints: VectorCheckpoints | None = None,
    progress: bool = False,
    desc: str = "embedding",
) -> EmbedResult:
    """Embed ``texts`` (vectors in their order) in blocks, reading finished ones back."""
    if not texts:
        return EmbedResult(np.zeros((0, 0), dtype=np.float32), 0, 0)
    order = embedding_order(texts)
    vectors: np.ndarray | None = None
    embedded = resumed = 0
    with tqdm(total=len(texts), desc=desc, unit="passage", disable=not progress) as bar:
        for start in range(0, len(order), block):
            rows = order[start : start + block]
            chunk = [texts[i] for i in rows]
            found = checkpoints.load(chunk) if checkpoints is not None else None
            if found is None:
                found = np.asarray(encode(chunk), dtype=np.float32)
                if checkpoints is not None:
                    checkpoints.save(chunk, found)
                embedded += len(chunk)
            else:
                resumed += len(chunk)
            if vectors is None:
                vectors = np.zeros((len(texts), found.shape[1]), dtype=np.float32)
            vectors[rows] = found
            bar.update(len(chunk))
    assert vectors is not None
    return EmbedResult(vectors, embedded, resumed)
