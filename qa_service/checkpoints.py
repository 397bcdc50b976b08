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
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    return embed_groups_in_blocks(
        [texts],
        one_block_at_a_time(encode),
        block=block,
        checkpoints=checkpoints,
        progress=progress,
        desc=desc,
    )[0]


#: Given the blocks still to embed, yields ``(position in that list, vectors)`` for each
#: block as it is done, in any order (one process in turn, or a pool of workers).
BlockEncoder = Callable[[list[list[str]]], Iterable[tuple[int, np.ndarray]]]


def one_block_at_a_time(encode: Callable[[list[str]], np.ndarray]) -> BlockEncoder:
    """A :data:`BlockEncoder` that encodes the blocks one after another, here."""

    def encode_blocks(blocks: list[list[str]]) -> Iterator[tuple[int, np.ndarray]]:
        for position, texts in enumerate(blocks):
            yield position, encode(texts)

    return encode_blocks


def embed_groups_in_blocks(
    groups: Sequence[Sequence[str]],
    encode_blocks: BlockEncoder,
    *,
    block: int,
    checkpoints: VectorCheckpoints | None = None,
    progress: bool = False,
    desc: str = "embedding",
) -> list[EmbedResult]:
    """Embed each group of texts as :func:`embed_in_blocks` does, with one call of
    ``encode_blocks`` for the blocks of every group that no checkpoint holds.

    Each group is ordered and cut into blocks on its own, so its blocks (and their
    checkpoints) are those a group embedded alone has; a block's vectors are checkpointed
    as soon as ``encode_blocks`` hands them back.
    """
    plans = [
        [(group, rows) for rows in _blocks(embedding_order(texts), block)]
        for group, texts in enumerate(groups)
    ]
    vectors: list[np.ndarray | None] = [None] * len(groups)
    embedded = [0] * len(groups)
    resumed = [0] * len(groups)

    def place(group: int, rows: list[int], found: np.ndarray) -> None:
        if vectors[group] is None:
            vectors[group] = np.zeros((len(groups[group]), found.shape[1]), dtype=np.float32)
        target = vectors[group]
        assert target is not None
        target[rows] = found

    total = sum(len(texts) for texts in groups)
    with tqdm(total=total, desc=desc, unit="passage", disable=not progress) as bar:
        missing: list[tuple[int, list[int]]] = []
        for group, rows in (planned for plan in plans for planned in plan):
            chunk = [groups[group][i] for i in rows]
            found = checkpoints.load(chunk) if checkpoints is not None else None
            if found is None:
                missing.append((group, rows))
                continue
            place(group, rows, found)
            resumed[group] += len(rows)
            bar.update(len(rows))
        chunks = [[groups[group][i] for i in rows] for group, rows in missing]
        done: set[int] = set()
        for position, block_vectors in encode_blocks(chunks) if chunks else ():
            group, rows = missing[position]
            found = np.asarray(block_vectors, dtype=np.float32)
            if position in done:
                raise ValueError(f"the encoder returned block {position} twice")
            if found.ndim != 2 or found.shape[0] != len(rows):
                raise ValueError(f"the encoder returned {found.shape} for a block of {len(rows)}")
            if checkpoints is not None:
                checkpoints.save(chunks[position], found)
            place(group, rows, found)
            embedded[group] += len(rows)
            done.add(position)
            bar.update(len(rows))
        if len(done) != len(missing):
            raise RuntimeError(f"the encoder returned {len(done)} of {len(missing)} blocks")
    empty = np.zeros((0, 0), dtype=np.float32)  # a group with no texts
    return [
        EmbedResult(found if found is not None else empty, embedded[group], resumed[group])
        for group, found in enumerate(vectors)
    ]


def _blocks(order: list[int], block: int) -> Iterator[list[int]]:
    for start in range(0, len(order), block):
        yield order[start : start + block]
