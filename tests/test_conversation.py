from __future__ import annotations

import time
from pathlib import Path

import pytest

from qa_service.conversation import ConversationStore, Turn, is_follow_up, standalone_query
from qa_service.models import Answer, AskResponse


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


def _answer(text: str) -> AskResponse:
    return AskResponse(
        question="?",
        standalone_query="?",
        answer=Answer(found=False, text=text, sentences=[]),
        passages=[],
    )


def test_store_round_trip_and_delete(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    cid = store.create()
    store.append(cid, Turn("Fråga ett?", "Fråga ett?", _answer("a"), 1.0))
    store.append(cid, Turn("Och två?", "Och två? ett", _answer("b"), 2.0))
    assert [t.question for t in store.turns(cid)] == ["Fråga ett?", "Och två?"]
    assert [t.answer.answer.text for t in store.turns(cid)] == ["a", "b"]
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
    store.append(cid, Turn("Fråga?", "Fråga?", _answer("a"), 1.0))
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


def test_the_store_the_settings_name(tmp_path: Path) -> None:
    from qa_service.config import Settings

    settings = Settings(conversations_db=tmp_path / "c.sqlite3", conversation_days=7.0)
    store = ConversationStore.from_settings(settings)
    assert (store.path, store.max_age_days) == (tmp_path / "c.sqlite3", 7.0)
    kept = Settings(conversations_db=tmp_path / "k.sqlite3", conversation_days=0.0)
    assert ConversationStore.from_settings(kept).max_age_days is None


def test_the_contexts_of_a_conversation_are_its_turns_in_order(tmp_path: Path) -> None:
    from qa_service.conversation import Context
    from qa_service.errors import NotFound

    store = ConversationStore(tmp_path / "c.sqlite3")
    cid = store.create()
    assert store.contexts(cid) == []
    store.append(cid, Turn("Fråga ett?", "Fråga ett?", _answer("a"), 1.0))
    store.append(cid, Turn("Och två?", "Och två? ett", _answer("b"), 2.0))
    assert store.contexts(cid) == [Context("Fråga ett?"), Context("Och två? ett")]
    with pytest.raises(NotFound):
        store.contexts("0" * 32)


def test_parallel_appends_number_each_turn_once(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = ConversationStore(tmp_path / "c.sqlite3")
    cid = store.create()
    questions = [f"Fråga {i}?" for i in range(64)]

    def append(question: str) -> None:
        # A store per "worker", as two gunicorn processes have.
        ConversationStore(store.path).append(cid, Turn(question, question, _answer(""), 0.0))

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
        store.append(cid, Turn("Och?", "Och?", _answer(""), 0.0))


def test_a_turn_stored_before_answers_were_typed_reads_the_same(tmp_path: Path) -> None:
    """A row an earlier version wrote: the API's JSON object, as it was."""
    import json
    import sqlite3

    store = ConversationStore(tmp_path / "c.sqlite3")
    cid = store.create()
    document = {"id": "d1", "source": "s.txt", "title": "T", "authors": [], "page_count": None}
    passage = {
        "id": "p1",
        "rank": 1,
        "score": 0.5,
        "text": "Text.",
        "source": "s.txt",
        "page": None,
        "char_start": 0,
        "char_end": 5,
        "heading": None,
        "speaker": None,
        "party": None,
        "citation": "T.",
        "citation_markdown": "T.",
        "permalink": "/p/p1",
        "also_in": [],
        "document": document,
        "highlights": [[0, 5]],
    }
    old = {
        "question": "Fråga?",
        "standalone_query": "Fråga?",
        "answer": {"found": True, "text": "Text. [1]", "sentences": []},
        "passages": [passage],
    }
    with sqlite3.connect(store.path) as db:
        db.execute(
            "INSERT INTO turns VALUES (?, 0, ?, ?, ?, 1.0)",
            (cid, "Fråga?", "Fråga?", json.dumps(old, ensure_ascii=False)),
        )
    (turn,) = store.turns(cid)
    assert turn.context.doc_ids == ("d1",)
    shown = turn.shown().json_data()
    assert shown["passages"][0] == passage
    assert shown["answer"] == old["answer"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        # An id naming no conversation is 404 before the later values are checked.
        ({"question": "jobb", "conversation_id": "0" * 32, "top_k": 0}, 404, "no conversation"),
        ({"question": "jobb", "conversation_id": "0" * 32, "mode": "fast"}, 404, "no conversation"),
        ({"question": "jobb", "conversation_id": 5}, 404, "no conversation with id 5"),
        ({"question": "jobb", "conversation_id": ["a"], "top_k": 0}, 404, "no conversation"),
        # The question is checked first.
        ({"question": "", "conversation_id": "0" * 32}, 400, "'question' must not be empty"),
        ({"question": "jobb", "conversation_id": "0" * 32, "extra": 1}, 400, "unknown field"),
    ],
)
def test_an_unknown_conversation_is_404_in_the_order_clients_meet_it(  # type: ignore[no-untyped-def]
    client, body, status, message
) -> None:
    response = client.post("/api/ask", json=body)
    assert response.status_code == status
    assert message in response.get_json()["error"]["message"]


def test_a_known_conversation_with_a_bad_top_k_is_400(client) -> None:  # type: ignore[no-untyped-def]
    cid = client.post("/api/ask", json={"question": "yrkesvux"}).get_json()["conversation_id"]
    body = {"question": "jobb", "conversation_id": cid, "top_k": 0}
    response = client.post("/api/ask", json=body)
    assert response.status_code == 400
    assert "'top_k'" in response.get_json()["error"]["message"]
