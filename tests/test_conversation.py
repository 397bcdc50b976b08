from __future__ import annotations

import time
from pathlib import Path

import pytest

from qa_service.conversation import ConversationStore, Turn, is_follow_up, standalone_query


@pytest.mark.parametrize(
    ("question", "follow_up"),
    [
        ("Och hur många av dem är barn?", True),
        ("Men bidragstaket?", True),
        ("Och bidragstaket?", True),
        ("Vad kostar det?", True),
        ("Kan tiden förlängas?", True),
        ("Hur många av dessa är utrikes födda?", True),
        ("Hur stor andel av dem är födda utanför Europa?", True),
        ("Vilka kommuner tar emot flest nyanlända av dessa enligt länstalen?", True),
        ("Och hur många personer bor där?", True),
        ("Hur ska Migrationsverket utvisa dem som begår brott?", False),
        ("Vilket stöd får de som är långtidsarbetslösa av Arbetsförmedlingen?", False),
        ("Hur många personer bor i utanförskapsområden?", False),
        ("Vad säger Tidöavtalet om aktivitetskrav för försörjningsstöd?", False),
        ("Vilka åtgärder föreslår regeringen mot segregationen på arbetsmarknaden?", False),
        ("Vad är nytt med jobbskatteavdraget?", False),
        ("", False),
    ],
)
def test_is_follow_up(question: str, follow_up: bool) -> None:
    assert is_follow_up(question) is follow_up


@pytest.mark.parametrize(
    ("question", "history", "expected"),
    [
        (
            "Och hur många av dem är barn?",
            ["Hur många personer bor i utanförskapsområden?"],
            "Och hur många av dem är barn? personer bor utanförskapsområden",
        ),
        (
            "Kan tiden förlängas?",
            ["Vad kostar extratjänster?", "Vad innebär tidsgränsen i sfi?"],
            "Kan tiden förlängas? innebär tidsgränsen sfi kostar extratjänster",
        ),
        ("Och barnen?", [], "Och barnen?"),
    ],
)
def test_standalone_query(question: str, history: list[str], expected: str) -> None:
    assert standalone_query(question, history) == expected


def test_store_round_trip_and_delete(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    cid = store.create()
    store.append(cid, Turn("Fråga ett?", "Fråga ett?", {"answer": {"text": "a"}}, 1.0))
    store.append(cid, Turn("Och två?", "Och två? ett", {"answer": {"text": "b"}}, 2.0))
    assert [t.question for t in store.turns(cid)] == ["Fråga ett?", "Och två?"]
    assert store.delete(cid) and not store.exists(cid)
    assert not store.delete(cid)


@pytest.mark.parametrize(
    ("max_age_days", "idle_days", "kept"),
    [
        (30.0, 29.0, True),
        (30.0, 31.0, False),
        (None, 3650.0, True),
    ],
)
def test_conversations_untouched_too_long_are_deleted(
    tmp_path: Path, max_age_days: float | None, idle_days: float, kept: bool
) -> None:
    import sqlite3

    store = ConversationStore(tmp_path / "c.sqlite3", max_age_days=max_age_days)
    cid = store.create()
    store.append(cid, Turn("Fråga?", "Fråga?", {"answer": {"text": "a"}}, 1.0))
    now = time.time()
    # The last turn was idle_days ago.
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE conversations SET updated_at = ?", (now - idle_days * 86400,))
    store.prune(now)
    assert store.exists(cid) is kept
    with sqlite3.connect(store.path) as db:
        (turns,) = db.execute("SELECT COUNT(*) FROM turns").fetchone()
    assert turns == (1 if kept else 0)  # the turns go with their conversation
    # A store opened later prunes on opening.
    if kept and max_age_days is not None:
        with sqlite3.connect(store.path) as db:
            db.execute("UPDATE conversations SET updated_at = 0")
        assert not ConversationStore(store.path, max_age_days=max_age_days).exists(cid)


def test_conversation_days_setting() -> None:
    from qa_service.config import ConfigError, Settings

    assert Settings.from_env({"QA_CONVERSATION_DAYS": "7"}).conversation_days == 7.0
    with pytest.raises(ConfigError, match="QA_CONVERSATION_DAYS"):
        Settings.from_env({"QA_CONVERSATION_DAYS": "-1"})


def test_parallel_appends_number_each_turn_once(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = ConversationStore(tmp_path / "c.sqlite3")
    cid = store.create()
    questions = [f"Fråga {i}?" for i in range(64)]

    def append(question: str) -> None:
        # A store per "worker", as two gunicorn processes have.
        ConversationStore(store.path).append(cid, Turn(question, question, {}, 0.0))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(append, questions))
    turns = store.turns(cid)
    assert sorted(t.question for t in turns) == sorted(questions)
    times = [t.created_at for t in turns]
    assert times == sorted(times)


def test_a_turn_for_a_deleted_conversation_is_not_found(tmp_path: Path) -> None:
    from qa_service.conversation import ConversationGone

    store = ConversationStore(tmp_path / "c.sqlite3")
    cid = store.create()
    assert store.delete(cid)
    with pytest.raises(ConversationGone):
        store.append(cid, Turn("Och?", "Och?", {}, 0.0))
