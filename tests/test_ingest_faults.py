"""Fault injection for `qa ingest`: hostile files and names, disk full, read-only
directories, SIGKILL at each phase. Real files, real mounts and real processes; the
embedding model is a fast stand-in (tests/fake_embedder.py), since none of this is about
meaning."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa_service.config import Settings
from qa_service.ingest import discover, run_ingest
from qa_service.store import IndexReader, IndexWriteError, builds_dir
from tests.conftest import ROOT, write_small_corpus
from tests.fake_embedder import FakeEmbedder

TEXT = "Försörjningsstöd och aktivitetskrav i kommunerna. Arbetsmarknaden i Sverige.\n"


def fake_settings(tmp_path: Path) -> Settings:
    return Settings(index_dir=tmp_path / "indexes" / "test", conversations_db=tmp_path / "c.db")


def ingest(roots: list[Path], settings: Settings):  # type: ignore[no-untyped-def]
    return run_ingest(roots, settings, embedder=FakeEmbedder(), progress=False)  # type: ignore[arg-type]


def skipped(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {item["source"]: item["reason"] for item in report.skipped}


def dokumentstatus(html: str, title: str) -> str:
    record = {"dokument": {"titel": title, "doktyp": "ip", "rm": "2022/23", "html": html}}
    # A backslash-u in the texts stays an escape of the JSON (a lone surrogate, say).
    return json.dumps({"dokumentstatus": record}).replace("\\\\u", "\\u")


def write_fault_corpus(root: Path, outside: Path) -> dict[str, str]:
    """Files and names an unlucky or hostile corpus holds, made on disk under ``root``.

    Returns each source with what must happen to it: "indexed", or a part of the
    reason it is skipped with.
    """
    root.mkdir(parents=True)
    outside.mkdir(parents=True)
    (outside / "secret.txt").write_text("Hemligt lösenord utanför korpusen.\n", encoding="utf-8")
    expected: dict[str, str] = {}

    def put(name: str | bytes, data: bytes, source: str, outcome: str) -> None:
        path = os.path.join(os.fsencode(root), os.fsencode(name))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
        expected[source] = outcome

    text = TEXT.encode()
    put("good.txt", text, "good.txt", "indexed")
    # File names that are not UTF-8: shown with \x escapes, indexed all the same.
    put(b"bad-\xff.txt", text, "bad-\\xff.txt", "indexed")
    put(b"latin1-\xe5\xe4\xf6.md", b"# Rubrik\n\n" + text, "latin1-\\xe5\\xe4\\xf6.md", "indexed")
    # A real name that reads like an escaped one: the first of the two keeps the name.
    put(b"collide/bad-\\xff.txt", text, "collide/bad-\\xff.txt", "indexed")
    put(b"collide/bad-\xff.txt", text, "collide/bad-\\xff.txt#2", "same name")
    put("new\nline.txt", text, "new\nline.txt", "indexed")
    put("-rf *.txt", text, "-rf *.txt", "indexed")
    put("a\u0308-nfd 📄.txt", text, "a\u0308-nfd 📄.txt", "indexed")
    put("x" * 250 + ".txt", text, "x" * 250 + ".txt", "indexed")
    # Contents.
    put("one-latin1-byte.txt", text + b"F\xf6r alla.\n", "one-latin1-byte.txt", "indexed")
    put("cp1252.txt", TEXT.encode("cp1252"), "cp1252.txt", "indexed")
    put("utf16.txt", TEXT.encode("utf-16"), "utf16.txt", "indexed")
    put("utf16-nobom.md", TEXT.encode("utf-16-le"), "utf16-nobom.md", "indexed")
    put("utf8-bom.txt", b"\xef\xbb\xbf" + text, "utf8-bom.txt", "indexed")
    put(
        "surrogate.json",
        dokumentstatus("<p>" + TEXT + " \\ud800 slut.</p>", "Titel \\udfff").encode(),
        "surrogate.json",
        "indexed",
    )
    put("nul.txt", b"text\x00\x01\x02" * 100, "nul.txt", "binary file")
    put("empty.txt", b"", "empty.txt", "empty file")
    put("blank.md", b"  \n\n \t\n", "blank.md", "empty file")
    put("notes.docx", b"PK\x03\x04", "notes.docx", "unsupported file type")
    put("sub/inner.md", b"# Inne\n\n" + text, "sub/inner.md", "indexed")
    # Hidden files and directories are reported, not read.
    put(".hidden.txt", text, ".hidden.txt", "hidden file")
    put(".git/config", text, ".git/", "hidden directory")
    os.mkfifo(root / "fifo.txt")
    expected["fifo.txt"] = "not a regular file"
    # Symbolic links: to files outside the directories given, never followed.
    (root / "passwd.txt").symlink_to("/etc/passwd")
    expected["passwd.txt"] = "outside"
    (root / "secret.txt").symlink_to(outside / "secret.txt")
    expected["secret.txt"] = "outside"
    (root / "relative-escape.txt").symlink_to(Path("..") / outside.name / "secret.txt")
    expected["relative-escape.txt"] = "outside"
    # ... to a file inside: followed, once per file.
    (root / "alias.txt").symlink_to("good.txt")
    expected["alias.txt"] = "good.txt"
    put(".annex/objects/ab/cd", text + b"Annex.\n", ".annex/", "hidden directory")
    (root / "annexed.txt").symlink_to(".annex/objects/ab/cd")
    expected["annexed.txt"] = "indexed"
    # ... to a directory: not followed.
    (root / "linkdir").symlink_to("sub", target_is_directory=True)
    expected["linkdir/"] = "symbolic link to a directory"
    (root / "outdir").symlink_to(outside, target_is_directory=True)
    expected["outdir/"] = "symbolic link to a directory"
    (root / "dangling.txt").symlink_to(root / "missing.txt")
    expected["dangling.txt"] = "broken symbolic link"
    (root / "self.txt").symlink_to("self.txt")
    expected["self.txt"] = "broken symbolic link"
    return expected


def check_fault_report(report, expected: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    reasons = skipped(report)
    collided = expected.pop("collide/bad-\\xff.txt#2")
    assert collided in reasons["collide/bad-\\xff.txt"]
    for source, outcome in expected.items():
        if outcome == "indexed":
            assert source not in reasons or source == "collide/bad-\\xff.txt", source
        else:
            assert outcome in reasons.get(source, ""), (source, reasons.get(source))
    indexed = sorted(s for s, o in expected.items() if o == "indexed")
    assert report.files_indexed == len(indexed)
    assert report.published


def test_the_fault_corpus_is_indexed_or_reported_and_nothing_escapes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    expected = write_fault_corpus(corpus, tmp_path / "outside")
    settings = fake_settings(tmp_path)
    report = ingest([corpus], settings)
    check_fault_report(report, dict(expected))
    reader = IndexReader(settings.index_dir)
    sources = {d.source for d in reader.documents()}
    assert {"bad-\\xff.txt", "latin1-\\xe5\\xe4\\xf6.md", "annexed.txt"} <= sources
    texts = "\n".join(d.text for d in reader.documents())
    assert "lösenord" not in texts and "root:" not in texts  # nothing from outside
    assert "Ã" not in texts and "För alla." in texts
    warned = {w["source"]: w["warning"] for w in report.warnings}
    assert "not valid UTF-8" in warned["bad-\\xff.txt"]
    assert "cp1252" in warned["one-latin1-byte.txt"]
    # The names are stable: the next run reads nothing again.
    again = ingest([corpus], settings)
    assert not again.published and again.files_indexed == 0
    assert again.files_reused == report.files_indexed


def test_the_fault_corpus_through_the_command_line(tmp_path: Path, runner, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from qa_service import ingest as ingest_module
    from qa_service.cli import main

    monkeypatch.setattr(ingest_module, "make_embedder", lambda settings: FakeEmbedder())
    corpus = tmp_path / "corpus"
    write_fault_corpus(corpus, tmp_path / "outside")
    index = tmp_path / "indexes" / "test"
    result = runner.invoke(main, ["ingest", str(corpus), "--index", str(index)])
    assert result.exit_code == 0, result.output
    assert "bad-\\xff.txt" in result.output and "outside" in result.output
    result = runner.invoke(main, ["ingest", str(corpus), "--index", str(index), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert any(s["source"] == "passwd.txt" for s in data["skipped"])


def test_the_same_name_under_two_directories_is_indexed_once(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for root in (first, second):
        root.mkdir()
        (root / "same.txt").write_text(TEXT + root.name, encoding="utf-8")
    files, problems = discover([first, second])
    assert [f.path for f in files] == [first / "same.txt"]
    assert [p["source"] for p in problems] == ["same.txt"]
    report = ingest([first, second], fake_settings(tmp_path))
    assert report.published and report.files_indexed == 1


def test_a_link_into_another_directory_given_is_followed(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    write_small_corpus(first)
    second.mkdir()
    (second / "elsewhere.txt").symlink_to(first / "press.md")
    (second / "unique.md").symlink_to(tmp_path / "unique.md")
    (tmp_path / "unique.md").write_text("# Utanför\n\n" + TEXT, encoding="utf-8")
    files, problems = discover([first, second])
    reasons = {p["source"]: p["reason"] for p in problems}
    assert "press.md" in reasons["elsewhere.txt"]
    assert "outside" in reasons["unique.md"]
    assert "elsewhere.txt" not in {f.source for f in files}


def test_a_file_that_vanishes_after_discovery_is_reported(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from qa_service import ingest as ingest_module

    corpus = write_small_corpus(tmp_path / "corpus")
    found = discover([corpus])

    def and_one_goes(roots):  # type: ignore[no-untyped-def]
        (corpus / "press.md").unlink()
        return found

    monkeypatch.setattr(ingest_module, "discover", and_one_goes)
    report = ingest([corpus], fake_settings(tmp_path))
    assert report.published
    assert "No such file" in skipped(report)["press.md"]


def leftovers(settings: Settings) -> list[str]:
    """Half-written builds and temporary links: what a dead writer may leave."""
    root = builds_dir(settings.index_dir)
    names = [
        path.name
        for path in (sorted(root.iterdir()) if root.is_dir() else [])
        if path.is_dir() and not path.name.startswith("moved-")
        if not (path / "manifest.json").exists()
    ]
    return names + [p.name for p in settings.index_dir.parent.glob(".*.tmp")]


def complete_builds(settings: Settings) -> list[str]:
    root = builds_dir(settings.index_dir)
    return sorted(p.name for p in root.iterdir() if (p / "manifest.json").exists())


def snapshot(settings: Settings) -> tuple[Path, int, dict[str, str]]:
    """What readers see: the published build, its passage count and its files."""
    reader = IndexReader(settings.index_dir)
    try:
        files = {source: record.sha256 for source, record in reader.files().items()}
        return settings.index_dir.resolve(), reader.passage_count, files
    finally:
        reader.close()


def add_files(corpus: Path, count: int, tag: str = "ny") -> None:
    for n in range(count):
        (corpus / f"{tag}-{n:02d}.md").write_text(
            f"# Text {tag} {n}\n\n" + f"Mening {n} om arbetsmarknaden och yrkesvux. " * 60,
            encoding="utf-8",
        )


def test_what_an_interrupted_ingest_left_is_removed_by_the_next_run(tmp_path: Path) -> None:
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = fake_settings(tmp_path)
    ingest([corpus], settings)
    add_files(corpus, 1)
    ingest([corpus], settings)
    root = builds_dir(settings.index_dir)
    older, current = complete_builds(settings)
    published = settings.index_dir.resolve().name
    # A build half-written a moment ago, a temporary link, and an index directory moved
    # aside (not ours to remove).
    (root / "29990101T000000-0badbeef").mkdir()
    (root / "29990101T000000-0badbeef" / "passages.sqlite3").write_bytes(b"half")
    (settings.index_dir.parent / ".test.1234abcd.tmp").symlink_to(root / published)
    (root / "moved-1234abcd").mkdir()
    report = ingest([corpus], settings)
    assert not report.published  # nothing to do, and yet:
    assert leftovers(settings) == []
    assert complete_builds(settings) == sorted([older, current])  # may be open in readers
    assert (root / "moved-1234abcd").is_dir()
    assert settings.index_dir.resolve().name == published


# --- disk full and read-only directories: a small tmpfs of our own ------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs mounted at a fresh directory (skipped where we may not mount)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"may not mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` up, then give back ``leave`` bytes."""
    filler = disk / "filler"
    block = b"\0" * 65536
    with open(filler, "wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(block)
            handle.flush()
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))
    return filler


def on_disk_settings(disk: Path, tmp_path: Path) -> Settings:
    return Settings(index_dir=disk / "indexes" / "test", conversations_db=tmp_path / "c.db")


def test_a_full_disk_fails_clearly_and_leaves_the_index_as_it_was(
    tmp_path: Path, small_disk: Path, runner, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from qa_service import ingest as ingest_module
    from qa_service.cli import main

    monkeypatch.setattr(ingest_module, "make_embedder", lambda settings: FakeEmbedder())
    corpus = write_small_corpus(tmp_path / "corpus")
    add_files(corpus, 20)
    settings = on_disk_settings(small_disk, tmp_path)
    ingest([corpus], settings)
    before = snapshot(settings)
    add_files(corpus, 20, tag="mer")
    # How big the new build will be, measured on an ordinary disk: its database comes
    # first, then the lexical index, the vectors, the arrays, the manifest.
    reference = fake_settings(tmp_path / "reference")
    ingest([corpus], reference)
    database = (reference.index_dir / "passages.sqlite3").stat().st_size
    total = sum(f.stat().st_size + 4096 for f in reference.index_dir.resolve().rglob("*"))
    # From the command line: one line, no traceback, a non-zero exit.
    filler = fill(small_disk, 0)
    result = runner.invoke(main, ["ingest", str(corpus), "--index", str(settings.index_dir)])
    filler.unlink()
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot write the index at ")
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert snapshot(settings) == before and leftovers(settings) == []
    # The disk fills at a different point of the build each time, until it fits.
    failures: dict[str, str] = {}
    for leave in [0, 4096, *range(database - 16384, total + 65536, 4096)]:
        filler = fill(small_disk, leave)
        try:
            report = ingest([corpus], settings)
        except IndexWriteError as exc:
            message = str(exc)
            assert message.startswith(f"cannot write the index at {settings.index_dir}: ")
            assert message.endswith("nothing was published and the index in use is unchanged")
            assert snapshot(settings) == before
            assert leftovers(settings) == []
            assert complete_builds(settings) == [before[0].name]
            failures.setdefault(message.split(": ", 1)[1].split(";")[0], message)
        else:
            assert report.published and report.files_indexed == 20
            break
        finally:
            filler.unlink()
    else:
        pytest.fail("the build never fitted")
    assert "database or disk is full" in failures
    assert "vectors.faiss could not be written: No space left on device" in failures
    assert sum(1 for m in failures if m.startswith("No space left on device")) >= 1
    assert snapshot(settings)[1] > before[1] and leftovers(settings) == []


@pytest.mark.parametrize("how", ["read-only mount", "no write permission"])
def test_a_read_only_index_directory_fails_clearly(
    tmp_path: Path, small_disk: Path, runner, monkeypatch, how: str
) -> None:  # type: ignore[no-untyped-def]
    from qa_service import ingest as ingest_module
    from qa_service.cli import main

    monkeypatch.setattr(ingest_module, "make_embedder", lambda settings: FakeEmbedder())
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = on_disk_settings(small_disk, tmp_path)
    ingest([corpus], settings)
    before = snapshot(settings)
    fresh = small_disk / "indexes" / "fresh"

    def protect(on: bool) -> None:
        if how == "read-only mount":
            option = "remount,ro" if on else "remount,rw"
            subprocess.run(["mount", "-o", option, str(small_disk)], check=True)
        else:
            for path in (small_disk / "indexes", builds_dir(settings.index_dir)):
                path.chmod(0o555 if on else 0o755)

    if how == "no write permission" and os.geteuid() == 0:
        pytest.skip("root writes whatever the permission bits say")
    protect(True)
    try:
        args = ["ingest", str(corpus), "--index", str(settings.index_dir)]
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output  # up to date: nothing to write
        assert "up to date" in result.output
        add_files(corpus, 2)
        for index in (settings.index_dir, fresh):
            result = runner.invoke(main, ["ingest", str(corpus), "--index", str(index)])
            assert result.exit_code == 1, result.output
            assert result.output.startswith(f"Error: cannot write the index at {index}: ")
            assert "Read-only file system" in result.output or "Permission" in result.output
            assert len(result.output.strip().splitlines()) == 1, result.output
        assert snapshot(settings) == before
    finally:
        protect(False)
    assert leftovers(settings) == []
    assert ingest([corpus], settings).published


# --- SIGKILL at each phase of a real `qa ingest` process ----------------------------------


def child(args: list[str], pause_at: str | None, mark: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QA_TEST_MARK": str(mark)}
    env.pop("QA_TEST_PAUSE_AT", None)
    if pause_at:
        env["QA_TEST_PAUSE_AT"] = pause_at
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ingest_child", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("phase", ["read", "embed", "write", "vectors", "publish"])
def test_sigkill_at_each_phase_leaves_the_index_intact(tmp_path: Path, phase: str) -> None:
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = fake_settings(tmp_path)
    ingest([corpus], settings)
    before = snapshot(settings)
    add_files(corpus, 5)
    args = ["ingest", str(corpus), "--index", str(settings.index_dir), "--json"]
    mark = tmp_path / "stopped"
    job = child(args, phase, mark)
    try:
        deadline = time.monotonic() + 60
        while not mark.exists() and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mark.exists(), job.communicate(timeout=5)[1].decode()[-2000:]
        assert mark.read_text() == phase
    finally:
        job.kill()
        job.communicate(timeout=30)
    assert job.returncode == -signal.SIGKILL
    assert snapshot(settings) == before
    if phase in ("write", "vectors"):
        assert leftovers(settings), "the kill should have left a half-written build"
    if phase == "publish":
        assert len(complete_builds(settings)) == 2  # complete, never published
    published = complete_builds(settings)
    rerun = child(args, None, mark)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()[-2000:]
    report = json.loads(out)
    assert report["published"] and report["files_indexed"] == 5
    assert report["files_reused"] == 4
    after = snapshot(settings)
    assert after[0] != before[0] and set(after[2]) > set(before[2])
    assert leftovers(settings) == []
    # The builds before stay for readers that may have them open, pruned as usual.
    assert complete_builds(settings) == sorted([*published, after[0].name])


def test_a_failing_swap_leaves_the_old_link_and_no_temporary_one(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = fake_settings(tmp_path)
    ingest([corpus], settings)
    before = snapshot(settings)
    add_files(corpus, 1)
    real_replace = os.replace

    def failing_replace(src, dst):  # type: ignore[no-untyped-def]
        if Path(dst) == settings.index_dir:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(IndexWriteError, match="Input/output error"):
        ingest([corpus], settings)
    assert snapshot(settings) == before and leftovers(settings) == []
    assert complete_builds(settings) == [before[0].name]


def test_a_published_build_survives_a_failing_cleanup(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from qa_service import store

    corpus = write_small_corpus(tmp_path / "corpus")
    settings = fake_settings(tmp_path)
    ingest([corpus], settings)
    add_files(corpus, 1)

    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    real_fsync = store._fsync

    def failing_after_the_swap(path: Path) -> None:
        if path == settings.index_dir.parent:
            failing()
        real_fsync(path)

    monkeypatch.setattr(store, "prune_builds", failing)
    monkeypatch.setattr(store, "_fsync", failing_after_the_swap)
    report = ingest([corpus], settings)
    assert report.published and report.files_indexed == 1
    monkeypatch.undo()
    assert snapshot(settings)[2].keys() >= {"ny-00.md"}


def test_a_document_the_database_cannot_hold_is_reported_and_the_rest_written(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from qa_service import ingest as ingest_module

    real = ingest_module.build_document

    def odd_title(item, result, sha, sidecar):  # type: ignore[no-untyped-def]
        document, spans = real(item, result, sha, sidecar)
        if item.source == "press.md":
            document.meta.title = "Titel \ud800"  # a reader's metadata, not its text
        return document, spans

    monkeypatch.setattr(ingest_module, "build_document", odd_title)
    corpus = write_small_corpus(tmp_path / "corpus")
    settings = fake_settings(tmp_path)
    report = ingest([corpus], settings)
    assert report.published and report.files_indexed == 3
    assert skipped(report)["press.md"].startswith("error: could not be written")
    reader = IndexReader(settings.index_dir)
    assert "press.md" not in {d.source for d in reader.documents()}
    assert len(reader.passage_documents) == reader.passage_count == report.passages  # type: ignore[arg-type]


def test_a_checkpoint_that_cannot_be_written_ends_the_job_clearly(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from qa_service import checkpoints

    corpus = write_small_corpus(tmp_path / "corpus")
    settings = fake_settings(tmp_path)
    ingest([corpus], settings)
    before = snapshot(settings)
    add_files(corpus, 2)

    def full(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoints.os, "fsync", full)
    with pytest.raises(IndexWriteError, match="No space left on device; nothing was published"):
        ingest([corpus], settings)
    assert snapshot(settings) == before and leftovers(settings) == []
    monkeypatch.undo()
    assert ingest([corpus], settings).files_indexed == 2
