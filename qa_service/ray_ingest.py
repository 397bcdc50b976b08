"""The ingestion job on a Ray cluster (the optional extra ``qa_service[ray]``).

:func:`run_ingest` decides what to read, reuse, store and publish, as it does for the
single-process job; :class:`RayEngine` only moves its two heavy steps onto the cluster:

- reading, cleaning and splitting run as Ray tasks, a batch of files each, through the
  same :func:`~qa_service.ingest.process_file` (each worker process loads the model's
  tokenizer once, for the token counts);
- embedding runs as a Ray Data actor pool (``map_batches`` with :class:`PassageEncoder`,
  which holds the same sentence-transformers embedder as the single-process job): one
  actor per GPU where the cluster has GPUs, else CPU actors that fill every node.

The driver then writes the index with the store code of the single-process job: the same
build in the same place (on the driver's disk), the same checkpoints, report and
incremental behaviour. Every node reads the files at the paths the driver found them
under, so the corpus must be at the same path on every node (a shared file system, or
the same copy on each); a file a node cannot see stops the job with a message naming it.

Ray is imported only here and only when the job runs: the rest of the package works
without it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .config import Settings
from .embedding import Embedder, SentenceTransformerEmbedder, make_embedder
from .ingest import FileJob, FileResult, IngestError, IngestReport, process_file, run_ingest

logger = logging.getLogger(__name__)

#: Files a reading task takes at once: few enough that the cluster's CPUs share the work,
#: enough that a task is not mostly Ray's own overhead.
FILES_PER_TASK = 8
MISSING_EXTRA = (
    "`qa ingest --ray` needs Ray, which this installation lacks: "
    "pip install 'qa_service[ray]' (on every node of the cluster)"
)


def require_ray() -> Any:
    """The ``ray`` module, or an :class:`IngestError` saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise IngestError(MISSING_EXTRA) from exc
    return ray


@contextlib.contextmanager
def connected(address: str | None = None) -> Iterator[Any]:
    """Connect to the Ray cluster at ``address`` for the block, and leave it afterwards.

    ``None``: the cluster ``RAY_ADDRESS`` names, else the one ``ray start`` last started
    on this machine, else a new one of this machine alone (stopped afterwards); ``auto``:
    the running cluster this machine belongs to; ``HOST:PORT`` or ``ray://HOST:PORT``:
    that cluster. A process already connected (``ray.init`` called before) stays so.
    """
    ray = require_ray()
    if not logging.getLogger().isEnabledFor(logging.INFO):
        # Ray Data logs each dataset's start and end, and that its bars are off (the
        # job has its own); with -v they are shown.
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    if ray.is_initialized():
        yield ray
        return
    options: dict[str, Any] = {"logging_level": logging.WARNING}
    if address is None:
        options["include_dashboard"] = False
    try:
        ray.init(address=address, **options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = address or "(local)"
        raise IngestError(f"cannot connect to the Ray cluster {where}: {exc}") from exc
    try:
        yield ray
    finally:
        ray.shutdown()


# --- reading: Ray tasks ---------------------------------------------------------------

#: One tokenizer-holding embedder per worker process and model (kept between tasks).
_SPLITTERS: dict[tuple[str, str, str], Embedder] = {}


def _splitter(settings: Settings) -> Embedder:
    key = (settings.model, settings.query_prompt, settings.passage_prompt)
    if key not in _SPLITTERS:
        # Only its tokenizer and window are used: on the CPU, whatever the node has.
        _SPLITTERS[key] = SentenceTransformerEmbedder(
            settings.model,
            query_prompt=settings.query_prompt,
            passage_prompt=settings.passage_prompt,
            device="cpu",
            precision="float32",
        )
    return _SPLITTERS[key]


@dataclass
class ReadBatch:
    """What one reading task hands back."""

    #: In the order of the task's jobs; None for a file the node could not see.
    results: list[FileResult | None]
    node: str
    #: The model's window for passage text, once a file was split (else None).
    max_tokens: int | None = None
    missing: list[int] = field(default_factory=list)


def read_files(jobs: Sequence[FileJob], settings: Settings) -> ReadBatch:
    """:func:`process_file` of each job, on whichever node runs this (a Ray task)."""
    results: list[FileResult | None] = []
    missing: list[int] = []
    embedder = _splitter(settings)
    for position, job in enumerate(jobs):
        if not os.path.lexists(job.item.path):
            missing.append(position)
            results.append(None)
            continue
        results.append(process_file(job, embedder, settings))
    split = any(result is not None and result.entry is not None for result in results)
    return ReadBatch(results, socket.gethostname(), embedder.max_tokens if split else None, missing)


# --- embedding: a Ray Data actor pool ---------------------------------------------------


class PassageEncoder:
    """A Ray Data actor: the single-process job's embedder, loaded once per actor.

    Batches hold ``block`` and ``row`` (where each text belongs) and ``text`` (UTF-8
    bytes, lone surrogates kept); the vectors come back beside them as ``vector``.
    """

    def __init__(self, settings: Settings, threads: int = 0) -> None:
        if threads > 0:
            import torch

            torch.set_num_threads(threads)
        self.embedder = SentenceTransformerEmbedder.from_settings(settings)
        self.batch_size = settings.embed_batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [bytes(text).decode("utf-8", "surrogatepass") for text in batch["text"]]
        vectors = self.embedder.encode_passages(texts, batch_size=self.batch_size)
        # What ran them (the device and precision this node chose), for the report.
        encoder = f"{self.embedder.device}, {self.embedder.precision}"
        return {
            "block": batch["block"],
            "row": batch["row"],
            "vector": vectors,
            "encoder": np.array([encoder] * len(texts)),
        }


@dataclass(frozen=True)
class ActorPlan:
    """How many embedding actors, and what each asks of the cluster."""

    actors: int
    cpus: float
    gpus: float
    #: torch's threads in each actor (0: as Ray set them).
    threads: int


def plan_actors(nodes: Sequence[dict[str, Any]], actors: int | None = None) -> ActorPlan:
    """One actor per GPU where the cluster has GPUs; else CPU actors of as many CPUs as
    the smallest node has, as many as fit on the nodes (one per node of equal size).

    ``nodes`` are ``ray.nodes()`` entries; ``actors`` caps the pool (None: as above).
    """
    alive = [node.get("Resources", {}) for node in nodes if node.get("Alive", True)]
    gpus = int(sum(resources.get("GPU", 0) for resources in alive))
    if gpus > 0:
        return ActorPlan(min(actors or gpus, gpus), 1.0, 1.0, 0)
    cpus = [int(resources.get("CPU", 0)) for resources in alive if resources.get("CPU", 0) >= 1]
    if not cpus:
        raise IngestError("the Ray cluster has no CPU to embed with")
    per_actor = min(cpus)
    fit = sum(count // per_actor for count in cpus)
    return ActorPlan(min(actors or fit, fit), float(per_actor), 0.0, per_actor)


class RayEngine:
    """An :class:`~qa_service.ingest.IngestEngine` on the Ray cluster this process is
    connected to (see :func:`connected`)."""

    def __init__(
        self,
        settings: Settings,
        *,
        actors: int | None = None,
        files_per_task: int = FILES_PER_TASK,
        embedder: Embedder | None = None,
    ) -> None:
        self.ray = require_ray()
        if not self.ray.is_initialized():
            raise IngestError("not connected to a Ray cluster")
        self.settings = settings
        self.files_per_task = max(1, files_per_task)
        self.plan = plan_actors(self.ray.nodes(), actors)
        #: The driver's own embedder, only for what the cluster did not tell.
        self._local = embedder or make_embedder(settings)
        self._max_tokens: int | None = None
        self._ran: set[str] = set()
        logger.info(
            "Ray: %d embedding actor(s) of %g CPU, %g GPU each",
            self.plan.actors,
            self.plan.cpus,
            self.plan.gpus,
        )

    @property
    def encoder(self) -> str:
        """Before embedding, what was asked for (the checkpoints' key, the same on a run
        again); afterwards, what the actors ran on."""
        device = "cuda" if self.plan.gpus else "cpu"
        if not self._ran:  # not the pool's size: a resumed run may have another
            return f"sentence-transformers on Ray ({device}, precision {self.settings.precision})"
        ran = "; ".join(sorted(self._ran))
        plural = "s" if self.plan.actors != 1 else ""
        return f"sentence-transformers on Ray ({self.plan.actors} {device} actor{plural}: {ran})"

    @property
    def max_tokens(self) -> int:
        return self._max_tokens if self._max_tokens is not None else self._local.max_tokens

    @property
    def dimension(self) -> int:
        return self._local.dimension

    def read(self, jobs: Sequence[FileJob], progress: bool) -> Iterator[FileResult]:
        if not jobs:
            return
        ray = self.ray
        task = ray.remote(num_cpus=1)(read_files)
        settings = ray.put(self.settings)
        step = self.files_per_task
        batches = [list(jobs[start : start + step]) for start in range(0, len(jobs), step)]
        refs = [task.remote(batch, settings) for batch in batches]
        position = {ref: i for i, ref in enumerate(refs)}
        finished: dict[int, ReadBatch] = {}
        pending = list(refs)
        following = 0
        with tqdm(total=len(jobs), desc="reading", unit="file", disable=not progress) as bar:
            while following < len(refs):
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    try:
                        finished[position[ref]] = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        raise IngestError(f"a reading task failed on the cluster: {exc}") from exc
                    bar.update(len(batches[position[ref]]))
                while following in finished:
                    done = finished.pop(following)
                    if done.max_tokens is not None:
                        self._max_tokens = done.max_tokens
                    for job, result in zip(batches[following], done.results, strict=True):
                        yield result if result is not None else self._missing(job, done.node)
                    following += 1

    def _missing(self, job: FileJob, node: str) -> FileResult:
        """A file the node did not find: gone since it was found (reported as the
        single-process job does), or not shared with that node (the job stops)."""
        if os.path.lexists(job.item.path):
            raise IngestError(
                f"{job.item.path} is not there on the Ray node {node}: every node must see "
                "the files to ingest at the same path (a shared file system or the same copy)"
            )
        return process_file(job, self._local, self.settings)

    def encode_blocks(self, blocks: list[list[str]]) -> Iterable[tuple[int, np.ndarray]]:
        import pyarrow as pa

        ray = self.ray
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        tables = [
            pa.table(
                {
                    "block": pa.array([i] * len(texts), pa.int64()),
                    "row": pa.array(range(len(texts)), pa.int64()),
                    "text": pa.array(
                        [text.encode("utf-8", "surrogatepass") for text in texts], pa.binary()
                    ),
                }
            )
            for i, texts in enumerate(blocks)
        ]
        dataset = ray.data.from_arrow(tables).map_batches(
            PassageEncoder,
            fn_constructor_kwargs={"settings": self.settings, "threads": self.plan.threads},
            batch_size=self.settings.checkpoint_passages,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self.plan.actors),
            num_cpus=self.plan.cpus,
            num_gpus=self.plan.gpus,
        )
        parts: dict[int, dict[int, np.ndarray]] = {}
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                self._ran.update(str(encoder) for encoder in set(batch["encoder"]))
                for block, row, vector in zip(
                    batch["block"], batch["row"], batch["vector"], strict=True
                ):
                    rows = parts.setdefault(int(block), {})
                    rows[int(row)] = vector
                    if len(rows) == len(blocks[int(block)]):
                        del parts[int(block)]
                        yield int(block), np.stack([rows[i] for i in range(len(rows))])
        except ray.exceptions.RayError as exc:
            raise IngestError(f"embedding failed on the cluster: {exc}") from exc


def run_ray_ingest(
    roots: Sequence[Path],
    settings: Settings,
    *,
    address: str | None = None,
    actors: int | None = None,
    progress: bool | None = None,
    embedder: Embedder | None = None,
) -> IngestReport:
    """:func:`~qa_service.ingest.run_ingest` with reading and embedding on Ray."""
    with connected(address):
        embedder = embedder or make_embedder(settings)
        engine = RayEngine(settings, actors=actors, embedder=embedder)
        return run_ingest(roots, settings, embedder=embedder, progress=progress, engine=engine)
