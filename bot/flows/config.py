"""Kind `config`: `.github/backend.yml` changed on the default branch; learn its trigger words.

An invalid file leaves the words as they were: the next run on an issue or PR reports the
problem there, in plain words.
"""

from __future__ import annotations

import asyncio

from bot.engine import JobContext
from bot.flows.services import installation
from bot.repo_config import CONFIG_PATH, RepoConfigError, parse_repo_config
from bot.triggers import words_of


async def run(ctx: JobContext) -> str:
    repo = ctx.job.spec["repo"]

    async def read() -> str | None:
        client = await installation(ctx)
        return await client.read_file(repo, CONFIG_PATH, ref=await client.default_branch(repo))

    text = await ctx.step("read config", read, retries=3)
    try:
        config = parse_repo_config(text)
    except RepoConfigError as problem:
        return f"kept the previous trigger words: {CONFIG_PATH} is invalid ({problem})"
    await asyncio.to_thread(ctx.engine.trigger_words.remember, repo, words_of(config))
    return f"trigger label `{config.label}`, command `/{config.command}`"
