"""The one status comment per trigger, edited in place: queued ▸ working ▸ done / failed.

The comment carries a hidden marker (`bot.markers.status`), so a job finds its own comment
again after a crash instead of writing a second one. `guarded` runs a flow and says on GitHub
why it failed or that it was cancelled, before the failure reaches the engine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot import markers, texts
from bot.agent.sandbox import SandboxUnavailable
from bot.engine import JobContext, is_cancellation, root_cause
from bot.errors import TransientError, UserFacingError
from bot.flows.services import installation
from bot.github.client import ReactionTarget
from bot.redact import redact
from bot.sanitize import blockquote

STATUS_UPDATE_INTERVAL = 2.0
STATUS_TICK = 20.0

_CHECK = {"completed": "x", "in_progress": " ", "pending": " "}


@dataclass
class Status:
    """What the status comment says now."""

    headline: str
    todos: list[dict] = field(default_factory=list)
    detail: str = ""

    def render(self, kind: str, job_id: int) -> str:
        parts = [markers.status(kind), self.headline]
        if self.todos:
            parts.append(checklist(self.todos))
        if self.detail:
            parts.append(self.detail)
        parts.append(texts.FOOTER.format(job_id=job_id))
        return redact("\n\n".join(parts))


def checklist(todos: list[dict]) -> str:
    """The agent's plan as a Markdown task list."""
    lines = []
    for todo in todos:
        text = " ".join(str(todo.get("content", "")).split())
        status = todo.get("status", "pending")
        if status == "in_progress":
            text = f"{text} ← *{' '.join(str(todo.get('activeForm') or 'working').split())}*"
        lines.append(f"- [{_CHECK.get(status, ' ')}] {text}")
    return "\n".join(lines)


class StatusComment:
    """The job's status comment on one issue or PR.

    While the job works it says so from the first moment, with the time since the job started
    and its stage (`at_stage`), then the agent's plan (`progress`); `keep_fresh` re-renders it
    now and then so the elapsed time stays true. Plan edits are throttled (an agent may rewrite
    its plan every few seconds); a skipped plan is shown by the next edit of any kind.
    """

    def __init__(self, ctx: JobContext, number: int, retry_hint: str,
                 job_id: int | None = None, kind: str | None = None) -> None:
        self.ctx = ctx
        self.number = number
        self.retry_hint = retry_hint
        # Another job may speak for this one (an acknowledgement, before it starts).
        self.job_id = job_id or ctx.job.id
        # Jobs nobody asked for in a comment share one comment per `kind`, edited in place.
        self.kind = kind or f"job-{self.job_id}"
        self.stage = texts.STAGE_STARTING
        self.todos: list[dict] = []
        # Said under the working status: settings of the repository the bot did not follow.
        self.notes: list[str] = []
        self._last_plan_update = 0.0

    async def show(self, status: Status) -> None:
        client = await installation(self.ctx)
        body = status.render(self.kind, self.job_id)
        await client.upsert_comment(self.ctx.job.spec["repo"], self.number,
                                    markers.status(self.kind), body)

    def working(self) -> Status:
        started = self.ctx.job.started_at or time.time()
        elapsed = _duration(time.time() - started)
        return Status(texts.WORKING.format(elapsed=elapsed, stage=self.stage), todos=self.todos,
                      detail="\n".join(f"ℹ️ {note}" for note in self.notes))

    async def at_stage(self, stage: str) -> None:
        self.stage = stage
        await self._refresh()

    async def progress(self, todos: list[dict]) -> None:
        """Show the agent's plan; at most one edit every few seconds, the latest plan wins."""
        self.todos = todos
        self.stage = texts.STAGE_EDITING
        now = time.monotonic()
        if now - self._last_plan_update < STATUS_UPDATE_INTERVAL:
            return
        self._last_plan_update = now
        await self._refresh()

    async def keep_fresh(self, interval: float = STATUS_TICK) -> None:
        """Until cancelled: re-render the working status, so its elapsed time is never stale."""
        while True:
            await asyncio.sleep(interval)
            await self._refresh()

    async def _refresh(self) -> None:
        try:
            await self.show(self.working())
        except Exception as error:  # progress is a courtesy; the work goes on
            self.ctx.log.warning("could not update the status comment: %s", error)

    async def asked(self, question: str, headline: str) -> None:
        """The run waits for the answer to the agent's question: say so, with the question."""
        await self.show(Status(headline, detail=blockquote(question)))

    async def failed(self, reason: str) -> None:
        await self.show(Status(texts.FAILED.format(reason=redact(reason),
                                                   retry_hint=self.retry_hint)))

    async def cancelled(self) -> None:
        await self.show(Status(texts.CANCELLED.format(retry_hint=self.retry_hint)))


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


async def acknowledge(ctx: JobContext, status: StatusComment, *, reaction_target: ReactionTarget,
                      reaction_id: int, headline: str | None = None) -> None:
    """👀 on the trigger and the status comment: the job working (when it acknowledges
    itself, as it starts) or the `headline` of another job speaking for it while it waits."""
    async def ack() -> None:
        client = await installation(ctx)
        await client.add_reaction(ctx.job.spec["repo"], reaction_target, reaction_id, "eyes")
        await status.show(Status(headline) if headline else status.working())

    await ctx.step("acknowledge", ack, retries=3)


def reaction_target(spec: dict) -> tuple[ReactionTarget, int]:
    """What 👀 goes on: the command's comment, or the issue that was labelled."""
    if spec.get("comment_kind") == "review_comment":
        return "review_comment", spec["comment_id"]
    if spec.get("comment_id"):
        return "comment", spec["comment_id"]
    return "issue", spec["number"]


async def guarded(status: StatusComment, flow: Callable[[], Awaitable[str]]) -> str:
    """Run a flow; tell the user on GitHub when it fails or is cancelled, then re-raise."""
    try:
        return await flow()
    except asyncio.CancelledError:
        raise  # the process is shutting down: the job resumes on restart
    except BaseException as error:
        try:
            if is_cancellation(error):
                await status.cancelled()
            elif isinstance(error, Exception):
                await status.failed(failure_reason(error))
        except Exception as report_error:
            status.ctx.log.warning("could not report the failure on GitHub: %s", report_error)
        raise


def failure_reason(error: BaseException) -> str:
    """Why a flow failed, in words for its users (no internals)."""
    error = root_cause(error)
    if isinstance(error, (UserFacingError, SandboxUnavailable)):
        return str(error)
    if isinstance(error, TransientError):
        return texts.KEPT_FAILING.format(error=error)
    return (f"an internal error stopped the run ({type(error).__name__}). The bot's operator "
            "can find the details in its logs.")
