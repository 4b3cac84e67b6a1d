"""The backend-engineer agent: Claude with Claude Code's tools, in a sandboxed workspace.

Public API (everything injectable; nothing read from the environment here)::

    from bot.agent import run_agent, Limits, Sandbox, issue_task

    sandbox = Sandbox.from_settings(workspace, settings, network=False)  # may raise SandboxUnavailable
    result = await run_agent(
        client=anthropic.AsyncAnthropic(...),   # injected; retries are done by the loop
        model=settings.anthropic_model,
        workspace=workspace,                    # a checkout on the branch to work on
        task_prompt=issue_task(number=42, title=..., body=..., requester="octocat", repo="o/r"),
        sandbox=sandbox,
        limits=Limits(max_turns=60, max_cost_usd=3.0, max_seconds=2700),
        on_todos=async_callback,                # called with [{content, status, activeForm}]
        trigger="#42",                          # goes into the work-log heading
    )
    result.outcome   # "finished" | "question" | "bound" | "error"
    result.entry     # WorkLogEntry (finished): append_entry(workspace, entry); render_entry(entry)
    result.question  # str (question): post it to the requester
    result.reason    # str (bound / error): say it to the user
    result.usage     # Usage: tokens, cache reads/writes, cost_usd, turns, duration_s
    render_footer(result.usage)  # "Model: ... · turns ... · tokens ... · cost ... · duration ..."

The agent does not commit; the caller commits whatever it left in the workspace (with
`core.hooksPath=/dev/null`), adds the entry to BACKEND_WORK_LOG.md, pushes and opens the PR.
`bot.agent.local.main` is the whole flow on a local checkout (`backend-bot run`).

Modules: `loop` (run_agent, Limits, AgentResult, caching), `tools` (the tool table),
`sandbox` (bubblewrap; `Sandbox.run` also runs the repository's test command),
`context` (task prompts and repository context), `usage` (prices, Usage, footer),
`repo_tests` (the bot's own run of a repository's tests), `local` (`backend-bot run`).
"""

from bot.agent.context import (
    FailingCheck,
    ReviewComment,
    build_first_message,
    ci_fix_task,
    issue_task,
    local_task,
    pull_request_task,
    repo_map,
    review_task,
    system_prompt,
    update_task,
)
from bot.agent.loop import AgentResult, Limits, answered, limits_for, run_agent, with_cache_breakpoints
from bot.agent.sandbox import CommandResult, Sandbox, SandboxUnavailable
from bot.agent.tools import Tool, ToolContext, ToolError, default_tools
from bot.agent.usage import PRICES, Usage, cost_usd, price_for, render_footer

__all__ = [
    "PRICES",
    "AgentResult",
    "CommandResult",
    "FailingCheck",
    "Limits",
    "ReviewComment",
    "Sandbox",
    "SandboxUnavailable",
    "Tool",
    "ToolContext",
    "ToolError",
    "Usage",
    "answered",
    "build_first_message",
    "ci_fix_task",
    "cost_usd",
    "default_tools",
    "issue_task",
    "limits_for",
    "local_task",
    "price_for",
    "pull_request_task",
    "render_footer",
    "repo_map",
    "review_task",
    "run_agent",
    "system_prompt",
    "update_task",
    "with_cache_breakpoints",
]
