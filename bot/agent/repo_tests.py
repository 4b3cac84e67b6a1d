"""The bot's own run of a repository's test command, after the agent, in the agent's sandbox.

The agent says what it tested; this is what the tests say, put beside its words in the
work-log entry. GitHub runs and `backend-bot run` both use it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.agent.sandbox import Sandbox
from bot.redact import redact
from bot.repo_config import RepoConfig, detect_test_command
from bot.sanitize import code_fence, code_span

TEST_RUN_TIMEOUT = 15 * 60
TEST_OUTPUT_LINES = 40


async def run_repository_tests(workspace: Path, sandbox: Sandbox,
                               config: RepoConfig) -> dict | None:
    """Run the repository's own tests in the sandbox; the real outcome, not the agent's word."""
    command = config.test_command or await asyncio.to_thread(detect_test_command, workspace)
    if command is None:
        return None
    if config.setup_command:
        setup = await sandbox.run(config.setup_command, timeout=TEST_RUN_TIMEOUT,
                                  network=config.network)
        if setup.exit_code != 0:
            return {"command": config.setup_command, "passed": False,
                    "exit_code": setup.exit_code, "timed_out": setup.timed_out,
                    "duration": round(setup.duration, 1), "output": _tail(setup.output),
                    "setup_failed": True}
    outcome = await sandbox.run(command, timeout=TEST_RUN_TIMEOUT, network=config.network)
    return {"command": command, "passed": outcome.exit_code == 0 and not outcome.timed_out,
            "exit_code": outcome.exit_code, "timed_out": outcome.timed_out,
            "duration": round(outcome.duration, 1), "output": _tail(outcome.output),
            "setup_failed": False}


def _tail(output: str) -> str:
    return "\n".join(redact(output).rstrip().splitlines()[-TEST_OUTPUT_LINES:])


def verdict(tests: dict) -> str:
    """How the run went, in a few words: `passed (exit 0, 1.2 s)`."""
    if tests["timed_out"]:
        return f"timed out after {tests['duration']} s"
    if tests["passed"]:
        return f"passed (exit 0, {tests['duration']} s)"
    return f"failed (exit {tests['exit_code']}, {tests['duration']} s)"


def with_bot_tests(agent_text: str, tests: dict) -> str:
    what = "setup command" if tests["setup_failed"] else "test command"
    output = tests["output"] or "(no output)"
    fence = code_fence(output)  # the repository prints what it likes
    report = (
        f"**The bot's own run of the {what}:** {code_span(tests['command'])} {verdict(tests)}.\n\n"
        f"{fence}text\n{output}\n{fence}"
    )
    agent_text = agent_text.strip()
    return f"{agent_text}\n\n{report}" if agent_text else report
