"""The steps every flow shares: gather ▸ acknowledge ▸ work ▸ publish ▸ report.

Each step is checkpointed by the engine and idempotent on its own, so a crash anywhere
followed by a restart ends with one branch, one pull request and one log entry per run:

- gather      reads the repository, the requester's permission and `.github/backend.yml`
              (from the default branch: a pull request never changes its own rules);
- acknowledge 👀 on the trigger and the status comment (found again by its marker);
- work        a fresh checkout, the agent, the bot's own test run, one commit, one push.
              A commit already on the branch with this job's trailer means the step ran
              before a crash: it is reused, never made twice;
- publish     the pull request, found by its head branch before one is created;
- report      the final status comment and reaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

import anthropic

from bot import status as status_text
from bot.agent import Limits, Sandbox, run_agent
from bot.agent.usage import Usage, render_footer
from bot.engine import JobContext
from bot.errors import UserFacingError
from bot.github import git
from bot.github.app import GitHubApp
from bot.github.client import InstallationClient
from bot.github.errors import RequestFailed
from bot.redact import redact
from bot.repo_config import (
    CONFIG_PATH,
    RepoConfig,
    RepoConfigError,
    detect_test_command,
    meets_permission,
    parse_repo_config,
)
from bot.sanitize import blockquote, code_fence, code_span, neutralise, neutralise_line
from bot.worklog import (
    WORKLOG_FILE,
    WorkLogEntry,
    append_entry,
    heading_line,
    now_utc,
    parse_worklog,
    read_worklog,
    render_entry_body,
)
from bot.workspace import (
    JOB_TRAILER,
    Identity,
    Workspace,
    Workspaces,
    changed_files,
    commit_all,
    head_trailer,
    push_branch,
)

TEST_RUN_TIMEOUT = 15 * 60
TEST_OUTPUT_LINES = 40
STATUS_UPDATE_INTERVAL = 2.0


@dataclass
class Services:
    """What the flows need from outside, built once per process (bot/app.py)."""

    github: GitHubApp
    workspaces: Workspaces
    model_client: Callable[[], anthropic.AsyncAnthropic]


@dataclass
class Gathered:
    repo: dict
    bot_login: str
    bot_email: str
    requester_id: int
    permission: str
    config: dict | None
    config_error: str | None

    @property
    def default_branch(self) -> str:
        return self.repo["default_branch"]

    @property
    def repo_config(self) -> RepoConfig:
        return RepoConfig(**self.config)


def services(ctx: JobContext) -> Services:
    return ctx.services["flows"]


async def installation(ctx: JobContext) -> InstallationClient:
    return await services(ctx).github.installation(ctx.job.spec["installation_id"])


# -- gather ------------------------------------------------------------------------------


async def gather(ctx: JobContext) -> Gathered:
    spec = ctx.job.spec

    async def read() -> dict:
        client = await installation(ctx)
        repo = await client.get_repo(spec["repo"])
        identity = await services(ctx).github.identity()
        permission = await client.permission(spec["repo"], spec["requester"])
        requester = await client.get_user(spec["requester"])
        text = await client.read_file(spec["repo"], CONFIG_PATH, ref=repo.default_branch)
        config, error = None, None
        try:
            parsed = parse_repo_config(text)
            config = parsed.model_dump()
            # The webhook path learns this repository's trigger words from here.
            await asyncio.to_thread(ctx.engine.trigger_words.remember, spec["repo"],
                                    parsed.label, parsed.command)
        except RepoConfigError as problem:
            error = str(problem)
        return asdict(Gathered(
            repo=asdict(repo), bot_login=identity.bot_login, bot_email=identity.bot_email,
            requester_id=requester.id, permission=permission,
            config=config, config_error=error,
        ))

    return Gathered(**await ctx.step("gather", read, retries=3))


def refusal(gathered: Gathered, login: str) -> str | None:
    """The polite refusal for someone who may not trigger work here, or None."""
    config = gathered.repo_config
    if meets_permission(config, login, gathered.permission):
        return None
    if config.allowed_users and login not in config.allowed_users:
        return status_text.REFUSED_NOT_LISTED.format(login=login)
    return status_text.REFUSED.format(login=login, permission=config.min_permission)


# -- the status comment ------------------------------------------------------------------


class StatusComment:
    """The job's status comment on one issue or PR; edits are throttled while working."""

    def __init__(self, ctx: JobContext, number: int, retry_hint: str,
                 job_id: int | None = None) -> None:
        self.ctx = ctx
        self.number = number
        self.retry_hint = retry_hint
        # Another job may speak for this one (an acknowledgement, before it starts).
        self.job_id = job_id or ctx.job.id
        self.kind = f"job-{self.job_id}"
        self._last_update = 0.0
        self._pending: list[dict] | None = None

    async def show(self, status: status_text.Status) -> None:
        client = await installation(self.ctx)
        body = status.render(self.kind, self.job_id)
        await client.upsert_comment(self.ctx.job.spec["repo"], self.number,
                                    status_text.marker(self.kind), body)

    async def progress(self, todos: list[dict]) -> None:
        """Show the agent's plan; at most one edit every few seconds, the latest plan wins."""
        self._pending = todos
        now = time.monotonic()
        if now - self._last_update < STATUS_UPDATE_INTERVAL:
            return
        self._last_update = now
        try:
            await self.show(status_text.Status(status_text.WORKING, todos=self._pending))
        except Exception as error:  # progress is a courtesy; the work goes on
            self.ctx.log.warning("could not update the status comment: %s", error)

    async def asked(self, question: str) -> None:
        """The run ended on the agent's question: say so, with the question."""
        await self.show(status_text.Status(
            status_text.QUESTION.format(retry_hint=self.retry_hint), detail=blockquote(question)))

    async def failed(self, reason: str) -> None:
        await self.show(status_text.Status(
            status_text.FAILED.format(reason=redact(reason), retry_hint=self.retry_hint)))

    async def cancelled(self) -> None:
        await self.show(status_text.Status(
            status_text.CANCELLED.format(retry_hint=self.retry_hint)))


async def acknowledge(ctx: JobContext, status: StatusComment, *, reaction_target: str,
                      reaction_id: int, headline: str = status_text.QUEUED) -> None:
    async def ack() -> None:
        client = await installation(ctx)
        await client.add_reaction(ctx.job.spec["repo"], reaction_target, reaction_id, "eyes")
        await status.show(status_text.Status(headline))

    await ctx.step("acknowledge", ack, retries=3)


def reaction_target(spec: dict) -> tuple[str, int]:
    """What 👀 goes on: the command's comment, or the issue that was labelled."""
    if spec.get("comment_kind") == "review_comment":
        return "review_comment", spec["comment_id"]
    if spec.get("comment_id"):
        return "comment", spec["comment_id"]
    return "issue", spec["number"]


# -- work --------------------------------------------------------------------------------


@dataclass
class WorkRequest:
    """What one round of agent work is about, for `work()`."""

    branch: str
    base_branch: str
    task_prompt: str
    trigger: str  # "#42", for the log entry's heading


@dataclass
class WorkResult:
    outcome: str  # "committed" | "no_changes" | "question"
    branch: str
    sha: str | None = None
    title: str = ""
    entry_body: str = ""
    summary: str = ""
    question: str | None = None
    earlier: list[str] = field(default_factory=list)
    usage: dict = field(default_factory=dict)
    continued: bool = False
    tests: dict | None = None
    key_decisions: str = ""  # the agent's answers (a review round's `Comment N: …`)
    changed_files: list[str] = field(default_factory=list)


def _limits(config: RepoConfig) -> Limits:
    return Limits(max_turns=config.max_turns, max_cost_usd=config.max_cost_usd,
                  max_seconds=config.max_minutes * 60)


async def work(ctx: JobContext, gathered: Gathered, request: WorkRequest,
               on_todos: Callable[[list[dict]], Awaitable[None]]) -> WorkResult:
    """The agent's round as one checkpointed, preemptible step (see the module docstring)."""

    async def round_of_work() -> dict:
        # Jobs of different keys can target one branch (the run and a command on its
        # pull request): one of them at a time, so no push loses another's commit.
        async with ctx.engine.guard.hold(f"branch:{ctx.job.spec['repo']}:{request.branch}"):
            return asdict(await _work(ctx, gathered, request, on_todos))

    try:
        return WorkResult(**await ctx.step("work", round_of_work, preemptible=True))
    finally:
        services(ctx).workspaces.release(ctx.job.id, ctx.job.spec["repo"])


async def _work(ctx: JobContext, gathered: Gathered, request: WorkRequest,
                on_todos: Callable[[list[dict]], Awaitable[None]]) -> WorkResult:
    flows = services(ctx)
    config = gathered.repo_config
    token = await flows.github.installation_token(ctx.job.spec["installation_id"])
    workspace = await flows.workspaces.prepare(
        job_id=ctx.job.id, repo=ctx.job.spec["repo"], clone_url=gathered.repo["clone_url"],
        token=token, branch=request.branch, base_branch=request.base_branch,
    )
    if workspace.continued and await head_trailer(workspace) == str(ctx.job.id):
        ctx.log.info("this job's commit is already on %s; reusing it", workspace.branch)
        return await _already_committed(workspace)

    sandbox = Sandbox.from_settings(
        workspace.path, ctx.settings, network=config.network,
        expose=[flows.workspaces.mirror_path(ctx.job.spec["repo"])])
    result = await run_agent(
        client=flows.model_client(), model=config.model or ctx.settings.anthropic_model,
        workspace=workspace.path, task_prompt=request.task_prompt, sandbox=sandbox,
        limits=_limits(config), on_todos=on_todos, trigger=request.trigger,
    )
    usage = asdict(result.usage)
    if result.outcome == "question":
        return WorkResult("question", workspace.branch, question=result.question, usage=usage)
    if result.outcome != "finished" or result.entry is None:
        raise UserFacingError(result.reason or "the agent stopped without finishing")
    entry = result.entry
    changed = await changed_files(workspace)
    if not changed:
        return WorkResult("no_changes", workspace.branch, title=entry.title,
                          summary=neutralise_line(entry.task_summary), usage=usage,
                          key_decisions=entry.key_decisions)

    tests = await run_repository_tests(workspace, sandbox, config)
    if tests is not None:
        entry = entry.model_copy(update={
            "testing_performed": _with_bot_tests(entry.testing_performed, tests)})
    entry = entry.model_copy(update={"timestamp": now_utc(), "trigger": request.trigger})
    await asyncio.to_thread(append_entry, workspace.path, entry)

    requester = ctx.job.spec["requester"]
    message = _commit_message(entry, requester, gathered.requester_id, ctx.job.id)
    sha = await commit_all(workspace, message, Identity(gathered.bot_login, gathered.bot_email))
    # A token minted now: the agent may have outlived the first one.
    token = await flows.github.installation_token(ctx.job.spec["installation_id"])
    await push_branch(workspace, token,
                      protected={gathered.default_branch, request.base_branch})
    return WorkResult(
        "committed", workspace.branch, sha=sha, title=entry.title,
        entry_body=render_entry_body(entry), summary=neutralise_line(entry.task_summary),
        earlier=await _earlier_entries(workspace, entry), usage=usage,
        continued=workspace.continued, tests=tests, key_decisions=entry.key_decisions,
        changed_files=changed,
    )


async def _already_committed(workspace: Workspace) -> WorkResult:
    entry = (await asyncio.to_thread(read_worklog, workspace.path))[-1]
    sha = (await git.run_git(["rev-parse", "HEAD"], cwd=workspace.path)).strip()
    changed = await git.run_git(["diff-tree", "--no-commit-id", "--name-only", "-r", "HEAD"],
                                cwd=workspace.path)
    return WorkResult(
        "committed", workspace.branch, sha=sha, title=entry.title,
        entry_body=render_entry_body(entry), summary=neutralise_line(entry.task_summary),
        earlier=await _earlier_entries(workspace, entry), continued=True,
        key_decisions=entry.key_decisions, changed_files=changed.split(),
    )


async def _earlier_entries(workspace: Workspace, latest: WorkLogEntry) -> list[str]:
    """Headings of the entries this branch added before the latest one."""
    try:
        base_text = await git.run_git(
            ["show", f"origin/{workspace.base_branch}:{WORKLOG_FILE}"], cwd=workspace.path)
    except Exception:
        base_text = ""
    on_base = {heading_line(e) for e in parse_worklog(base_text)}
    mine = await asyncio.to_thread(read_worklog, workspace.path)
    latest_heading = heading_line(latest)
    return [heading_line(e).removeprefix("## ") for e in mine
            if heading_line(e) not in on_base and heading_line(e) != latest_heading]


def _commit_message(entry: WorkLogEntry, login: str, user_id: int, job_id: int) -> str:
    summary = entry.task_summary.strip().split("\n\n")[0]
    # GitHub reads a commit message as plain text: a closing keyword in it acts even in code.
    text = neutralise(f"{entry.title}\n\n{summary}", markdown=False)
    return redact(
        f"{text}\n\n"
        f"Co-authored-by: {login} <{user_id}+{login}@users.noreply.github.com>\n"
        f"{JOB_TRAILER}: {job_id}\n"
    )


async def run_repository_tests(workspace: Workspace, sandbox: Sandbox,
                               config: RepoConfig) -> dict | None:
    """Run the repository's own tests in the sandbox; the real outcome, not the agent's word."""
    command = config.test_command or await asyncio.to_thread(detect_test_command, workspace.path)
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


def _with_bot_tests(agent_text: str, tests: dict) -> str:
    if tests["timed_out"]:
        verdict = f"timed out after {tests['duration']} s"
    elif tests["passed"]:
        verdict = f"passed (exit 0, {tests['duration']} s)"
    else:
        verdict = f"failed (exit {tests['exit_code']}, {tests['duration']} s)"
    what = "setup command" if tests["setup_failed"] else "test command"
    output = tests["output"] or "(no output)"
    fence = code_fence(output)  # the repository prints what it likes
    report = (
        f"**The bot's own run of the {what}:** {code_span(tests['command'])} {verdict}.\n\n"
        f"{fence}text\n{output}\n{fence}"
    )
    agent_text = agent_text.strip()
    return f"{agent_text}\n\n{report}" if agent_text else report


# -- publish and report -------------------------------------------------------------------


def footer(result: WorkResult, job_id: int, model: str) -> str:
    usage = Usage(**result.usage) if result.usage else None
    text = render_footer(usage) if usage else f"Model: {model} · usage not recorded (resumed run)"
    return f"{text} · job {job_id}"


async def request_review(ctx: JobContext, client: InstallationClient, number: int) -> None:
    """Ask the person who triggered the work to review its pull request."""
    requester = ctx.job.spec["requester"]
    try:
        await client.request_reviewers(ctx.job.spec["repo"], number, [requester])
    except RequestFailed as error:  # e.g. the requester is not a collaborator
        ctx.log.info("could not request a review from %s: %s", requester, error)


async def report_check_run(client: InstallationClient, repo: str, result: WorkResult) -> None:
    """The bot's own test run as a check on the pushed commit."""
    if not result.tests or not result.sha:
        return
    tests = result.tests
    fence = code_fence(tests["output"])  # the repository prints what it likes
    await client.create_check_run(
        repo, name="backend-bot / tests", head_sha=result.sha, status="completed",
        conclusion="success" if tests["passed"] else "failure",
        title=f"`{tests['command']}` " + ("passed" if tests["passed"] else "failed"),
        summary=f"Run by backend-bot in its sandbox in {tests['duration']} s.",
        text=f"{fence}\n{tests['output']}\n{fence}",
    )


async def reply(ctx: JobContext, text: str, *, kind: str) -> None:
    """Answer the command where it was written: its review thread, or the PR's conversation."""
    spec = ctx.job.spec

    async def post() -> None:
        client = await installation(ctx)
        marker = status_text.marker(f"{kind}-job-{ctx.job.id}")
        body = f"{marker}\n{text}"
        if spec.get("comment_kind") == "review_comment":
            existing = [c for c in await client.list_pull_comments(spec["repo"], spec["number"])
                        if marker in c.body]
            if not existing:
                await client.reply_to_review_comment(spec["repo"], spec["number"],
                                                     spec["thread_id"], body)
        else:
            await client.upsert_comment(spec["repo"], spec["number"], marker, body)

    await ctx.step(f"reply {kind}", post, retries=3)


async def update_own_pull(ctx: JobContext, gathered: Gathered, number: int,
                          result: WorkResult) -> dict:
    """Show the latest entry on one of the bot's PRs, keeping what it closes and its marker."""
    from bot import pullrequest

    repo = ctx.job.spec["repo"]
    client = await installation(ctx)
    current = await client.get_pull(repo, number)
    model = gathered.repo_config.model or ctx.settings.anthropic_model
    body = pullrequest.render_body(
        entry_body=result.entry_body, footer=footer(result, ctx.job.id, model),
        marker_kind=pullrequest.marker_kind_of(current.body) or f"pr-{number}",
        closes=pullrequest.closes_of(current.body), earlier=result.earlier,
    )
    pr = await client.update_pull(repo, number, title=pullrequest.title_for(result.title),
                                  body=body)
    await report_check_run(client, repo, result)
    return {"number": pr.number, "html_url": pr.html_url, "created": False}


async def guarded(status: StatusComment, flow: Callable[[], Awaitable[str]]) -> str:
    """Run a flow; tell the user on GitHub when it fails or is cancelled, then re-raise."""
    try:
        return await flow()
    except asyncio.CancelledError:
        raise  # the process is shutting down: the job resumes on restart
    except BaseException as error:
        from dbos._error import DBOSWorkflowCancelledError

        from bot.errors import JobCancelled

        try:
            if isinstance(error, (DBOSWorkflowCancelledError, JobCancelled)):
                await status.cancelled()
            elif isinstance(error, Exception):
                await status.failed(_reason(error))
        except Exception as report_error:
            status.ctx.log.warning("could not report the failure on GitHub: %s", report_error)
        raise


def _reason(error: Exception) -> str:
    if isinstance(error, UserFacingError):
        return str(error)
    from bot.agent import SandboxUnavailable

    if isinstance(error, SandboxUnavailable):
        return str(error)
    return (f"an internal error stopped the run ({type(error).__name__}). The bot's operator "
            "can find the details in its logs.")
