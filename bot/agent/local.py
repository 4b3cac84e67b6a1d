"""`backend-bot run --repo PATH "task"`: the agent on a local checkout, no GitHub.

A fresh branch (`backend/local-<slug>-<short>`), the agent, then one commit with its changes
and the new BACKEND_WORK_LOG.md entry, and the pull-request body printed on stdout. Exit
codes: 0 finished, 3 the agent asked a question (printed), 1 anything else (reason printed).
"""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import anthropic

from bot.agent.context import local_task
from bot.agent.loop import AgentResult, Limits, run_agent
from bot.agent.sandbox import Sandbox, SandboxUnavailable
from bot.agent.usage import render_footer
from bot.confined import UnsafePath
from bot.errors import BotError
from bot.github import git
from bot.worklog import WORKLOG_FILE, append_entry, render_entry
from bot.workspace import find_nested_repositories

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_QUESTION = 3
DEFAULT_AUTHOR = ("backend-bot", "backend-bot@localhost")


class LocalRunError(BotError):
    """Something about the checkout that the operator must fix before a run."""


def slugify(text: str, max_len: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    slug = slug[:max_len].rstrip("-")
    return slug or "task"


def _git(repo: Path, *args: str, check: bool = True, env: dict | None = None,
         user_config: bool = False) -> str:
    proc = git.run_git_sync(args, cwd=repo, env=env, user_config=user_config)
    stdout = proc.stdout.decode("utf-8", errors="replace").strip()
    if check and proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", errors="replace").strip()
        raise LocalRunError(f"git {' '.join(args)} failed: {stderr or stdout}")
    return stdout


def _author(repo: Path) -> tuple[str, str]:
    name = _git(repo, "config", "user.name", check=False, user_config=True)
    email = _git(repo, "config", "user.email", check=False, user_config=True)
    return (name, email) if name and email else DEFAULT_AUTHOR


def prepare_branch(repo: Path, branch: str | None, task: str) -> str:
    """Check the checkout is a clean git work tree and switch to a fresh branch."""
    if _git(repo, "rev-parse", "--is-inside-work-tree", check=False) != "true":
        raise LocalRunError(f"{repo} is not a git checkout.")
    if _git(repo, "status", "--porcelain"):
        raise LocalRunError(
            f"{repo} has uncommitted changes; commit or stash them first, so the agent's "
            "commit holds only its own work."
        )
    branch = branch or f"backend/local-{slugify(task)}-{uuid.uuid4().hex[:6]}"
    if _git(repo, "check-ref-format", "--branch", branch, check=False) == "":
        raise LocalRunError(f"{branch!r} is not a valid branch name.")
    if _git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False):
        raise LocalRunError(f"branch {branch!r} already exists; pick another with --branch.")
    _git(repo, "switch", "-c", branch)
    return branch


def commit_all(repo: Path, message: str, author: tuple[str, str], *,
               nested_before: Iterable[str] = ()) -> str:
    """Commit everything in the work tree (hardened git); the new commit's sha.

    Refuses when the run left a repository nested in the checkout: its configuration is the
    agent's, and this is the operator's checkout, so it is reported rather than deleted.
    """
    planted = sorted(set(find_nested_repositories(repo)) - set(nested_before))
    if planted:
        raise LocalRunError(
            "the run left nested repositories in the checkout, which the bot will not commit "
            f"or touch: {', '.join(planted)}. Remove them and commit by hand."
        )
    env = {
        "GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1],
        "GIT_COMMITTER_NAME": author[0], "GIT_COMMITTER_EMAIL": author[1],
    }
    _git(repo, "add", "-A")
    _git(repo, "commit", "--no-verify", "-q", "-m", message, env=env)
    return _git(repo, "rev-parse", "HEAD")


def pull_request_body(result: AgentResult) -> str:
    assert result.entry is not None
    return f"{render_entry(result.entry).rstrip()}\n\n{render_footer(result.usage)}\n"


def main(
    repo: str,
    task: str,
    settings,
    *,
    max_turns: int | None = None,
    max_cost: float | None = None,
    branch: str | None = None,
    client: anthropic.AsyncAnthropic | None = None,
    limits: Limits | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the agent on the checkout at `repo`; print the PR body; return the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    path = Path(repo).expanduser().resolve()
    if not task.strip():
        print("error: the task is empty; say what the agent should do.", file=err)
        return EXIT_FAILED
    limits = limits or Limits()
    overrides: dict[str, Any] = {}
    if max_turns is not None:
        overrides["max_turns"] = max_turns
    if max_cost is not None:
        overrides["max_cost_usd"] = max_cost
    if overrides:
        limits = replace(limits, **overrides)

    try:
        if not path.is_dir():
            raise LocalRunError(f"{path} is not a directory.")
        toplevel = Path(_git(path, "rev-parse", "--show-toplevel", check=False) or path).resolve()
        sandbox = Sandbox.from_settings(toplevel, settings)
        sandbox.check()
        owns_client = client is None
        if client is None:
            key = settings.anthropic_api_key
            if key is None:
                raise LocalRunError("ANTHROPIC_API_KEY is not set (in the environment or .env).")
            client = anthropic.AsyncAnthropic(
                api_key=key.get_secret_value(), base_url=settings.anthropic_base_url, max_retries=0
            )
        branch = prepare_branch(toplevel, branch, task)
        nested_before = find_nested_repositories(toplevel)
    except (LocalRunError, SandboxUnavailable) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_FAILED

    print(f"backend-bot: working on branch {branch} with {settings.anthropic_model}", file=err)

    async def show_plan(todos: list[dict]) -> None:
        marks = {"pending": "[ ]", "in_progress": "[~]", "completed": "[x]"}
        print("plan:", file=err)
        for todo in todos:
            print(f"  {marks.get(todo['status'], '[ ]')} {todo['content']}", file=err)

    requester = _git(toplevel, "config", "user.name", check=False, user_config=True) or "The operator"
    async def run() -> AgentResult:
        try:
            return await run_agent(
                client=client,
                model=settings.anthropic_model,
                workspace=toplevel,
                task_prompt=local_task(task, requester=requester),
                sandbox=sandbox,
                limits=limits,
                on_todos=show_plan,
            )
        finally:
            if owns_client:
                await client.close()

    result = asyncio.run(run())
    footer = render_footer(result.usage)
    if result.outcome == "finished":
        assert result.entry is not None
        message = f"{result.entry.title}\n\n{result.entry.task_summary}\n\nSee {WORKLOG_FILE}."
        try:
            append_entry(toplevel, result.entry)
            sha = commit_all(toplevel, message, _author(toplevel), nested_before=nested_before)
        except (LocalRunError, UnsafePath) as exc:
            print(f"error: {exc}", file=err)
            return EXIT_FAILED
        print(pull_request_body(result), file=out, end="")
        print(f"backend-bot: committed {sha[:12]} on {branch}", file=err)
        return EXIT_OK
    if result.outcome == "question":
        print(f"The agent has a question:\n\n{result.question}\n\n{footer}", file=out)
        print(f"backend-bot: nothing committed; changes so far are left on {branch}", file=err)
        return EXIT_QUESTION
    print(f"The run stopped: {result.reason}\n\n{footer}", file=out)
    print(f"backend-bot: nothing committed; changes so far are left on {branch}", file=err)
    return EXIT_FAILED
