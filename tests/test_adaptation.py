"""qa adapt: pairs from an index's passages, the held-out split, and one short training run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qa_service import adaptation
from qa_service.adaptation import (
    AdaptationError,
    AdaptOptions,
    Pair,
    SourcePassage,
    evaluation_set,
    held_out_documents,
    ict_pair,
    make_pairs,
    missing_extra,
    read_passages,
    run_adaptation,
    sample_pairs,
    split_pairs,
    title_pairs,
    training_steps,
    usable_title,
    warmup_steps,
    without_span,
)
from qa_service.cli import main
from qa_service.config import Settings
from qa_service.extractive import sentences
from qa_service.ingest import run_ingest

from .conftest import write_small_corpus
from .fake_embedder import FakeEmbedder

LONG = "Regeringen har gett Boverket i uppdrag att se över reglerna för bostadsbyggande."
LONGER = (
    "Det är viktigt att fler bostäder byggs i hela landet och att reglerna blir enklare "
    "för kommunerna att tillämpa i praktiken."
)
REST = "Arbetet ska redovisas till Regeringskansliet senast den 1 juni 2025 i en rapport."


def passage(text: str, pid: str = "p1", doc: str = "d1", title: str = "") -> SourcePassage:
    return SourcePassage(pid, doc, title or "Svar på skriftlig fråga om bostäder", text)


@pytest.mark.parametrize(
    ("text", "start", "end", "expected"),
    [
        ("a b. c d. e f.", 5, 10, "a b. e f."),
        ("a b. c d.", 0, 5, "c d."),
        ("a b. c d.", 5, 9, "a b."),
        ("Rubrik\nEn mening här.\nSista.", 7, 22, "Rubrik\nSista."),
        ("Ett.\n\nTvå.\n\nTre.", 6, 10, "Ett.\n\nTre."),
        ("x  y.   z.", 3, 5, "x z."),
    ],
)
def test_without_span(text: str, start: int, end: int, expected: str) -> None:
    assert without_span(text, start, end) == expected


@pytest.mark.parametrize(
    ("text", "query", "rest"),
    [
        # The only sentence of five words or more that leaves twelve behind.
        (f"Kort rad. {LONG} {REST}", LONG, f"Kort rad. {REST}"),
        # A heading (no closing punctuation) is never the query: without it, too little.
        (f"Nya regler för bostadsbyggande i hela landet\n{LONGER}", None, None),
        # Too few words left once the sentence is out.
        (f"Kort. {LONG}", None, None),
        # No sentence of five words.
        ("Ja. Nej. Kanske det. Inte alls. Aldrig mer. Eller hur.", None, None),
        ("", None, None),
    ],
)
def test_ict_pair_table(text: str, query: str | None, rest: str | None) -> None:
    pair = ict_pair(passage(text), seed=1)
    if query is None:
        assert pair is None
        return
    assert pair is not None
    assert (pair.query, pair.passage) == (query, rest)
    assert (pair.kind, pair.doc_id, pair.passage_id) == ("ict", "d1", "p1")


@pytest.mark.parametrize("seed", range(8))
def test_ict_query_is_a_sentence_of_the_passage_and_the_positive_the_rest(seed: int) -> None:
    text = f"{LONG} {LONGER} {REST}"
    pair = ict_pair(passage(text), seed=seed)
    assert pair is not None
    assert pair.query in {s.text for s in sentences(text)}
    assert pair.query not in pair.passage
    assert sorted(pair.passage.split() + pair.query.split()) == sorted(text.split())
    assert ict_pair(passage(text), seed=seed) == pair  # the same seed, the same draw


def test_ict_draws_differ_between_passages_and_seeds() -> None:
    text = f"{LONG} {LONGER} {REST}"
    pairs = [ict_pair(passage(text, pid=f"p{i}"), seed=s) for i in range(6) for s in (1, 2)]
    assert len({p.query for p in pairs if p is not None}) > 1


@pytest.mark.parametrize(
    ("title", "usable"),
    [
        ("Svar på skriftlig fråga 2024/25:992 om utanförskapsområden", True),
        ("Bostäder i Malmö", True),
        ("Bostäder", False),
        ("Om skript", False),
        ("  ", False),
        ("svar pa fraga 992.txt", False),
        ("rapport om bostader.PDF", False),
    ],
)
def test_usable_title(title: str, usable: bool) -> None:
    assert usable_title(title) is usable


BODY = f"{LONG} {REST}"


@pytest.mark.parametrize(
    ("passages", "per_document", "expected"),
    [
        # One passage a document, the title collapsed to single spaces.
        (
            [SourcePassage("a1", "a", "Bostäder  i\nMalmö stad", BODY)],
            1,
            [("Bostäder i Malmö stad", "a1")],
        ),
        # A passage that is the title alone, or too short, is no positive.
        (
            [
                SourcePassage("a1", "a", "Bostäder i Malmö stad", "Bostäder i Malmö stad"),
                SourcePassage("a2", "a", "Bostäder i Malmö stad", "För kort."),
                SourcePassage("a3", "a", "Bostäder i Malmö stad", BODY),
            ],
            3,
            [("Bostäder i Malmö stad", "a3")],
        ),
        # A document whose title says too little gives no pair.
        ([SourcePassage("b1", "b", "Skript", BODY)], 1, []),
        # Documents in id order, at most per_document passages each.
        (
            [
                SourcePassage("c1", "c", "Skolan i hela landet", BODY),
                SourcePassage("b1", "b", "Vården i hela landet", BODY),
                SourcePassage("b2", "b", "Vården i hela landet", BODY),
            ],
            2,
            [
                ("Vården i hela landet", "b1"),
                ("Vården i hela landet", "b2"),
                ("Skolan i hela landet", "c1"),
            ],
        ),
    ],
)
def test_title_pairs_table(
    passages: list[SourcePassage], per_document: int, expected: list[tuple[str, str]]
) -> None:
    pairs = title_pairs(passages, seed=3, per_document=per_document)
    got = sorted((p.query, p.passage_id) for p in pairs)
    assert got == sorted(expected)
    assert [p.doc_id for p in pairs] == sorted(p.doc_id for p in pairs)
    assert all(p.kind == "title" for p in pairs)


def test_title_pairs_draw_one_of_several_passages_by_seed() -> None:
    group = [SourcePassage(f"a{i}", "a", "Bostäder i Malmö stad", BODY) for i in range(10)]
    drawn = {title_pairs(group, seed=s)[0].passage_id for s in range(10)}
    assert len(drawn) > 1


@pytest.mark.parametrize(
    ("documents", "share", "held"),
    [
        (100, 0.1, 10),
        (25, 0.1, 2),
        (10, 0.1, 1),
        (3, 0.1, 1),  # at least one held out …
        (2, 0.9, 1),  # … and at least one left to train on
        (1, 0.1, 0),
        (0, 0.1, 0),
        (50, 0.0, 0),
    ],
)
def test_held_out_documents_table(documents: int, share: float, held: int) -> None:
    ids = [f"doc-{i:03d}" for i in range(documents)]
    chosen = held_out_documents(ids, share, seed=5)
    assert len(chosen) == held
    assert chosen <= set(ids)
    assert held_out_documents(list(reversed(ids)), share, seed=5) == chosen


@pytest.mark.parametrize("share", [-0.1, 1.0, 1.5])
def test_held_out_share_must_be_a_share(share: float) -> None:
    with pytest.raises(AdaptationError, match="share"):
        held_out_documents(["a", "b"], share, seed=1)


def _pair(kind: str, doc: str, pid: str, query: str = "q") -> Pair:
    return Pair(kind, query, f"text of {pid}", doc, pid)  # type: ignore[arg-type]


def test_no_pair_of_a_held_out_document_is_trained_on() -> None:
    passages = [
        passage(f"{LONG} {LONGER} {REST}", pid=f"{d}-{i}", doc=d, title=f"Bostäder i kommun {d}")
        for d in "abcdefghij"
        for i in range(3)
    ]
    pairs = make_pairs(passages, ("ict", "title"), seed=2)
    assert {p.kind for p in pairs} == {"ict", "title"}
    held = held_out_documents({p.doc_id for p in passages}, 0.2, seed=2)
    train, evaluation = split_pairs(pairs, held)
    assert {p.doc_id for p in evaluation} == held
    assert not {p.doc_id for p in train} & held
    assert len(train) + len(evaluation) == len(pairs) == 30 + 10


@pytest.mark.parametrize(("count", "expected"), [(None, 10), (20, 10), (10, 10), (4, 4), (0, 0)])
def test_sample_pairs_keeps_the_order(count: int | None, expected: int) -> None:
    pairs = [_pair("ict", "d", f"p{i:02d}") for i in range(10)]
    sample = sample_pairs(pairs, count, seed=9)
    assert len(sample) == expected
    assert sample == sorted(sample, key=lambda p: p.passage_id)
    assert sample_pairs(pairs, count, seed=9) == sample


@pytest.mark.parametrize(
    ("pairs", "batch", "epochs", "max_steps", "steps", "warmup"),
    [
        (2000, 32, 1.0, -1, 62, 7),  # 62 full batches, the 16 pairs left over dropped
        (2000, 32, 2.0, -1, 124, 13),
        (2000, 32, 0.5, -1, 31, 4),
        (100, 32, 1.0, 5, 5, 1),  # max_steps wins
        (31, 32, 1.0, -1, 0, 0),
    ],
)
def test_training_and_warmup_steps(
    pairs: int, batch: int, epochs: float, max_steps: int, steps: int, warmup: int
) -> None:
    assert training_steps(pairs, batch, epochs, max_steps) == steps
    assert warmup_steps(pairs, batch, epochs, max_steps, 0.1) == warmup


def test_evaluation_set_relevance() -> None:
    pairs = [
        _pair("ict", "a", "a1", "en mening ur a1"),
        _pair("ict", "a", "a2", "en mening ur a2"),
        _pair("title", "a", "a2", "Titeln på a"),
        _pair("ict", "b", "b1", "en mening ur b1"),
    ]
    data = evaluation_set(pairs)
    assert data.queries == {
        "ict:a1": "en mening ur a1",
        "ict:a2": "en mening ur a2",
        "title:a": "Titeln på a",
        "ict:b1": "en mening ur b1",
    }
    assert data.corpus == {
        "ict:a1": "text of a1",
        "ict:a2": "text of a2",
        "title:a2": "text of a2",
        "ict:b1": "text of b1",
    }
    # A sentence finds its own passage; a title any passage of its document.
    assert data.relevant == {
        "ict:a1": {"ict:a1"},
        "ict:a2": {"ict:a2"},
        "title:a": {"ict:a1", "ict:a2", "title:a2"},
        "ict:b1": {"ict:b1"},
    }


@pytest.fixture(scope="module")
def fake_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small corpus indexed with the stand-in embedder (only the text is read)."""
    base = tmp_path_factory.mktemp("adapt")
    corpus = write_small_corpus(base / "corpus")
    settings = Settings(index_dir=base / "index", conversations_db=base / "c.sqlite3")
    run_ingest([corpus], settings, embedder=FakeEmbedder(), progress=False)
    return settings.index_dir


def test_read_passages_gives_each_passage_its_document_title(fake_index: Path) -> None:
    from qa_service.store import IndexReader

    passages = read_passages(fake_index)
    reader = IndexReader(fake_index)
    titles = {d.id: d.meta.title for d in reader.documents()}
    assert len(passages) == reader.live_passage_count > len(titles) >= 3
    assert all(p.title == titles[p.doc_id] for p in passages)
    assert len({p.id for p in passages}) == len(passages)


def test_read_passages_of_no_index_says_so(tmp_path: Path) -> None:
    with pytest.raises(AdaptationError, match="no index"):
        read_passages(tmp_path / "missing")


def test_adapt_without_the_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, fake_index: Path, tmp_path: Path
) -> None:
    real = adaptation.find_spec
    monkeypatch.setattr(
        adaptation, "find_spec", lambda name: None if name == "datasets" else real(name)
    )
    result = CliRunner().invoke(
        main, ["adapt", "--index", str(fake_index), "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 1
    assert "qa_service[adapt]" in result.output and "missing: datasets" in result.output
    assert not (tmp_path / "m").exists()


def test_adapt_refuses_a_directory_with_files(fake_index: Path, tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("x")
    options = AdaptOptions(index=fake_index, out=tmp_path / "m")
    with pytest.raises(AdaptationError, match="not empty"):
        run_adaptation(options, Settings(index_dir=fake_index))


@pytest.mark.model
@pytest.mark.skipif(
    bool(missing_extra()),
    reason=f"the extra qa_service[adapt] is not installed (missing: {missing_extra()})",
)
def test_a_few_steps_write_a_model_the_service_loads(fake_index: Path, tmp_path: Path) -> None:
    from qa_service.embedding import SentenceTransformerEmbedder

    out = tmp_path / "adapted"
    result = CliRunner().invoke(
        main,
        [
            "adapt",
            "--index", str(fake_index),
            "--out", str(out),
            "--batch-size", "4",
            "--mini-batch-size", "2",
            "--max-steps", "3",
            "--max-seq-length", "64",
            "--lr", "1e-4",
            "--device", "cpu",
            "--no-progress",
            "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / adaptation.REPORT_FILE).read_text(encoding="utf-8"))
    assert json.loads(result.stdout) == report  # the trainer's log lines are not in it
    assert report["steps"] == 3
    assert report["base_model"] == Settings().model
    counts = report["counts"]
    assert counts["documents_held_out"] >= 1
    assert sum(counts["train_pairs"].values()) >= 4  # at least one batch
    assert sum(counts["eval_pairs"].values()) >= 1
    before, after = report["evaluator"]["before"], report["evaluator"]["after"]
    assert set(before) == set(after) and "heldout_cosine_ndcg@10" in before
    assert report["settings"]["prompts"] == {"query": "query: ", "passage": "passage: "}

    base = SentenceTransformerEmbedder(Settings().model, device="cpu", precision="float32")
    adapted = SentenceTransformerEmbedder(str(out), device="cpu", precision="float32")
    assert (adapted.query_prompt, adapted.passage_prompt) == ("query: ", "passage: ")
    assert adapted.dimension == base.dimension
    # The window is the base's, so passages are cut as before (training used 64).
    assert adapted.max_tokens == base.max_tokens
    text = "Regeringen har gett Boverket i uppdrag att se över reglerna för bostadsbyggande."
    vector = adapted.encode_passages([text])[0]
    assert abs(float(np.linalg.norm(vector)) - 1) < 1e-4
    cosine = float(vector @ base.encode_passages([text])[0])
    assert 0.5 < cosine < 0.99999  # trained, not replaced
