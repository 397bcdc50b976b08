"""What a fetch has downloaded into a corpus directory, and how files get there.

The state is a JSON-lines log in the directory (``.qa-fetch-state.jsonl``, hidden, so
ingest never reads it): one line per document written, appended and flushed as soon as
the document's file is in place, so an interrupted run loses at most the document it was
writing. The last line of a document wins; a line cut off by a crash is ignored. A run
that finishes rewrites the log with one line per document.

Files are written aside (a hidden ``.<name>.part-…`` in the same directory), synced and
renamed into place: ingest never sees half a file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..hashing import file_sha256

logger = logging.getLogger(__name__)

STATE_NAME = ".qa-fetch-state.jsonl"
PART_MARK = ".part-"


@dataclass
class Entry:
    """One downloaded document: where it is, what Riksdagen said of it, its digest."""

    dok_id: str
    file: str  # relative to the corpus directory, forward slashes
    systemdatum: str
    sha256: str
    doktyp: str = ""
    rm: str = ""
    beteckning: str = ""
    titel: str = ""
    datum: str = ""
    authors: list[dict[str, Any]] = field(default_factory=list)
    minister: dict[str, Any] | None = None
    question: dict[str, Any] | None = None  # an answer's question: dok_id, rm, beteckning
    fetched_at: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{PART_MARK}")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_partials(root: Path) -> int:
    """Delete files a killed run left half-written; returns how many."""
    removed = 0
    if not root.is_dir():
        return 0
    for path in root.rglob(f".*{PART_MARK}*"):
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    if removed:
        logger.info("removed %d half-written file(s) of an interrupted fetch", removed)
    return removed


class FetchState:
    """The documents a corpus directory holds from earlier fetches."""

    def __init__(self, root: Path, entries: dict[str, Entry]) -> None:
        self.root = root
        self.entries = entries
        self._log: TextIO | None = None

    @property
    def path(self) -> Path:
        return self.root / STATE_NAME

    @classmethod
    def load(cls, root: Path) -> FetchState:
        entries: dict[str, Entry] = {}
        path = root / STATE_NAME
        if path.exists():
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                try:
                    entry = Entry.from_dict(json.loads(line))
                except (json.JSONDecodeError, TypeError, AttributeError):
                    logger.warning("%s:%d: unreadable line skipped", path, number)
                    continue
                entries[entry.dok_id] = entry
        return cls(root, entries)

    def get(self, dok_id: str) -> Entry | None:
        return self.entries.get(dok_id)

    def has_file(self, entry: Entry) -> bool:
        """Whether the entry's file is still there with the bytes that were fetched."""
        path = self.root / entry.file
        return path.is_file() and file_sha256(path) == entry.sha256

    def record(self, entry: Entry) -> None:
        """Remember ``entry`` now (appended and synced), before the next document."""
        self.entries[entry.dok_id] = entry
        if self._log is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._log = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            if self._log.tell() and not self.path.read_bytes().endswith(b"\n"):
                self._log.write("\n")  # after a line a crash cut off
        self._log.write(json.dumps(asdict(entry), ensure_ascii=False) + "\n")
        self._log.flush()
        os.fsync(self._log.fileno())

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def compact(self) -> None:
        """Rewrite the log with one line per document."""
        self.close()
        lines = "".join(
            json.dumps(asdict(e), ensure_ascii=False) + "\n" for e in self.sorted_entries()
        )
        write_atomic(self.path, lines.encode("utf-8"))

    def sorted_entries(self) -> Iterator[Entry]:
        return iter(sorted(self.entries.values(), key=lambda e: e.file))
