"""The ingestion job: discover -> read -> clean -> split -> embed -> store.

Incremental: a file whose size and modification time are unchanged since the last build
keeps its passages and vectors; new and changed files are embedded; files that are gone
lose their passages. One bad file never stops the job: it is reported with a reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from .approximate import approximate_settings
from .checkpoints import (
    EmbedResult,
    VectorCheckpoints,
    checkpoints_dir,
    embed_groups_in_blocks,
    one_block_at_a_time,
)
from .cleaning import clean_text
from .config import Settings
from .domain.profiles import complete_from_text
from .embedding import Embedder, make_embedder
from .extractive import sentences
from .hashing import file_sha256
from .lexical import LEXICAL_VERSION, LexicalIndex
from .metadata import (
    meta_from_filename,
    meta_from_manifest_record,
    metadata_line,
)
from .readers import ReadResult, SkipFile, read_document
from .schema import Document, DocumentMeta, Passage, document_id, passage_id
from .splitting import SectionSpan, split_sections
from .store import (
    MAX_SEGMENTS,
    FileRecord,
    IndexNotFound,
    IndexReader,
    IndexStoreError,
    IndexWriter,
    Segment,
    builds_dir,
    check_compatible,
    check_vector_agreement,
    remove_abandoned_builds,
    writing,
)

logger = logging.getLogger(__name__)

SIDECAR = "manifest.jsonl"
#: Part of the build settings: a change here re-splits and re-embeds every document.
SPLITTER_NAME = "langchain RecursiveCharacterTextSplitter (model tokenizer) v2"
#: What reading, cleaning and metadata produce. A change here reads every file again;
#: passages whose text is unchanged keep their vectors, so only new text is embedded.
#: 4: list items keep their lines (cleaning.collapse_whitespace); 5: dokumentstatus
#: ministers apart from authors, a written answer linked to its question; 6: regeringen.se's
#: propositions and skrivelser (rattsliga-dokument/proposition, /skrivelse) have their kind;
#: 7: ferenda's copies of regeringen.se's series (propositions, directives, SOU, Ds) have
#: their kind and number from the path.
READER_VERSION = 7
#: A document's context text is cut here (about 100 tokens at most).
MAX_CONTEXT_CHARS = 300
LEXICAL_MANIFEST = {
    "method": "bm25s",
    "stemmer": "snowball-swedish",
    "decompounding": True,
    "version": LEXICAL_VERSION,
}


class IngestError(RuntimeError):
    """The job as a whole cannot run (no input, index locked, unusable model)."""


@dataclass(frozen=True)
class SourceFile:
    path: Path
    source: str
    #: The name is not valid UTF-8: ``source`` writes its odd bytes as ``\xff`` escapes.
    escaped: bool = False


def source_name(relative: str) -> str:
    """How a file's path (relative to the directory given) is named in the index.

    The path as it is, with forward slashes, except that bytes of a name that are not
    UTF-8 (which Python holds as lone surrogates, ``surrogateescape``) are written as
    ``\xff`` escapes: the name can then be stored, printed and sent as JSON, and is the
    same on every run. A real name that reads the same (with a backslash) collides with
    it; :func:`discover` indexes the first and reports the other.
    """
    return os.fsencode(relative).decode("utf-8", errors="backslashreplace")


def printable(text: str) -> str:
    """``text`` with any lone surrogates (a file name in an error message) escaped."""
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8")


@dataclass
class IngestReport:
    index: str
    files_seen: int = 0
    files_indexed: int = 0
    files_reused: int = 0
    #: Files with a new modification time but the content read before (not read again).
    files_touched: int = 0
    files_removed: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)
    documents: int = 0
    passages: int = 0
    passages_embedded: int = 0
    #: Passages of re-read files whose text an earlier build had embedded already.
    vectors_reused: int = 0
    #: Passages whose vectors an interrupted run had checkpointed (not embedded again).
    vectors_resumed: int = 0
    #: Distinct sentences embedded (QA_SENTENCE_VECTORS), and passages whose sentence
    #: vectors an earlier build had.
    sentences_embedded: int = 0
    sentence_vectors_reused: int = 0
    #: What embedded them: library, device, precision.
    encoder: str = ""
    seconds: float = 0.0
    embed_seconds: float = 0.0
    sentence_seconds: float = 0.0
    published: bool = False
    #: Segments of the published build (1: a full build), and whether this run merged them.
    segments: int = 0
    merged: bool = False

    @property
    def passages_per_second(self) -> float:
        return self.passages_embedded / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["files_skipped"] = len(self.skipped)
        data["passages_per_second"] = round(self.passages_per_second, 2)
        data["seconds"] = round(self.seconds, 3)
        data["embed_seconds"] = round(self.embed_seconds, 3)
        data["sentence_seconds"] = round(self.sentence_seconds, 3)
        return data


#: Why discovery did not take a file or directory (a directory's source ends in "/").
HIDDEN_FILE = "hidden file (name starts with '.')"
HIDDEN_DIRECTORY = "hidden directory (name starts with '.'), not read"
LINKED_DIRECTORY = "symbolic link to a directory, not followed"
LINK_OUTSIDE = "symbolic link to a file outside the directories being ingested, not followed"
BROKEN_LINK = "broken symbolic link"
NOT_REGULAR = "not a regular file"
SAME_NAME = "another file is indexed under the same name"


def discover(roots: Sequence[Path]) -> tuple[list[SourceFile], list[dict[str, str]]]:
    """Every regular file under the roots (or the roots themselves when files), and
    what was passed over, each with a reason.

    ``source`` is the path relative to its root, with forward slashes (see
    :func:`source_name`). Hidden files and directories (names starting with ".") are
    reported and not read. Symbolic links to directories are reported and not followed
    (no loops, no file twice). A symbolic link to a file is followed when the file lies
    inside one of the roots and is not indexed under a name of its own already (a link
    into ``.git/annex``, say); a link that leads outside the roots (``/etc/passwd``) is
    reported and not read.
    """
    found: list[SourceFile] = []
    problems: list[dict[str, str]] = []
    real_roots = [root.resolve() for root in roots]
    # Regular files by identity, then links: a link to a file found anyway is not kept.
    by_identity: dict[tuple[int, int], str] = {}
    links: list[tuple[SourceFile, tuple[int, int]]] = []
    sources: set[str] = set()

    def take(item: SourceFile) -> None:
        if item.source in sources:
            problems.append({"source": item.source, "reason": SAME_NAME})
        else:
            sources.add(item.source)
            found.append(item)

    def named(path: Path, root: Path) -> tuple[str, bool]:
        relative = path.relative_to(root).as_posix()
        source = source_name(relative)
        return source, source != relative

    for root in roots:
        if root.is_file():
            source, escaped = named(root, root.parent)
            take(SourceFile(root, source, escaped))
            continue
        if not root.is_dir():
            raise IngestError(f"{printable(str(root))} is neither a file nor a directory")
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            here = Path(dirpath)
            kept = []
            for name in sorted(dirnames):
                source = named(here / name, root)[0] + "/"
                if name.startswith("."):
                    problems.append({"source": source, "reason": HIDDEN_DIRECTORY})
                elif (here / name).is_symlink():
                    problems.append({"source": source, "reason": LINKED_DIRECTORY})
                else:
                    kept.append(name)
            dirnames[:] = kept
            for name in sorted(filenames):
                path = here / name
                source, escaped = named(path, root)
                if name.startswith("."):
                    problems.append({"source": source, "reason": HIDDEN_FILE})
                    continue
                link = path.is_symlink()
                if link:
                    try:
                        target = path.resolve(strict=True)
                    except (OSError, RuntimeError):  # missing, or a loop
                        problems.append({"source": source, "reason": BROKEN_LINK})
                        continue
                    if not any(target.is_relative_to(r) for r in real_roots):
                        problems.append({"source": source, "reason": LINK_OUTSIDE})
                        continue
                try:
                    stat = path.stat()
                except OSError as exc:
                    reason = f"error: cannot read: {exc.strerror}"
                    problems.append({"source": source, "reason": reason})
                    continue
                if not S_ISREG(stat.st_mode):
                    problems.append({"source": source, "reason": NOT_REGULAR})
                    continue
                item = SourceFile(path, source, escaped)
                if link:
                    links.append((item, (stat.st_dev, stat.st_ino)))
                else:
                    by_identity.setdefault((stat.st_dev, stat.st_ino), source)
                    take(item)
    for item, identity in links:
        if identity in by_identity:
            reason = f"symbolic link to {by_identity[identity]}, indexed under that name"
            problems.append({"source": item.source, "reason": reason})
        else:
            by_identity[identity] = item.source
            take(item)
    return found, problems


def load_sidecars(files: Sequence[SourceFile]) -> dict[Path, dict[str, Any]]:
    """Records of ``manifest.jsonl`` sidecars, keyed by the absolute path they describe."""
    records: dict[Path, dict[str, Any]] = {}
    for item in files:
        if item.path.name != SIDECAR:
            continue
        try:
            lines = item.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            logger.warning("cannot read %s: %s", item.source, exc)
            continue
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("file"), str):
                records[(item.path.parent / record["file"]).resolve()] = record
    return records


def sidecar_digest(record: dict[str, Any] | None) -> str:
    """A fingerprint of a file's sidecar record ("" without one): a changed record means
    the file's metadata changed, so it is read again."""
    if record is None:
        return ""
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _fallback_title(text: str, source: str) -> str:
    for line in text.split("\n"):
        line = line.strip()
        if 3 < len(line) <= 160:
            return line
    return Path(source).stem


def build_document(
    item: SourceFile, result: ReadResult, sha: str, sidecar: dict[str, Any] | None
) -> tuple[Document, list[SectionSpan]]:
    """Clean the reader's sections into one text and merge metadata from every source."""
    parts: list[str] = []
    spans: list[SectionSpan] = []
    cursor = 0
    for section in result.sections:
        cleaned = clean_text(section.text, reflow=result.reflow)
        if not cleaned:
            continue
        if section.heading:
            cleaned = f"{section.heading}\n\n{cleaned}"
        if parts:
            cursor += 2  # the blank line joining sections
        spans.append(
            SectionSpan(
                cursor,
                cursor + len(cleaned),
                section.page,
                section.heading,
                section.speaker,
                section.party,
            )
        )
        parts.append(cleaned)
        cursor += len(cleaned)
    text = "\n\n".join(parts)
    if not text.strip():
        raise SkipFile("no text after cleaning")
    meta: DocumentMeta = result.meta
    if sidecar:
        meta = meta.merge(meta_from_manifest_record(sidecar))
    meta = meta.merge(meta_from_filename(item.source))
    if not meta.title:
        meta.title = _fallback_title(text, item.source)
    meta = complete_from_text(meta, text)  # what a source's documents say only in their text
    document = Document(
        id=document_id(item.source),
        source=item.source,
        sha256=sha,
        meta=meta,
        text=text,
        reader=result.reader,
        page_count=result.page_count,
    )
    return document, spans


def make_passages(
    document: Document, spans: Sequence[SectionSpan], embedder: Embedder, settings: Settings
) -> list[Passage]:
    chunk_tokens = settings.chunk_tokens or embedder.max_tokens
    chunk_tokens = min(chunk_tokens, embedder.max_tokens)
    chunks = split_sections(
        document.text,
        spans,
        count_tokens=embedder.count_tokens,
        chunk_tokens=chunk_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
    )
    return [
        Passage(
            id=passage_id(document.source, chunk.char_start, chunk.text),
            doc_id=document.id,
            ordinal=i,
            text=chunk.text,
            char_start=chunk.char_start,
            char_end=chunk.char_end,
            page=chunk.span.page,
            heading=chunk.span.heading,
            speaker=chunk.span.speaker,
            party=chunk.span.party,
        )
        for i, chunk in enumerate(chunks)
    ]


def _build_settings(settings: Settings) -> dict[str, Any]:
    """What must match for an old build's vectors to be reused."""
    return {
        "model": settings.model,
        "query_prompt": settings.query_prompt,
        "passage_prompt": settings.passage_prompt,
        "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap_tokens": settings.chunk_overlap_tokens,
        "splitter": SPLITTER_NAME,
    }


@contextlib.contextmanager
def _build_lock(index_path: Path) -> Iterator[None]:
    """Hold the index's ingest lock, and clear away what a writer that died left."""
    lock_dir = builds_dir(index_path)
    lock = lock_dir / "ingest.lock"
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        try:  # a read-only index can still be found up to date
            fd = os.open(lock, os.O_RDONLY)
        except OSError:
            raise IngestError(
                f"cannot write the index at {index_path}: {exc.strerror}"
                + (f" ({exc.filename})" if exc.filename else "")
            ) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IngestError(f"another `qa ingest` is writing {index_path}") from exc
        removed = remove_abandoned_builds(index_path)
        if removed:
            logger.info("removed what an interrupted ingest left: %s", ", ".join(removed))
        yield
    finally:
        os.close(fd)


def _open_previous(
    index_path: Path, wanted: dict[str, Any], embedder: Embedder
) -> IndexReader | None:
    try:
        previous = IndexReader(index_path)
    except IndexNotFound:
        return None
    except IndexStoreError as exc:
        logger.warning("rebuilding from scratch: %s", exc)
        return None
    old = {key: previous.manifest.get(key) for key in wanted}
    others = {key: value for key, value in wanted.items() if key != "model"}
    if any(old[key] != value for key, value in others.items()):
        logger.info("index settings changed (%s -> %s): re-embedding everything", old, wanted)
        previous.close()
        return None
    try:
        # A build under an earlier name of the model keeps its vectors if they agree; the
        # check embeds a sample, so only once every other setting is known to match.
        if check_compatible(previous.manifest, model=wanted["model"], dimension=None):
            check_vector_agreement(previous, embedder.encode_passages)
    except IndexStoreError as exc:
        logger.info("re-embedding everything: %s", exc)
        previous.close()
        return None
    return previous


def run_ingest(
    roots: Sequence[Path],
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    progress: bool | None = None,
    engine: IngestEngine | None = None,
) -> IngestReport:
    """Bring the index at ``settings.index_dir`` in line with the files under ``roots``.

    ``engine`` reads and embeds (default: :class:`LocalEngine`, here in this process;
    ``ray_ingest.RayEngine`` on a Ray cluster); what is reused, stored and published is
    decided here either way.
    """
    started = time.perf_counter()
    index_path = settings.index_dir
    report = IngestReport(index=str(index_path))
    if progress is None:
        progress = sys.stderr.isatty()
    files, problems = discover(roots)
    report.skipped.extend(problems)
    report.warnings.extend(
        {"source": item.source, "warning": "file name not valid UTF-8: shown with \\x escapes"}
        for item in files
        if item.escaped
    )
    report.files_seen = len(files) + len(problems)
    sidecars = load_sidecars(files)
    embedder = embedder or make_embedder(settings)
    engine = engine or LocalEngine(embedder, settings)
    wanted = _build_settings(settings)
    with _build_lock(index_path):
        previous = _open_previous(index_path, wanted, embedder)
        old_files = previous.files() if previous else {}
        reread = previous is not None and previous.manifest.get("reader") != READER_VERSION
        # Builds from before sidecar fingerprints were kept: assume their records unchanged.
        old_digests: dict[str, str] | None = previous.manifest.get("sidecars") if previous else None
        digests = {
            item.source: digest
            for item in files
            if (digest := sidecar_digest(sidecars.get(item.path.resolve())))
        }
        if reread:
            logger.info("the reader has changed: reading every file again")

        # First what each file needs (cheap: a stat, a digest for a touched file), then
        # the files to read go to the engine as one list, in order.
        plan: list[dict[str, str] | FileRecord | tuple[FileRecord, str] | FileJob] = []
        previous_ids: set[str] | None = None
        for item in files:
            if item.path.name in settings.ignore_names:
                reason = (
                    "metadata sidecar (used for document metadata)"
                    if item.path.name == SIDECAR
                    else "ignored by name (QA_IGNORE_NAMES)"
                )
                plan.append({"source": item.source, "reason": reason})
                continue
            try:
                stat = item.path.stat()
            except OSError as exc:  # gone or unreadable since it was found
                reason = f"error: cannot read: {exc.strerror}"
                plan.append({"source": item.source, "reason": reason})
                continue
            old = old_files.get(item.source)
            # A file that failed with an error (not a reason of its own) is tried again.
            failed = old is not None and (old.reason or "").startswith("error:")
            if (
                old is not None
                and old.size == stat.st_size
                and not failed
                and not reread
                and (
                    old_digests is None
                    or old_digests.get(item.source, "") == digests.get(item.source, "")
                )
                and (old.mtime_ns == stat.st_mtime_ns or _same_content(item.path, old))
            ):
                if old.mtime_ns != stat.st_mtime_ns:
                    # Touched (copied, checked out again) but not changed: not read again.
                    old = dataclasses.replace(old, mtime_ns=stat.st_mtime_ns)
                    report.files_touched += 1
                if old.status == "skipped":
                    plan.append(old)
                    continue
                assert previous is not None
                doc_id = document_id(item.source)
                if previous_ids is None:
                    # The ids alone: reading every document (its text) is the index's size.
                    previous_ids = {r[0] for r in previous.db.execute("SELECT id FROM documents")}
                if doc_id in previous_ids:
                    plan.append((old, doc_id))
                    continue
            sidecar = sidecars.get(item.path.resolve())
            plan.append(FileJob(item, stat.st_size, stat.st_mtime_ns, sidecar))

        records: list[FileRecord] = []
        kept: list[tuple[FileRecord, str]] = []
        jobs = [step for step in plan if isinstance(step, FileJob)]
        results = iter(engine.read(jobs, progress))
        reading = _Reading(total_bytes=sum(job.size for job in jobs))

        def read() -> Iterator[tuple[FileRecord, Document, list[Passage]]]:
            """Each read file's record, document and passages as the engine gives them,
            in the plan's order (the other steps' records noted on the way)."""
            for step in plan:
                if isinstance(step, dict):
                    report.skipped.append(step)
                elif isinstance(step, FileRecord):
                    records.append(step)
                    report.skipped.append({"source": step.source, "reason": step.reason or ""})
                elif isinstance(step, tuple):
                    record, doc_id = step
                    records.append(record)
                    kept.append((record, doc_id))
                    report.files_reused += 1
                else:
                    result = next(results)
                    reading.bytes += step.size
                    report.warnings.extend(result.warnings)
                    records.append(result.record)
                    if result.entry is not None:
                        reading.passages += len(result.entry[1])
                        yield result.record, *result.entry
                    else:
                        reason = result.record.reason or ""
                        report.skipped.append({"source": step.item.source, "reason": reason})
            # Run the engine to its end (its progress bar closes there): one result a job.
            if next(results, None) is not None:
                raise IngestError("the engine returned more results than files to read")

        if previous is None:
            # Nothing to reuse or compare: each document is embedded and written as it
            # is read, a batch at a time, and the corpus is never held.
            _first_build(
                index_path,
                settings,
                engine,
                wanted,
                digests,
                read(),
                records,
                reading,
                report,
                progress,
            )
            report.seconds = time.perf_counter() - started
            return report
        fresh = [(document, passages) for _, document, passages in read()]

        current = {r.source for r in records}
        report.files_removed = sum(1 for source in old_files if source not in current)
        changed = bool(fresh) or report.files_removed or len(records) != len(old_files)
        changed = changed or any(old_files.get(r.source) != r for r in records)
        # A build with sentence vectors when they are off, or without when they are on,
        # is written anew in full (sentence vectors are a one-segment build's only).
        complete = previous is not None and (
            previous.manifest.get("lexical") == LEXICAL_MANIFEST
            and previous.document_vectors is not None
            and previous.shingles is not None
            and old_digests is not None
            and previous.has_sentence_vectors == settings.sentence_vectors
        )
        changed = changed or (previous is not None and not complete)
        if previous is not None and not changed:
            report.documents = len(kept)
            report.passages = previous.live_passage_count
            report.segments = len(previous.segments)
            report.seconds = time.perf_counter() - started
            logger.info("index %s is up to date", index_path)
            return report

        # A segment publish when the previous build can take one more segment: what stays
        # as it was is left in its segment, the rest is written to a new one. With
        # sentence vectors on, a whole build (they are a one-segment build's only).
        base = (
            previous
            if previous is not None
            and complete
            and settings.index_segments
            and not settings.sentence_vectors
            and len(previous.segments) < MAX_SEGMENTS
            else None
        )
        staying = (
            {record.source for record, _ in kept if old_files[record.source] == record}
            | {r.source for r in records if r.status == "skipped" and old_files.get(r.source) == r}
            if base is not None
            else set()
        )
        deleted = {source for source in old_files if source not in staying}
        merging = False
        if base is not None:
            # Past the merge policy, this publish is the merge: one full build of every
            # document (nothing re-embedded), rather than a segment and then a merge.
            moved = [doc_id for record, doc_id in kept if record.source not in staying]
            new_rows = sum(len(p) for _, p in fresh) + len(base.rows_of_documents(moved))
            gone = len(base.rows_of_documents([document_id(s) for s in sorted(deleted)]))
            counted, later_rows = tiers(base.segments)
            merging = merge_due(
                settings,
                segments=counted + 1,
                later_rows=later_rows + new_rows,
                deleted_rows=base.passage_count - base.live_passage_count + gone,
                rows=base.passage_count + new_rows,
            )
            if merging:
                logger.info("merging the segments of %s into one", index_path)
                base, staying = None, set()
        assert previous is not None or not kept
        reused = [
            (doc, previous.passages_of(doc_id))
            for record, doc_id in kept
            if record.source not in staying
            and previous is not None
            and (doc := previous.document(doc_id)) is not None
        ]
        new_texts = [p.text for _, passages in fresh for p in passages]
        # A re-read or edited file's unchanged passages keep the vectors they had (in a
        # segment publish, looked for among the old passages of the files it replaces).
        if base is not None:
            known_rows = _rows_by_text_among(base, deleted, new_texts)
        else:
            known_rows = _rows_by_text(previous, new_texts)
        embedding_any = any(text not in known_rows for text in new_texts)
        total_passages = len(new_texts) + sum(len(rows) for _, rows in reused)
        del new_texts
        # Every document has a vector of its own; an older build may not hold them yet.
        old_doc_vectors = {
            doc.id: vector
            for doc, rows in reused
            if previous is not None
            and (vector := previous.document_vector([row for row, _ in rows])) is not None
        }
        manifest = dict(wanted)
        manifest["reader"] = READER_VERSION
        manifest["sources"] = {r.source: r.sha256 for r in records if r.status == "indexed"}
        manifest["skipped"] = {r.source: r.reason for r in records if r.status == "skipped"}
        manifest["lexical"] = LEXICAL_MANIFEST
        # Every file's sidecar fingerprint, skipped files too: a changed record re-reads it.
        manifest["sidecars"] = {r.source: digests[r.source] for r in records if r.source in digests}
        manifest["chunk_tokens_effective"] = (
            min(settings.chunk_tokens or engine.max_tokens, engine.max_tokens)
            if embedding_any
            else (previous.manifest.get("chunk_tokens_effective") if previous else None)
        )
        # A full build is written in segments of QA_BUILD_SEGMENT_PASSAGES, embedded and
        # written one batch of documents at a time: its vectors, lexical texts and
        # indexes are one segment's in memory, never the corpus's.
        flushing = base is None and not settings.sentence_vectors
        writer = IndexWriter(
            index_path,
            manifest,
            approximate=approximate_settings(settings),
            base=base,
            deleted_sources=deleted,
            sentences=settings.sentence_vectors,
            lexical=_save_lexical,
            flush_passages=settings.build_segment_passages if flushing else 0,
            max_segments=settings.build_max_segments if flushing else 1,
            expected_passages=total_passages,
        )
        checkpoints = _IndexCheckpoints(index_path, {**wanted, "encoder": engine.encoder})
        try:
            by_source = {r.source: r for r in records if r.source not in staying}
            items: list[_Item] = [
                _Item(doc, [p for _, p in rows], [row for row, _ in rows]) for doc, rows in reused
            ]
            items += [_Item(doc, passages, None) for doc, passages in fresh]
            items.reverse()
            del reused, fresh  # each document is let go once written

            def in_order() -> Iterator[_Item]:
                while items:
                    yield items.pop()

            stream = _BuildStream(
                writer,
                engine,
                settings,
                checkpoints,
                report,
                progress=progress,
                previous=previous,
                known_rows=known_rows,
                old_doc_vectors=old_doc_vectors,
            )
            unwritten = stream.write_all(in_order(), by_source)
            for source, reason in unwritten.items():
                writer.manifest["sources"].pop(source, None)
                writer.manifest["skipped"][source] = reason
            documents = len(kept) + stream.fresh_documents - len(unwritten)
            _publish_build(writer, stream, engine, report, checkpoints, documents)
        except BaseException:
            writer.abort()
            raise
        finally:
            if previous is not None:
                previous.close()
        passages = stream.passages
        files_indexed = stream.fresh_documents - len(unwritten)
        report.published = True
        report.documents = documents
        report.passages = passages
        report.files_indexed = files_indexed
        report.segments = writer.segments_written
        report.merged = merging
        if base is not None:
            after = IndexReader(index_path)
            report.passages = after.live_passage_count
            report.segments = len(after.segments)
            after.close()
    report.seconds = time.perf_counter() - started
    return report


#: Stored vectors by row (a previous build's).
@dataclass
class _Reading:
    """How far the reading of a build's files is: bytes of the files read so far (of
    ``total_bytes``) and the passages they gave."""

    total_bytes: int
    bytes: int = 0
    passages: int = 0

    def expected_passages(self) -> int:
        """The passages all the files will give, at the rate so far."""
        if not self.bytes:
            return self.passages
        return int(self.passages * max(self.total_bytes, self.bytes) / self.bytes)


def _first_build(
    index_path: Path,
    settings: Settings,
    engine: IngestEngine,
    wanted: dict[str, Any],
    digests: dict[str, str],
    read: Iterator[tuple[FileRecord, Document, list[Passage]]],
    records: list[FileRecord],
    reading: _Reading,
    report: IngestReport,
    progress: bool,
) -> None:
    """Write and publish a build with no previous one to draw on: the documents are
    embedded and written as ``read`` gives them, a batch of QA_BUILD_SEGMENT_PASSAGES
    at a time (the segments' size grown as the reading shows the corpus to be larger
    than QA_BUILD_MAX_SEGMENTS of them). ``records`` is filled as ``read`` goes."""
    manifest = dict(wanted)
    manifest["reader"] = READER_VERSION
    manifest["lexical"] = LEXICAL_MANIFEST
    flushing = not settings.sentence_vectors
    writer = IndexWriter(
        index_path,
        manifest,
        approximate=approximate_settings(settings),
        sentences=settings.sentence_vectors,
        lexical=_save_lexical,
        flush_passages=settings.build_segment_passages if flushing else 0,
        max_segments=settings.build_max_segments if flushing else 1,
    )
    checkpoints = _IndexCheckpoints(index_path, {**wanted, "encoder": engine.encoder})
    try:
        pending: dict[str, FileRecord] = {}

        def items() -> Iterator[_Item]:
            read_sources = set()
            for record, document, passages in read:
                pending[record.source] = record
                read_sources.add(record.source)
                yield _Item(document, passages, None)
                writer.expect(reading.expected_passages())
            # The skipped files' records, written after the last document.
            pending.update((r.source, r) for r in records if r.source not in read_sources)

        stream = _BuildStream(
            writer,
            engine,
            settings,
            checkpoints,
            report,
            progress=progress,
        )
        unwritten = stream.write_all(items(), pending)
        writer.manifest["sources"] = {
            r.source: r.sha256
            for r in records
            if r.status == "indexed" and r.source not in unwritten
        }
        writer.manifest["skipped"] = {
            r.source: unwritten.get(r.source, r.reason)
            for r in records
            if r.status == "skipped" or r.source in unwritten
        }
        writer.manifest["sidecars"] = {
            r.source: digests[r.source] for r in records if r.source in digests
        }
        writer.manifest["chunk_tokens_effective"] = (
            min(settings.chunk_tokens or engine.max_tokens, engine.max_tokens)
            if reading.passages
            else None
        )
        documents = stream.fresh_documents - len(unwritten)
        _publish_build(writer, stream, engine, report, checkpoints, documents)
    except BaseException:
        writer.abort()
        raise
    report.published = True
    report.documents = documents
    report.passages = stream.passages
    report.files_indexed = documents
    report.segments = writer.segments_written


def _publish_build(
    writer: IndexWriter,
    stream: _BuildStream,
    engine: IngestEngine,
    report: IngestReport,
    checkpoints: _IndexCheckpoints,
    documents: int,
) -> None:
    """Record the build's documents and encoder, publish it and drop its checkpoints."""
    writer.manifest["documents"] = documents
    embedded_anything = stream.embedded_anything or report.sentences_embedded
    report.encoder = engine.encoder if embedded_anything else ""
    writer.publish(stream.dimension or engine.dimension)
    checkpoints.clear()


def _save_lexical(texts: Sequence[str], path: Path) -> None:
    """A segment's lexical index (the writer's :data:`~qa_service.store.LexicalBuilder`)."""
    LexicalIndex.build(texts).save(path)


@dataclass
class _Item:
    """A document to write: its passages and, for a document of the previous build
    written again, their rows there (None: a fresh document, its vectors to be found)."""

    document: Document
    passages: list[Passage]
    rows: list[int] | None


class _BuildStream:
    """Embeds and writes a build's documents a batch at a time (each file's record
    right after its document), so what is held is one batch's vectors and the writer's
    one segment (``IndexWriter(flush_passages=…)``), not the whole build's."""

    def __init__(
        self,
        writer: IndexWriter,
        engine: IngestEngine | None,
        settings: Settings,
        checkpoints: VectorCheckpoints | None,
        report: IngestReport,
        *,
        progress: bool,
        previous: IndexReader | None = None,
        known_rows: dict[str, int] | None = None,
        old_doc_vectors: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.writer = writer
        self.engine = engine
        self.settings = settings
        self.checkpoints = checkpoints
        self.report = report
        self.progress = progress
        self.previous = previous
        #: Fresh passages' texts the previous build holds already, and their rows there.
        self.known_rows = known_rows or {}
        #: Kept documents' vectors, by document id (else the embedded contexts' own).
        self.old_doc_vectors = old_doc_vectors or {}
        #: The vectors' dimension (the embedded ones' once there are any).
        self.dimension = int(previous.manifest["dimension"]) if previous is not None else None
        self.passages = 0
        self.fresh_documents = 0
        self.embedded_anything = False

    def write_all(self, items: Iterable[_Item], records: dict[str, FileRecord]) -> dict[str, str]:
        """Write ``items`` in order, in batches of the writer's segment size (all at
        once without flushing), each document's record (in ``records``, by source)
        right after it, then the records left in ``records`` (files without a
        document). Returns the documents that could not be stored, by source (their
        records say skipped, with the reason). ``items`` may be a generator: a written
        batch is let go."""
        unwritten: dict[str, str] = {}
        pending = iter(items)
        while True:
            chunk: list[_Item] = []
            rows = 0
            while not chunk or not self.writer.flush_passages or rows < self.writer.flush_passages:
                item = next(pending, None)
                if item is None:
                    break
                chunk.append(item)
                rows += len(item.passages)
            if not chunk:
                break
            unwritten.update(self._write_batch(chunk, records))
            del chunk
        for record in records.values():
            self.writer.add_file(record)
        return unwritten

    def _embed(self, groups: list[list[str]]) -> list[EmbedResult]:
        if not any(groups):
            empty = np.zeros((0, 0), dtype=np.float32)
            return [EmbedResult(empty, 0, 0) for _ in groups]
        assert self.engine is not None, "a build that embeds needs an engine"
        self.embedded_anything = True
        return embed_groups_in_blocks(
            groups,
            self.engine.encode_blocks,
            block=self.settings.checkpoint_passages,
            checkpoints=self.checkpoints,
            progress=self.progress,
        )

    def _write_batch(self, chunk: list[_Item], records: dict[str, FileRecord]) -> dict[str, str]:
        report = self.report
        texts = [p.text for item in chunk if item.rows is None for p in item.passages]
        to_embed = [i for i, text in enumerate(texts) if text not in self.known_rows]
        contexts = [
            item.document
            for item in chunk
            if item.rows is None or item.document.id not in self.old_doc_vectors
        ]
        started = time.perf_counter()
        passages_done, contexts_done = self._embed(
            [[texts[i] for i in to_embed], [document_context(doc.meta) for doc in contexts]]
        )
        report.embed_seconds += time.perf_counter() - started
        report.passages_embedded += passages_done.embedded
        report.vectors_resumed += passages_done.resumed
        report.vectors_reused += len(texts) - len(to_embed)
        if to_embed:
            self.dimension = int(passages_done.vectors.shape[1])
        elif contexts and self.dimension is None:
            self.dimension = int(contexts_done.vectors.shape[1])
        dimension = self.dimension or (self.engine.dimension if self.engine else 0)
        new_vectors = np.zeros((len(texts), dimension), dtype=np.float32)
        if to_embed:
            new_vectors[to_embed] = passages_done.vectors
        known = [i for i, text in enumerate(texts) if text in self.known_rows]
        if known:
            assert self.previous is not None  # known rows are the previous build's
            new_vectors[known] = self.previous.vectors_of(
                [self.known_rows[texts[i]] for i in known]
            )
        doc_vectors = {doc.id: contexts_done.vectors[i] for i, doc in enumerate(contexts)}
        sentence_vectors = None
        if self.writer.sentences:
            assert self.engine is not None and self.checkpoints is not None
            started = time.perf_counter()
            sentence_vectors = _sentence_vectors(
                self.previous,
                [
                    (item.document, list(zip(item.rows, item.passages, strict=True)))
                    for item in chunk
                    if item.rows is not None
                ],
                [
                    (item.document, [(self.known_rows.get(p.text), p) for p in item.passages])
                    for item in chunk
                    if item.rows is None
                ],
                self.engine,
                self.settings,
                self.checkpoints,
                self.progress,
                report,
            )
            report.sentence_seconds += time.perf_counter() - started
        unwritten: dict[str, str] = {}
        offset = 0
        # The reused documents come first in a batch, as _sentence_vectors gives theirs.
        for item in chunk:
            doc = item.document
            if item.rows is not None:
                assert self.previous is not None  # reused rows are the previous build's
                vectors = self.previous.vectors_of(item.rows)
            else:
                vectors = new_vectors[offset : offset + len(item.passages)]
                offset += len(item.passages)
                self.fresh_documents += 1
            vector = doc_vectors[doc.id] if doc.id in doc_vectors else self.old_doc_vectors[doc.id]
            lexical = [_lexical_text(doc, p) for p in item.passages]
            try:
                self.writer.add_document(
                    doc, item.passages, vectors, vector, _next(sentence_vectors), lexical
                )
            except (sqlite3.Error, UnicodeEncodeError) as exc:
                if item.rows is not None:
                    raise  # stored once already: the build cannot go on without it
                # One document that cannot be stored must not cost the others.
                logger.exception("could not write %s", doc.source)
                unwritten[doc.source] = printable(f"error: could not be written: {exc}")
            else:
                self.passages += len(item.passages)
            record = records.pop(doc.source, None)
            if record is not None:
                if doc.source in unwritten:
                    reason = unwritten[doc.source]
                    record = dataclasses.replace(record, status="skipped", reason=reason)
                    report.skipped.append({"source": record.source, "reason": reason})
                self.writer.add_file(record)
        return unwritten


def merge_due(
    settings: Settings, *, segments: int, later_rows: int, deleted_rows: int, rows: int
) -> bool:
    """Whether a build of ``segments`` segments should be merged into one: more than
    ``QA_SEGMENT_MAX_COUNT`` of them, or the rows of the segments after the first and
    the deleted rows more than ``QA_SEGMENT_MERGE_SHARE`` of its ``rows``. The segments
    a full build wrote at once (``"built"``) count as one, the first (:func:`tiers`)."""
    if segments <= 1:
        return False
    if segments > settings.segment_max_count:
        return True
    return later_rows + deleted_rows > settings.segment_merge_share * max(rows, 1)


def tiers(segments: Sequence[Segment]) -> tuple[int, int]:
    """How the merge policy counts a build's segments: those a full build wrote at once
    (flushed, ``"built"``, always the first ones) as one; returns the segments so
    counted and the rows of the segments after them (the changes published since)."""
    built = sum(1 for segment in segments if segment.built)
    later = sum(segment.rows for segment in segments[max(built, 1) :])
    return len(segments) - max(built - 1, 0), later


def needs_merge(reader: IndexReader, settings: Settings) -> bool:
    """:func:`merge_due` for a published build."""
    segments, later_rows = tiers(reader.segments)
    return merge_due(
        settings,
        segments=segments,
        later_rows=later_rows,
        deleted_rows=reader.passage_count - reader.live_passage_count,
        rows=reader.passage_count,
    )


def merge_index(settings: Settings) -> IngestReport:
    """Write the published build's live documents anew, as one segment (a large build
    as the segments of a full build, ``QA_BUILD_SEGMENT_PASSAGES``), and publish it (no
    file is read, nothing embedded); readers switch to it on their next reload. A build
    already so written, with nothing deleted and nothing published since, is left."""
    started = time.perf_counter()
    index_path = settings.index_dir
    report = IngestReport(index=str(index_path))
    with _build_lock(index_path):
        reader = IndexReader(index_path)
        report.segments = len(reader.segments)
        fresh = reader.single or (
            all(segment.built for segment in reader.segments) and reader.deleted is None
        )
        reader.close()
        if not fresh:
            report.passages, report.segments = _merge_locked(index_path, settings)
            report.published = report.merged = True
    report.seconds = time.perf_counter() - started
    return report


def _merge_locked(index_path: Path, settings: Settings) -> tuple[int, int]:
    """:func:`merge_index`'s work, the ingest lock held; returns the passages and
    segments written."""
    previous = IndexReader(index_path)
    try:
        records = {record.source: record for record in previous.files().values()}
        items: list[_Item] = []
        doc_vectors: dict[str, np.ndarray] = {}
        for doc in previous.documents():
            rows = previous.passages_of(doc.id)
            items.append(_Item(doc, [p for _, p in rows], [row for row, _ in rows]))
            vector = previous.document_vector([row for row, _ in rows])
            assert vector is not None  # a segmented build holds them (ingest's `complete`)
            doc_vectors[doc.id] = vector
        manifest = {k: v for k, v in previous.manifest.items() if k != "approximate"}
        writer = IndexWriter(
            index_path,
            manifest,
            approximate=approximate_settings(settings),
            lexical=_save_lexical,
            flush_passages=settings.build_segment_passages,
            max_segments=settings.build_max_segments,
            expected_passages=sum(len(item.passages) for item in items),
        )
        try:
            stream = _BuildStream(
                writer,
                None,
                settings,
                None,
                IngestReport(index=str(index_path)),
                progress=False,
                previous=previous,
                old_doc_vectors=doc_vectors,
            )
            writer.manifest["documents"] = len(items)
            stream.write_all(items, records)
            writer.publish(int(previous.manifest["dimension"]))
        except BaseException:
            writer.abort()
            raise
    finally:
        previous.close()
    return stream.passages, writer.segments_written


def _next(items: Iterator[list[np.ndarray]] | None) -> list[np.ndarray] | None:
    return next(items) if items is not None else None


def _sentence_vectors(
    previous: IndexReader | None,
    reused: Sequence[tuple[Document, Sequence[tuple[int, Passage]]]],
    fresh: Sequence[tuple[Document, Sequence[tuple[int | None, Passage]]]],
    engine: IngestEngine,
    settings: Settings,
    checkpoints: VectorCheckpoints,
    progress: bool,
    report: IngestReport,
) -> Iterator[list[np.ndarray]]:
    """Each document's sentence vectors, one array per passage (the reused documents,
    then the fresh ones, in the order given; embedded before it returns): those of a
    passage an earlier build stored (its row there, None for new text) are kept; the
    others' sentences are embedded, each distinct sentence once, as passages."""
    stored = previous if previous is not None and previous.has_sentence_vectors else None
    wanted: dict[str, int] = {}
    plan: list[list[np.ndarray | list[int]]] = []
    for _, passages in [*reused, *fresh]:
        entry: list[np.ndarray | list[int]] = []
        for row, passage in passages:
            kept = stored.passage_sentence_vectors(row) if stored and row is not None else None
            if kept is not None:
                report.sentence_vectors_reused += 1
                entry.append(kept)
                continue
            texts = [s.text for s in sentences(passage.text)]
            entry.append([wanted.setdefault(text, len(wanted)) for text in texts])
        plan.append(entry)
    texts = list(wanted)
    if texts:
        logger.info("embedding %d distinct sentences", len(texts))
    (done,) = embed_groups_in_blocks(
        [texts],
        engine.encode_blocks,
        block=settings.checkpoint_passages,
        checkpoints=checkpoints,
        progress=progress,
        desc="embedding sentences",
    )
    report.sentences_embedded = done.embedded
    vectors = done.vectors.astype(np.float16) if texts else None
    empty = np.zeros((0, 0), dtype=np.float16)  # a passage with no sentence

    def arrays(entry: list[np.ndarray | list[int]]) -> list[np.ndarray]:
        if vectors is None:
            return [part if isinstance(part, np.ndarray) else empty for part in entry]
        return [
            part if isinstance(part, np.ndarray) else vectors[part] if part else empty
            for part in entry
        ]

    # Embedded now, not when the writer asks for the first document.
    return iter([arrays(entry) for entry in plan])


class _IndexCheckpoints(VectorCheckpoints):
    """The index's checkpoints, whose writes fail as the build's do: a full or read-only
    disk ends the job at once with :class:`IndexWriteError`, and the blocks written so
    far let the next run resume."""

    def __init__(self, index_path: Path, settings: dict[str, Any]) -> None:
        super().__init__(checkpoints_dir(index_path), settings)
        self.index_path = index_path

    def save(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        with writing(self.index_path):
            super().save(texts, vectors)


def _same_content(path: Path, old: FileRecord) -> bool:
    """Whether a file whose modification time changed still holds what was read before."""
    if not old.sha256:
        return False
    try:
        return file_sha256(path) == old.sha256
    except OSError:
        return False  # reading it again reports the error


def _rows_by_text_among(
    previous: IndexReader, sources: Iterable[str], texts: Sequence[str]
) -> dict[str, int]:
    """Rows of the previous build's passages of ``sources`` (the files a segment
    publish replaces) whose text is one of ``texts``."""
    if not texts:
        return {}
    wanted = set(texts)
    rows = previous.rows_of_documents([document_id(source) for source in sorted(sources)])
    found: dict[str, int] = {}
    passages = previous.passages_by_rows([int(row) for row in rows])
    for row in sorted(passages):
        if passages[row].text in wanted:
            found.setdefault(passages[row].text, row)
    return found


def _rows_by_text(previous: IndexReader | None, texts: Sequence[str]) -> dict[str, int]:
    """Rows of the previous build whose passage text is one of ``texts``."""
    if previous is None or not texts:
        return {}
    wanted = set(texts)
    rows: dict[str, int] = {}
    for row, text in enumerate(previous.passage_texts()):
        if text in wanted:
            rows.setdefault(text, row)
    return rows


def document_context(meta: DocumentMeta) -> str:
    """What a document's own vector embeds: its type, title, riksmöte, parties, people."""
    return metadata_line(meta)[:MAX_CONTEXT_CHARS].strip()


def _lexical_text(document: Document, passage: Passage) -> str:
    # What a passage is about includes its document: type, title, riksmöte, year, the
    # parties (by name: people ask about "Moderaterna", not "M") and people involved.
    return f"{metadata_line(document.meta)}\n{passage.heading or ''}\n{passage.text}"


@dataclass(frozen=True)
class FileJob:
    """A file to read: where it is, its size and modification time as found (what its
    record keeps), and its ``manifest.jsonl`` record if it has one."""

    item: SourceFile
    size: int
    mtime_ns: int
    sidecar: dict[str, Any] | None = None


@dataclass
class FileResult:
    """What reading one file gave: its record, its document and passages (None when it
    was skipped, with the reason in the record) and the readers' warnings."""

    record: FileRecord
    entry: tuple[Document, list[Passage]] | None
    warnings: list[dict[str, str]] = field(default_factory=list)


def process_file(job: FileJob, embedder: Embedder, settings: Settings) -> FileResult:
    """Read, clean and split one file; any failure is a skipped record, never an error.

    Uses only the embedder's tokenizer (token counts and window), so it runs wherever the
    model can be loaded: in the ingest process or in a worker of a cluster.
    """
    item = job.item
    sha = ""
    warnings: list[dict[str, str]] = []
    try:
        if job.size > settings.max_file_bytes:
            raise SkipFile(
                f"too large ({job.size / 1e6:.1f} MB > QA_MAX_FILE_BYTES "
                f"{settings.max_file_bytes / 1e6:.1f} MB)"
            )
        sha = file_sha256(item.path)
        result = read_document(item.path, item.source)
        warnings.extend(
            {"source": item.source, "warning": printable(warning)} for warning in result.warnings
        )
        document, spans = build_document(item, result, sha, job.sidecar)
        passages = make_passages(document, spans, embedder, settings)
        if not passages:
            raise SkipFile("no passages after splitting")
    except SkipFile as exc:
        reason = exc.reason
    except Exception as exc:  # one bad file must never stop the job
        logger.exception("failed to read %s", item.source)
        reason = f"error: {type(exc).__name__}: {exc}"
    else:
        record = FileRecord(item.source, sha, job.size, job.mtime_ns, "indexed")
        return FileResult(record, (document, passages), warnings)
    reason = printable(reason)
    logger.info("skipped %s: %s", item.source, reason)
    record = FileRecord(item.source, sha, job.size, job.mtime_ns, "skipped", reason)
    return FileResult(record, None, warnings)


class IngestEngine(Protocol):
    """Where the job reads files and embeds passages."""

    def read(self, jobs: Sequence[FileJob], progress: bool) -> Iterable[FileResult]:
        """:func:`process_file` of each job, in the jobs' order."""
        ...

    def encode_blocks(self, blocks: list[list[str]]) -> Iterable[tuple[int, np.ndarray]]:
        """Passage vectors of each block, as ``(position, vectors)`` in any order."""
        ...

    @property
    def encoder(self) -> str:
        """What embeds (the report's line; part of the checkpoints' key)."""
        ...

    @property
    def max_tokens(self) -> int:
        """The model's window for passage text, as the splitting used it."""
        ...

    @property
    def dimension(self) -> int: ...


class LocalEngine:
    """Reads and embeds in this process, with one embedder."""

    def __init__(self, embedder: Embedder, settings: Settings) -> None:
        self.embedder = embedder
        self.settings = settings

    def read(self, jobs: Sequence[FileJob], progress: bool) -> Iterator[FileResult]:
        for job in tqdm(jobs, desc="reading", unit="file", disable=not progress):
            yield process_file(job, self.embedder, self.settings)

    def encode_blocks(self, blocks: list[list[str]]) -> Iterable[tuple[int, np.ndarray]]:
        batch = self.settings.embed_batch_size
        return one_block_at_a_time(
            lambda texts: self.embedder.encode_passages(texts, batch_size=batch)
        )(blocks)

    @property
    def encoder(self) -> str:
        return self.embedder.passage_encoder

    @property
    def max_tokens(self) -> int:
        return self.embedder.max_tokens

    @property
    def dimension(self) -> int:
        return self.embedder.dimension
