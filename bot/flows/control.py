"""Kind `control`: `/backend help`, `/backend status`, `/backend cancel`, `/backend retry`.

These run under a key of their own (`…#N/control`), so `cancel` never waits behind the job
it stops. `help` and `status` answer anyone; `cancel` and `retry` need the same access as
starting work.
"""

from __future__ import annotations

import asyncio
import time

from bot import texts
from bot.engine import JobContext
from bot.flows.gather import gather, refusal
from bot.flows.publish import reply
from bot.flows.services import installation
from bot.flows.status_comment import Status, StatusComment, reaction_target
from bot.jobstore import Job
from bot.repo_config import CONFIG_PATH
from bot.routing import JobRequest, job_key
from bot.sanitize import blockquote

HELP = """**backend-bot** runs a backend-engineer agent on this repository.

- Label an issue `{label}`: the bot implements it and opens a pull request.
- `/{command} <what to do>` on a pull request: the bot does it (on its own pull requests, as new commits; on others', as a pull request into their branch).
- Review one of the bot's pull requests: it addresses the whole review in one commit and answers each thread.
- `/{command} update` on one of the bot's pull requests: it merges the base branch in, the agent resolving any conflict (done by itself when the default branch moves).
- When the agent asks a question, reply in a comment (or `/{command} answer …`): the run goes on where it stopped.
- `/{command} continue`: go on with work a limit (turns, cost, time) stopped; its pull request is a draft until then.
- `/{command} status` · `/{command} cancel` · `/{command} retry` · `/{command} help`

Settings for this repository (from `{config_path}` on the default branch, merged over the defaults):

| setting | value |
|---|---|
{rows}"""

STATUS_NONE = "No backend-bot jobs for #{number} yet."
STATUS_HEAD = "backend-bot jobs for #{number}:\n\n| job | kind | state | requested by | since |\n|---|---|---|---|---|"
CANCELLED_JOBS = "🛑 Cancelled {jobs}."
NOTHING_TO_CANCEL = "Nothing to cancel: no backend-bot job is queued or running for #{number}."
RETRYING = "🔁 Running job {old} again as job {new}."
NOTHING_TO_RETRY = "Nothing to retry: the last backend-bot job for #{number} did not fail."
CONFIG_BROKEN = "`{config_path}` is not valid:\n\n{problems}"

ACTIVE = ("queued", "running")


async def run(ctx: JobContext) -> str:
    spec = ctx.job.spec
    command = spec["command"]
    gathered = await gather(ctx)
    if command in ("cancel", "retry") and gathered.config_error is None:
        refused = refusal(gathered, spec["requester"])
        if refused:
            await reply(ctx, refused, kind="refused")
            return "refused"

    async def acknowledge() -> None:
        client = await installation(ctx)
        await client.add_reaction(spec["repo"], *reaction_target(spec), "eyes")

    await ctx.step("acknowledge", acknowledge, retries=3)
    answer = await ctx.step(command, ANSWERS[command], ctx, gathered)
    await reply(ctx, answer, kind=command)
    return f"/{command} answered"


async def _help(ctx: JobContext, gathered) -> str:
    if gathered.config_error:
        return CONFIG_BROKEN.format(config_path=CONFIG_PATH, problems=gathered.config_error)
    config = gathered.repo_config
    values = config.model_dump()
    values["model"] = values["model"] or f"{ctx.settings.anthropic_model} (the server's default)"
    values["test_command"] = values["test_command"] or "detected from the checkout"
    rows = "\n".join(f"| `{key}` | {_cell(value)} |" for key, value in values.items())
    return HELP.format(label=config.label, command=config.command, config_path=CONFIG_PATH,
                       rows=rows)


def _cell(value) -> str:
    if value in (None, "", []):
        return "—"
    if isinstance(value, list):
        return ", ".join(f"`{v}`" for v in value)
    return f"`{value}`"


def _work_key(ctx: JobContext) -> str:
    return job_key(ctx.job.spec["repo"], ctx.job.spec["number"])


async def _jobs(ctx: JobContext) -> list[Job]:
    return await asyncio.to_thread(ctx.engine.store.list, limit=20, key=_work_key(ctx))


async def _status(ctx: JobContext, gathered) -> str:
    jobs = await _jobs(ctx)
    if not jobs:
        return STATUS_NONE.format(number=ctx.job.spec["number"])
    lines = [STATUS_HEAD.format(number=ctx.job.spec["number"])]
    for job in sorted(jobs, key=lambda j: j.id)[-10:]:
        since = job.started_at or job.created_at
        state = job.state + (f": {job.error}" if job.error and job.state == "failed" else "")
        lines.append(f"| {job.id} | {job.kind} | {state} | @{job.spec.get('requester', '?')} | "
                     f"{_ago(since)} |")
    question = await asyncio.to_thread(ctx.engine.questions.waiting, ctx.job.spec["repo"],
                                       ctx.job.spec["number"])
    if question is not None:
        lines.append("\n" + texts.STATUS_WAITING.format(
            login=question.requester, job_id=question.job_id, since=_ago(question.created_at)))
    return "\n".join(lines)


def _ago(moment: float | None) -> str:
    if not moment:
        return "—"
    seconds = int(time.time() - moment)
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


async def _cancel(ctx: JobContext, gathered) -> str:
    spec = ctx.job.spec
    active = [job for job in await _jobs(ctx) if job.state in ACTIVE]
    # A question waiting for its answer holds no job: its wait ends here, and a later
    # comment answers nothing.
    waits = await asyncio.to_thread(ctx.engine.questions.cancel, spec["repo"], spec["number"])
    if not active and not waits:
        return NOTHING_TO_CANCEL.format(number=spec["number"])
    for job in active:
        await ctx.engine.cancel(job.id)
    hint = gathered.retry_hint(issue=not spec.get("is_pull"))
    for question in waits:
        status = StatusComment(ctx, spec["number"], hint, job_id=question.job_id)
        await status.show(Status(texts.WAIT_CANCELLED.format(retry_hint=hint),
                                 detail=blockquote(question.question)))
    lines = [texts.STOPPED_WAITING.format(job_id=question.job_id) for question in waits]
    if active:
        lines.insert(0, CANCELLED_JOBS.format(
            jobs=", ".join(f"job {job.id} ({job.kind}, was {job.state})" for job in active)))
    return "\n".join(lines)


async def _retry(ctx: JobContext, gathered) -> str:
    jobs = await _jobs(ctx)
    finished = [job for job in jobs if job.state not in ACTIVE]
    if not finished or finished[0].state not in ("failed", "cancelled"):
        return NOTHING_TO_RETRY.format(number=ctx.job.spec["number"])
    last = finished[0]
    spec = {**last.spec, "requester": ctx.job.spec["requester"]}
    # Keyed by this control job, so a crash and resume submits the retry once.
    stored = await ctx.engine.store.submit(
        f"retry:{last.id}:{ctx.job.id}", "retry", [JobRequest(last.kind, last.key, spec)])
    return RETRYING.format(old=last.id, new=stored[0][0])


ANSWERS = {"help": _help, "status": _status, "cancel": _cancel, "retry": _retry}
