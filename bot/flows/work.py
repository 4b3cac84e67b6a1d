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
from bot.agent import AgentResult, Sandbox, answered, limits_for, run_agent
from bot.agent.repo_tests import run_repository_tests, with_bot_tests
from bot.branch_merge import UnusableLog
from bot.engine import JobContext, is_cancellation
from bot.errors import TransientError, UserFacingError
from bot.flows.check_run import LiveCheck
from bot.flows.gather import Gathered
from bot.flows.services import services
from bot.flows.status_comment import Status, StatusComment, failure_reason
from bot.github import git
from bot.github.errors import GitError
from bot.providers import provider_model_id
from bot.redact import redact
from bot.sanitize import blockquote, code_span, neutralise, neutralise_line
from bot.worklog import (
    SECTIONS,
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
    title: str = ""  # what the work is about, for the entry the bot writes when a limit stops it
    # The question (bot.questions) whose answer this round resumes the conversation of.
    resume_question: int | None = None
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
    # The limit (turns, cost, time) the run reached or was wrapping up before: its pull
    # request is a draft, and `/backend continue` goes on.
    limit: str | None = None
    limit_hit: bool = False  # the limit stopped it (else it wrapped up in the reserve)
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
    # (An update round only merges the base in: a question waiting on the pull request stays.)
    if request.resume_question is None and not request.merge_from:
        await _supersede_waits(ctx, status)
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

    task_prompt, resume_messages = await _resumption(ctx, request, task_prompt)
    result = await run_agent(
        client=flows.model_client(),
        model=provider_model_id(ctx.settings.model_provider, config.model or ctx.settings.anthropic_model),
        workspace=workspace.path, task_prompt=task_prompt, sandbox=sandbox,
        limits=replace(limits_for(config), max_cost_usd=allowance.max_cost_usd),
        on_todos=on_todos, trigger=request.trigger, on_tool_call=live.tool_call,
        resume_messages=resume_messages,
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
        if conflicts:  # an update round's question: the flow names the files on the pull request
            return WorkResult("question", workspace.branch, question=result.question, usage=usage,
                              check_run=live.where(), conflicts=conflicts)
        return replace(await _ask(ctx, gathered, request, workspace, result, usage),
                       check_run=live.where())
    if result.outcome == "error" and result.transient:
        raise ModelUnavailable(result.reason or "the model service is unavailable")
    if result.outcome != "finished" or result.entry is None:
        if conflicts:  # the flow names the files on the pull request
            return WorkResult("unresolved", workspace.branch, usage=usage, conflicts=conflicts,
                              reason=result.reason or "the agent stopped without finishing",
                              check_run=live.where())
        if result.outcome != "bound":
            raise UserFacingError(result.reason or "the agent stopped without finishing")
    async def still_conflicted() -> WorkResult | None:
        """The bot's own check, whatever the agent says: nothing conflicted goes in unresolved."""
        left = await branch_merge.unresolved(workspace.path, conflicts) if conflicts else []
        if not left:
            return None
        return WorkResult("unresolved", workspace.branch, usage=usage, conflicts=left,
                          reason="the agent finished with these files still conflicted",
                          check_run=live.where())

    if unresolved := await still_conflicted():
        return unresolved
    changed = await changed_files(workspace)
    # A limit never loses work: what exists is committed, with an entry the bot writes when the
    # agent wrote none.
    entry = result.entry or _limit_entry(result, request, changed, config.command)
    # A merge is committed even when its resolution is the branch's own tree: the base's head
    # becomes a parent, which is what makes the pull request mergeable.
    if not changed and not conflicts:
        return WorkResult("no_changes", workspace.branch, title=entry.title,
                          summary=neutralise_line(entry.task_summary), usage=usage,
                          key_decisions=entry.key_decisions, check_run=live.where(),
                          limit=result.limit, limit_hit=result.outcome == "bound")

    await status.at_stage(texts.STAGE_TESTING)
    tests = await run_repository_tests(workspace.path, sandbox, config)
    if tests is not None:
        entry = entry.model_copy(update={
            "testing_performed": with_bot_tests(entry.testing_performed, tests)})
    entry = entry.model_copy(update={"timestamp": now_utc(), "trigger": request.trigger})
    await asyncio.to_thread(append_entry, workspace.path, entry)
    # Again, on what is committed: the repository's own tests ran in between and may rewrite.
    if unresolved := await still_conflicted():
        return unresolved

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
        changed_files=changed, check_run=live.where(), conflicts=conflicts, limit=result.limit,
        limit_hit=result.outcome == "bound",
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
    sha = await branch_merge.commit_merge(workspace.path, source, workspace.branch,
                                          worklog_combined=started.worklog_combined, job_id=ctx.job.id,
                                          author=identity.env())
    token = await services(ctx).github.installation_token(ctx.job.spec["installation_id"])
    await push_branch(workspace, token, protected=protected | {source})
    return WorkResult("merged", workspace.branch, sha=sha, continued=True)


async def _head(workspace: Workspace, revision: str = "HEAD") -> str:
    return (await git.run_git(["rev-parse", revision], cwd=workspace.path)).strip()


# What a resumed job's spec carries beyond the asking job's (not kept with a new question).
RESUME_KEYS = ("resume_question", "branch", "base_branch")
QUESTION_TRAILER = "Backend-Bot-Question-Job"


async def _resumption(ctx: JobContext, request: WorkRequest,
                      task_prompt: str) -> tuple[str, list[dict] | None]:
    """The task, and the conversation to resume (with the answer in it) when there is one."""
    if request.resume_question is None:
        return task_prompt, None
    question = await asyncio.to_thread(ctx.engine.questions.get, request.resume_question)
    if question is None or question.answer is None:
        raise UserFacingError("the question this run was to resume is gone")
    messages = answered(question.messages, question.answer) if question.messages else None
    if messages is not None:
        return task_prompt, messages
    # The conversation was too long to keep: a fresh run, told what it asked and the answer.
    return (f"{task_prompt}\n\nAn earlier run asked the requester:\n\n{question.question}"
            f"\n\nThe answer:\n\n{question.answer}"), None


async def _supersede_waits(ctx: JobContext, status: StatusComment) -> None:
    """New work on an issue or pull request ends the wait of an earlier question there: a
    later comment must not resume a conversation this run has overtaken."""
    spec = ctx.job.spec
    for question in await asyncio.to_thread(ctx.engine.questions.cancel, spec["repo"], spec["number"]):
        earlier = StatusComment(ctx, status.number, status.retry_hint, job_id=question.job_id)
        try:
            await earlier.show(Status(texts.WAIT_SUPERSEDED.format(job_id=ctx.job.id),
                                      detail=blockquote(question.question)))
        except Exception as error:  # a courtesy: the new run goes on
            ctx.log.warning("could not update the earlier question's status comment: %s", error)


async def _ask(ctx: JobContext, gathered: Gathered, request: WorkRequest, workspace: Workspace,
               result: AgentResult, usage: dict) -> WorkResult:
    """The agent asked: its work so far is pushed to the branch (no pull request yet), so any
    machine can resume from there, and the question is kept with the conversation."""
    assert result.question is not None  # AskQuestion always has one
    if await changed_files(workspace):
        message = redact(f"Work in progress, waiting for an answer\n\n{QUESTION_TRAILER}: {ctx.job.id}\n")
        await commit_all(workspace, message, Identity(gathered.bot_login, gathered.bot_email))
        token = await services(ctx).github.installation_token(ctx.job.spec["installation_id"])
        await push_branch(workspace, token, protected={gathered.default_branch, request.base_branch})
    spec = {key: value for key, value in ctx.job.spec.items() if key not in RESUME_KEYS}
    await asyncio.to_thread(
        ctx.engine.questions.ask, job_id=ctx.job.id, kind=ctx.job.kind, job_key=ctx.job.key, spec=spec,
        question=result.question, branch=workspace.branch, base_branch=request.base_branch,
        messages=result.messages, wait_seconds=ctx.settings.answer_wait_days * 86_400)
    return WorkResult("question", workspace.branch, question=result.question, usage=usage)


LIMIT_NAMES = {"turns": "turn", "cost": "cost", "time": "time"}


def limit_headline(result: WorkResult) -> str | None:
    """"Stopped at its turn limit", "Wrapped up as it neared its cost limit"; None when no
    limit was near."""
    if result.limit is None:
        return None
    words = texts.LIMIT_HIT if result.limit_hit else texts.LIMIT_NEARED
    return words.format(limit=LIMIT_NAMES.get(result.limit, result.limit))


def _limit_entry(result: AgentResult, request: WorkRequest, changed: list[str],
                 command: str) -> WorkLogEntry:
    """The entry for a run a limit stopped before FinishWork: what changed, and what is left
    (the unfinished items of the agent's plan, already neutralised by TodoWrite)."""
    limit = LIMIT_NAMES.get(result.limit or "", "a")
    left = [f"[ ] {todo['content']}" for todo in result.todos if todo.get("status") != "completed"]
    what = request.title or "the requested work"
    entry = WorkLogEntry.model_validate({  # sections given as lists become bullets
        "title": f"Unfinished: {what}"[:120],
        "task_summary": f"The run reached its {limit} limit ({result.reason}) before the agent "
                        "finished; this is its work so far, committed by the bot.",
        "files_modified": [code_span(path) for path in changed] or "None.",
        "key_decisions": "Not recorded: the agent did not finish.",
        "testing_performed": "Not recorded by the agent; see the bot's own test run below, if any.",
        "next_steps": [f"Comment `/{command} continue` to go on from here.",
                       *(["Unfinished items of the agent's plan:", *left] if left else [])],
        "potential_issues": "The work is unfinished: review it before merging.",
    })
    # File names and the title are anybody's words, and all of it reaches GitHub.
    return entry.model_copy(update={"title": neutralise_line(entry.title),
                                    **{name: neutralise(getattr(entry, name)) for name, _ in SECTIONS}})


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
