"""`qa ingest --ray`: the same index as the single-process job, built on a real local Ray
cluster (CPU only) that the tests start once for the module."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from qa_service.checkpoints import checkpoints_dir
from qa_service.cli import main
from qa_service.config import Settings
from qa_service.embedding import Embedder
from qa_service.ingest import IngestReport, run_ingest
from qa_service.ray_ingest import (
    MISSING_EXTRA,
    ActorPlan,
    RayEngine,
    plan_actors,
    run_ray_ingest,
)
from qa_service.store import IndexReader

ROOT = Path(__file__).resolve().parent.parent
#: A handful of the default corpus's files (three readers, two sidecars), kept at their
#: paths under corpus/ so their manifest records apply.
FILES = [
    "svar-pa-fraga-2024-25-992.txt",
    "g0vse/manifest.jsonl",
    "g0vse/data/debattartiklar/2024/11/sverige-har-180-utanforskapsomraden.md",
    "g0vse/data/debattartiklar/2024/11/det-blir-omojligt-att-gora-ingenting-och-fa-bidrag.md",
    "riksdagen-interpellations/manifest.jsonl",
    "riksdagen-interpellations/data/202021/ipq-202021--0898.xml",
    "riksdagen-interpellations/data/202223/ipq-202223--0366.xml",
]
EDITED = "svar-pa-fraga-2024-25-992.txt"


@dataclass
class Builds:
    """The corpus, and its index built by each job once for the module."""

    corpus: Path
    base: Path
    single: IngestReport
    ray: IngestReport


@pytest.fixture(scope="module")
def builds(cluster: Any, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Builds:
    base = tmp_path_factory.mktemp("ray-ingest")
    corpus = write_corpus(base / "corpus")
    single = run_ingest([corpus], _settings(base / "single"), embedder=embedder, progress=False)
    ray = run_ray_ingest([corpus], _settings(base / "ray"), progress=False)
    return Builds(corpus, base, single, ray)


def test_passages_and_vectors_match_the_single_process_build(builds: Builds) -> None:
    single, ray = builds.single, builds.ray
    assert single.published and ray.published
    assert _counts(ray) == _counts(single)
    assert ray.files_indexed == 5 and ray.passages > 5
    # Bad files are counted and reported, not fatal, with the single-process reasons.
    assert {s["source"]: s["reason"] for s in ray.skipped} == {
        s["source"]: s["reason"] for s in single.skipped
    }
    assert {"broken.pdf", "empty.txt"} <= {s["source"] for s in ray.skipped}
    assert ray.encoder.startswith("sentence-transformers on Ray (")
    assert_same_index(builds.base / "single", builds.base / "ray")


class Stopped(Exception):
    """The job stopped halfway, as by a node lost or the driver interrupted."""


class StoppingEngine(RayEngine):
    """The Ray engine, stopping the job once the pool has handed back ``blocks`` blocks."""

    def __init__(self, settings: Settings, blocks: int) -> None:
        super().__init__(settings)
        self.blocks = blocks

    def encode_blocks(self, blocks: list[list[str]]) -> Iterator[tuple[int, np.ndarray]]:
        for done, item in enumerate(super().encode_blocks(blocks)):
            if done == self.blocks:
                raise Stopped
            yield item


def test_a_stopped_ray_job_resumes_from_its_checkpoints(builds: Builds) -> None:
    settings = dataclasses.replace(_settings(builds.base / "resumed"), checkpoint_passages=4)
    with pytest.raises(Stopped):
        run_ingest([builds.corpus], settings, progress=False, engine=StoppingEngine(settings, 2))
    assert not (builds.base / "resumed").exists()  # nothing published
    assert len(list(checkpoints_dir(settings.index_dir).glob("*.npy"))) == 2
    report = run_ray_ingest([builds.corpus], settings, progress=False)
    # The two blocks came back in any order: passages' or documents' vectors.
    assert 0 < report.vectors_resumed <= 8
    assert report.passages_embedded + report.vectors_resumed == builds.single.passages_embedded
    assert not checkpoints_dir(settings.index_dir).exists()
    assert_same_index(builds.base / "single", builds.base / "resumed")


def test_an_edit_through_the_cli_embeds_what_the_single_process_job_does(
    builds: Builds, embedder: Embedder
) -> None:
    edited = builds.corpus / EDITED
    edited.write_text(
        edited.read_text(encoding="utf-8")
        + "\n\nTillägg: Regeringen följer upp arbetet med etableringsjobb varje kvartal.\n",
        encoding="utf-8",
    )
    single = run_ingest(
        [builds.corpus], _settings(builds.base / "single"), embedder=embedder, progress=False
    )
    result = CliRunner().invoke(
        main,
        ["ingest", str(builds.corpus), "--index", str(builds.base / "ray"), "--ray", "--json"],
    )
    assert result.exit_code == 0, result.output
    ray = json.loads(result.stdout)
    assert ray["published"] and single.published
    assert single.files_indexed == 1 and single.files_reused == 4
    assert 0 < single.passages_embedded < single.passages
    for key, value in _counts(single).items():
        assert ray[key] == value, key
    assert_same_index(builds.base / "single", builds.base / "ray")


def test_ray_without_the_extra_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.txt").write_text("Text om segregation.", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    result = CliRunner().invoke(
        main, ["ingest", str(tmp_path), "--index", str(tmp_path / "index"), "--ray"]
    )
    assert result.exit_code == 1
    assert MISSING_EXTRA in result.output
    assert not (tmp_path / "index").exists()


def test_an_address_that_is_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ingest", "--ray", str(tmp_path), str(tmp_path)])
    assert result.exit_code == 2
    assert "qa ingest DIRS... --ray" in result.output


def _node(cpus: float, gpus: float = 0, alive: bool = True) -> dict[str, Any]:
    resources = {"CPU": cpus, **({"GPU": gpus} if gpus else {})}
    return {"Alive": alive, "Resources": resources}


@pytest.mark.parametrize(
    ("nodes", "actors", "plan"),
    [
        ([_node(2)], None, ActorPlan(1, 2.0, 0.0, 2)),
        ([_node(8), _node(8), _node(8)], None, ActorPlan(3, 8.0, 0.0, 8)),
        ([_node(8), _node(4)], None, ActorPlan(3, 4.0, 0.0, 4)),
        ([_node(8), _node(4)], 2, ActorPlan(2, 4.0, 0.0, 4)),
        ([_node(8), _node(16, alive=False)], None, ActorPlan(1, 8.0, 0.0, 8)),
        ([_node(16, gpus=2), _node(16, gpus=1), _node(4)], None, ActorPlan(3, 1.0, 1.0, 0)),
        ([_node(16, gpus=4)], 2, ActorPlan(2, 1.0, 1.0, 0)),
    ],
)
def test_actors_are_one_per_gpu_else_fill_the_cpus(
    nodes: list[dict[str, Any]], actors: int | None, plan: ActorPlan
) -> None:
    assert plan_actors(nodes, actors) == plan


# --- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A real local Ray cluster of two CPUs, started once for the module."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install '.[ray]')")
    pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install '.[ray]')")
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="WARNING")
    try:
        yield ray
    finally:
        ray.shutdown()


def write_corpus(root: Path) -> Path:
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "corpus" / name, root / name)
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\n this is not really a pdf \x00\x01")
    (root / "empty.txt").write_bytes(b"")
    return root


def _settings(index: Path) -> Settings:
    return Settings(index_dir=index, conversations_db=index.parent / "conversations.sqlite3")


def _counts(report: IngestReport) -> dict[str, Any]:
    data = report.to_dict()
    keys = (
        "files_seen",
        "files_indexed",
        "files_reused",
        "files_touched",
        "files_removed",
        "files_skipped",
        "documents",
        "passages",
        "passages_embedded",
        "vectors_reused",
        "vectors_resumed",
        "warnings",
    )
    return {key: data[key] for key in keys}


def assert_same_index(expected_path: Path, actual_path: Path) -> None:
    """The same files, documents and passages (ids, texts, metadata, in the same rows),
    and vectors of passages and documents within cosine 0.999."""
    expected, actual = IndexReader(expected_path), IndexReader(actual_path)
    try:
        assert actual.files() == expected.files()
        assert list(actual.documents()) == list(expected.documents())
        rows = list(range(expected.passage_count))
        assert actual.passage_count == expected.passage_count
        assert actual.passages_by_rows(rows) == expected.passages_by_rows(rows)
        for key in ("sources", "skipped", "sidecars", "chunk_tokens_effective", "dimension"):
            assert actual.manifest[key] == expected.manifest[key], key
        cosines = np.sum(actual.all_vectors() * expected.all_vectors(), axis=1)
        assert cosines.min() >= 0.999, cosines.min()
        assert expected.document_vectors is not None and actual.document_vectors is not None
        documents = np.sum(
            np.asarray(actual.document_vectors) * np.asarray(expected.document_vectors), axis=1
        )
        assert len(documents) == 5 and documents.min() >= 0.999, documents.min()
    finally:
        expected.close()
        actual.close()
