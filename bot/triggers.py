"""Each repository's trigger label, command word and branch prefix, as the webhook path sees them.

The words come from `.github/backend.yml`, which only workers read (the webhook path asks
GitHub nothing). Workers record what they read in the database (`TriggerWordStore`); each
serving process keeps a copy in memory (`RepoTriggers`), refreshed every few seconds off the
request path.
"""

from __future__ import annotations

import asyncio
import time
from typing import NamedTuple

from bot.database import Database
from bot.logs import get_logger
from bot.repo_config import DEFAULT_CONFIG, RepoConfig

log = get_logger(__name__)

REFRESH_SECONDS = 3.0


class Words(NamedTuple):
    label: str
    command: str
    branch_prefix: str  # the bot's branches: which failing checks may be its own


def words_of(config: RepoConfig) -> Words:
    return Words(config.label, config.command, config.branch_prefix)


DEFAULT = Words(DEFAULT_CONFIG.label, DEFAULT_CONFIG.command, DEFAULT_CONFIG.branch_prefix)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS bot_repo_triggers (
    repo TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    command TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    branch_prefix TEXT NOT NULL DEFAULT '{DEFAULT.branch_prefix}'
);
"""


class TriggerWordStore:
    """The table of each repository's words, as its workers last read them."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def create_table(self) -> None:
        self.database.create_schema(_SCHEMA)
        self._add_branch_prefix()

    def _add_branch_prefix(self) -> None:
        """A table made before the branch prefix was kept gets its column (the default until
        the repository's config is read again)."""
        column = f"branch_prefix TEXT NOT NULL DEFAULT '{DEFAULT.branch_prefix}'"
        if self.database.postgres:
            self.database.execute(f"ALTER TABLE bot_repo_triggers ADD COLUMN IF NOT EXISTS {column}")
            return
        names = {row[1] for row in self.database.execute("PRAGMA table_info(bot_repo_triggers)")}
        if "branch_prefix" in names:
            return
        try:
            self.database.execute(f"ALTER TABLE bot_repo_triggers ADD COLUMN {column}")
        except Exception as error:  # another process on this machine added it first
            if "duplicate column" not in str(error):
                raise

    def remember(self, repo: str, words: Words) -> None:
        self.database.execute(
            "INSERT INTO bot_repo_triggers (repo, label, command, branch_prefix, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (repo) DO UPDATE SET label = excluded.label, "
            "command = excluded.command, branch_prefix = excluded.branch_prefix, "
            "updated_at = excluded.updated_at",
            (repo, words.label, words.command, words.branch_prefix, time.time()),
        )

    def by_repo(self) -> dict[str, Words]:
        """The words of every repository whose words were recorded."""
        rows = self.database.execute("SELECT repo, label, command, branch_prefix FROM bot_repo_triggers")
        return {repo: Words(label, command, prefix) for repo, label, command, prefix in rows}


class RepoTriggers:
    """This process's copy of the words: the webhook path reads it without a query."""

    def __init__(self, store: TriggerWordStore) -> None:
        self.store = store
        self._words: dict[str, Words] = {}

    def __call__(self, repo: str) -> Words:
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
