"""The composition root: the engine, its job kinds, and the web app, wired from the settings."""

from __future__ import annotations

from starlette.applications import Starlette

from bot.engine import Engine
from bot.jobstore import JobStore
from bot.registration import registration_routes
from bot.server import create_app
from bot.settings import Settings


def build_engine(settings: Settings, *, run_workers: bool = True) -> Engine:
    engine = Engine(settings, JobStore(settings.database_url), run_workers=run_workers)
    return engine


def build_app(settings: Settings, *, run_workers: bool = True) -> Starlette:
    engine = build_engine(settings, run_workers=run_workers)
    return create_app(settings, engine=engine, extra_routes=registration_routes(settings))
