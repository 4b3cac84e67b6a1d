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

from bot.jobstore import JobStore
from bot.logs import get_logger

log = get_logger(__name__)

HEARTBEAT_INTERVAL = 2.0
DEAD_AFTER = 10.0
CHECK_INTERVAL = 2.0


class ExecutorIdInUse(RuntimeError):
    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Heartbeats:
    def __init__(self, store: JobStore, executor_id: str, role: str, *, take_over: bool) -> None:
        self.store = store
        self.executor_id = executor_id
        self.role = role
        self.take_over = take_over
        self.host = socket.gethostname()
        self.pid = os.getpid()

    def claim(self) -> None:
        """Refuse to start when another live process already uses this executor id."""
        current = self.store.executor(self.executor_id)
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
        self.store.heartbeat(self.executor_id, self.role, self.host, self.pid)

    async def run(self) -> None:
        next_check = time.monotonic() + CHECK_INTERVAL
        while True:
            try:
                await asyncio.to_thread(
                    self.store.heartbeat, self.executor_id, self.role, self.host, self.pid
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
        silent = await asyncio.to_thread(self.store.silent_executors, DEAD_AFTER)
        for executor_id in silent:
            if executor_id == self.executor_id:
                continue
            handles = await asyncio.to_thread(DBOS._recover_pending_workflows, [executor_id])
            log.warning("executor %s is silent; resumed its %d unfinished jobs",
                        executor_id, len(handles))
            await asyncio.to_thread(self.store.forget_executor, executor_id)
