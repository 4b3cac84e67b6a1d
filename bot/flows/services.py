"""What every flow needs from outside the job: GitHub, the workspaces, the model client.

Built once per process by the composition root (`bot/app.py`) and handed to the flows through
the engine, so a flow never reaches for a global.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import anthropic

from bot.engine import JobContext
from bot.github.app import GitHubApp
from bot.github.client import InstallationClient
from bot.workspace import Workspaces


@dataclass
class Services:
    github: GitHubApp
    workspaces: Workspaces
    model_client: Callable[[], anthropic.AsyncAnthropic]


def services(ctx: JobContext) -> Services:
    return ctx.services["flows"]


async def installation(ctx: JobContext) -> InstallationClient:
    """GitHub as the installation that sent the job's trigger."""
    return await services(ctx).github.installation(ctx.job.spec["installation_id"])
