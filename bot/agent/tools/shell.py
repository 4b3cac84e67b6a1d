"""Bash: a command in the workspace, run by the sandbox."""

from __future__ import annotations

from pydantic import Field

from bot.agent.tools.base import BASH_MAX_TIMEOUT_MS, Tool, ToolContext, ToolError, ToolInput

BASH_DEFAULT_TIMEOUT_MS = 120_000


class BashInput(ToolInput):
    command: str = Field(min_length=1, description="The command to run.")
    timeout: int | None = Field(default=None, ge=1, description="Time limit in milliseconds.")
    description: str | None = Field(default=None, description="What the command does, in 5-10 words.")


async def bash_tool(ctx: ToolContext, args: BashInput) -> str:
    timeout_ms = min(args.timeout or BASH_DEFAULT_TIMEOUT_MS, BASH_MAX_TIMEOUT_MS)
    timeout = min(timeout_ms / 1000, ctx.command_timeout_cap)
    result = await ctx.sandbox.run(args.command, timeout=timeout)
    output = result.output.rstrip("\n") or "(no output)"
    if result.timed_out:
        raise ToolError(f"{output}\n[exit: killed after {timeout:g} s]")
    if result.exit_code != 0:
        raise ToolError(f"{output}\n[exit code {result.exit_code}]")
    return output


BASH = Tool(
    "Bash",
    "Run a shell command (bash) in the workspace, inside a sandbox: the workspace is "
    "writable, the rest of the system read-only, /tmp private, no network, no secrets "
    "in the environment. Output (stdout and stderr) is capped. Default time limit 2 "
    "minutes, `timeout` in milliseconds up to 600000. Use it to run tests, linters, "
    "builds and git status/diff; do not commit or push (the bot does).",
    BashInput,
    bash_tool,
)
