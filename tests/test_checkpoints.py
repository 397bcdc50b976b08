"""Vectors checkpointed in blocks: an interrupted ingest embeds only what it had not done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qa_service.checkpoints import (
    VectorCheckpoints,
    checkpoints_dir,
    embed_in_blocks,
    embedding_order,
)
from qa_service.store import IndexReader, read_manifest


@pytest.mark.parametrize(
    ("texts", "order"),
    [
        ([], []),
        (["a", "ccc", "bb"], [1, 2, 0]),
        (["xx", "yy", "z"], [0, 1, 2]),  # ties keep their order
    ],
)
def test_longest_texts_are_embedded_first(texts: list[str], order: list[int]) -> None:
    assert embedding_order(texts) == order


class CountingEncoder:
    """Vectors from the texts themselves, counting what it was asked to encode."""

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.encoded.extend(texts)
        return np.array([[len(t), sum(map(ord, t)) % 97, 1.0] for t in texts], dtype=np.float32)


TEXTS = [f"stycke {i} " + "ord " * (i % 7) for i in range(23)]


def test_a_second_run_reads_every_block_back(tmp_path: Path) -> None:
    checkpoints = VectorCheckpoints(tmp_path / "cp", {"model": "m"})
    first = CountingEncoder()
    done = embed_in_blocks(TEXTS, first, block=5, checkpoints=checkpoints)
    assert (done.embedded, done.resumed) == (23, 0) and sorted(first.encoded) == sorted(TEXTS)
    assert np.array_equal(done.vectors, CountingEncoder()(TEXTS))  # in the texts' order
    assert len(list((tmp_path / "cp").glob("*.npy"))) == 5
    again = CountingEncoder()
    resumed = embed_in_blocks(TEXTS, again, block=5, checkpoints=checkpoints)
    assert (resumed.embedded, resumed.resumed, again.encoded) == (0, 23, [])
    assert np.array_equal(resumed.vectors, done.vectors)


def test_missing_or_damaged_blocks_are_embedded_again(tmp_path: Path) -> None:
    checkpoints = VectorCheckpoints(tmp_path / "cp", {"model": "m"})
    done = embed_in_blocks(TEXTS, CountingEncoder(), block=5, checkpoints=checkpoints)
    files = sorted((tmp_path / "cp").glob("*.npy"))
    files[0].unlink()
    files[1].write_bytes(b"\x93NUMPY truncated")
    encoder = CountingEncoder()
    again = embed_in_blocks(TEXTS, encoder, block=5, checkpoints=checkpoints)
    assert again.embedded == len(encoder.encoded) and 2 <= again.embedded <= 10
    assert again.resumed == 23 - again.embedded
    assert np.array_equal(again.vectors, done.vectors)


def test_other_settings_do_not_reuse_blocks(tmp_path: Path) -> None:
    embed_in_blocks(
        TEXTS, CountingEncoder(), block=5, checkpoints=VectorCheckpoints(tmp_path, {"model": "a"})
    )
    other = CountingEncoder()
    done = embed_in_blocks(
        TEXTS, other, block=5, checkpoints=VectorCheckpoints(tmp_path, {"model": "b"})
    )
    assert done.resumed == 0 and len(other.encoded) == 23


def write_corpus(root: Path, start: int, count: int) -> None:
    """Files of distinct Swedish sentences, two or three passages each."""
    root.mkdir(parents=True, exist_ok=True)
    topics = ["segregation", "etablering", "Arbetsförmedlingen", "yrkesvux", "bidragstak"]
    for n in range(start, start + count):
        paragraphs = [
            f"Dokument {n}, stycke {p}: "
            + " ".join(
                f"Mening {s} om {topics[(n + p + s) % 5]} i kommun {n * 7 + s} år {2000 + s}."
                for s in range(14)
            )
            for p in range(6)
        ]
        (root / f"dokument-{n:03d}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")


def ingest(corpus: Path, index: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qa_service.cli",
            "ingest",
            str(corpus),
            "--index",
            str(index),
            "--json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finished(job: subprocess.Popen[bytes]) -> dict[str, object]:
    out, err = job.communicate(timeout=600)
    assert job.returncode == 0, err.decode()[-2000:]
    report: dict[str, object] = json.loads(out)
    return report


def contents(index: Path) -> tuple[list[tuple[str, str]], np.ndarray]:
    reader = IndexReader(index)
    rows = reader.passages_by_rows(list(range(reader.passage_count)))
    passages = [(rows[r].id, rows[r].text) for r in range(reader.passage_count)]
    vectors = reader.all_vectors()
    reader.close()
    return passages, vectors


@pytest.mark.model
def test_kill_during_embedding_then_ingest_again_embeds_only_the_rest(tmp_path: Path) -> None:
    env = {**os.environ, "QA_CHECKPOINT_PASSAGES": "8"}
    runs = {}
    for name in ("clean", "killed"):
        corpus, index = tmp_path / name / "corpus", tmp_path / name / "index"
        write_corpus(corpus, 0, 3)
        finished(ingest(corpus, index, env))
        write_corpus(corpus, 3, 16)
        runs[name] = (corpus, index)

    corpus, index = runs["killed"]
    before = read_manifest(index)
    blocks = checkpoints_dir(index)
    job = ingest(corpus, index, env)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(blocks.glob("*.npy"))) < 3:
        assert job.poll() is None, "the ingest ended before it could be killed"
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert read_manifest(index) == before  # the published index is untouched
    saved = len(list(blocks.glob("*.npy")))
    assert saved >= 3

    report = finished(ingest(corpus, index, env))
    clean = finished(ingest(*runs["clean"], env))
    assert report["vectors_resumed"] == 8 * saved
    assert report["passages_embedded"] == clean["passages_embedded"] - 8 * saved
    assert report["passages"] == clean["passages"]
    assert not blocks.exists()  # removed once the build was published
    ours, theirs = contents(index), contents(runs["clean"][1])
    assert ours[0] == theirs[0]
    assert np.array_equal(ours[1], theirs[1])
