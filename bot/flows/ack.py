"""Kind `ack`: say at once that a trigger is queued, and its place in line, while the job
waits (for earlier work on the same issue or pull request, or for a free worker). Runs on the
engine's control queue, so it never waits for a worker itself. The job acknowledges itself
when it starts; says nothing for a trigger the job would refuse or not run."""

from __future__ import annotations

import asyncio

from bot import texts
from bot.engine import JobContext
from bot.flows.gather import gather, refusal
from bot.flows.services import installation
from bot.flows.status_comment import StatusComment, acknowledge, reaction_target


async def run(ctx: JobContext) -> str:
    spec = ctx.job.spec
    store = ctx.engine.store
    job = await asyncio.to_thread(store.of_delivery, ctx.job.delivery_id, spec["for_kind"],
                                  spec["for_key"])
    if job is None or job.state != "queued":
        return "nothing to say: the job has started (it acknowledges itself)"
    gathered = await gather(ctx)
    if gathered.config_error or refusal(gathered, spec["requester"]):
        return "nothing to say: the job will explain"
    if spec["for_kind"] in ("pr_command", "update"):
        async def runnable() -> bool:
            client = await installation(ctx)
            pull = await client.get_pull(spec["repo"], spec["number"])
            # `update` works only on the bot's own pull requests; elsewhere it explains.
            own = spec["for_kind"] != "update" or pull.user.login == gathered.bot_login
            return pull.state == "open" and pull.head_repo == spec["repo"] and own

        if not await ctx.step("read pull request", runnable, retries=3):
            return "nothing to say: the job will explain"
    job = await asyncio.to_thread(store.get, job.id)
    if job is None or job.state != "queued":
        return "nothing to say: the job has started meanwhile"
    headline = await asyncio.to_thread(_place_in_line, ctx, job, spec, gathered.repo_config.command)
    status = StatusComment(ctx, spec["number"], gathered.retry_hint(issue=spec["for_kind"] == "issue"),
                           job_id=job.id)
    target, target_id = reaction_target(spec)
    await acknowledge(ctx, status, reaction_target=target, reaction_id=target_id, headline=headline)
    return f"job {job.id} acknowledged: {headline}"


def _place_in_line(ctx: JobContext, job, spec: dict, command: str) -> str:
    store = ctx.engine.store
    ahead = store.ahead_of(job)
    if ahead:
        return texts.QUEUED_BEHIND.format(ahead=ahead, number=spec["number"], command=command)
    work_kinds = [kind for kind in ctx.engine.kinds if kind not in ctx.engine.control_kinds]
    waiting = store.waiting_before(job, work_kinds)
    # Still queued after the checks above: the queue had no free worker to give it.
    return texts.QUEUED_FOR_WORKER.format(
        ahead=texts.QUEUED_AHEAD.format(count=waiting) if waiting else "")
