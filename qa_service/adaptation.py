"""Unsupervised domain adaptation of the embedding model on the corpus itself (``qa adapt``).

The passages of a built index are turned into (query, passage) pairs without any labels:

* inverse cloze (``ict``): one sentence of a passage is the query, the passage without
  that sentence is the positive (Lee et al., 2019);
* title → passage (``title``): a document's title is the query, one of its passages the
  positive.

Each side gets the model's own prompts (``query: `` and ``passage: `` for E5), as the
service puts them before questions and passages. About a tenth of the documents are held
out: their pairs are only in the evaluator (sentence-transformers'
``InformationRetrievalEvaluator``, run before and after training), never in training. The
model is trained by sentence-transformers' ``SentenceTransformerTrainer`` with
``CachedMultipleNegativesRankingLoss`` (the other pairs of a batch are the negatives;
the mini-batch bounds memory, not the number of negatives), and written as an ordinary
sentence-transformers directory with an ``adaptation.json`` beside its files. That
directory is a model the service loads by ``QA_MODEL=DIR`` (offline, like every model).

The pair-making functions are pure; :func:`run_adaptation` does the reading, training
and writing, and needs the ``adapt`` extra (``datasets``, ``accelerate``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

from .config import Settings

# At import it sets HF_HUB_OFFLINE, before any Hugging Face library is imported below.
from .embedding import ModelError, choose_device, cpu_has_bfloat16, resolve_model
from .errors import QAError
from .extractive import reads_as_heading, sentences

logger = logging.getLogger(__name__)

PairKind = Literal["ict", "title"]
PAIR_CHOICES: dict[str, tuple[PairKind, ...]] = {
    "ict": ("ict",),
    "title": ("title",),
    "both": ("ict", "title"),
}
#: The modules the ``adapt`` extra brings; the trainer imports both.
EXTRA_MODULES = ("datasets", "accelerate")
EXTRA = "qa_service[adapt]"
#: The file written beside the model's own.
REPORT_FILE = "adaptation.json"
#: The evaluator's name (a prefix of its metrics' keys).
EVALUATOR_NAME = "heldout"

#: A query sentence has at least this many words, and so has what is left of the passage.
MIN_QUERY_WORDS = 5
MIN_REST_WORDS = 12
#: A title shorter than this (in words) says too little to find a passage by.
MIN_TITLE_WORDS = 3

_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")


class AdaptationError(QAError):
    """``qa adapt`` cannot run: a missing extra, an index without pairs, a bad setting."""


@dataclass(frozen=True)
class SourcePassage:
    """A passage of the index with its document's title."""

    id: str
    doc_id: str
    title: str
    text: str


@dataclass(frozen=True)
class Pair:
    """A training or evaluation pair: a query and the passage it should find."""

    kind: PairKind
    query: str
    passage: str
    doc_id: str
    passage_id: str


@dataclass(frozen=True)
class EvaluationSet:
    """What sentence-transformers' ``InformationRetrievalEvaluator`` takes."""

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, set[str]]


@dataclass(frozen=True)
class AdaptOptions:
    """The settings of one ``qa adapt`` run (the CLI's options)."""

    index: Path
    out: Path
    pairs: str = "both"
    sample: int | None = None
    eval_pairs: int = 300
    holdout_share: float = 0.1
    epochs: float = 1.0
    max_steps: int = -1
    #: Stop training after this many minutes (None: no limit), for a CPU sample run.
    max_minutes: float | None = None
    batch_size: int = 32
    mini_batch_size: int = 16
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    max_seq_length: int | None = 256
    device: str = "auto"
    seed: int = 13
    title_passages: int = 1
    model: str | None = None
    progress: bool = False


def word_count(text: str) -> int:
    return len(text.split())


def _seeded(seed: int, key: str) -> random.Random:
    """A generator of its own for each item, so adding items elsewhere changes nothing."""
    return random.Random(f"{seed}:{key}")


def without_span(text: str, start: int, end: int) -> str:
    """``text`` with ``text[start:end]`` cut out and the seam's spaces made one."""
    before, after = text[:start].rstrip(" \t"), text[end:].lstrip(" \t")
    if before and after and not before.endswith("\n") and not after.startswith("\n"):
        joined = f"{before} {after}"
    else:
        joined = before + after
    return _BLANK_LINES.sub("\n\n", _SPACES.sub(" ", joined)).strip()


def ict_pair(passage: SourcePassage, seed: int) -> Pair | None:
    """The inverse-cloze pair of a passage: one of its sentences (drawn with ``seed``) as
    the query, the passage without it as the positive; None when no sentence will do.

    A sentence will do when it has ``MIN_QUERY_WORDS`` words, does not read as a heading
    and leaves ``MIN_REST_WORDS`` words behind.
    """
    candidates = [
        s
        for s in sentences(passage.text)
        if word_count(s.text) >= MIN_QUERY_WORDS and not reads_as_heading(s.text)
    ]
    rng = _seeded(seed, passage.id)
    rng.shuffle(candidates)
    for sentence in candidates:
        rest = without_span(passage.text, sentence.start, sentence.end)
        if word_count(rest) >= MIN_REST_WORDS:
            return Pair("ict", sentence.text, rest, passage.doc_id, passage.id)
    return None


def ict_pairs(passages: Iterable[SourcePassage], seed: int) -> list[Pair]:
    """One inverse-cloze pair for each passage that has a sentence for it."""
    return [pair for p in passages if (pair := ict_pair(p, seed)) is not None]


def usable_title(title: str) -> bool:
    """Whether a title can serve as a query: ``MIN_TITLE_WORDS`` words, not a file name."""
    text = title.strip()
    if word_count(text) < MIN_TITLE_WORDS:
        return False
    return re.search(r"\.(txt|md|html?|json|xml|pdf)$", text, re.IGNORECASE) is None


def title_pairs(passages: Iterable[SourcePassage], seed: int, per_document: int = 1) -> list[Pair]:
    """Title → passage pairs: for each document with a usable title, ``per_document`` of
    its passages (drawn with ``seed``) as positives of its title.

    Passages that repeat the title word for word (a heading passage) are left out, since
    they teach nothing but string matching.
    """
    by_document: dict[str, list[SourcePassage]] = {}
    for passage in passages:
        by_document.setdefault(passage.doc_id, []).append(passage)
    pairs: list[Pair] = []
    for doc_id in sorted(by_document):
        group = by_document[doc_id]
        title = " ".join(group[0].title.split())
        if not usable_title(title):
            continue
        candidates = [
            p
            for p in group
            if word_count(p.text) >= MIN_REST_WORDS and " ".join(p.text.split()) != title
        ]
        _seeded(seed, doc_id).shuffle(candidates)
        for passage in candidates[:per_document]:
            pairs.append(Pair("title", title, passage.text, doc_id, passage.id))
    return pairs


def make_pairs(
    passages: Sequence[SourcePassage], kinds: Sequence[PairKind], seed: int, per_document: int = 1
) -> list[Pair]:
    """The pairs of the given kinds, in the order of ``kinds``."""
    pairs: list[Pair] = []
    for kind in kinds:
        if kind == "ict":
            pairs += ict_pairs(passages, seed)
        elif kind == "title":
            pairs += title_pairs(passages, seed, per_document)
        else:  # pragma: no cover - PairKind has two values
            raise AdaptationError(f"unknown pair kind {kind!r}")
    return pairs


def held_out_documents(doc_ids: Iterable[str], share: float, seed: int) -> set[str]:
    """About ``share`` of the documents, drawn with ``seed``, for validation only.

    With two documents or more at least one is held out and at least one is not.
    """
    if not 0 <= share < 1:
        raise AdaptationError("the held-out share must be at least 0 and below 1")
    ordered = sorted(set(doc_ids))
    if share == 0 or len(ordered) < 2:
        return set()
    random.Random(seed).shuffle(ordered)
    count = min(max(1, round(share * len(ordered))), len(ordered) - 1)
    return set(ordered[:count])


def split_pairs(pairs: Sequence[Pair], held_out: set[str]) -> tuple[list[Pair], list[Pair]]:
    """(training pairs, evaluation pairs): a held-out document's pairs are evaluation's."""
    train = [p for p in pairs if p.doc_id not in held_out]
    evaluation = [p for p in pairs if p.doc_id in held_out]
    return train, evaluation


def sample_pairs(pairs: Sequence[Pair], count: int | None, seed: int) -> list[Pair]:
    """At most ``count`` of the pairs (None: all), drawn with ``seed``, in their order."""
    if count is None or count >= len(pairs):
        return list(pairs)
    if count < 0:
        raise AdaptationError("a sample size cannot be negative")
    picked = sorted(random.Random(seed).sample(range(len(pairs)), count))
    return [pairs[i] for i in picked]


def evaluation_set(pairs: Sequence[Pair]) -> EvaluationSet:
    """The evaluator's queries, corpus and relevance from held-out pairs.

    The corpus is every pair's positive. An inverse-cloze query's one relevant entry is
    the passage it was cut from; a title's are all the corpus entries of its document.
    """
    queries: dict[str, str] = {}
    corpus: dict[str, str] = {}
    by_document: dict[str, set[str]] = {}
    for pair in pairs:
        corpus_id = f"{pair.kind}:{pair.passage_id}"
        corpus[corpus_id] = pair.passage
        by_document.setdefault(pair.doc_id, set()).add(corpus_id)
    relevant: dict[str, set[str]] = {}
    for pair in pairs:
        corpus_id = f"{pair.kind}:{pair.passage_id}"
        if pair.kind == "title":
            query_id = f"title:{pair.doc_id}"
            relevant[query_id] = set(by_document[pair.doc_id])
        else:
            query_id = corpus_id
            relevant[query_id] = {corpus_id}
        queries[query_id] = pair.query
    return EvaluationSet(queries, corpus, relevant)


def training_steps(pairs: int, batch_size: int, epochs: float, max_steps: int) -> int:
    """The optimiser steps a run takes (the last, partial batch is dropped)."""
    if max_steps > 0:
        return max_steps
    return math.ceil((pairs // batch_size) * epochs)


def warmup_steps(pairs: int, batch_size: int, epochs: float, max_steps: int, ratio: float) -> int:
    """The first steps whose learning rate rises from 0: ``ratio`` of them, rounded up."""
    return math.ceil(training_steps(pairs, batch_size, epochs, max_steps) * ratio)


def time_limit(minutes: float) -> Any:
    """A trainer callback that stops training at the first step past ``minutes``."""
    from transformers import TrainerCallback

    class TimeLimit(TrainerCallback):
        started = 0.0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            self.started = time.perf_counter()
            return control

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if time.perf_counter() - self.started > minutes * 60:
                logger.info("stopping at step %d: %.1f minutes passed", state.global_step, minutes)
                control.should_training_stop = True
            return control

    return TimeLimit()


def missing_extra() -> list[str]:
    """The modules of the ``adapt`` extra that are not installed."""
    return [name for name in EXTRA_MODULES if find_spec(name) is None]


def require_extra() -> None:
    missing = missing_extra()
    if missing:
        raise AdaptationError(
            f"qa adapt needs the optional extra [adapt] (missing: {', '.join(missing)}): "
            f"pip install '{EXTRA}' (or -e '.[adapt]' in a checkout)"
        )


def read_passages(index: Path) -> list[SourcePassage]:
    """Every live passage of the index's published build, with its document's title."""
    from .store import IndexReader, IndexStoreError

    try:
        reader = IndexReader(index)
    except IndexStoreError as exc:
        raise AdaptationError(str(exc)) from exc
    try:
        rows = reader.db.execute(
            "SELECT p.id, p.doc_id, d.title, p.text FROM passages p "
            "JOIN documents d ON d.id = p.doc_id ORDER BY d.source, p.ordinal"
        ).fetchall()
    except sqlite3.Error as exc:
        raise AdaptationError(f"cannot read the passages of {index}: {exc}") from exc
    finally:
        reader.close()
    return [SourcePassage(str(r[0]), str(r[1]), str(r[2] or ""), str(r[3])) for r in rows]


def _prompts(model: Any, settings: Settings) -> dict[str, str]:
    """The prompts the service uses with this model: the settings', else the model's."""
    own: dict[str, str] = getattr(model, "prompts", None) or {}
    return {
        "query": settings.query_prompt or own.get("query", ""),
        "passage": settings.passage_prompt or own.get("passage", ""),
    }


def _evaluate(evaluator: Any, model: Any) -> dict[str, float]:
    return {str(k): float(v) for k, v in evaluator(model).items()}


def headline(metrics: dict[str, float]) -> str:
    """nDCG@10, MRR@10, accuracy@1 and recall@10 of an evaluator's result, for a line."""
    keys = ("ndcg@10", "mrr@10", "accuracy@1", "recall@10")
    shown = []
    for key in keys:
        match = next((v for k, v in metrics.items() if k.endswith(f"_{key}")), None)
        if match is not None:
            shown.append(f"{key} {match:.4f}")
    return ", ".join(shown)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str] = {}
    for name in ("sentence-transformers", "transformers", "torch", "datasets", "accelerate"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _write_report(directory: Path, report: dict[str, Any]) -> None:
    (directory / REPORT_FILE).write_text(
        json.dumps(report, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def run_adaptation(
    options: AdaptOptions,
    settings: Settings,
    *,
    log: Callable[[str], None] = logger.info,
) -> dict[str, Any]:
    """Make pairs from the index, train, evaluate before and after, write ``options.out``.

    The directory is written aside and renamed into place; an existing non-empty
    ``options.out`` is refused. Returns the report written to ``adaptation.json``.
    """
    if options.pairs not in PAIR_CHOICES:
        raise AdaptationError(f"--pairs must be one of {', '.join(PAIR_CHOICES)}")
    if options.batch_size < 2:
        raise AdaptationError("--batch-size must be at least 2 (the other pairs are negatives)")
    if options.out.exists() and (not options.out.is_dir() or any(options.out.iterdir())):
        raise AdaptationError(f"{options.out} exists and is not empty: give a new directory")
    require_extra()
    started = time.perf_counter()
    seconds: dict[str, float] = {}

    tick = time.perf_counter()
    passages = read_passages(options.index)
    documents = {p.doc_id for p in passages}
    kinds = PAIR_CHOICES[options.pairs]
    pairs = make_pairs(passages, kinds, options.seed, options.title_passages)
    held_out = held_out_documents(documents, options.holdout_share, options.seed)
    train_all, eval_all = split_pairs(pairs, held_out)
    train = sample_pairs(train_all, options.sample, options.seed)
    evaluation = sample_pairs(eval_all, options.eval_pairs, options.seed)
    if len(train) < options.batch_size:
        raise AdaptationError(
            f"{len(train)} training pairs from {options.index}, fewer than one batch "
            f"({options.batch_size}): index more documents or give a smaller --batch-size"
        )
    seconds["pairs"] = time.perf_counter() - tick
    counts = {
        "passages": len(passages),
        "documents": len(documents),
        "documents_held_out": len(held_out),
        "pairs_made": {k: sum(p.kind == k for p in pairs) for k in kinds},
        "train_pairs_available": len(train_all),
        "eval_pairs_available": len(eval_all),
        "train_pairs": {k: sum(p.kind == k for p in train) for k in kinds},
        "eval_pairs": {k: sum(p.kind == k for p in evaluation) for k in kinds},
    }
    log(
        f"{len(passages)} passages of {len(documents)} documents → {len(pairs)} pairs; "
        f"training on {len(train)}, evaluating on {len(evaluation)} from "
        f"{len(held_out)} held-out documents"
    )

    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
    )
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
    )
    from transformers.utils import logging as hf_logging

    if not options.progress:
        hf_logging.disable_progress_bar()
    base_name = options.model or settings.model
    try:
        device = choose_device(options.device)
        location = resolve_model(base_name)
    except ModelError as exc:
        raise AdaptationError(str(exc)) from exc
    torch.manual_seed(options.seed)
    tick = time.perf_counter()
    try:
        model = SentenceTransformer(location, device=device, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise AdaptationError(f"cannot load the model {base_name!r} offline: {exc}") from exc
    seconds["load"] = time.perf_counter() - tick
    if model.max_seq_length is None:
        raise AdaptationError(f"the model {base_name!r} names no window (max_seq_length)")
    window = int(model.max_seq_length)
    train_length = min(window, options.max_seq_length or window)
    model.max_seq_length = train_length
    prompts = _prompts(model, settings)

    data = evaluation_set(evaluation)
    queries: dict[str, Any] = dict(data.queries)
    corpus: dict[str, Any] = dict(data.corpus)
    evaluator = InformationRetrievalEvaluator(
        queries,
        corpus,
        data.relevant,
        name=EVALUATOR_NAME,
        query_prompt=prompts["query"] or None,
        corpus_prompt=prompts["passage"] or None,
        batch_size=options.mini_batch_size,
        show_progress_bar=options.progress,
        write_csv=False,
    )

    def evaluated(stage: str) -> dict[str, float]:
        """The evaluator's figures on the model as it is now (none without evaluation)."""
        if not evaluation:
            return {}
        tick = time.perf_counter()
        figures = _evaluate(evaluator, model)
        seconds[f"eval_{stage}"] = time.perf_counter() - tick
        log(f"held-out {stage}: {headline(figures)}")
        return figures

    before = evaluated("before")

    dataset = Dataset.from_dict(
        {"query": [p.query for p in train], "passage": [p.passage for p in train]}
    )
    loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=options.mini_batch_size)
    on_gpu = device.startswith("cuda")
    # Mixed precision where the hardware multiplies it: bfloat16 on a GPU that has it
    # (else float16), bfloat16 on a CPU with AVX-512 BF16 or AMX (as the service embeds).
    bf16 = torch.cuda.is_bf16_supported() if on_gpu else cpu_has_bfloat16()
    fp16 = on_gpu and not bf16
    options.out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{options.out.name}.", dir=options.out.parent))
    try:
        arguments = SentenceTransformerTrainingArguments(
            output_dir=str(work / "trainer"),
            num_train_epochs=options.epochs,
            max_steps=options.max_steps,
            per_device_train_batch_size=options.batch_size,
            learning_rate=options.lr,
            warmup_steps=warmup_steps(
                len(train),
                options.batch_size,
                options.epochs,
                options.max_steps,
                options.warmup_ratio,
            ),
            # Pairs with one query (a title of several passages) in one batch would be
            # each other's false negatives.
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            prompts={"query": prompts["query"], "passage": prompts["passage"]},
            bf16=bf16,
            fp16=fp16,
            use_cpu=not on_gpu,
            seed=options.seed,
            data_seed=options.seed,
            save_strategy="no",
            eval_strategy="no",
            logging_steps=10,
            report_to="none",
            disable_tqdm=not options.progress,
            dataloader_drop_last=True,
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=arguments,
            train_dataset=dataset,
            loss=loss,
            callbacks=[time_limit(options.max_minutes)] if options.max_minutes else None,
        )
        tick = time.perf_counter()
        # The trainer prints its log lines; stdout is for the report (``qa adapt --json``).
        with contextlib.redirect_stdout(sys.stderr):
            result = trainer.train()
        seconds["train"] = time.perf_counter() - tick
        losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
        log(
            f"trained {result.global_step} steps in {seconds['train']:.1f} s "
            f"(loss {losses[0] if losses else float('nan'):.4f} → "
            f"{result.training_loss:.4f} mean)"
        )
        after = evaluated("after")
        # The service's passages are cut to the model's window: keep the base's.
        model.max_seq_length = window
        target = work / "model"
        tick = time.perf_counter()
        model.save(str(target))
        seconds["save"] = time.perf_counter() - tick
        seconds["total"] = time.perf_counter() - started
        report: dict[str, Any] = {
            "base_model": base_name,
            "base_location": location,
            "index": str(options.index),
            "index_build": Path(options.index).resolve().name,
            "pairs": options.pairs,
            "counts": counts,
            "settings": {
                **{
                    k: v
                    for k, v in asdict(options).items()
                    if k not in ("index", "out", "model", "progress")
                },
                "device": device,
                "mixed_precision": "bfloat16" if bf16 else "float16" if fp16 else "none",
                "planned_steps": training_steps(
                    len(train), options.batch_size, options.epochs, options.max_steps
                ),
                "train_max_seq_length": train_length,
                "prompts": prompts,
                "loss": "CachedMultipleNegativesRankingLoss",
                "batch_sampler": "no_duplicates",
            },
            "steps": int(result.global_step),
            "training_loss": float(result.training_loss),
            "loss_log": [
                {"step": int(e["step"]), "loss": float(e["loss"])}
                for e in trainer.state.log_history
                if "loss" in e
            ],
            "evaluator": {"before": before, "after": after},
            "seconds": {k: round(v, 2) for k, v in seconds.items()},
            "versions": _versions(),
            "written": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        _write_report(target, report)
        for path in [target, *target.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        if options.out.exists():
            options.out.rmdir()  # empty, checked above
        os.replace(target, options.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"wrote {options.out}")
    return report
