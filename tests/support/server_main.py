"""`backend-bot serve` with the test job functions of tests/support/kinds.py.

Run as `python -m tests.support.server_main`; reads the same environment as the real
command, plus TEST_EVENTS (where the job functions record what they do).
"""

from __future__ import annotations

import os
from pathlib import Path

import uvicorn

from bot import logs
from bot.engine import Engine
from bot.jobstore import JobStore
from bot.server import create_app
from bot.settings import load_settings
from tests.support.kinds import register


def main() -> None:
    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    engine = Engine(settings, JobStore(settings.database_url), retry_interval=0.05,
                    polling_interval=0.1)
    register(engine, Path(os.environ["TEST_EVENTS"]))
    app = create_app(settings, engine=engine)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
