"""Conversations: a SQLite store of turns, and follow-up rewriting without an LLM.

"Hur många bor i utanförskapsområden?" followed by "Och hur många av dem är barn?" is
answered by retrieving with the literal follow-up and with a standalone query made of the
follow-up plus the topic words of the earlier turns, fused by RRF.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from .config import Settings
from .errors import NotFound, QAError
from .lexical import STOPWORDS
from .models import AskResponse
from .models import Conversation as ShownConversation
from .models import Turn as ShownTurn

_WORD = re.compile(r"\w+", re.UNICODE)
#: Words that point back to something said before.
ANAPHORA = frozenset(
    "dem de det dessa denna detta där dit därför deras dess den sådana samma han hon "
    "hen honom henne they them it those these that there".split()
)
#: Pronouns that, unless a relative clause follows ("de som …"), can only point back.
STRONG_ANAPHORA = frozenset("dem dessa deras dess där dit därav därifrån sådana".split())
LEADING_LINKS = frozenset({"och", "men", "samt", "plus", "and", "but"})
QUESTION_WORDS = frozenset(
    "vad vem vilka vilken vilket hur när var varför många mycket finns får kan ska "
    "skulle blir blev är var har hade gör görs bli".split()
)
YES_NO_VERBS = frozenset("kan får ska går blir finns gäller har är".split())
MAX_TOPIC_TERMS = 8


def content_words(text: str) -> list[str]:
    """Lower-cased words that carry a topic: no stop words, question words or pronouns."""
    return [
        w
        for w in _WORD.findall(text.lower())
        if len(w) > 2 and w not in STOPWORDS and w not in QUESTION_WORDS and w not in ANAPHORA
    ]


def is_follow_up(question: str) -> bool:
    """Whether a question leans on earlier turns rather than standing alone."""
    words = _WORD.findall(question.lower())
    if not words:
        return False
    own_topic = content_words(question)
    if words[0] in LEADING_LINKS:
        return True
    if any(
        w in STRONG_ANAPHORA and (i + 1 == len(words) or words[i + 1] != "som")
        for i, w in enumerate(words)
    ):
        return True
    if any(w in ANAPHORA for w in words) and len(own_topic) <= 2:
        return True
    # A short yes/no question ("Kan tiden förlängas?"). Questions with no such sign that
    # still continue the topic ("Vad kostar reformen?") are recognised by retrieval: see
    # ``QAService.converse``.
    return words[0] in YES_NO_VERBS and len(own_topic) <= 2 and len(words) <= 4


def standalone_query(question: str, history: list[str]) -> str:
    """The follow-up plus the topic words of earlier turns (most recent first)."""
    own = set(content_words(question))
    terms: list[str] = []
    for earlier in reversed(history):
        for word in content_words(earlier):
            if word not in own and word not in terms:
                terms.append(word)
        if len(terms) >= MAX_TOPIC_TERMS:
            break
    return " ".join([question, *terms[:MAX_TOPIC_TERMS]]).strip()


@dataclass(frozen=True)
class Context:
    """What a follow-up may lean on from one earlier turn: its query and cited documents."""

    standalone_query: str
    doc_ids: tuple[str, ...] = ()

    @classmethod
    def citing(cls, standalone_query: str, doc_ids: Iterable[str | None]) -> Context:
        """The context of a turn whose answer cited ``doc_ids`` (in order, once each)."""
        return cls(standalone_query, tuple(dict.fromkeys(d for d in doc_ids if d)))


@dataclass
class Turn:
    """One question of a conversation with the answer it was given."""

    question: str
    standalone_query: str
    answer: AskResponse
    created_at: float

    @property
    def context(self) -> Context:
        cited = (p.document.id for p in self.answer.passages)
        return Context.citing(self.standalone_query, cited)

    def shown(self) -> ShownTurn:
        """The turn as ``GET /api/conversations/<id>`` shows it."""
        return ShownTurn(
            question=self.question,
            standalone_query=self.standalone_query,
            answer=self.answer.answer,
            passages=self.answer.passages,
            created_at=self.created_at,
        )

    def stored(self) -> str:
        """The answer as the database keeps it (the API's object, without the id)."""
        data = self.answer.json_data()
        data.pop("conversation_id", None)
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def read(cls, question: str, standalone: str, stored: str, created_at: float) -> Turn:
        """A stored turn; rows written before answers were typed read the same."""
        return cls(question, standalone, AskResponse.model_validate_json(stored), created_at)


class ConversationGone(NotFound):
    """The conversation was deleted while a turn was being added to it."""


class StoreUnavailable(QAError):
    """The conversation database cannot be used (read-only, full disk, locked): 503."""

    status = 503
    code = "conversations_unavailable"


#: A store deletes expired conversations at most this often (and when it opens).
PRUNE_EVERY_SECONDS = 3600.0


class ConversationStore:
    """Conversations in one SQLite file, safe to share between threads of a worker.

    A conversation untouched for ``max_age_days`` is deleted with its turns (questions
    people asked are kept no longer than needed); ``None`` keeps them.
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> ConversationStore:
        """The store the settings name (``conversation_days`` 0: kept for good)."""
        return cls(settings.conversations_db, max_age_days=settings.conversation_days or None)

    def __init__(self, path: Path, max_age_days: float | None = None) -> None:
        self.path = path
        self.max_age_days = max_age_days
        self._local = threading.local()
        self._pruned_at = 0.0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db().executescript(
                """
                CREATE TABLE IF NOT EXISTS conversations (
                    id TEXT PRIMARY KEY, created_at REAL NOT NULL, updated_at REAL NOT NULL);
                CREATE TABLE IF NOT EXISTS turns (
                    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
                    n INTEGER NOT NULL, question TEXT NOT NULL, standalone_query TEXT NOT NULL,
                    answer_json TEXT NOT NULL, created_at REAL NOT NULL,
                    PRIMARY KEY (conversation_id, n));
                CREATE INDEX IF NOT EXISTS conversations_updated ON conversations(updated_at);
                CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at REAL NOT NULL);
                """
            )
        except (OSError, sqlite3.OperationalError) as exc:
            raise StoreUnavailable(f"the conversation database cannot be opened: {exc}") from exc
        self.prune()

    def _db(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # Autocommit: each write below says where its transaction begins and ends.
            conn = sqlite3.connect(
                self.path, timeout=10, check_same_thread=False, isolation_level=None
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding SQLite's write lock from its start."""
        try:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.commit()
            except BaseException:
                if db.in_transaction:
                    with suppress(sqlite3.Error):
                        db.rollback()
                raise
        except sqlite3.OperationalError as exc:
            # A read-only file or directory, a full disk, a lock held for too long.
            raise StoreUnavailable(f"the conversation database cannot be written: {exc}") from exc

    def check_writable(self) -> None:
        """Write and commit a row, as a turn would (raises :class:`StoreUnavailable`)."""
        with self._writing() as db:
            db.execute("INSERT OR REPLACE INTO probe VALUES (1, ?)", (time.time(),))

    def prune(self, now: float | None = None) -> int:
        """Delete the conversations untouched for longer than the store keeps them."""
        if self.max_age_days is None:
            return 0
        now = time.time() if now is None else now
        self._pruned_at = now
        with self._writing() as db:
            cursor = db.execute(
                "DELETE FROM conversations WHERE updated_at < ?",
                (now - self.max_age_days * 86400,),
            )
        return cursor.rowcount

    def create(self) -> str:
        conversation_id = uuid.uuid4().hex
        now = time.time()
        if now - self._pruned_at >= PRUNE_EVERY_SECONDS:
            self.prune(now)
        with self._writing() as db:
            db.execute("INSERT INTO conversations VALUES (?, ?, ?)", (conversation_id, now, now))
        return conversation_id

    def exists(self, conversation_id: str) -> bool:
        try:
            row = (
                self._db()
                .execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,))
                .fetchone()
            )
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"the conversation database cannot be read: {exc}") from exc
        return row is not None

    def turns(self, conversation_id: str) -> list[Turn]:
        try:
            rows = (
                self._db()
                .execute(
                    "SELECT question, standalone_query, answer_json, created_at FROM turns "
                    "WHERE conversation_id = ? ORDER BY n",
                    (conversation_id,),
                )
                .fetchall()
            )
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"the conversation database cannot be read: {exc}") from exc
        return [Turn.read(q, s, a, t) for q, s, a, t in rows]

    def append(self, conversation_id: str, turn: Turn) -> Turn:
        """Store ``turn`` as the conversation's next one and return it as stored.

        Counting the turns and inserting the next one happen in one write transaction
        (``BEGIN IMMEDIATE`` takes SQLite's write lock first), so parallel follow-ups,
        in threads or in other workers, each get their own number, in the order they
        are stored; ``created_at`` is the time of storing, so it follows that order.
        Raises :class:`ConversationGone` when the conversation was deleted meanwhile.
        """
        with self._writing() as db:
            if not db.execute(
                "SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone():
                raise ConversationGone(f"conversation {conversation_id!r} was deleted")
            (n,) = db.execute(
                "SELECT COALESCE(MAX(n) + 1, 0) FROM turns WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()
            stored = Turn(turn.question, turn.standalone_query, turn.answer, time.time())
            db.execute(
                "INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    n,
                    stored.question,
                    stored.standalone_query,
                    stored.stored(),
                    stored.created_at,
                ),
            )
            db.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?",
                (stored.created_at, conversation_id),
            )
        return stored

    def delete(self, conversation_id: str) -> bool:
        with self._writing() as db:
            cursor = db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        return cursor.rowcount > 0

    # What the API asks of a conversation it names: a missing one is 404 (NotFound).
    def history(self, conversation_id: str) -> list[Turn]:
        """The turns of a conversation that must exist."""
        if not self.exists(conversation_id):
            raise NotFound(f"no conversation with id {conversation_id!r}")
        return self.turns(conversation_id)

    def contexts(self, conversation_id: str) -> list[Context]:
        """What a question asked in a conversation that must exist may lean on: its
        turns' contexts, in order."""
        return [turn.context for turn in self.history(conversation_id)]

    def shown(self, conversation_id: str) -> ShownConversation:
        """The conversation as ``GET /api/conversations/<id>`` shows it."""
        turns = [turn.shown() for turn in self.history(conversation_id)]
        return ShownConversation(id=conversation_id, turns=turns)

    def record(self, conversation_id: str | None, question: str, answer: AskResponse) -> str:
        """Store an answer as the next turn of its conversation (a new one when None) and
        mark the answer with the conversation's id, which it returns."""
        cid = conversation_id or self.create()
        self.append(cid, Turn(question, answer.standalone_query, answer, time.time()))
        answer.conversation_id = cid
        return cid

    def remove(self, conversation_id: str) -> None:
        """Delete a conversation that must exist."""
        if not self.delete(conversation_id):
            raise NotFound(f"no conversation with id {conversation_id!r}")
