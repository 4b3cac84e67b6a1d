"""Kinds `answer` and `wait_ended`: the end of a wait for the answer to the agent's question.

`answer`: a plain comment by the person the question waits for, or `/backend answer …` by
anyone who may start work. The answer is taken once (bot.questions), then a job of the asking
job's kind resumes the conversation on its branch. A plain comment when nothing waits any more
(answered, cancelled, expired in between) ends here without a word.

`wait_ended`: the engine's sweep ended a wait that outlived BOT_ANSWER_WAIT_DAYS; its status
comment says so. (`/backend cancel` ends a wait in bot.flows.control.)

Both are control jobs: a few GitHub calls, no agent, no worker held while anyone waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict

from bot import texts
from bot.engine import Engine, JobContext
from bot.flows.gather import gather, refusal
from bot.flows.publish import reply
from bot.flows.services import installation
from bot.flows.status_comment import Status, StatusComment, reaction_target
from bot.questions import Question
from bot.routing import JobRequest
from bot.sanitize import blockquote, strip_hidden

# An answer longer than this is cut (it goes to the model as a tool result).
MAX_ANSWER_CHARS = 20_000
# The sweep for expired waits runs at least this often, more often for short waits.
EXPIRY_SWEEP_SECONDS = 30.0


def _summary(question: Question) -> dict:
    """What a flow needs of a question, without its conversation (a step's result is stored)."""
    summary = asdict(question)
    del summary["messages"]
    return summary


def resumed_spec(question: dict) -> dict:
    """The spec of the job that resumes a question's conversation: the asking job's, on its
    branch (bot.flows.work.RESUME_KEYS)."""
    return {**question["spec"], "resume_question": question["id"], "branch": question["branch"],
            "base_branch": question["base_branch"]}


def wait_text(days: float) -> str:
    """BOT_ANSWER_WAIT_DAYS in words: "7 days", "12 hours", "5 minutes", "30 seconds"."""
    seconds = days * 86_400
    amount, unit = next((seconds / size, unit) for size, unit in _UNITS if seconds >= size or size == 1)
    return f"{round(amount, 1):g} {unit}{'' if round(amount, 1) == 1 else 's'}"


_UNITS = ((86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second"))


def waiting_headline(ctx: JobContext, *, requester: str, command: str) -> str:
    return texts.WAITING_FOR_ANSWER.format(login=requester, command=command,
                                           wait=wait_text(ctx.settings.answer_wait_days))


async def run(ctx: JobContext) -> str:
    spec = ctx.job.spec
    repo, number = spec["repo"], spec["number"]
    plain = bool(spec.get("plain_answer"))

    def find() -> dict | None:
        question = ctx.engine.questions.waiting(repo, number)
        return _summary(question) if question is not None else None

    question = await ctx.step("find the question", asyncio.to_thread, find)
    if question is None or (plain and question["requester"].lower() != spec["requester"].lower()):
        if plain:
            return "no question waits for this comment"
        await reply(ctx, texts.NOTHING_TO_ANSWER.format(number=number), kind="answer")
        return "no question waiting"
    gathered = await gather(ctx)
    refused = refusal(gathered, spec["requester"])
    if refused:
        await reply(ctx, refused, kind="refused")
        return "refused"
    answer = strip_hidden(spec["instruction"]).strip()[:MAX_ANSWER_CHARS]
    if not answer:
        if plain:  # nothing GitHub shows its readers: not an answer
            return "an empty comment answers nothing"
        await reply(ctx, texts.EMPTY_ANSWER.format(command=gathered.repo_config.command), kind="answer")
        return "empty answer"

    async def acknowledge() -> None:
        client = await installation(ctx)
        await client.add_reaction(repo, *reaction_target(spec), "eyes")

    await ctx.step("acknowledge", acknowledge, retries=3)
    text = f"@{spec['requester']} answered:\n\n{answer}"
    taken = await ctx.step("take the answer", asyncio.to_thread, ctx.engine.questions.answer,
                           question["id"], text, spec["requester"])
    if not taken:
        return "the wait ended before this answer"
    # Keyed by the question: a replay after a crash submits the resumed job once.
    ((job_id, _),) = await ctx.step("resume", ctx.engine.store.submit, f"answer:{question['id']}", "answer",
                                    [JobRequest(question["kind"], question["job_key"],
                                                resumed_spec(question))])
    status = StatusComment(ctx, number, gathered.retry_hint(issue=not spec.get("is_pull")),
                           job_id=question["job_id"])
    await ctx.step("report", status.show, Status(
        texts.ANSWERED.format(login=spec["requester"], job_id=job_id),
        detail=blockquote(question["question"])), retries=3)
    return f"answered; the conversation goes on as job {job_id}"


async def ended(ctx: JobContext) -> str:
    """`wait_ended`: say on the asking job's status comment that the wait expired."""
    spec = ctx.job.spec
    gathered = await gather(ctx)
    status = StatusComment(ctx, spec["number"], gathered.retry_hint(issue=not spec.get("is_pull")),
                           job_id=spec["question_job"])
    await ctx.step("report", status.show, Status(
        texts.WAIT_EXPIRED.format(wait=spec["wait"], retry_hint=status.retry_hint),
        detail=blockquote(spec["question"])), retries=3)
    return f"the wait for an answer to job {spec['question_job']}'s question expired"


def wait_ended(question: Question, wait_days: float) -> JobRequest:
    """The job that reports a wait ended by time."""
    spec = {"repo": question.repo, "installation_id": question.spec["installation_id"],
            "number": question.number, "is_pull": bool(question.spec.get("is_pull")),
            "requester": question.requester, "question_job": question.job_id,
            "question": question.question, "wait": wait_text(wait_days)}
    return JobRequest("wait_ended", question.job_key + "/control", spec)


def expiry_sweep(engine: Engine) -> tuple[float, Callable[[], Awaitable[None]]]:
    """The engine's periodic end of expired waits, each reported by a `wait_ended` job."""
    wait_seconds = engine.settings.answer_wait_days * 86_400

    async def end_expired_waits() -> None:
        for question in await asyncio.to_thread(engine.questions.expire_due):
            await engine.store.submit(f"wait-ended:{question.id}", "wait_ended",
                                      [wait_ended(question, engine.settings.answer_wait_days)])

    return min(EXPIRY_SWEEP_SECONDS, max(0.2, wait_seconds / 10)), end_expired_waits
