"""One job at a time per key, held until the job's function has really returned.

The queue's partitions already run one job per key, but a cancelled workflow frees its
partition at once while its step may still be cleaning up, and a recovered workflow is
re-enqueued outside the partition. The guard closes both gaps: in one process an asyncio
lock per key; across processes (PostgreSQL) a session advisory lock per key, released by
PostgreSQL itself if the holder dies.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from bot.database import Database


class LocalKeyGuard:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._locks[key]


class PostgresKeyGuard:
    """A session advisory lock per key, on a connection of its own for the job's duration."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.local = LocalKeyGuard()

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        # Jobs of one key in this process queue on the local lock, so only one of them
        # waits on (and holds) a database connection.
        async with self.local.hold(key):
            conn = await self.database.connect_async()
            try:
                await conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
                try:
                    yield
                finally:
                    with contextlib.suppress(Exception):
                        await conn.execute(
                            "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,)
                        )
            finally:
                await conn.close()


def key_guard_for(database: Database):
    return PostgresKeyGuard(database) if database.postgres else LocalKeyGuard()
