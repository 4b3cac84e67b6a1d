"""The composition root: the engine, its job kinds, and the web app, wired from the settings."""

from __future__ import annotations

import asyncio
import functools

import anthropic
from starlette.applications import Starlette

from bot.engine import Engine
from bot.flows import register_flows
from bot.flows.services import Services
from bot.github.app import GitHubApp
from bot.jobstore import JobStore
from bot.logs import get_logger
from bot.providers import make_client
from bot.registration import registration_routes
from bot.server import create_app
from bot.settings import Settings
from bot.workspace import Workspaces

log = get_logger(__name__)

def model_client_factory(settings: Settings):
    @functools.cache
    def model_client() -> anthropic.AsyncAnthropic:
        return make_client(settings)  # of MODEL_PROVIDER; see bot/providers.py

    return model_client


def build_engine(settings: Settings, *, run_workers: bool = True,
                 github: GitHubApp | None = None) -> Engine:
    engine = Engine(settings, JobStore(settings.database_url), run_workers=run_workers)
    if github is None and not settings.missing_credentials():
        github = GitHubApp(settings)
    if github is not None:
        register_flows(engine, Services(
            github=github,
            workspaces=Workspaces(settings.data_dir),
            model_client=model_client_factory(settings),
        ))
    return engine


def build_app(settings: Settings, *, run_workers: bool = True,
              github: GitHubApp | None = None, setup_token: str | None = None) -> Starlette:
    """The web app; `setup_token` unlocks the registration page of a bot without credentials."""
    engine = build_engine(settings, run_workers=run_workers, github=github)

    async def learn_app_slug(app: Starlette) -> None:
        """Learn this App's slug (to recognise its own PRs) without delaying start-up."""
        flows = engine.services.get("flows")
        if flows is None:
            return

        async def learn() -> None:
            delay = 1.0
            while True:
                try:
                    identity = await flows.github.identity()
                    app.state.bot["app_slug"] = identity.slug
                    log.info("running as GitHub App %s (%s)", identity.slug, identity.bot_login)
                    return
                except Exception as error:
                    log.warning("could not ask GitHub who this App is (%s); retrying", error)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 60)

        app.state.learn_slug = asyncio.create_task(learn())

    return create_app(settings, engine=engine,
                      extra_routes=registration_routes(settings, setup_token=setup_token),
                      on_startup=[learn_app_slug])
