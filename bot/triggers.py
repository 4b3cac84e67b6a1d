"""Each repository's trigger label and command word, as the webhook path sees them.

The words come from `.github/backend.yml`, which only workers read (the webhook path asks
GitHub nothing). Workers record what they read in the database (`TriggerWordStore`); each
serving process keeps a copy in memory (`RepoTriggers`), refreshed every few seconds off the
request path.
"""

from __future__ import annotations

import asyncio
import time

from bot.database import Database
from bot.logs import get_logger
from bot.repo_config import DEFAULT_CONFIG

log = get_logger(__name__)

REFRESH_SECONDS = 3.0
DEFAULT = (DEFAULT_CONFIG.label, DEFAULT_CONFIG.command)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bot_repo_triggers (
    repo TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    command TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
"""


class TriggerWordStore:
    """The table of each repository's words, as its workers last read them."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def create_table(self) -> None:
        self.database.create_schema(_SCHEMA)

    def remember(self, repo: str, label: str, command: str) -> None:
        self.database.execute(
            "INSERT INTO bot_repo_triggers (repo, label, command, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (repo) DO UPDATE SET label = excluded.label, "
            "command = excluded.command, updated_at = excluded.updated_at",
            (repo, label, command, time.time()),
        )

    def by_repo(self) -> dict[str, tuple[str, str]]:
        """(label, command) of every repository whose words were recorded."""
        rows = self.database.execute("SELECT repo, label, command FROM bot_repo_triggers")
        return {repo: (label, command) for repo, label, command in rows}


class RepoTriggers:
    """This process's copy of the words: the webhook path reads it without a query."""

    def __init__(self, store: TriggerWordStore) -> None:
        self.store = store
        self._words: dict[str, tuple[str, str]] = {}

    def __call__(self, repo: str) -> tuple[str, str]:
        return self._words.get(repo, DEFAULT)

    async def refresh(self) -> None:
        self._words = await asyncio.to_thread(self.store.by_repo)

    async def keep_fresh(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("could not refresh the repositories' trigger words: %s", error)
            await asyncio.sleep(REFRESH_SECONDS)
