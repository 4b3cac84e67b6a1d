"""The round of work: a checkout, the agent, the bot's own test run, one commit, one push.

One checkpointed, preemptible step (cancelling a job stops the agent where it is). A commit
already on the branch with this job's trailer means the step ran before a crash: it is reused,
never made twice. The bot runs the repository's own test command itself, in the sandbox, and
puts the real outcome beside what the agent says it tested.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace

from bot import branch_merge, budgets, texts
from bot.agent import Sandbox, limits_for, run_agent
from bot.agent.repo_tests import run_repository_tests, with_bot_tests
from bot.branch_merge import UnusableLog
from bot.engine import JobContext, is_cancellation
from bot.errors import TransientError, UserFacingError
from bot.flows.check_run import LiveCheck
from bot.flows.gather import Gathered
from bot.flows.services import services
from bot.flows.status_comment import StatusComment, failure_reason
from bot.github import git
from bot.github.errors import GitError
from bot.providers import provider_model_id
from bot.redact import redact
from bot.sanitize import neutralise, neutralise_line
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
from bot.worklog_merge import WorklogConflict
from bot.workspace import (
    JOB_TRAILER,
    Identity,
    Workspace,
    changed_files,
    commit_all,
    head_trailer,
    push_branch,
)

WORK_RETRIES = 2


class ModelUnavailable(TransientError, UserFacingError):
    """The model service kept failing after the agent's own retries; said as is on GitHub
    when the step's retries run out too."""
TEST_OUTPUT_LINES = 40


@dataclass
class WorkRequest:
    """What one round of agent work is about, for `work()`."""

    branch: str
    base_branch: str
    task_prompt: str
    trigger: str  # "#42", for the log entry's heading
    # Set for an `update` round: `origin/<merge_from>` is merged into the branch first and the
    # round's commit is that merge; the agent resolves the conflicts, and `conflict_task`
    # gives its task from the conflicted paths (then `task_prompt` is unused).
    merge_from: str | None = None
    conflict_task: Callable[[list[str]], str] | None = None


@dataclass
class WorkResult:
    # "committed" | "no_changes" | "question"; an update round also "up_to_date",
    # "merged" (no conflict for the agent: merged by the bot alone), "unresolved"
    outcome: str
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
    check_run: dict = field(default_factory=dict)  # the run's check: {"id", "sha"} it started on
    conflicts: list[str] = field(default_factory=list)  # an update round's conflicted paths
    reason: str = ""  # why an update round's conflicts are left unresolved


async def work(ctx: JobContext, gathered: Gathered, request: WorkRequest,
               status: StatusComment) -> WorkResult:
    """The agent's round as one checkpointed, preemptible step (see the module docstring);
    `status` shows its stages and plan as they come, and so does the run's check
    (`bot.flows.check_run`), which is completed however the round ends."""
    live = LiveCheck(ctx)

    async def round_of_work() -> dict:
        # Jobs of different keys can target one branch (the run and a command on its
        # pull request): one of them at a time, so no push loses another's commit.
        async with ctx.engine.guard.hold(f"branch:{ctx.job.spec['repo']}:{request.branch}"):
            try:
                return asdict(await _work(ctx, gathered, request, status, live))
            finally:
                if request.merge_from:  # committed, or given up: no merge left in progress
                    await branch_merge.abort(services(ctx).workspaces.workspace_path(ctx.job.id))

    tickers = [asyncio.create_task(status.keep_fresh(), name=f"status-job-{ctx.job.id}"),
               asyncio.create_task(live.keep_fresh(), name=f"check-job-{ctx.job.id}")]
    try:
        # A model service that keeps failing for minutes (overloaded) gets the whole round
        # again, later; the round is idempotent (a commit of this job is reused).
        result = WorkResult(**await ctx.step("work", round_of_work, preemptible=True,
                                             retries=WORK_RETRIES))
    except asyncio.CancelledError:
        raise  # the process is shutting down: the job, and its check, resume on restart
    except BaseException as error:
        await live.abandon(cancelled=is_cancellation(error), reason=failure_reason(error))
        raise
    finally:
        for ticker in tickers:
            ticker.cancel()
        services(ctx).workspaces.release(ctx.job.id, ctx.job.spec["repo"])
    try:
        await ctx.step("complete check run", live.complete, result, retries=3)
    except Exception as error:
        if is_cancellation(error):
            raise
        # The work is pushed: its pull request matters more than a view of the run.
        ctx.log.warning("could not complete the check run: %s", error)
    return result


async def _work(ctx: JobContext, gathered: Gathered, request: WorkRequest,
                status: StatusComment, live: LiveCheck) -> WorkResult:
    flows = services(ctx)
    config = gathered.repo_config
    await status.at_stage(texts.STAGE_PREPARING)
    token = await flows.github.installation_token(ctx.job.spec["installation_id"])
    workspace = await flows.workspaces.prepare(
        job_id=ctx.job.id, repo=ctx.job.spec["repo"], clone_url=gathered.repo["clone_url"],
        token=token, branch=request.branch, base_branch=request.base_branch,
    )
    if workspace.continued and await head_trailer(workspace) == str(ctx.job.id):
        ctx.log.info("this job's commit is already on %s; reusing it", workspace.branch)
        await live.start(await _head(workspace, "HEAD^"), create=False)
        return replace(await _already_committed(workspace), check_run=live.where())
    identity = Identity(gathered.bot_login, gathered.bot_email)
    conflicts: list[str] = []
    task_prompt = request.task_prompt
    if request.merge_from:
        started = await _start_merge(ctx, request.merge_from, workspace, identity,
                                     protected={gathered.default_branch, request.base_branch})
        if isinstance(started, WorkResult):
            return started
        conflicts = started.conflicts
        assert request.conflict_task is not None  # the two come together
        task_prompt = request.conflict_task(conflicts)
    # Only now, with the agent next: a run that spent the last of a budget before a crash still
    # publishes its commit above, and a merge without conflicts needs no model.
    spend = await asyncio.to_thread(budgets.ledger, ctx.engine.database)
    allowance = await asyncio.to_thread(  # raises OverBudget: no model call
        budgets.allowance, ctx.settings, config, spend,
        installation_id=ctx.job.spec["installation_id"], repo=ctx.job.spec["repo"])
    status.notes = allowance.notes

    sandbox = Sandbox.from_settings(
        workspace.path, ctx.settings, network=config.network,
        expose=[flows.workspaces.mirror_path(ctx.job.spec["repo"])])
    await status.at_stage(texts.STAGE_PLANNING)
    await live.start(await _head(workspace))

    async def on_todos(todos: list[dict]) -> None:
        live.plan(todos)
        await status.progress(todos)

    result = await run_agent(
        client=flows.model_client(),
        model=provider_model_id(ctx.settings.model_provider, config.model or ctx.settings.anthropic_model),
        workspace=workspace.path, task_prompt=task_prompt, sandbox=sandbox,
        limits=replace(limits_for(config), max_cost_usd=allowance.max_cost_usd),
        on_todos=on_todos, trigger=request.trigger, on_tool_call=live.tool_call,
    )
    # However the run ended, it cost what it cost.
    await asyncio.to_thread(spend.record, job_id=ctx.job.id, installation_id=ctx.job.spec["installation_id"],
                            repo=ctx.job.spec["repo"], usage=result.usage)
    result.reason = allowance.explain_bound(result.reason, result.usage.cost_usd)
    # Whatever the outcome: a run that stopped is the one a reader most wants to follow.
    await asyncio.to_thread(ctx.engine.transcripts.save, ctx.job.id, result.reason or result.outcome,
                            result.messages, result.turn_usage)
    usage = asdict(result.usage)
    if result.outcome == "question":
        return WorkResult("question", workspace.branch, question=result.question, usage=usage,
                          check_run=live.where(), conflicts=conflicts)
    if result.outcome == "error" and result.transient:
        raise ModelUnavailable(result.reason or "the model service is unavailable")
    if result.outcome != "finished" or result.entry is None:
        if conflicts:  # the flow names the files on the pull request
            return WorkResult("unresolved", workspace.branch, usage=usage, conflicts=conflicts,
                              reason=result.reason or "the agent stopped without finishing",
                              check_run=live.where())
        raise UserFacingError(result.reason or "the agent stopped without finishing")
    entry = result.entry
    if conflicts:
        # The bot's own check, whatever the agent says: nothing conflicted goes in unresolved.
        left = await branch_merge.unresolved(workspace.path, conflicts)
        if left:
            return WorkResult("unresolved", workspace.branch, usage=usage, conflicts=left,
                              reason="the agent finished with these files still conflicted",
                              check_run=live.where())
    changed = await changed_files(workspace)
    # A merge is committed even when its resolution is the branch's own tree: the base's head
    # becomes a parent, which is what makes the pull request mergeable.
    if not changed and not conflicts:
        return WorkResult("no_changes", workspace.branch, title=entry.title,
                          summary=neutralise_line(entry.task_summary), usage=usage,
                          key_decisions=entry.key_decisions, check_run=live.where())

    await status.at_stage(texts.STAGE_TESTING)
    tests = await run_repository_tests(workspace.path, sandbox, config)
    if tests is not None:
        entry = entry.model_copy(update={
            "testing_performed": with_bot_tests(entry.testing_performed, tests)})
    entry = entry.model_copy(update={"timestamp": now_utc(), "trigger": request.trigger})
    await asyncio.to_thread(append_entry, workspace.path, entry)

    await status.at_stage(texts.STAGE_PUSHING)
    requester = ctx.job.spec["requester"]
    message = _commit_message(entry, requester, gathered.requester_id, ctx.job.id)
    if request.merge_from:  # MERGE_HEAD makes the commit a merge: the branch's head, then theirs
        message = f"Merge {request.merge_from} into {workspace.branch}\n\n{message}"
    sha = await commit_all(workspace, message, identity)
    # A token minted now: the agent may have outlived the first one.
    token = await flows.github.installation_token(ctx.job.spec["installation_id"])
    await push_branch(workspace, token,
                      protected={gathered.default_branch, request.base_branch})
    return WorkResult(
        "committed", workspace.branch, sha=sha, title=entry.title,
        entry_body=render_entry_body(entry), summary=neutralise_line(entry.task_summary),
        earlier=await _earlier_entries(workspace, entry), usage=usage,
        continued=workspace.continued, tests=tests, key_decisions=entry.key_decisions,
        changed_files=changed, check_run=live.where(), conflicts=conflicts,
    )


async def _start_merge(ctx: JobContext, source: str, workspace: Workspace, identity: Identity,
                       *, protected: set[str]) -> branch_merge.MergeStart | WorkResult:
    """An update round's merge, begun; the round's result already when no agent is needed."""
    if not workspace.continued:
        raise UserFacingError(f"the branch {workspace.branch} is gone")
    try:
        started = await branch_merge.begin(workspace.path, f"origin/{source}", identity.env())
    except (WorklogConflict, UnusableLog) as refusal:
        return WorkResult("unresolved", workspace.branch, conflicts=[WORKLOG_FILE],
                          reason=str(refusal))
    if started.up_to_date:
        return WorkResult("up_to_date", workspace.branch)
    if started.conflicts:
        return started
    combined = (f"{WORKLOG_FILE} was combined entry by entry: the entries of {source} as they "
                f"are, then the ones this branch added.\n\n" if started.worklog_combined else "")
    message = f"Merge {source} into {workspace.branch}\n\n{combined}{JOB_TRAILER}: {ctx.job.id}\n"
    await git.run_git(["commit", "--quiet", "--no-verify", "-F", "-"], cwd=workspace.path,
                      env=identity.env(), input=message)
    sha = await _head(workspace)
    token = await services(ctx).github.installation_token(ctx.job.spec["installation_id"])
    await push_branch(workspace, token, protected=protected | {source})
    return WorkResult("merged", workspace.branch, sha=sha, continued=True)


async def _head(workspace: Workspace, revision: str = "HEAD") -> str:
    return (await git.run_git(["rev-parse", revision], cwd=workspace.path)).strip()


async def _already_committed(workspace: Workspace) -> WorkResult:
    entry = (await asyncio.to_thread(read_worklog, workspace.path))[-1]
    sha = await _head(workspace)
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
    except GitError:  # the base branch has no work log yet
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
