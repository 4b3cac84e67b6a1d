"""`backend-bot serve` inside the test process: the same bot, started in a fraction of a second.

What `backend-bot serve` does at start-up, done here the same way: the settings read once
(`load_settings`, which registers every configured secret for redaction), the log configured by
`bot.logs.configure` (its formatters redact) into a file, the app composed by
`bot.app.build_app` with the real engine, database, workspaces and sandbox. Its lifespan and
workers run on the event loop of a Starlette `TestClient`, which stays up between requests.

What differs from the bot in its own process, and nothing else:

- deliveries reach the app through the TestClient (ASGI) rather than a socket, signed as
  GitHub signs them;
- REST calls to GitHub go to the simulator's in-process transport; git still goes over HTTP
  to the served simulator (`GHE_HOST` points there);
- the settings are given, not read from an environment of the bot's own (`_env_file=None`).

A process starts with nothing left by an earlier bot, so the process-wide state a bot sets is
its own while it runs and put back when it stops: the registry of secrets to redact (a bot
must redact what it registered itself, not what an earlier test did), the root logger, the
engine singleton and DBOS, the garbage collector's frozen objects, the detected control groups.

What needs a real process (kill -9 and a restart; reading the process's own environment)
uses `BotProcess` (tests/support/processes.py).
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from dbos import DBOS
from starlette.testclient import TestClient

from bot import engine as engine_module
from bot import logs
from bot import redact as redaction
from bot.agent.cgroups import Cgroups
from bot.app import build_app
from bot.github import GitHubApp
from bot.settings import Settings, load_settings

# The loggers `logs.configure` changes besides the root.
_CONFIGURED_LOGGERS = ("dbos", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpx2")


class InProcessBot:
    """The bot's web app and workers in this process; `start()`, `post()`, `log()`, `stop()`."""

    def __init__(self, overrides: dict[str, Any], log_path: Path, *,
                 transport: httpx.AsyncBaseTransport, console: Any = None) -> None:
        """`console`: pytest's `capfd`, for what reaches this process's standard output and
        error (a process of its own would have written that to its log too)."""
        self.overrides = overrides
        self.log_path = log_path
        self.transport = transport
        self.console = console
        self._console_text: list[str] = []
        self.settings: Settings | None = None
        self.client: TestClient | None = None
        self._running: contextlib.ExitStack | None = None

    def start(self) -> dict:
        """Start as `backend-bot serve` does; returns /healthz's answer."""
        if self._running is not None:
            raise RuntimeError("the bot is already running")
        with contextlib.ExitStack() as running:
            running.enter_context(own_secret_registry())
            running.enter_context(_own_control_groups())
            running.enter_context(_one_engine())
            self.settings = load_settings(_env_file=None, **self.overrides)
            running.enter_context(_bot_log(self.log_path, self.settings))
            app = build_app(self.settings,
                            github=GitHubApp(self.settings, transport=self.transport))
            # The lifespan freezes what exists then out of the collector's passes (see
            # bot/server.py); a process ends there, this one goes on to other tests.
            running.callback(gc.unfreeze)
            self.client = running.enter_context(TestClient(app, raise_server_exceptions=True))
            health = self.client.get("/healthz")
            health.raise_for_status()
            self._running = running.pop_all()
        return health.json()

    def stop(self) -> None:
        """Stop as on SIGTERM: the lifespan's shutdown stops the engine."""
        running, self._running, self.client = self._running, None, None
        if running is not None:
            running.close()

    def post(self, path: str, *, content: bytes, headers: dict[str, str]) -> httpx.Response:
        if self.client is None:
            raise RuntimeError("the bot is not running")
        return self.client.post(path, content=content, headers=headers)

    def log(self) -> str:
        """The log file, then what reached standard output and error since the test began."""
        if self.console is not None:
            self._console_text.extend(self.console.readouterr())
        text = self.log_path.read_text() if self.log_path.exists() else ""
        return text + "".join(self._console_text)


@contextlib.contextmanager
def own_secret_registry() -> Iterator[None]:
    saved = redaction._known
    redaction._known = redaction._KnownSecrets()
    try:
        yield
    finally:
        redaction._known = saved


@contextlib.contextmanager
def _own_control_groups() -> Iterator[None]:
    # Detected afresh, as a starting process does (and says so in its log).
    saved, Cgroups._detected = Cgroups._detected, None
    try:
        yield
    finally:
        Cgroups._detected = saved


@contextlib.contextmanager
def _one_engine() -> Iterator[None]:
    if engine_module._active is not None:
        raise RuntimeError("an engine from an earlier test is still running in this process")
    try:
        yield
    finally:
        if engine_module._active is not None:
            # Its start failed half-way, so the lifespan never stopped it.
            with contextlib.suppress(Exception):
                DBOS.destroy(destroy_registry=False)
            engine_module._active = None


@contextlib.contextmanager
def _bot_log(path: Path, settings: Settings) -> Iterator[None]:
    root = logging.getLogger()
    saved_level = root.level
    saved = {name: (lib.handlers[:], lib.propagate, lib.level)
             for name, lib in ((n, logging.getLogger(n)) for n in _CONFIGURED_LOGGERS)}
    others = root.handlers[:]
    with open(path, "a", encoding="utf-8") as stream:
        handler = logs.configure(settings.log_level, settings.log_format, stream=stream)
        # Beside pytest's capturing handlers, which it adds and removes around each phase.
        root.handlers.extend(others)
        try:
            yield
        finally:
            root.removeHandler(handler)
            root.setLevel(saved_level)
            for name, (handlers, propagate, level) in saved.items():
                lib = logging.getLogger(name)
                lib.handlers[:] = handlers
                lib.propagate = propagate
                lib.setLevel(level)
            handler.close()
