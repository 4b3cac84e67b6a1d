"""The first step of every flow: what the repository, the requester and the repository's
`.github/backend.yml` say, read once and checkpointed; and who may not trigger work.

The configuration is read from the default branch: a pull request never changes its own rules.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass

from bot import texts
from bot.engine import JobContext
from bot.errors import UserFacingError
from bot.flows.services import installation, services
from bot.repo_config import (
    CONFIG_PATH,
    DEFAULT_CONFIG,
    RepoConfig,
    RepoConfigError,
    meets_permission,
    parse_repo_config,
)
from bot.triggers import words_of


@dataclass
class Gathered:
    repo: dict
    bot_login: str
    bot_email: str
    requester_id: int
    permission: str
    config: dict | None
    config_error: str | None

    @property
    def default_branch(self) -> str:
        return self.repo["default_branch"]

    @property
    def repo_config(self) -> RepoConfig:
        """The repository's settings; the defaults while its file is invalid (the flow then
        reports the problem, and the texts still name the right words)."""
        return RepoConfig(**self.config) if self.config is not None else DEFAULT_CONFIG

    def require_valid_config(self, retry_hint: str) -> None:
        """Stop the flow with the file's problems, said on GitHub, while it is invalid."""
        if self.config_error:
            raise UserFacingError(texts.CONFIG_INVALID.format(problems=self.config_error,
                                                              retry_hint=retry_hint))

    def retry_hint(self, *, issue: bool) -> str:
        """How to run the work again, in this repository's own words."""
        config = self.repo_config
        if issue:
            return texts.RETRY_HINT_ISSUE.format(command=config.command, label=config.label)
        return texts.RETRY_HINT_PR.format(command=config.command)


async def gather(ctx: JobContext) -> Gathered:
    spec = ctx.job.spec

    async def read() -> dict:
        client = await installation(ctx)
        repo = await client.get_repo(spec["repo"])
        identity = await services(ctx).github.identity()
        permission = await client.permission(spec["repo"], spec["requester"])
        requester = await client.get_user(spec["requester"])
        text = await client.read_file(spec["repo"], CONFIG_PATH, ref=repo.default_branch)
        config, error = None, None
        try:
            parsed = parse_repo_config(text)
            config = parsed.model_dump()
            # The webhook path learns this repository's trigger words from here.
            await asyncio.to_thread(ctx.engine.trigger_words.remember, spec["repo"], words_of(parsed))
        except RepoConfigError as problem:
            error = str(problem)
        return asdict(Gathered(
            repo=asdict(repo), bot_login=identity.bot_login, bot_email=identity.bot_email,
            requester_id=requester.id, permission=permission,
            config=config, config_error=error,
        ))

    return Gathered(**await ctx.step("gather", read, retries=3))


def refusal(gathered: Gathered, login: str) -> str | None:
    """The polite refusal for someone who may not trigger work here, or None."""
    config = gathered.repo_config
    if meets_permission(config, login, gathered.permission):
        return None
    if config.allowed_users and login not in config.allowed_users:
        return texts.REFUSED_NOT_LISTED.format(login=login)
    return texts.REFUSED.format(login=login, permission=config.min_permission,
                                command=config.command)
