"""The jobs table: every trigger stored durably before the webhook is answered.

The intake path commits in groups: deliveries that arrive together are written in one
transaction, so a commit is paid once per batch rather than once per request. On SQLite the
batch is the deliveries of one turn of the event loop, written on the loop's thread (WAL mode,
`synchronous=NORMAL`: a commit reaches the operating system before the 202, so a killed or
crashed process loses nothing; only a power loss within the last moments could). On
PostgreSQL a writer thread takes whatever arrived while the previous commit was in flight.
The table is also what `backend-bot jobs`, `/backend status` and `/metrics` read; the engine
forwards its rows to the durable workflow queue (DBOS) in id order, which is arrival order,
one waiting job per key at a time (see `forwardable`).

SQLite (the embedded default) and PostgreSQL share the SQL below; where they differ is
`bot.database`'s business.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import queue
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.database import Database
from bot.logs import get_logger

if TYPE_CHECKING:  # routing brings githubkit's models: half a second `jobs` need not pay
    from bot.rate_limits import TriggerGate
    from bot.routing import JobRequest

log = get_logger(__name__)

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bot_jobs (
    id {id_column},
    dedup_key TEXT NOT NULL UNIQUE,
    delivery_id TEXT NOT NULL,
    event TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    result TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    forwarded INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS bot_jobs_unforwarded ON bot_jobs (forwarded, id);
CREATE INDEX IF NOT EXISTS bot_jobs_key_state ON bot_jobs (key, state, id);
CREATE INDEX IF NOT EXISTS bot_jobs_key ON bot_jobs (key, id);
CREATE INDEX IF NOT EXISTS bot_jobs_delivery ON bot_jobs (delivery_id);
"""

# Any constant will do: it names the one lock that makes a single process the forwarder.
_FORWARDER_LOCK = 0x6261636B656E64

_COLUMNS = (
    "id, delivery_id, event, kind, key, spec, state, attempts, error, result, "
    "created_at, started_at, finished_at"
)


@dataclass
class Job:
    id: int
    delivery_id: str
    event: str
    kind: str
    key: str
    spec: dict[str, Any]
    state: str
    attempts: int = 0
    error: str | None = None
    result: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.id)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow_id": self.workflow_id,
            "delivery_id": self.delivery_id,
            "event": self.event,
            "kind": self.kind,
            "key": self.key,
            "state": self.state,
            "attempts": self.attempts,
            "error": self.error,
            "result": self.result,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "spec": self.spec,
        }


def workflow_id_for(job_id: int) -> str:
    # Zero-padded, so that the queue's tie-break on workflow id (jobs created in the same
    # second on SQLite) is arrival order.
    return f"job-{job_id:012d}"


@dataclass
class _Submission:
    rows: list[tuple]
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    ids: list[tuple[int, bool]] = field(default_factory=list)


class JobStore:
    def __init__(self, database_url: str) -> None:
        # The other tables of this database (trigger words, heartbeats) share its connections.
        self.database = Database(database_url)
        self._writes: queue.SimpleQueue[_Submission | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._pending: list[_Submission] = []
        # sqlite3 or psycopg connections (Database.connect), opened on first use.
        self._loop_conn: Any | None = None
        self._forwarder_conn: Any | None = None
        self._on_commit: list[Any] = []
        # Turns the triggers of a person over their hourly limit into refusals (bot/rate_limits.py).
        self.gate: TriggerGate | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def open(self) -> None:
        """Create the table if need be; on PostgreSQL, start the intake's writer thread."""
        self.database.create_schema(_SCHEMA.format(id_column=self.database.id_column))
        if self.gate is not None:
            self.gate.create_schema(self.database)
        if self.database.postgres and self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="job-intake", daemon=True)
            self._writer.start()

    def close(self) -> None:
        if self._writer is not None:
            self._writes.put(None)
            self._writer.join(timeout=10)
            self._writer = None
        self.database.close()
        for conn in (self._forwarder_conn, self._loop_conn):
            if conn is not None:
                conn.close()
        self._forwarder_conn = None
        self._loop_conn = None

    def on_commit(self, callback) -> None:
        """Call `callback()` (from the writer thread) after each commit that added jobs."""
        self._on_commit.append(callback)

    # -- intake (the webhook's hot path) ---------------------------------------------------

    async def submit(
        self, delivery_id: str, event: str, requests: Iterable[JobRequest]
    ) -> list[tuple[int, bool]]:
        """Store the delivery's jobs durably; return (job id, newly created) for each.

        A repeated delivery id gives back the jobs stored the first time, marked not new.
        """
        now = time.time()
        rows = [
            (
                f"{delivery_id}:{index}",
                delivery_id,
                event,
                request.kind,
                request.key,
                json.dumps(request.spec, separators=(",", ":")),
                now,
            )
            for index, request in enumerate(requests)
        ]
        if not rows:
            return []
        loop = asyncio.get_running_loop()
        submission = _Submission(rows=rows, future=loop.create_future(), loop=loop)
        if self.database.postgres:
            self._writes.put(submission)
        else:
            self._pending.append(submission)
            if len(self._pending) == 1:
                loop.call_soon(self._flush_pending)
        return await submission.future

    def _flush_pending(self) -> None:
        """SQLite: write every delivery that arrived during this turn of the event loop in one
        transaction, on the loop's own thread. In WAL mode a commit is a write to the log, not
        an fsync, so this costs tens of microseconds; a thread would cost GIL hand-offs, which
        under load wait milliseconds each."""
        batch, self._pending = self._pending, []
        if self._loop_conn is None:
            self._loop_conn = self.database.connect()
            # Checkpoints (which do fsync) happen on the other connections' threads.
            self._loop_conn.execute("PRAGMA wal_autocheckpoint=0")
        try:
            created_any = self._write_batch(self._loop_conn, batch)
        except Exception as error:  # a database failure answers each waiting request
            log.exception("storing %d deliveries failed", len(batch))
            for submission in batch:
                _fail(submission.future, error)
            return
        for submission in batch:
            _resolve(submission.future, submission.ids)
        if created_any:
            for callback in self._on_commit:
                callback()

    def _write_loop(self) -> None:
        conn = self.database.connect()
        stop = False
        while not stop:
            first = self._writes.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < 512:
                try:
                    item = self._writes.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            try:
                created_any = self._write_batch(conn, batch)
            except Exception as error:  # a database failure answers each waiting request
                log.exception("storing %d deliveries failed", len(batch))
                for submission in batch:
                    submission.loop.call_soon_threadsafe(_fail, submission.future, error)
                if self.database.dropped(conn):
                    with contextlib.suppress(Exception):
                        conn = self.database.connect()
                continue
            for submission in batch:
                submission.loop.call_soon_threadsafe(_resolve, submission.future, submission.ids)
            if created_any:
                for callback in self._on_commit:
                    callback()
        conn.close()

    def _write_batch(self, conn, batch: list[_Submission]) -> bool:
        insert = self.database.sql(
            "INSERT INTO bot_jobs (dedup_key, delivery_id, event, kind, key, spec, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING RETURNING id"
        )
        existing = self.database.sql("SELECT id FROM bot_jobs WHERE dedup_key = ?")
        refuse = self.database.sql("UPDATE bot_jobs SET kind = ?, key = ?, spec = ? WHERE id = ?")
        created_any = False
        with self.database.transaction(conn):
            for submission in batch:
                submission.ids = []
                for row in submission.rows:
                    found = conn.execute(insert, row).fetchone()
                    # Counted once, when stored: a repeated delivery is the job it made the first time.
                    if found is not None and self.gate is not None and self.gate.applies(row[3]):
                        refusal = self.gate.refusal(self.database, conn, row)
                        if refusal is not None:
                            conn.execute(refuse, (*refusal, found[0]))
                    if found is not None:
                        submission.ids.append((found[0], True))
                        created_any = True
                    else:
                        prior = conn.execute(existing, (row[0],)).fetchone()
                        submission.ids.append((prior[0], False))
        return created_any

    # -- the engine's side -----------------------------------------------------------------

    def forwardable(self, limit: int = 200) -> list[Job]:
        """The oldest waiting job of each key that has no earlier job still waiting.

        The queue is thus offered at most one waiting job per key: per-key order holds by
        construction, every key can run in parallel, and a burst of deliveries is absorbed
        by this table (one commit per batch) instead of by the queue (a commit per job).
        """
        rows = self.database.execute(
            f"SELECT {_COLUMNS} FROM bot_jobs AS j WHERE j.forwarded = 0 AND j.state = 'queued' "
            "AND NOT EXISTS (SELECT 1 FROM bot_jobs AS e WHERE e.key = j.key AND e.id < j.id "
            "AND e.state = 'queued') ORDER BY j.id LIMIT ?",
            (limit,),
        )
        return [_job(row) for row in rows]

    def mark_forwarded(self, job_ids: Sequence[int]) -> None:
        placeholders = ", ".join("?" for _ in job_ids)
        self.database.execute(
            f"UPDATE bot_jobs SET forwarded = 1 WHERE id IN ({placeholders})", tuple(job_ids)
        )

    def get(self, job_id: int) -> Job | None:
        rows = self.database.execute(f"SELECT {_COLUMNS} FROM bot_jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def start_attempt(self, job_id: int) -> None:
        self.database.execute(
            "UPDATE bot_jobs SET state = 'running', attempts = attempts + 1, started_at = ?, "
            "finished_at = NULL WHERE id = ? AND state IN ('queued', 'running')",
            (time.time(), job_id),
        )

    def finish(self, job_id: int, state: str, *, error: str | None = None,
               result: str | None = None) -> None:
        assert state in FINAL_STATES
        self.database.execute(
            "UPDATE bot_jobs SET state = ?, error = ?, result = ?, finished_at = ? WHERE id = ?",
            (state, error, result, time.time(), job_id),
        )

    def list(self, *, limit: int = 50, key: str | None = None,
             states: Sequence[str] | None = None, exclude_kinds: Sequence[str] = ()) -> list[Job]:
        clauses, params = [], []
        if key is not None:
            clauses.append("key = ?")
            params.append(key)
        if states:
            clauses.append("state IN (" + ", ".join("?" for _ in states) + ")")
            params.extend(states)
        if exclude_kinds:
            clauses.append("kind NOT IN (" + ", ".join("?" for _ in exclude_kinds) + ")")
            params.extend(exclude_kinds)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.database.execute(
            f"SELECT {_COLUMNS} FROM bot_jobs {where} ORDER BY id DESC LIMIT ?", (*params, limit)
        )
        return [_job(row) for row in rows]

    def of_delivery(self, delivery_id: str, kind: str, key: str) -> Job | None:
        rows = self.database.execute(
            f"SELECT {_COLUMNS} FROM bot_jobs WHERE delivery_id = ? AND kind = ? AND key = ? "
            "ORDER BY id LIMIT 1", (delivery_id, kind, key),
        )
        return _job(rows[0]) if rows else None

    def ahead_of(self, job: Job) -> int:
        """How many jobs of the same key are queued or running before this one."""
        rows = self.database.execute(
            "SELECT COUNT(*) FROM bot_jobs WHERE key = ? AND id < ? "
            "AND state IN ('queued', 'running')", (job.key, job.id),
        )
        return rows[0][0]

    def waiting_before(self, job: Job, kinds: Sequence[str]) -> int:
        """How many jobs of these kinds, on other keys, were queued before this one and still
        wait (for a free worker)."""
        placeholders = ", ".join("?" for _ in kinds)
        rows = self.database.execute(
            f"SELECT COUNT(*) FROM bot_jobs WHERE id < ? AND key <> ? AND state = 'queued' "
            f"AND kind IN ({placeholders})", (job.id, job.key, *kinds),
        )
        return rows[0][0]

    # `list` here would be the method above.
    def running_ids(self) -> builtins.list[int]:
        rows = self.database.execute("SELECT id FROM bot_jobs WHERE state = 'running' ORDER BY id")
        return [row[0] for row in rows]

    def earlier_running(self, key: str, job_id: int) -> builtins.list[int]:
        """Earlier jobs of this key still marked running (interrupted, being recovered)."""
        rows = self.database.execute(
            "SELECT id FROM bot_jobs WHERE key = ? AND id < ? AND state = 'running' ORDER BY id",
            (key, job_id),
        )
        return [row[0] for row in rows]

    def try_forwarder_lock(self) -> bool:
        """Become the one forwarder among the processes sharing this database."""
        if not self.database.postgres:
            return True
        if self._forwarder_conn is None:
            self._forwarder_conn = self.database.connect()
        row = self._forwarder_conn.execute(
            "SELECT pg_try_advisory_lock(%s)", (_FORWARDER_LOCK,)
        ).fetchone()
        return bool(row[0])

    def counts_by_state(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        rows = self.database.execute("SELECT state, COUNT(*) FROM bot_jobs GROUP BY state")
        for state, count in rows:
            counts[state] = count
        return counts


def _job(row: tuple) -> Job:
    (job_id, delivery_id, event, kind, key, spec, state, attempts, error, result,
     created_at, started_at, finished_at) = row
    return Job(
        id=job_id, delivery_id=delivery_id, event=event, kind=kind, key=key,
        spec=json.loads(spec), state=state, attempts=attempts, error=error, result=result,
        created_at=created_at, started_at=started_at, finished_at=finished_at,
    )


def _resolve(future: asyncio.Future, value) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future, error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
