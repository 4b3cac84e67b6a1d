"""Kind `ack`: say at once that a trigger is queued, when earlier work on the same issue or
pull request holds it back (the job itself acknowledges when it starts, which may be much
later). Says nothing for a trigger the job would refuse or not run."""

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
    ahead = await asyncio.to_thread(store.ahead_of, job)
    if not ahead:
        return "nothing to say: the job starts at once"
    gathered = await gather(ctx)
    if gathered.config_error or refusal(gathered, spec["requester"]):
        return "nothing to say: the job will explain"
    if spec["for_kind"] == "pr_command":
        async def runnable() -> bool:
            client = await installation(ctx)
            pull = await client.get_pull(spec["repo"], spec["number"])
            return pull.state == "open" and pull.head_repo == spec["repo"]

        if not await ctx.step("read pull request", runnable, retries=3):
            return "nothing to say: the job will explain"
    hint = gathered.retry_hint(issue=spec["for_kind"] == "issue")
    status = StatusComment(ctx, spec["number"], hint, job_id=job.id)
    target, target_id = reaction_target(spec)
    await acknowledge(ctx, status, reaction_target=target, reaction_id=target_id,
                      headline=texts.QUEUED_BEHIND.format(
                          ahead=ahead, number=spec["number"],
                          command=gathered.repo_config.command))
    return f"job {job.id} acknowledged, {ahead} ahead"
