"""The questions waiting for their answer (bot/questions.py), on SQLite and PostgreSQL: each
wait ends once, by its answer, a cancel, a newer question or its deadline."""

from __future__ import annotations

import pytest

from bot import questions
from bot.database import Database
from bot.questions import AwaitedAnswers, QuestionStore

CONVERSATION = [{"role": "user", "content": [{"type": "text", "text": "task"}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "AskQuestion",
                                                   "input": {"question": "Floats?"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sent"}]}]


def spec(number: int = 7) -> dict:
    return {"repo": "acme/widgets", "number": number, "requester": "alice", "installation_id": 42}


def ask(store: QuestionStore, job_id: int, number: int = 7, wait: float = 60.0, messages=CONVERSATION):
    return store.ask(job_id=job_id, kind="issue", job_key=f"acme/widgets#{number}", spec=spec(number),
                     question="Floats?", branch="backend/issue-7-x", base_branch="main",
                     messages=messages, wait_seconds=wait)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path}/bot.db")
    else:
        database = Database(request.getfixturevalue("pg_url"))
        database.execute("DROP TABLE IF EXISTS bot_questions")
    store = QuestionStore(database)
    store.create_table()
    yield store
    database.close()


def test_a_question_keeps_its_conversation_and_is_asked_once_per_job(store):
    first = ask(store, job_id=1)
    assert ask(store, job_id=1) == first
    assert first.messages == CONVERSATION and first.state == "waiting"
    assert store.waiting("acme/widgets", 7) == first
    assert store.awaited() == {("acme/widgets", 7): "alice"}


def test_an_answer_is_taken_once_and_ends_the_wait(store):
    question = ask(store, job_id=1)
    assert store.answer(question.id, "@alice answered:\n\nyes", "alice")
    assert not store.answer(question.id, "@bob answered:\n\nno", "bob")
    taken = store.get(question.id)
    assert taken.state == "answered" and taken.answer.endswith("yes") and taken.answered_by == "alice"
    assert taken.messages == CONVERSATION  # the resumed job reads it
    assert store.waiting("acme/widgets", 7) is None and store.awaited() == {}


def test_a_newer_question_or_a_cancel_ends_the_wait(store):
    older = ask(store, job_id=1)
    newer = ask(store, job_id=2)
    assert store.get(older.id).state == "cancelled" and store.get(older.id).messages is None
    assert store.waiting("acme/widgets", 7) == newer
    assert [q.id for q in store.cancel("acme/widgets", 7)] == [newer.id]
    assert store.cancel("acme/widgets", 7) == []
    assert not store.answer(newer.id, "late", "alice")


def test_waits_past_their_deadline_expire_once(store):
    due = ask(store, job_id=1, number=1, wait=10)
    later = ask(store, job_id=2, number=2, wait=1000)
    assert [q.id for q in store.expire_due(now=due.deadline + 1)] == [due.id]
    assert store.expire_due(now=due.deadline + 1) == []
    assert store.get(due.id).state == "expired" and store.get(later.id).state == "waiting"
    assert store.get(due.id).messages is None and store.get(later.id).messages == CONVERSATION


def test_a_conversation_too_long_to_keep_is_not_kept(store, monkeypatch):
    monkeypatch.setattr(questions, "MAX_CONVERSATION_CHARS", 100)
    assert ask(store, job_id=1).messages is None


def test_the_webhook_path_s_copy_follows_this_process_s_changes_at_once(store):
    awaited = AwaitedAnswers(store)
    question = ask(store, job_id=1)
    assert awaited("acme/widgets", 7) == "alice" and awaited("acme/widgets", 8) is None
    store.answer(question.id, "yes", "alice")
    assert awaited("acme/widgets", 7) is None
