"""The run's own check: a check run named after the bot, in GitHub's Checks tab.

Created in progress on the commit the work starts from (the branch's head, or the base
branch's for a new branch) when the agent starts; while it works, its output shows the plan as
a checklist and the latest tool calls, re-sent every few seconds when something changed (never
one request per tool call). When the round ends it is completed with the entry's summary, the
cost and the bot's own test result: on the pushed commit a completed one is created, and the
one on the starting commit is completed too, so none stays "in progress"; a failed or
cancelled round completes it as such.

It stands beside the "backend-bot / tests" check rather than replacing it: that one's
conclusion is the repository's tests alone, which a branch protection rule can require and a
fix round can react to, while this one's conclusion is whether the run delivered.

A check run is found again by its name, its commit and the job (`external_id`), so a step that
runs again after a crash reuses it; its id and commit are kept in the work step's result.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from bot.agent.usage import Usage, render_footer
from bot.engine import JobContext
from bot.flows.services import installation
from bot.flows.status_comment import checklist
from bot.sanitize import code_span, neutralise, neutralise_line

if TYPE_CHECKING:
    from bot.flows.work import WorkResult

RUN_CHECK_NAME = "backend-bot"
TESTS_CHECK_NAME = "backend-bot / tests"
CHECK_UPDATE_INTERVAL = 3.0
LATEST_CALLS = 10
CALL_SUMMARY_CHARS = 160

# The input field that says most about a call, by tool; other tools show their name alone.
_CALL_FIELDS = {"Bash": "command", "Read": "file_path", "Write": "file_path", "Edit": "file_path",
                "Glob": "pattern", "Grep": "pattern", "AskQuestion": "question", "FinishWork": "title"}


def describe_call(name: str, tool_input: dict) -> str:
    """One Markdown line for a tool call: its name and a short summary of its input, both as
    inline code (the agent wrote them: nothing in them may mention, link or format)."""
    detail = " ".join(str(tool_input.get(_CALL_FIELDS.get(name, ""), "")).split())
    if name == "TodoWrite":
        detail = f"{len(tool_input.get('todos') or [])} items"
    if len(detail) > CALL_SUMMARY_CHARS:
        detail = detail[: CALL_SUMMARY_CHARS - 1] + "…"
    line = f"- {code_span(name[:60] or '?')}" + (f" {code_span(detail)}" if detail else "")
    return neutralise(line)


class LiveCheck:
    """The job's check run while its round of work runs (see the module docstring).

    `plan` and `tool_call` only note what changed; `keep_fresh` sends it. A failure to reach
    GitHub is logged and the work goes on: the check is a view of the run, not part of it.
    """

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.repo = ctx.job.spec["repo"]
        self.external_id = f"job-{ctx.job.id}"
        self.id: int | None = None
        self.sha: str | None = None
        self.todos: list[dict] = []
        self.calls: deque[str] = deque(maxlen=LATEST_CALLS)
        self._changed = False

    def where(self) -> dict:
        """What the work step's result keeps, for completing the check after a crash."""
        return {"id": self.id, "sha": self.sha} if self.id is not None else {}

    async def start(self, sha: str, *, create: bool = True) -> None:
        """The job's check on `sha`: found again, or (when `create`) created in progress."""
        try:
            client = await installation(self.ctx)
            run = await client.find_check_run(self.repo, sha, RUN_CHECK_NAME, self.external_id)
            if run is None and create:
                title, summary, text = self._progress()
                run = await client.create_check_run(
                    self.repo, name=RUN_CHECK_NAME, head_sha=sha, status="in_progress",
                    external_id=self.external_id, title=title, summary=summary, text=text)
        except Exception as error:
            self.ctx.log.warning("could not start the check run: %s", error)
            return
        if run is not None:
            self.id, self.sha = run.id, sha

    def plan(self, todos: list[dict]) -> None:
        self.todos = todos
        self._changed = True

    def tool_call(self, name: str, tool_input: dict) -> None:
        self.calls.append(describe_call(name, tool_input))
        self._changed = True

    async def keep_fresh(self, interval: float | None = None) -> None:
        """Until cancelled: send the latest plan and calls, at most once per interval."""
        while True:
            await asyncio.sleep(interval if interval is not None else CHECK_UPDATE_INTERVAL)
            if self._changed and self.id is not None:
                self._changed = False
                await self._send()

    async def _send(self) -> None:
        assert self.id is not None
        title, summary, text = self._progress()
        try:
            client = await installation(self.ctx)
            await client.update_check_run(self.repo, self.id, title=title, summary=summary, text=text)
        except Exception as error:
            self.ctx.log.warning("could not update the check run: %s", error)

    def _progress(self) -> tuple[str, str, str]:
        done = sum(1 for todo in self.todos if todo.get("status") == "completed")
        title = f"Working: {done} of {len(self.todos)} steps done" if self.todos else "Working"
        summary = ("The plan:\n\n" + checklist(self.todos)) if self.todos else "Reading the code, making a plan."
        return title, summary, self._latest_calls()

    def _latest_calls(self) -> str:
        started = self.ctx.job.started_at or time.time()
        minutes = max(0, int(time.time() - started)) // 60
        calls = "\n".join(self.calls) or "None yet."
        return f"Job {self.ctx.job.id}, started {minutes} min ago.\n\n### Latest tool calls\n\n{calls}"

    async def complete(self, result: WorkResult) -> None:
        """The round ended with `result`: its check completed with what it delivered."""
        where = result.check_run or {}
        conclusion, title = _ending(result)
        summary = _summary(result)
        text = self._final_text()
        client = await installation(self.ctx)
        if result.sha and result.sha != where.get("sha"):
            existing = await client.find_check_run(self.repo, result.sha, RUN_CHECK_NAME, self.external_id)
            if existing is None:
                await client.create_check_run(
                    self.repo, name=RUN_CHECK_NAME, head_sha=result.sha, status="completed",
                    conclusion=conclusion, external_id=self.external_id, title=title,
                    summary=summary, text=text)
            if where:
                await client.update_check_run(
                    self.repo, where["id"], status="completed", conclusion="neutral",
                    title=f"Done: the result is on {result.sha[:7]}", summary=summary, text=text)
        elif where:
            await client.update_check_run(self.repo, where["id"], status="completed",
                                          conclusion=conclusion, title=title, summary=summary, text=text)

    async def abandon(self, *, cancelled: bool, reason: str) -> None:
        """The round failed or was cancelled: complete the check so it is not left running."""
        if self.id is None:
            return
        conclusion, title = ("cancelled", "Cancelled") if cancelled else ("failure", "Failed")
        summary = "The job was cancelled." if cancelled else neutralise(f"The run failed: {reason}")
        try:
            client = await installation(self.ctx)
            await client.update_check_run(self.repo, self.id, status="completed", conclusion=conclusion,
                                          title=title, summary=summary, text=self._final_text())
        except Exception as error:
            self.ctx.log.warning("could not complete the check run: %s", error)

    def _final_text(self) -> str:
        parts = []
        if self.todos:
            parts.append("### The plan\n\n" + checklist(self.todos))
        if self.calls:
            parts.append("### Latest tool calls\n\n" + "\n".join(self.calls))
        parts.append(f"The whole transcript: `backend-bot jobs --show {self.ctx.job.id}` on the bot's host.")
        return "\n\n".join(parts)


def _ending(result: WorkResult) -> tuple[str, str]:
    if result.outcome == "committed":
        committed = f"Committed {result.sha[:7] if result.sha else ''}".strip()
        if result.limit:  # unfinished: a draft that `/backend continue` goes on with
            return "neutral", f"{committed}, unfinished (the {result.limit} limit)"
        return "success", committed
    if result.outcome == "question":
        return "neutral", "Waiting for an answer to the agent's question"
    if result.outcome == "merged":  # an update round with no conflict for the agent
        return "success", f"Merged {result.sha[:7] if result.sha else ''}".strip()
    if result.outcome == "unresolved":
        return "neutral", "Conflicts left for a person: nothing pushed"
    return "neutral", "Finished without changes"


def _summary(result: WorkResult) -> str:
    lines = [result.summary or neutralise_line(result.title) or "The run ended."]
    usage: dict[str, Any] = result.usage
    lines.append(render_footer(Usage(**usage)) if usage else "Usage not recorded (a resumed run).")
    tests = result.tests
    if tests:
        verdict = "passed" if tests["passed"] else "failed"
        lines.append(f"The bot's own test run: {code_span(tests['command'])} {verdict} in "
                     f"{tests['duration']} s (its output is in the {TESTS_CHECK_NAME!r} check).")
    elif result.outcome == "committed":
        lines.append("The bot ran no tests: the repository has no test command it knows.")
    return neutralise("\n\n".join(lines))
