"""The in-process bot of the flow tests (tests/support/in_process.py) starts like `backend-bot
serve` and leaves the test process as it found it, so one test's bot cannot help the next."""

from __future__ import annotations

import gc
import logging
import secrets

from bot import engine
from bot import redact as redaction
from bot.redact import REDACTED
from tests.agent_fakes import FakeAnthropic
from tests.support.in_process import InProcessBot
from tests.support.stack import bot_settings


def test_an_in_process_bot_leaves_the_process_as_it_found_it(github_sim_server, tmp_path):
    sim, _ = github_sim_server
    secret = f"model-key-{secrets.token_hex(8)}"  # no shape a pattern knows, held by no one else
    root = logging.getLogger()
    handlers, level, registry = root.handlers[:], root.level, redaction._known
    frozen = gc.get_freeze_count()
    with FakeAnthropic([]) as fake:
        bot = InProcessBot(bot_settings(sim, fake, tmp_path / "data", anthropic_api_key=secret),
                           tmp_path / "bot.log", transport=sim.transport())
        assert bot.start()["status"] == "ok"
        try:
            assert engine._active is not None
            # The bot registered its own secrets, as a starting process does.
            assert redaction.redact(f"<{secret}>") == f"<{REDACTED}>"
            logging.getLogger("bot.test").info("the secret is %s", secret)
        finally:
            bot.stop()

    assert engine._active is None
    assert root.handlers == handlers and root.level == level
    assert redaction._known is registry and redaction.redact(secret) == secret
    assert gc.get_freeze_count() == frozen
    log = bot.log()
    assert "engine started" in log and f"the secret is {REDACTED}" in log
    assert secret not in log


def test_the_bot_stops_even_when_a_background_task_swallows_a_cancellation(stack):
    """As `asyncio.wait_for` does on Python 3.11 when what it waits for completes as the
    cancellation arrives: the engine's forwarder once held a shutdown for ever that way."""
    import asyncio
    import time

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # the cancellation lost
        await asyncio.sleep(3600)

    async def add_to_the_engine() -> None:
        engine.active_engine()._tasks.append(asyncio.create_task(stubborn(), name="stubborn"))

    stack.bot.client.portal.call(add_to_the_engine)
    started = time.monotonic()
    stack.bot.stop()
    assert time.monotonic() - started < 30
    assert engine._active is None
