"""Segment publishes (store.py): a change written as one new segment, the previous
build's segments hard-linked, the changed and removed files' rows deleted; merges; the
retrievers over several segments; crash safety and hot reload of a segment publish.

Real FAISS, SQLite and bm25s over small corpora; the fast stand-in embedder where the
meaning of the vectors does not matter, the real model over shared documents where the
rankings are compared.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qa_service.config import ConfigError, Settings
from qa_service.filters import Filters, allowed_rows
from qa_service.ingest import merge_index, needs_merge, run_ingest
from qa_service.lexical import LexicalIndex, SegmentedLexicalIndex
from qa_service.loading import Builds, load_lexical, open_index
from qa_service.schema import document_id
from qa_service.store import DELETIONS, LEXICAL, SEGMENTS, IndexReader, builds_dir
from tests.conftest import ROOT, SHARED, needs_shared, write_small_corpus
from tests.fake_embedder import FakeEmbedder

PRESS_ADDED = "Ett nytt stycke om bostadsbidrag och hyresrätter i glesbygden."


def segment_settings(tmp_path: Path, **overrides: object) -> Settings:
    # No merge unless a test asks for one: the small corpus changes by large shares.
    values: dict[str, object] = {
        "index_dir": tmp_path / "indexes" / "test",
        "conversations_db": tmp_path / "c.db",
        "segment_merge_share": 1.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def ingest(corpus: Path, settings: Settings):  # type: ignore[no-untyped-def]
    return run_ingest([corpus], settings, embedder=FakeEmbedder(), progress=False)  # type: ignore[arg-type]


def opened(settings: Settings):  # type: ignore[no-untyped-def]
    embedder = FakeEmbedder()
    return open_index(settings, embedder, embedder.encode_query)  # type: ignore[arg-type]


def segment_files(build: Path) -> list[Path]:
    """Every file of the first segment of a build (its own files, not the build's)."""
    names = ["vectors.faiss", "passages.sqlite3", "documents.npy", "passage_documents.npy"]
    names += ["shingles.npy", "shingle_offsets.npy"]
    files = [build / name for name in names]
    return files + sorted((build / LEXICAL).iterdir())


def child_env(tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an ingest child (tests/ingest_child.py) with ``env`` on top."""
    mark = tmp_path / "stopped"
    return {**os.environ, "PYTHONPATH": str(ROOT), "QA_TEST_MARK": str(mark), **(env or {})}


def child_args(corpus: Path, index: Path) -> list[str]:
    args = ["ingest", str(corpus), "--index", str(index), "--json"]
    return [sys.executable, "-m", "tests.ingest_child", *args]


def kill_ingest_at(
    pause: str, corpus: Path, index: Path, tmp_path: Path, env: dict[str, str] | None = None
) -> int | None:
    """Run ``qa ingest`` in a child that stops at ``pause``, kill it there with SIGKILL
    and return its exit code."""
    mark = tmp_path / "stopped"
    environment = {**child_env(tmp_path, env), "QA_TEST_PAUSE_AT": pause}
    job = subprocess.Popen(
        child_args(corpus, index),
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not mark.exists() and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mark.exists(), job.communicate(timeout=5)[1].decode()[-2000:]
    finally:
        job.kill()
        job.communicate(timeout=30)
    return job.returncode


def ingest_in_child(
    corpus: Path, index: Path, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``qa ingest`` to its end in a child, as :func:`kill_ingest_at` started it."""
    return subprocess.run(
        child_args(corpus, index),
        cwd=ROOT,
        env=child_env(tmp_path, env),
        capture_output=True,
        timeout=120,
    )


def test_a_changed_file_is_published_as_a_segment_beside_hard_linked_ones(
    tmp_path: Path,
) -> None:
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = segment_settings(tmp_path)
    first = ingest(corpus, settings)
    assert first.segments == 1
    before = settings.index_dir.resolve()
    old = IndexReader(settings.index_dir)
    old_rows = old.passage_count
    press = document_id("press.md")
    old_press_rows = {int(r) for r in old.rows_of_documents([press])}
    assert old_press_rows and "segments" not in old.manifest  # a full build, as before

    with (corpus / "press.md").open("a", encoding="utf-8") as handle:
        handle.write(f"\n{PRESS_ADDED}\n")
    report = ingest(corpus, settings)
    assert report.published and report.segments == 2 and not report.merged
    assert report.files_indexed == 1 and report.files_reused == 3
    after = settings.index_dir.resolve()
    assert after != before
    # The first segment's files are the previous build's, linked (same inode), not copies.
    for path in segment_files(before):
        linked = after / path.relative_to(before)
        assert linked.stat().st_ino == path.stat().st_ino, path.name
    reader = IndexReader(settings.index_dir)
    manifest = reader.manifest
    assert [s["path"] for s in manifest[SEGMENTS]] == [
        ".",
        f"segments/{manifest[SEGMENTS][1]['name']}",
    ]
    assert manifest[SEGMENTS][0]["deleted_sources"] == ["press.md"]
    assert (after / DELETIONS / "base.npy").exists()
    # Rows stay global: the old rows keep their numbers, the new segment follows them.
    assert reader.passage_count == old_rows + manifest[SEGMENTS][1]["passages"]
    assert reader.deleted is not None
    assert set(np.flatnonzero(reader.deleted)) == old_press_rows
    new_rows = {int(r) for r in reader.rows_of_documents([press])}
    assert new_rows and min(new_rows) >= old_rows
    texts = [p.text for _, p in reader.passages_of(press)]
    assert any(PRESS_ADDED in t for t in texts)
    assert [d.source for d in reader.documents()].count("press.md") == 1
    assert reader.files()["press.md"].size == (corpus / "press.md").stat().st_size
    assert report.passages == reader.live_passage_count == report.passages
    # The unchanged files' passages are where they were.
    for source in ("xss.md", "svar-pa-fraga-2024-25-992.txt"):
        rows = [row for row, _ in reader.passages_of(document_id(source))]
        assert rows == [row for row, _ in old.passages_of(document_id(source))]
    old.close()
    reader.close()
    # Nothing changed: up to date, nothing published.
    assert not ingest(corpus, settings).published


def test_deleted_rows_are_in_no_leg_and_no_filter(tmp_path: Path) -> None:
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = segment_settings(tmp_path)
    ingest(corpus, settings)
    (corpus / "xss.md").unlink()
    with (corpus / "press.md").open("a", encoding="utf-8") as handle:
        handle.write(f"\n{PRESS_ADDED}\n")
    report = ingest(corpus, settings)
    assert report.segments == 2 and report.files_removed == 1
    index = opened(settings)
    reader = index.reader
    assert reader.deleted is not None and reader.deleted.any()
    deleted = set(np.flatnonzero(reader.deleted).tolist())
    everything = reader.passage_count
    for query in ("skript sfi alert", "jobbskatteavdrag arbetsinkomster", PRESS_ADDED):
        dense = index.retrievers.dense.search(query, everything)
        lexical = index.retrievers.lexical.search_text(query, everything)
        assert dense and not deleted & {row for row, _ in dense}
        assert not deleted & {row for row, _ in lexical}
    # The removed file's words are found nowhere; the changed file's new text is.
    assert index.retrievers.bm25.search_text("skript alert", 10) == []
    found = index.retrievers.bm25.search_text("bostadsbidrag glesbygden", 3)
    assert found and found[0][0] >= report.passages - 10
    # Filters: the views leave the deleted documents out, and so does every mask.
    mask = allowed_rows(reader.db, Filters(source_prefix="press"), reader.passage_count)
    assert mask is not None and not deleted & set(np.flatnonzero(mask).tolist())
    assert set(np.flatnonzero(mask)) == {
        int(r) for r in reader.rows_of_documents([document_id("press.md")])
    }
    assert allowed_rows(reader.db, Filters(source_prefix="xss"), reader.passage_count).sum() == 0  # type: ignore[union-attr]
    assert reader.passage(reader.passages_of(document_id("press.md"))[0][1].id) is not None
    assert reader.document(document_id("xss.md")) is None
    assert "xss.md" not in reader.files()
    filtered = index.retrievers.dense.search(
        "jobbskatteavdrag",
        10,
        allowed=allowed_rows(reader.db, Filters(source_prefix="press"), everything),
    )
    assert filtered and all(row in set(np.flatnonzero(mask)) for row, _ in filtered)


def ranking_by_id(reader: IndexReader, ranking: list[tuple[int, float]]) -> list[tuple[str, float]]:
    passages = reader.passages_by_rows([row for row, _ in ranking])
    return sorted(
        ((passages[row].id, round(score, 4)) for row, score in ranking), key=lambda p: (-p[1], p[0])
    )


QUERIES = (
    "jobbskatteavdrag",
    "skatten på arbete",
    "interpellation Anna Andersson",
    "sfi",
    "bostadsbidrag",
)


def test_a_merge_searches_as_a_fresh_build_of_the_same_files(tmp_path: Path) -> None:
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = segment_settings(tmp_path)
    ingest(corpus, settings)
    for n in range(3):
        (corpus / f"ny-{n}.md").write_text(
            f"# Nytt {n}\n\n{PRESS_ADDED} Punkt {n}.\n", encoding="utf-8"
        )
        ingest(corpus, settings)
    (corpus / "xss.md").unlink()
    assert ingest(corpus, settings).segments == 5
    merged = merge_index(settings)
    assert merged.merged and merged.segments == 1
    fresh_settings = segment_settings(tmp_path / "fresh")
    ingest(corpus, fresh_settings)
    one, other = opened(settings), opened(fresh_settings)
    assert one.reader.single and "segments" not in one.reader.manifest
    assert one.reader.passage_count == other.reader.passage_count
    assert one.reader.files() == other.reader.files()
    for query in QUERIES:
        for leg in ("dense", "bm25"):
            a = getattr(one.retrievers, leg)
            b = getattr(other.retrievers, leg)
            ranked = [a.search(query, 20) if leg == "dense" else a.search_text(query, 20)]
            ranked.append(b.search(query, 20) if leg == "dense" else b.search_text(query, 20))
            assert ranking_by_id(one.reader, ranked[0]) == ranking_by_id(other.reader, ranked[1]), (
                leg,
                query,
            )
    # A build of one segment has nothing to merge.
    assert not merge_index(settings).merged


def test_ingest_merges_past_the_share_or_the_count(tmp_path: Path) -> None:
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = segment_settings(tmp_path, segment_max_count=2)
    ingest(corpus, settings)
    (corpus / "ny-0.md").write_text(f"# Nytt\n\n{PRESS_ADDED}\n", encoding="utf-8")
    assert ingest(corpus, settings).segments == 2
    (corpus / "ny-1.md").write_text(f"# Nyare\n\n{PRESS_ADDED} Igen.\n", encoding="utf-8")
    report = ingest(corpus, settings)
    assert report.merged and report.segments == 1
    reader = IndexReader(settings.index_dir)
    assert reader.single and not needs_merge(reader, settings)
    assert report.passages == reader.passage_count
    # By share: the later segments and deleted rows past 10 % of the rows.
    share = segment_settings(tmp_path, segment_merge_share=0.10)
    (corpus / "ny-2.md").write_text(f"# Nyast\n\n{PRESS_ADDED} {'Ord. ' * 600}\n", encoding="utf-8")
    assert ingest(corpus, share).merged


def test_the_full_path_writes_one_segment_when_segments_are_off(tmp_path: Path) -> None:
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = segment_settings(tmp_path, index_segments=False)
    ingest(corpus, settings)
    (corpus / "ny.md").write_text(f"# Nytt\n\n{PRESS_ADDED}\n", encoding="utf-8")
    report = ingest(corpus, settings)
    assert report.published and report.segments == 1
    reader = IndexReader(settings.index_dir)
    assert reader.single and SEGMENTS not in reader.manifest


def test_a_segment_publish_is_picked_up_by_a_hot_reload(tmp_path: Path) -> None:
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = segment_settings(tmp_path)
    ingest(corpus, settings)
    builds = Builds(lambda: opened(settings), lambda: settings.index_dir.resolve())
    builds.load()
    assert builds.current is not None
    assert builds.current.retrievers.bm25.search_text("bostadsbidrag glesbygden", 3) == []
    (corpus / "ny.md").write_text(f"# Nytt\n\n{PRESS_ADDED}\n", encoding="utf-8")
    ingest(corpus, settings)
    assert builds.maybe_reload(0, 0)
    current = builds.current
    assert current is not None and len(current.reader.segments) == 2
    rows = current.retrievers.bm25.search_text("bostadsbidrag glesbygden", 3)
    assert rows and current.reader.passages_by_rows([rows[0][0]])[rows[0][0]].doc_id == document_id(
        "ny.md"
    )


def test_a_failed_segment_publish_leaves_the_previous_build(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = segment_settings(tmp_path)
    ingest(corpus, settings)
    before = settings.index_dir.resolve()
    (corpus / "ny.md").write_text(f"# Nytt\n\n{PRESS_ADDED}\n", encoding="utf-8")
    from qa_service import store

    def no_link(source: Path, target: Path) -> None:
        raise OSError(28, "No space left on device", str(target))

    monkeypatch.setattr(store, "_link_tree", no_link)
    with pytest.raises(store.IndexWriteError):
        ingest(corpus, settings)
    assert settings.index_dir.resolve() == before
    assert sorted(p.name for p in builds_dir(settings.index_dir).iterdir() if p.is_dir()) == [
        before.name
    ]
    monkeypatch.undo()
    assert ingest(corpus, settings).segments == 2


def test_sigkill_while_linking_leaves_the_previous_build(tmp_path: Path) -> None:
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = segment_settings(tmp_path)
    ingest(corpus, settings)
    before = settings.index_dir.resolve()
    (corpus / "ny.md").write_text(f"# Nytt\n\n{PRESS_ADDED}\n", encoding="utf-8")
    assert kill_ingest_at("link", corpus, settings.index_dir, tmp_path) == -signal.SIGKILL
    assert settings.index_dir.resolve() == before
    half = [p for p in builds_dir(settings.index_dir).iterdir() if p.is_dir() and p != before]
    assert half and not any((p / "manifest.json").exists() for p in half)
    IndexReader(settings.index_dir).close()  # the previous build reads as it did
    rerun = ingest_in_child(corpus, settings.index_dir, tmp_path)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    report = json.loads(rerun.stdout)
    assert report["published"] and report["segments"] == 2
    assert not any(p.exists() for p in half)  # removed by the next run


def test_segmented_bm25_rescales_each_segment_to_the_global_idf(tmp_path: Path) -> None:
    texts = [f"skatt {'arbete ' * (i % 3)}kommun{i % 5} text" for i in range(40)]
    texts += ["bostadsbidrag glesbygd hyresrätt", "skatt bostadsbidrag"]
    whole = LexicalIndex.build(texts)
    parts = [(0, LexicalIndex.build(texts[:30])), (30, LexicalIndex.build(texts[30:]))]
    segmented = SegmentedLexicalIndex(parts)
    for term in ("skatt", "bostadsbidrag", "arbet", "kommun3"):
        assert segmented.document_frequency(term) == whole.document_frequency(term)
    # Each segment's idf is replaced by the global one: a term's scores differ only by
    # the segments' length normalisation, and the order of the passages is the same.
    for query in ("skatt bostadsbidrag", "arbete kommun3", "glesbygd"):
        a = whole.search(query, 42)
        b = segmented.search(query, 42)
        assert {row for row, _ in a} == {row for row, _ in b}
    deleted = np.zeros(42, dtype=bool)
    deleted[40] = True
    masked = SegmentedLexicalIndex(parts, deleted)
    assert 40 not in {row for row, _ in masked.search("bostadsbidrag", 5)}
    assert 41 in {row for row, _ in masked.search("bostadsbidrag", 5)}


@needs_shared
@pytest.mark.model
def test_one_and_several_segments_rank_the_shared_documents_alike(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """The same passages in one segment and in four: the dense leg's top 10 the same,
    the lexical leg's nearly (its length normalisation and compound splitting are each
    segment's own until a merge)."""
    sources = sorted(
        p
        for p in (SHARED / "corpus").rglob("*")
        if p.is_file() and p.suffix in (".txt", ".html", ".md")
    )[:8]
    if len(sources) < 4:
        pytest.skip("fewer than 4 text documents in the shared corpus")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    one = segment_settings(tmp_path / "one")
    many = segment_settings(tmp_path / "many")
    for i, source in enumerate(sources):
        shutil.copy(source, corpus / f"{i:02d}-{source.name}")
        if i % 2 == 1:
            run_ingest([corpus], many, embedder=embedder, progress=False)
    run_ingest([corpus], one, embedder=embedder, progress=False)
    a = open_index(one, embedder, embedder.encode_query)
    b = open_index(many, embedder, embedder.encode_query)
    assert len(b.reader.segments) == 4 and a.reader.single
    questions = [
        "Vad säger regeringen om arbetslinjen?",
        "försörjningsstöd och aktivitetskrav",
        "Hur ska brottsligheten minska?",
        "skatter för pensionärer",
        "integration och språkkrav",
        "Vilka åtgärder för bostäder?",
    ]
    lexical_overlap = []
    for question in questions:
        dense = [ranking_by_id(r.reader, r.retrievers.dense.search(question, 10)) for r in (a, b)]
        # The same passages; their vectors were embedded in other batches, so scores
        # agree to float rounding, and passages tied to that rounding may swap places.
        assert {i for i, _ in dense[0]} == {i for i, _ in dense[1]}, question
        scores = [dict(d) for d in dense]
        assert all(abs(scores[0][i] - scores[1][i]) < 2e-3 for i in scores[0]), question
        lexical = [
            {i for i, _ in ranking_by_id(r.reader, r.retrievers.bm25.search_text(question, 10))}
            for r in (a, b)
        ]
        lexical_overlap.append(len(lexical[0] & lexical[1]) / max(len(lexical[0]), 1))
    print("lexical top-10 overlap, one segment against four:", lexical_overlap)
    assert float(np.mean(lexical_overlap)) >= 0.8, lexical_overlap
    assert isinstance(load_lexical(b.reader), SegmentedLexicalIndex)


# --- builds written in several segments (QA_BUILD_SEGMENT_PASSAGES) ------------------------

TOPICS = (
    "arbetsmarknaden och yrkesvux",
    "bostadsbidrag och hyresrätter",
    "skatten på arbete och pensioner",
    "brottsligheten och polisen",
    "sfi och språkkrav för medborgarskap",
    "sjukvården i glesbygden",
)


def write_build_corpus(root: Path, files: int = 12) -> Path:
    """The small corpus and ``files`` Markdown texts of a few passages each."""
    write_small_corpus(root)
    for n in range(files):
        topic = TOPICS[n % len(TOPICS)]
        paragraphs = [
            f"Stycke {k} i text {n} om {topic}, med ord som {TOPICS[(n + k) % len(TOPICS)]}. " * 6
            for k in range(3)
        ]
        (root / f"text-{n:02d}.md").write_text(
            f"# Text {n} om {topic}\n\n" + "\n\n".join(paragraphs), encoding="utf-8"
        )
    return root


SEARCHES = (*QUERIES, "sjukvården i glesbygden", "polisen brottsligheten", "yrkesvux")


def same_searches(one, other) -> None:  # type: ignore[no-untyped-def]
    """Both indexes rank every query alike in the dense leg (ids and scores, every
    passage) and find the same passages in the lexical one, its top 10 nearly in the
    same order (each segment's BM25 length normalisation is its own, as in
    ``test_one_and_several_segments_rank_the_shared_documents_alike``)."""
    everything = one.reader.passage_count
    overlaps = []
    for query in SEARCHES:
        dense = [
            ranking_by_id(i.reader, i.retrievers.dense.search(query, everything))
            for i in (one, other)
        ]
        assert dense[0] and dense[0] == dense[1], query
        lexical = [
            [
                p
                for p, _ in ranking_by_id(
                    i.reader, i.retrievers.bm25.search_text(query, everything)
                )
            ]
            for i in (one, other)
        ]
        assert lexical[0] and set(lexical[0]) == set(lexical[1]), query
        top = [i.retrievers.bm25.search_text(query, 10) for i in (one, other)]
        ids = [
            {p for p, _ in ranking_by_id(i.reader, t)}
            for i, t in zip((one, other), top, strict=True)
        ]
        overlaps.append(len(ids[0] & ids[1]) / len(ids[0]))
    assert float(np.mean(overlaps)) >= 0.9, overlaps


def test_a_build_flushed_in_small_segments_searches_as_the_one_segment_build(
    tmp_path: Path,
) -> None:
    corpus = write_build_corpus(tmp_path / "corpus")
    whole_settings = segment_settings(tmp_path / "whole", build_segment_passages=0)
    flushed_settings = segment_settings(
        tmp_path / "flushed", build_segment_passages=8, segment_merge_share=0.10
    )
    whole = ingest(corpus, whole_settings)
    flushed = ingest(corpus, flushed_settings)
    assert whole.segments == 1 and flushed.segments >= 3
    assert flushed.passages == whole.passages and flushed.documents == whole.documents
    reader = IndexReader(flushed_settings.index_dir)
    entries = reader.manifest[SEGMENTS]
    assert len(entries) == flushed.segments and all(e["built"] for e in entries)
    assert entries[0]["path"] == "." and all(e["passages"] >= 8 for e in entries[:-1])
    # Each file's record is in the segment of its document.
    for i, segment in enumerate(reader.segments):
        ids = {r[0] for r in reader.db.execute(f"SELECT id FROM s{i}.documents")}
        sources = {r[0] for r in reader.db.execute(f"SELECT source FROM s{i}.files")}
        assert ids and {document_id(s) for s in sources} >= ids, segment.name
    # A build so written is not due a merge, at the default share, nor by its count of
    # segments: they count as one.
    assert not needs_merge(reader, flushed_settings)
    assert not needs_merge(reader, segment_settings(tmp_path, segment_max_count=1))
    assert not merge_index(flushed_settings).merged
    one, other = opened(whole_settings), opened(flushed_settings)
    assert one.reader.single and not other.reader.single
    assert one.reader.files() == other.reader.files()
    same_searches(one, other)
    reader.close()

    # A change afterwards is one segment more; its file was in a later one. (At the
    # default share it would be merged: one file is a large share of this corpus.)
    changed = sorted(corpus.glob("text-*.md"))[-1]
    with changed.open("a", encoding="utf-8") as handle:
        handle.write(f"\n{PRESS_ADDED}\n")
    flushed_settings = segment_settings(tmp_path / "flushed", build_segment_passages=8)
    report = ingest(corpus, flushed_settings)
    assert report.published and not report.merged and report.segments == flushed.segments + 1
    after = opened(flushed_settings)
    found = after.retrievers.bm25.search_text("bostadsbidrag glesbygden", 3)
    assert found and after.reader.passages_by_rows([found[0][0]])[found[0][0]].doc_id == (
        document_id(changed.name)
    )
    assert after.reader.deleted is not None
    deleted = set(np.flatnonzero(after.reader.deleted).tolist())
    assert deleted and not deleted & {
        int(r) for r in after.reader.rows_of_documents([document_id(changed.name)])
    }
    # A merge then writes the build anew in segments: the same as a whole build.
    merged = merge_index(flushed_settings)
    assert merged.merged and merged.segments >= 3
    ingest(corpus, whole_settings)
    same_searches(opened(whole_settings), opened(flushed_settings))


def test_a_build_writes_at_most_the_cap_of_segments(tmp_path: Path) -> None:
    corpus = write_build_corpus(tmp_path / "corpus")
    settings = segment_settings(tmp_path, build_segment_passages=2, build_max_segments=3)
    report = ingest(corpus, settings)
    assert report.segments == 3
    reader = IndexReader(settings.index_dir)
    sizes = [segment.rows for segment in reader.segments]
    # Each takes about a third (the flush size grown from 2), the last what is left.
    assert sum(sizes) == report.passages and min(sizes[:-1]) >= report.passages / 3
    for name, value in (("MAX_SEGMENTS", "10"), ("MAX_SEGMENTS", "0"), ("SEGMENT_PASSAGES", "-1")):
        with pytest.raises(ConfigError, match=f"QA_BUILD_{name}"):
            Settings.from_env({f"QA_BUILD_{name}": value})


def test_sentence_vectors_keep_a_build_in_one_segment(tmp_path: Path) -> None:
    corpus = write_build_corpus(tmp_path / "corpus", files=4)
    settings = segment_settings(tmp_path, build_segment_passages=2, sentence_vectors=True)
    report = ingest(corpus, settings)
    assert report.segments == 1
    assert IndexReader(settings.index_dir).has_sentence_vectors


def test_sigkill_after_a_segment_of_a_build_resumes_from_the_checkpoints(
    tmp_path: Path,
) -> None:
    corpus = write_build_corpus(tmp_path / "corpus")
    settings = segment_settings(tmp_path)
    extra = {"QA_BUILD_SEGMENT_PASSAGES": "8", "QA_CHECKPOINT_PASSAGES": "4"}
    returncode = kill_ingest_at("segment", corpus, settings.index_dir, tmp_path, extra)
    assert returncode == -signal.SIGKILL
    # Nothing published; the first segment was written out in the half build.
    assert not settings.index_dir.exists()
    (half,) = [p for p in builds_dir(settings.index_dir).iterdir() if p.is_dir()]
    assert (half / "vectors.faiss").exists() and not (half / "manifest.json").exists()
    rerun = ingest_in_child(corpus, settings.index_dir, tmp_path, extra)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    report = json.loads(rerun.stdout)
    assert report["published"] and report["segments"] >= 3 and not half.exists()
    # The batches embedded before the kill are read back, not embedded again.
    assert report["vectors_resumed"] >= 8
    assert report["vectors_resumed"] + report["passages_embedded"] == report["passages"]
    clean = segment_settings(tmp_path / "clean", build_segment_passages=0)
    ingest(corpus, clean)
    resumed = opened(segment_settings(tmp_path))
    assert resumed.reader.files() == opened(clean).reader.files()
    same_searches(opened(clean), resumed)


def test_a_first_build_writes_segments_while_it_reads(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The documents are written as they are read: a segment is out before the last
    files are read (the corpus is not held until the end)."""
    from qa_service import ingest as ingest_module
    from qa_service import store

    corpus = write_build_corpus(tmp_path / "corpus")
    settings = segment_settings(tmp_path, build_segment_passages=8)
    flushed: list[int] = []
    read_after: list[int] = []
    flush, process = store.IndexWriter._flush, ingest_module.process_file

    def counting_flush(self) -> None:  # type: ignore[no-untyped-def]
        flush(self)
        flushed.append(1)

    def noting_process(*args, **kwargs):  # type: ignore[no-untyped-def]
        read_after.append(len(flushed))
        return process(*args, **kwargs)

    monkeypatch.setattr(store.IndexWriter, "_flush", counting_flush)
    monkeypatch.setattr(ingest_module, "process_file", noting_process)
    report = ingest(corpus, settings)
    assert report.segments == len(flushed) + 1 >= 3
    assert read_after[0] == 0 and read_after[-1] >= 2, read_after
