"""Heartbeats between processes sharing one database, and takeover of a dead one's jobs.

DBOS resumes a crashed process's workflows only when a process with the same executor id
comes back. A machine that is gone for good would strand its jobs, so every process beats
a heartbeat into `bot_executors`, and workers resume the pending workflows of any process
that has been silent for `DEAD_AFTER` seconds, from their last completed step.

Bound: a dead worker's jobs are picked up within DEAD_AFTER + CHECK_INTERVAL seconds, plus
the queue's polling interval.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

from dbos import DBOS

from bot.database import Database
from bot.errors import BotError
from bot.logs import get_logger

log = get_logger(__name__)

HEARTBEAT_INTERVAL = 2.0
DEAD_AFTER = 10.0
CHECK_INTERVAL = 2.0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS bot_executors (
    executor_id TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL
);
"""


class ExecutorIdInUse(BotError):
    pass


class ExecutorStore:
    """The table of processes and their last heartbeats.

    Heartbeats are stamped and judged by the database's clock, so machines whose clocks
    disagree do not think each other dead.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def create_table(self) -> None:
        self.database.create_schema(_SCHEMA)

    def heartbeat(self, executor_id: str, role: str, host: str, pid: int) -> None:
        now = self.database.now_sql
        self.database.execute(
            "INSERT INTO bot_executors (executor_id, role, host, pid, started_at, last_seen) "
            f"VALUES (?, ?, ?, ?, {now}, {now}) ON CONFLICT (executor_id) DO UPDATE SET "
            "role = excluded.role, host = excluded.host, pid = excluded.pid, "
            "last_seen = excluded.last_seen",
            (executor_id, role, host, pid),
        )

    def get(self, executor_id: str) -> dict | None:
        """The executor's row, with `silence`: seconds since its last heartbeat."""
        rows = self.database.execute(
            f"SELECT executor_id, role, host, pid, {self.database.now_sql} - last_seen "
            "FROM bot_executors WHERE executor_id = ?", (executor_id,),
        )
        if not rows:
            return None
        executor_id, role, host, pid, silence = rows[0]
        return {"executor_id": executor_id, "role": role, "host": host, "pid": pid,
                "silence": float(silence)}

    def silent(self, seconds: float) -> list[str]:
        """Executors whose last heartbeat is more than `seconds` old."""
        rows = self.database.execute(
            f"SELECT executor_id FROM bot_executors WHERE last_seen < {self.database.now_sql} - ?",
            (seconds,),
        )
        return [row[0] for row in rows]

    def forget(self, executor_id: str) -> None:
        self.database.execute("DELETE FROM bot_executors WHERE executor_id = ?", (executor_id,))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Heartbeats:
    def __init__(self, executors: ExecutorStore, executor_id: str, role: str, *,
                 take_over: bool) -> None:
        self.executors = executors
        self.executor_id = executor_id
        self.role = role
        self.take_over = take_over
        self.host = socket.gethostname()
        self.pid = os.getpid()

    def claim(self) -> None:
        """Refuse to start when another live process already uses this executor id."""
        current = self.executors.get(self.executor_id)
        if (
            current is not None
            and current["silence"] < DEAD_AFTER
            and (current["host"], current["pid"]) != (self.host, self.pid)
            and not (current["host"] == self.host and not _alive(current["pid"]))
        ):
            raise ExecutorIdInUse(
                f"executor id {self.executor_id!r} is in use by a live process "
                f"(pid {current['pid']} on {current['host']}); give each process its own "
                "BOT_DATA_DIR or BOT_EXECUTOR_ID"
            )
        self.executors.heartbeat(self.executor_id, self.role, self.host, self.pid)

    async def run(self) -> None:
        next_check = time.monotonic() + CHECK_INTERVAL
        while True:
            try:
                await asyncio.to_thread(
                    self.executors.heartbeat, self.executor_id, self.role, self.host, self.pid
                )
                if self.take_over and time.monotonic() >= next_check:
                    next_check = time.monotonic() + CHECK_INTERVAL
                    await self._take_over_the_dead()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("heartbeat failed; retrying")
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    async def _take_over_the_dead(self) -> None:
        silent = await asyncio.to_thread(self.executors.silent, DEAD_AFTER)
        for executor_id in silent:
            if executor_id == self.executor_id:
                continue
            handles = await asyncio.to_thread(DBOS._recover_pending_workflows, [executor_id])
            log.warning("executor %s is silent; resumed its %d unfinished jobs",
                        executor_id, len(handles))
            await asyncio.to_thread(self.executors.forget, executor_id)
