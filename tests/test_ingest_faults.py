"""Fault injection for `qa ingest`: hostile files and names, disk full, read-only
directories, SIGKILL at each phase. Real files, real mounts and real processes; the
embedding model is a fast stand-in (tests/fake_embedder.py), since none of this is about
meaning."""

from __future__ import annotations

import json
import os
from pathlib import Path

from qa_service.config import Settings
from qa_service.ingest import discover, run_ingest
from qa_service.store import IndexReader, builds_dir
from tests.conftest import write_small_corpus
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
    """What lies in the builds directory besides complete builds and the lock."""
    root = builds_dir(settings.index_dir)
    names = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if path.name != "ingest.lock" and not (path / "manifest.json").exists():
            names.append(path.name)
    names += [p.name for p in settings.index_dir.parent.glob(".*.tmp")]
    return names


def snapshot(settings: Settings) -> tuple[Path, int, dict[str, str]]:
    reader = IndexReader(settings.index_dir)
    try:
        files = {source: record.sha256 for source, record in reader.files().items()}
        return settings.index_dir.resolve(), reader.passage_count, files
    finally:
        reader.close()
