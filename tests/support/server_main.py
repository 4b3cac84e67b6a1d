"""`backend-bot serve` with the test job functions of tests/support/kinds.py.

Run as `python -m tests.support.server_main [--no-workers]`; reads the same environment as the
real command, plus TEST_EVENTS (where the job functions record what they do). `--no-workers`
runs the web side only (`backend-bot serve --no-workers`): it stores and forwards jobs, and
`worker` processes (tests/support/worker_main.py) run them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import uvicorn

from bot import logs
from bot.engine import Engine
from bot.jobstore import JobStore
from bot.server import create_app
from bot.settings import load_settings
from tests.support.kinds import register


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="server_main")
    parser.add_argument("--no-workers", action="store_true", help="web only")
    args = parser.parse_args(argv)
    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    engine = Engine(settings, JobStore(settings.database_url), run_workers=not args.no_workers,
                    retry_interval=0.05, polling_interval=0.1,
                    max_attempts=int(os.environ.get("TEST_MAX_ATTEMPTS", "20")))
    register(engine, Path(os.environ["TEST_EVENTS"]))
    app = create_app(settings, engine=engine)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
