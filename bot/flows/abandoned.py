"""Kind `abandoned`: tell the person who asked that a job was given up (interrupted by crashes
too often, or left with no process to finish it), on the job's own status comment, with how to
run it again. The engine submits it (`Engine.on_abandoned`) on the control queue."""

from __future__ import annotations

from bot import texts
from bot.engine import JobContext
from bot.flows.gather import gather
from bot.flows.status_comment import Status, StatusComment
from bot.jobstore import Job
from bot.routing import JobRequest

# The kinds that keep a status comment a person watches.
REPORTED_KINDS = frozenset({"issue", "pr_command", "review"})


def report(job: Job, reason: str) -> list[JobRequest]:
    """The engine's hook: what to run when `job` is given up."""
    if job.kind not in REPORTED_KINDS:
        return []
    spec = {**job.spec, "for_job": job.id, "for_kind": job.kind, "reason": reason}
    return [JobRequest("abandoned", f"{job.key}/abandoned", spec)]


async def run(ctx: JobContext) -> str:
    spec = ctx.job.spec
    gathered = await gather(ctx)
    status = StatusComment(ctx, spec["number"],
                           gathered.retry_hint(issue=spec["for_kind"] == "issue"),
                           job_id=spec["for_job"])
    reason = texts.ABANDONED.format(reason=spec["reason"])
    await ctx.step("report", status.show, Status(texts.FAILED.format(
        reason=reason, retry_hint=status.retry_hint)), retries=3)
    return f"job {spec['for_job']} reported as given up"
