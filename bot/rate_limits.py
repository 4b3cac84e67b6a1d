"""How often one person may start work: BOT_TRIGGERS_PER_HOUR per person per installation.

Counted where a trigger becomes a job, in the intake's own transaction (`JobStore`), so the
webhook path makes no network call and two deliveries at once cannot both take the last place
(SQLite has one writer; on PostgreSQL a transaction-scoped advisory lock per person orders them).
Only work counts (an issue's label or command, a command on a pull request, a review,
`update`, and the work a `retry` submits again): `help`, `status` and `cancel` never do, nor
the update rounds the bot starts itself when the default branch moves, nor a conversation
resumed by an answer.

A trigger over the limit is stored as a job of kind `rate_limited` instead of the work it asked
for: the first of the hour posts one polite comment saying when the person may ask again; the
others end without a word, so a flood of triggers cannot make the bot flood the repository.
A repeat of an accepted delivery is the job stored the first time, never counted twice.

`now()` is the one clock here, so tests move it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bot.database import Database

TRIGGER_KINDS = frozenset({"issue", "pr_command", "review", "update"})
REFUSAL_KIND = "rate_limited"
WINDOW_SECONDS = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bot_triggers (
    id {id_column},
    installation_id BIGINT NOT NULL,
    person TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    refused INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS bot_triggers_person ON bot_triggers (installation_id, person, at)
"""


def now() -> float:
    return time.time()


class TriggerGate:
    """Admits each stored trigger or turns it into its refusal (see the module docstring)."""

    def __init__(self, per_hour: int) -> None:
        self.per_hour = per_hour

    def create_schema(self, database: Database) -> None:
        database.create_schema(_SCHEMA.format(id_column=database.id_column))

    def applies(self, kind: str) -> bool:
        return kind in TRIGGER_KINDS

    def refusal(self, database: Database, conn: Any, row: tuple) -> tuple[str, str, str] | None:
        """Count the trigger just stored from the intake row `(dedup_key, delivery_id, event,
        kind, key, spec, created_at)`: None when its person is under the limit, else the kind,
        key and spec of the refusal to store in its place. Runs inside the intake's
        transaction, on its connection."""
        _, _, _, kind, key, spec_text, _ = row
        spec = json.loads(spec_text)
        if spec.get("trigger") == "default_branch" or spec.get("resume_question") is not None:
            # An update round the bot started itself, or a conversation going on after its
            # question was answered: nobody asked for new work (and an answer is never lost).
            return None
        if not spec.get("requester"):
            return None  # no person to count, and never one shared bucket for all of them
        installation_id = spec.get("installation_id") or 0
        # GitHub logins are case-insensitive.
        person = str(spec.get("requester") or "").lower()
        at = now()

        def run(statement: str, params: tuple) -> list:
            cursor = conn.execute(database.sql(statement), params)
            return cursor.fetchall() if cursor.description else []

        if database.postgres:
            run("SELECT pg_advisory_xact_lock(hashtext(?::text))", (f"triggers:{installation_id}:{person}",))
        run("DELETE FROM bot_triggers WHERE installation_id = ? AND person = ? AND at <= ?",
            (installation_id, person, at - WINDOW_SECONDS))
        counted, refused, oldest = run(
            "SELECT COALESCE(SUM(1 - refused), 0), COALESCE(SUM(refused), 0), MIN(CASE WHEN refused = 0 "
            "THEN at END) FROM bot_triggers WHERE installation_id = ? AND person = ?",
            (installation_id, person))[0]
        admitted = counted < self.per_hour
        run("INSERT INTO bot_triggers (installation_id, person, at, refused) VALUES (?, ?, ?, ?)",
            (installation_id, person, at, 0 if admitted else 1))
        if admitted:
            return None
        refusal = {**spec, "for_kind": kind, "limit": self.per_hour,
                   "speak": refused == 0, "again_at": float(oldest) + WINDOW_SECONDS}
        return REFUSAL_KIND, f"{key}/{REFUSAL_KIND}", json.dumps(refusal, separators=(",", ":"))
