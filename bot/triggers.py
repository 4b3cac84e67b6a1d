"""Each repository's trigger label and command word, as the webhook path sees them.

The words come from `.github/backend.yml`, which only workers read (the webhook path asks
GitHub nothing). Workers record what they read in the jobs database; each serving process
keeps a copy in memory, refreshed every few seconds off the request path.
"""

from __future__ import annotations

import asyncio

from bot.jobstore import JobStore
from bot.logs import get_logger
from bot.repo_config import DEFAULT_CONFIG

log = get_logger(__name__)

REFRESH_SECONDS = 3.0
DEFAULT = (DEFAULT_CONFIG.label, DEFAULT_CONFIG.command)


class RepoTriggers:
    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._words: dict[str, tuple[str, str]] = {}

    def __call__(self, repo: str) -> tuple[str, str]:
        return self._words.get(repo, DEFAULT)

    async def refresh(self) -> None:
        self._words = await asyncio.to_thread(self.store.triggers)

    async def keep_fresh(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("could not refresh the repositories' trigger words: %s", error)
            await asyncio.sleep(REFRESH_SECONDS)
