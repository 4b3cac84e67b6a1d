"""Questions the agent asked, waiting for their answer: the durable half of a conversation.

When the agent calls AskQuestion its job ends (no worker waits for days); the question is kept
here with the whole conversation, so the answer — the requester's next comment on the issue or
pull request, or anyone's `/backend answer …` with write access — starts a job that resumes the
same conversation with the answer as AskQuestion's result. The table is in the jobs' database,
so any machine of a scale-out can take the answer, and a restart loses nothing.

A wait ends once: answered, cancelled (`/backend cancel`, or a newer question on the same
issue), or expired (BOT_ANSWER_WAIT_DAYS, ended by the engine's sweep with a note on GitHub).
Each end is one conditional UPDATE, so two machines never both take one answer.

The conversation is the agent's own (the task, tool calls and results, the workspace's text);
it never holds a secret, since the agent never sees one. It is capped: a longer one is not
kept, and its answer starts a fresh run told the question and the answer instead. A wait that
ends without an answer drops its conversation.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.database import Database
from bot.logs import get_logger

log = get_logger(__name__)

# How often a process re-reads who is awaited (the questions other machines asked).
REFRESH_SECONDS = 3.0
# A conversation longer than this is not stored (a run of 60 turns with large tool results
# stays well under it).
MAX_CONVERSATION_CHARS = 8_000_000

WAITING = "waiting"
ANSWERED = "answered"
CANCELLED = "cancelled"
EXPIRED = "expired"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bot_questions (
    id {id_column},
    job_id BIGINT NOT NULL UNIQUE,
    repo TEXT NOT NULL,
    number INTEGER NOT NULL,
    kind TEXT NOT NULL,
    job_key TEXT NOT NULL,
    spec TEXT NOT NULL,
    requester TEXT NOT NULL,
    question TEXT NOT NULL,
    branch TEXT NOT NULL,
    base_branch TEXT NOT NULL,
    messages TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    deadline DOUBLE PRECISION NOT NULL,
    state TEXT NOT NULL,
    answer TEXT,
    answered_by TEXT,
    ended_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS bot_questions_thread ON bot_questions (repo, number, state);
CREATE INDEX IF NOT EXISTS bot_questions_waiting ON bot_questions (state, deadline)
"""

_COLUMNS = ("id, job_id, repo, number, kind, job_key, spec, requester, question, branch, base_branch, "
            "messages, created_at, deadline, state, answer, answered_by")


@dataclass(frozen=True)
class Question:
    id: int
    job_id: int
    repo: str
    number: int
    kind: str  # the asking job's kind: the answer resumes a job of the same kind
    job_key: str
    spec: dict[str, Any]
    requester: str
    question: str
    branch: str
    base_branch: str
    messages: list[dict] | None  # None when the conversation was too long to keep
    created_at: float
    deadline: float
    state: str
    answer: str | None
    answered_by: str | None


def _question(row: tuple) -> Question:
    values = list(row)
    values[6] = json.loads(values[6])
    values[11] = json.loads(values[11]) if values[11] is not None else None
    return Question(*values)


class QuestionStore:
    """The questions table. `on_change` listeners hear every new question and every end (the
    webhook path's copy of who is awaited refreshes at once in this process)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.on_change: list[Callable[[], None]] = []

    def create_table(self) -> None:
        self.database.create_schema(_SCHEMA.format(id_column=self.database.id_column))

    def _changed(self) -> None:
        for listener in self.on_change:
            listener()

    def ask(self, *, job_id: int, kind: str, job_key: str, spec: dict, question: str, branch: str,
            base_branch: str, messages: list[dict], wait_seconds: float) -> Question:
        """Keep a question and its conversation; a newer question on the same issue or pull
        request replaces a waiting one. Idempotent per job (a replayed step asks once)."""
        existing = self.of_job(job_id)
        if existing is not None:
            return existing
        conversation: str | None = json.dumps(messages, ensure_ascii=False, default=str)
        if len(conversation or "") > MAX_CONVERSATION_CHARS:
            conversation = None
        now = time.time()
        conn = self.database.connection()
        with self.database.transaction(conn):
            conn.execute(self.database.sql(
                "UPDATE bot_questions SET state = ?, ended_at = ?, messages = NULL "
                "WHERE repo = ? AND number = ? AND state = ?"),
                (CANCELLED, now, spec["repo"], spec["number"], WAITING))
            conn.execute(self.database.sql(
                "INSERT INTO bot_questions (job_id, repo, number, kind, job_key, spec, requester, question, "
                "branch, base_branch, messages, created_at, deadline, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                (job_id, spec["repo"], spec["number"], kind, job_key, json.dumps(spec), spec["requester"],
                 question, branch, base_branch, conversation, now, now + wait_seconds, WAITING))
        self._changed()
        question_row = self.of_job(job_id)
        assert question_row is not None  # inserted above
        return question_row

    def of_job(self, job_id: int) -> Question | None:
        rows = self.database.execute(f"SELECT {_COLUMNS} FROM bot_questions WHERE job_id = ?", (job_id,))
        return _question(rows[0]) if rows else None

    def get(self, question_id: int) -> Question | None:
        rows = self.database.execute(f"SELECT {_COLUMNS} FROM bot_questions WHERE id = ?", (question_id,))
        return _question(rows[0]) if rows else None

    def waiting(self, repo: str, number: int) -> Question | None:
        rows = self.database.execute(
            f"SELECT {_COLUMNS} FROM bot_questions WHERE repo = ? AND number = ? AND state = ? "
            "ORDER BY id DESC LIMIT 1", (repo, number, WAITING))
        return _question(rows[0]) if rows else None

    def answer(self, question_id: int, answer: str, answered_by: str) -> bool:
        """Take the answer; False when the wait already ended (answered, cancelled, expired)."""
        return self._end(question_id, ANSWERED, answer=answer, answered_by=answered_by)

    def cancel(self, repo: str, number: int) -> list[Question]:
        """End the waits on an issue or pull request; the questions that were waiting."""
        ended = []
        for question_id, in self.database.execute(
                "SELECT id FROM bot_questions WHERE repo = ? AND number = ? AND state = ?",
                (repo, number, WAITING)):
            if self._end(question_id, CANCELLED):
                ended.append(self.get(question_id))
        return [q for q in ended if q is not None]

    def expire_due(self, now: float | None = None) -> list[Question]:
        """End the waits past their deadline; the questions this call ended."""
        now = time.time() if now is None else now
        ended = []
        for question_id, in self.database.execute(
                "SELECT id FROM bot_questions WHERE state = ? AND deadline <= ?", (WAITING, now)):
            if self._end(question_id, EXPIRED):
                ended.append(self.get(question_id))
        return [q for q in ended if q is not None]

    def _end(self, question_id: int, state: str, *, answer: str | None = None,
             answered_by: str | None = None) -> bool:
        conn = self.database.connection()
        with self.database.transaction(conn):
            # A wait that ends without an answer never resumes: its conversation goes. An
            # answered one keeps it for the resumed job (run again after a crash).
            cursor = conn.execute(self.database.sql(
                "UPDATE bot_questions SET state = ?, answer = ?, answered_by = ?, ended_at = ?, "
                "messages = CASE WHEN ? THEN messages ELSE NULL END "
                "WHERE id = ? AND state = ?"),
                (state, answer, answered_by, time.time(), state == ANSWERED, question_id, WAITING))
            changed = cursor.rowcount == 1
        if changed:
            self._changed()
        return changed

    def awaited(self) -> dict[tuple[str, int], str]:
        """(repo, number) → the login whose plain comment answers the question waiting there."""
        rows = self.database.execute(
            "SELECT repo, number, requester FROM bot_questions WHERE state = ?", (WAITING,))
        return {(repo, number): requester for repo, number, requester in rows}


class AwaitedAnswers:
    """This process's copy of `QuestionStore.awaited`: the webhook path reads it without a
    query. Refreshed at once when this process's store changes, and every few seconds for the
    other machines' questions."""

    def __init__(self, store: QuestionStore) -> None:
        self.store = store
        self._awaited: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()
        store.on_change.append(self.refresh)

    def __call__(self, repo: str, number: int) -> str | None:
        return self._awaited.get((repo, number))

    def refresh(self) -> None:
        with self._lock:
            self._awaited = self.store.awaited()

    async def keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await asyncio.to_thread(self.refresh)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("could not refresh the questions waiting for an answer: %s", error)
