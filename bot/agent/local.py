"""`backend-bot run --repo PATH "task"`: the agent on a local checkout, no GitHub.

The checkout's own `.github/backend.yml` says what it says on GitHub (bounds, model, test and
setup commands, network, branch prefix); `--max-turns` and `--max-cost` override it. A fresh
branch (`<branch_prefix>local-<slug>-<short>`), the agent, the bot's own run of the tests,
then one commit with the changes and the new BACKEND_WORK_LOG.md entry, and the pull-request
body printed on stdout. Whatever the outcome the checkout ends where it started (the branch,
or the commit of a detached HEAD); changes of a run that asked or stopped are kept in a
work-in-progress commit on the run's branch.

Exit codes: 0 finished, 3 the agent asked a question (printed), 1 anything else (reason printed).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

import anthropic

from bot.agent.context import local_task
from bot.agent.loop import AgentResult, Limits, limits_for, run_agent
from bot.agent.repo_tests import run_repository_tests, verdict, with_bot_tests
from bot.agent.sandbox import Sandbox, SandboxUnavailable
from bot.agent.usage import render_footer
from bot.confined import UnsafePath
from bot.errors import BotError, UserFacingError
from bot.github import git
from bot.providers import make_client, provider_model_id
from bot.repo_config import RepoConfig, RepoConfigError, read_checkout_config
from bot.worklog import WORKLOG_FILE, append_entry, render_entry
from bot.workspace import find_nested_repositories

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_QUESTION = 3
DEFAULT_AUTHOR = ("backend-bot", "backend-bot@localhost")

# Someone waits at the terminal: better to hear soon that the model service is out of reach
# than to sit through the server's two and a half minutes of retries (retry_window: 28 s).
LOCAL_LIMITS = Limits(retries=4, backoff_base=1.0, backoff_max=5.0, connect_timeout=4.0)


class LocalRunError(BotError):
    """Something about the checkout that the operator must fix before a run."""


@dataclass(frozen=True)
class Start:
    """Where the checkout was when the run began, to go back to."""

    branch: str | None  # None: a detached HEAD
    sha: str

    def __str__(self) -> str:
        return self.branch or f"{self.sha[:12]} (detached HEAD)"


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


def checkout_root(path: Path) -> Path:
    """The top of the git work tree at `path`."""
    if not path.is_dir():
        raise LocalRunError(f"{path} is not a directory.")
    if _git(path, "rev-parse", "--is-inside-work-tree", check=False) != "true":
        raise LocalRunError(f"{path} is not a git checkout.")
    return Path(_git(path, "rev-parse", "--show-toplevel")).resolve()


def starting_point(repo: Path) -> Start:
    sha = _git(repo, "rev-parse", "--verify", "--quiet", "HEAD", check=False)
    if not sha:
        raise LocalRunError(f"{repo} has no commit yet; commit something first, so the run "
                            "has a branch to come back to.")
    return Start(_git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False) or None, sha)


def prepare_branch(repo: Path, branch: str) -> str:
    """Check the checkout is clean and switch to a fresh `branch`."""
    if _git(repo, "status", "--porcelain"):
        raise LocalRunError(
            f"{repo} has uncommitted changes; commit or stash them first, so the agent's "
            "commit holds only its own work."
        )
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


def go_back(repo: Path, start: Start) -> None:
    if start.branch:
        _git(repo, "switch", "--quiet", start.branch)
    else:
        _git(repo, "switch", "--quiet", "--detach", start.sha)


def pull_request_body(result: AgentResult) -> str:
    assert result.entry is not None
    return f"{render_entry(result.entry).rstrip()}\n\n{render_footer(result.usage)}\n"


def wip_message(task: str, why: str) -> str:
    first_line = task.strip().splitlines()[0][:60]
    return (
        f"WIP: {first_line}\n\n"
        f"Work in progress: `backend-bot run` stopped before finishing ({why}). These are the "
        f"agent's changes so far; there is no {WORKLOG_FILE} entry for them.\n"
    )


def _cause(error: BaseException) -> str:
    """The words of the failure underneath an SDK error: `Connection refused`."""
    chain: list[BaseException] = []
    link: BaseException | None = error
    while link is not None and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    for link in chain:
        if isinstance(link, OSError) and link.errno:
            return os.strerror(link.errno) if link.errno > 0 else (link.strerror or str(link))
    if isinstance(error, anthropic.APITimeoutError):
        return "timed out"
    return str(chain[-1]) or type(chain[-1]).__name__


class ServiceWatch:
    """Tells the operator once, as soon as a model call fails, where the model service is and
    how long the run keeps trying; `gave_up` is the last word when it never answered."""

    def __init__(self, url: str, limits: Limits, err: TextIO) -> None:
        self.url = url
        self.limits = limits
        self.err = err
        self.failure: Exception | None = None

    def __call__(self, error: Exception) -> None:
        first = self.failure is None
        self.failure = error
        if not first:
            return
        if isinstance(error, anthropic.APIStatusError):
            print(f"backend-bot: the model service at {self.url} answered HTTP "
                  f"{error.status_code}; trying {self.limits.retries} more times", file=self.err)
        else:
            print(f"backend-bot: cannot reach the model service at {self.url} "
                  f"({_cause(error)}); retrying for up to {self.limits.retry_window():g} s",
                  file=self.err)

    def gave_up(self) -> str:
        attempts = self.limits.retries + 1
        if isinstance(self.failure, anthropic.APIStatusError):
            return (f"error: the model service at {self.url} kept failing (HTTP "
                    f"{self.failure.status_code}); gave up after {attempts} attempts")
        assert self.failure is not None
        return (f"error: cannot reach the model service at {self.url} "
                f"({_cause(self.failure)}); gave up after {attempts} attempts")


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
    """Run the agent on the checkout at `repo`; print the PR body; return the exit code.

    `limits` replaces LOCAL_LIMITS as the base that the checkout's settings and the
    overrides bound."""
    out = out or sys.stdout
    err = err or sys.stderr
    path = Path(repo).expanduser().resolve()
    if not task.strip():
        print("error: the task is empty; say what the agent should do.", file=err)
        return EXIT_FAILED
    try:
        toplevel = checkout_root(path)
        config = read_checkout_config(toplevel)
    except RepoConfigError as problems:
        print(problems, file=err)  # one line per problem, as the bot says it on GitHub
        return EXIT_FAILED
    except (LocalRunError, UnsafePath) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_FAILED
    limits = limits_for(config, limits or LOCAL_LIMITS)
    if settings.max_cost_per_run_usd is not None:
        # The operator's cap bounds the checkout's own setting, as on GitHub; a `--max-cost`
        # typed on this command line is the operator's word and stands.
        limits = replace(limits, max_cost_usd=min(limits.max_cost_usd, settings.max_cost_per_run_usd))
    overrides: dict[str, Any] = {}
    if max_turns is not None:
        overrides["max_turns"] = max_turns
    if max_cost is not None:
        overrides["max_cost_usd"] = max_cost
    if overrides:
        limits = replace(limits, **overrides)
    model = provider_model_id(settings.model_provider, config.model or settings.anthropic_model)

    try:
        sandbox = Sandbox.from_settings(toplevel, settings, network=config.network)
        sandbox.check()
        owns_client = client is None
        if client is None:
            if settings.model_provider == "anthropic" and settings.anthropic_api_key is None:
                raise LocalRunError("ANTHROPIC_API_KEY is not set (in the environment or .env).")
            try:
                client = make_client(settings)
            except UserFacingError as error:
                raise LocalRunError(str(error)) from None
        start = starting_point(toplevel)
        branch = prepare_branch(
            toplevel, branch or f"{config.branch_prefix}local-{slugify(task)}-{uuid.uuid4().hex[:6]}")
        nested_before = find_nested_repositories(toplevel)
    except (LocalRunError, SandboxUnavailable) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_FAILED

    print(f"backend-bot: working on branch {branch} with {model}", file=err)
    watch = ServiceWatch(str(client.base_url).rstrip("/"), limits, err)

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
                model=model,
                workspace=toplevel,
                task_prompt=local_task(task, requester=requester),
                sandbox=sandbox,
                limits=limits,
                on_todos=show_plan,
                on_retry=watch,
            )
        finally:
            if owns_client:
                await client.close()

    # Until the run says otherwise, an end here is an interruption (^C): its changes are kept.
    code, sha, last_word = EXIT_FAILED, None, None
    wip: str | None = wip_message(task, "interrupted")
    try:
        result = asyncio.run(run())
        footer = render_footer(result.usage)
        if result.outcome == "finished":
            try:
                sha = _commit_finished(toplevel, result, sandbox, config, nested_before, out, err)
                code = EXIT_OK
            except (LocalRunError, UnsafePath) as exc:
                print(f"error: {exc}", file=err)
                wip = None  # a commit failed already; the work-log entry is in the tree
        elif result.outcome == "question":
            print(f"The agent has a question:\n\n{result.question}\n\n{footer}", file=out)
            code, wip = EXIT_QUESTION, wip_message(task, "the agent asked a question")
        else:
            print(f"The run stopped: {result.reason}\n\n{footer}", file=out)
            wip = wip_message(task, result.reason or "it stopped")
            if result.transient and watch.failure is not None:
                last_word = watch.gave_up()
    finally:
        _wind_up(toplevel, start, branch, sha, wip, nested_before, err)
    if last_word:
        print(last_word, file=err)
    return code


def _commit_finished(toplevel: Path, result: AgentResult, sandbox: Sandbox, config: RepoConfig,
                     nested_before: list[str], out: TextIO, err: TextIO) -> str:
    """Test, log and commit a finished run, print its pull-request body; the commit's sha."""
    assert result.entry is not None
    entry = result.entry
    if _git(toplevel, "status", "--porcelain"):
        tests = asyncio.run(run_repository_tests(toplevel, sandbox, config))
        if tests is not None:
            what = "setup command" if tests["setup_failed"] else "tests"
            print(f"backend-bot: the {what} ({tests['command']}) {verdict(tests)}", file=err)
            entry = entry.model_copy(update={
                "testing_performed": with_bot_tests(entry.testing_performed, tests)})
    append_entry(toplevel, entry)
    message = f"{entry.title}\n\n{entry.task_summary}\n\nSee {WORKLOG_FILE}."
    sha = commit_all(toplevel, message, _author(toplevel), nested_before=nested_before)
    print(pull_request_body(replace(result, entry=entry)), file=out, end="")
    return sha


def _wind_up(toplevel: Path, start: Start, branch: str, sha: str | None, wip: str | None,
             nested_before: list[str], err: TextIO) -> None:
    """Back to where the run started, the run's changes kept on its branch (in a
    work-in-progress commit, `wip`, when it did not finish); a branch left empty is deleted.
    Changes that cannot be committed keep the checkout on the run's branch."""
    kept = "committed"
    try:
        if sha is None and _git(toplevel, "status", "--porcelain"):
            if wip is None:
                _stay(branch, start, err)
                return
            sha = commit_all(toplevel, wip, _author(toplevel), nested_before=nested_before)
            kept = "work in progress committed as"
        go_back(toplevel, start)
        if sha is None:
            _git(toplevel, "branch", "--delete", "--force", branch)
    except (LocalRunError, UnsafePath) as exc:
        print(f"error: {exc}", file=err)
        _stay(branch, start, err)
        return
    if sha is None:
        print(f"backend-bot: nothing changed; back on {start}", file=err)
    else:
        print(f"backend-bot: {kept} {sha[:12]} on {branch}; back on {start}", file=err)


def _stay(branch: str, start: Start, err: TextIO) -> None:
    back = f"git switch {start.branch}" if start.branch else f"git switch --detach {start.sha}"
    print(f"backend-bot: the checkout stays on {branch}, with the run's changes uncommitted; "
          f"`{back}` goes back once they are dealt with", file=err)
