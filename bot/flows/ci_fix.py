"""Kind `ci_fix`: checks failed on the head of one of the bot's pull requests; one round to fix.

Several deliveries arrive for one failing commit (each check run, the suite, the workflow run,
statuses), each a job keyed by the pull request (or by the branch, for a status). Every outcome
for a commit is one comment carrying the commit's marker, decided and written under a guard per
branch; a later job for the commit finds it and stops. What the job checks, in order, before
any round:

- the pull request is open, from this repository, the bot's own, on a branch with the
  repository's prefix, and its head is still the failing commit (else nothing at all);
- the head commit is the bot's: a person's commit on the branch pauses fixing (said once);
- something other than the bot's own check failed (else nothing);
- the same checks do not fail the same way on the default branch's head (else said, no round);
- the previous round's failure is not this one again ("same failure after a fix": said, stop);
- rounds so far (counted from the bot's own round comments on GitHub) are under
  `ci_fix_attempts` (else said, stop).

Then one round of work (`work()`): the failing output goes into the task prompt fenced as
untrusted and bounded; one commit, one entry, the pull request updated, and the one comment
saying what failed and what changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass, replace

from bot import markers, texts
from bot.agent import FailingCheck, ci_fix_task
from bot.engine import JobContext
from bot.flows.gather import Gathered, gather
from bot.flows.publish import update_own_pull
from bot.flows.services import installation
from bot.flows.status_comment import Status, StatusComment, guarded
from bot.flows.work import WorkRequest, work
from bot.github.client import InstallationClient
from bot.github.models import CheckRun, CommitStatus
from bot.redact import redact
from bot.sanitize import code_span, neutralise_line

FAILED_CONCLUSIONS = frozenset({"failure", "timed_out"})
FAILED_STATES = frozenset({"failure", "error"})
ACTIONS_SLUG = "github-actions"
# What of a failing check reaches the prompt: enough to see the error, bounded so a check that
# prints megabytes cannot crowd out the task (or the budget).
MAX_CHECKS = 6
LOG_TAIL_LINES = 200
MAX_CHECK_CHARS = 8_000
MAX_ANNOTATIONS = 20
# The lines of a log that say how it failed, for "the same failure again".
FINGERPRINT_LOG_LINES = 30

_ROUND = re.compile(r"<!-- " + re.escape(f"{markers.PREFIX}:ci-fix-round") + r":([0-9a-f]{16}) -->")
_VOLATILE = re.compile(r"[0-9a-f]{7,}|\d+")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z ?")


def comment_marker(sha: str) -> str:
    """The marker of the one comment about a commit's failing checks, whatever came of it."""
    return markers.status(f"ci-fix-{sha}")


def round_marker(fingerprint: str) -> str:
    return markers.marker("ci-fix-round", fingerprint)


def fingerprint(checks: list[dict]) -> str:
    """Which checks failed and how, without what changes from run to run (times, ids,
    durations, line numbers): equal when the same checks fail the same way."""
    parts = []
    for check in sorted(checks, key=lambda c: c["name"]):
        log_lines = [_TIMESTAMP.sub("", line) for line in check["log"].splitlines() if line.strip()]
        text = "\n".join([check["name"], check["title"],
                          *(a["message"] for a in check["annotations"]),
                          *log_lines[-FINGERPRINT_LOG_LINES:]])
        parts.append(_VOLATILE.sub("#", " ".join(text.lower().split())))
    return hashlib.sha256("\n\0".join(parts).encode()).hexdigest()[:16]


@dataclass
class _Subject:
    number: int
    title: str
    head_ref: str
    base_ref: str


class _CiFixStatus(StatusComment):
    """The round's status comment, under the commit's marker, always ending with what failed
    (and the round's marker, by which later jobs count rounds and compare failures)."""

    def __init__(self, ctx: JobContext, number: int, retry_hint: str, sha: str, about: str) -> None:
        super().__init__(ctx, number, retry_hint)
        self.kind = f"ci-fix-{sha}"
        self.about = about

    async def show(self, status: Status) -> None:
        detail = "\n\n".join(part for part in (status.detail, self.about) if part)
        await super().show(replace(status, detail=detail))


@dataclass
class _Round:
    """A round decided on: the pull request, and the failures it is to fix."""

    subject: _Subject
    number: int  # the round's number, from 1
    checks: list[dict]  # every failing check
    to_fix: list[dict]  # those that do not fail on the default branch too
    status: _CiFixStatus


async def run(ctx: JobContext) -> str:
    spec = ctx.job.spec
    gathered = await gather(ctx)
    if gathered.config_error is not None:
        return "not run: .github/backend.yml is not valid"
    if gathered.repo_config.ci_fix_attempts == 0:
        return "not run: ci_fix_attempts is 0"
    # A commit's deliveries can be jobs of two keys (a status names no pull request): whether
    # to run a round, and the comment that says so, happen for one of them at a time, so the
    # second finds the first's comment.
    async with ctx.engine.guard.hold(f"ci-fix:{spec['repo']}:{spec['branch']}"):
        decided = await _decide(ctx, gathered)
    if isinstance(decided, str):
        return decided
    subject, status = decided.subject, decided.status

    async def flow() -> str:
        result = await work(ctx, gathered, WorkRequest(
            branch=subject.head_ref,
            base_branch=subject.base_ref,
            task_prompt=ci_fix_task(
                number=subject.number, title=subject.title, repo=spec["repo"],
                head=subject.head_ref, base=subject.base_ref, sha=spec["sha"],
                checks=[_prompt_check(c) for c in decided.to_fix[:MAX_CHECKS]],
                left_alone=[c["name"] for c in decided.checks if c not in decided.to_fix],
            ),
            trigger=f"#{subject.number}",
        ), status)
        if result.outcome == "question":
            await ctx.step("report", status.asked, result.question, retries=3)
            return "waiting for an answer to the agent's question"
        if result.outcome == "no_changes":
            text = texts.NO_CHANGES_PR.format(summary=result.summary or result.title)
            await ctx.step("report", status.show, Status(text), retries=3)
            return f"round {decided.number} finished without changes"
        assert result.sha is not None  # what is left is a committed round
        pr = await ctx.step("publish", update_own_pull, ctx, gathered, subject.number, result,
                            retries=3)
        commit = f"[`{result.sha[:7]}`]({pr['html_url']}/commits/{result.sha})"
        await ctx.step("report", status.show, Status(texts.CI_FIX_DONE.format(
            commit=commit, summary=result.summary)), retries=3)
        return f"round {decided.number}: pushed {result.sha[:7]} to #{subject.number}"

    return await guarded(status, flow)


async def _decide(ctx: JobContext, gathered: Gathered) -> _Round | str:
    """A round to run, announced on the pull request; or why not (said there when a person
    should know)."""
    sha = ctx.job.spec["sha"]
    config = gathered.repo_config
    found = await ctx.step("read pull request", _read_pull, ctx, gathered, retries=3)
    if isinstance(found, str):
        return "not run: " + found
    subject, rounds = _Subject(**found["subject"]), found["rounds"]
    command = config.command
    short = code_span(sha[:7])

    if found["head_author"] != gathered.bot_email:
        await _say(ctx, subject.number, texts.CI_FIX_PAUSED.format(sha=short, command=command))
        return f"paused: {sha[:7]} is not the bot's commit"

    checks = await ctx.step("read failing checks", _failing_checks, ctx, gathered, retries=3)
    if not checks:
        return f"not run: nothing but the bot's own checks failed on {sha[:7]}"
    on_default = await ctx.step("read default branch checks", _failing_on_default, ctx, gathered,
                                sorted({c["name"] for c in checks}), retries=3)
    # Left alone only where the default branch fails the same way: a check that fails there
    # but fails differently here may well be this pull request's doing too.
    to_fix = [c for c in checks if on_default.get(c["name"]) != fingerprint([c])]
    if not to_fix:
        await _say(ctx, subject.number, texts.CI_FIX_ALSO_ON_DEFAULT.format(
            sha=short, checks=_names(checks), branch=code_span(gathered.default_branch),
            command=command))
        return f"not run: the failing checks fail on {gathered.default_branch} too"
    failure = fingerprint(to_fix)
    if rounds and rounds[-1] == failure:
        await _say(ctx, subject.number, texts.CI_FIX_SAME_FAILURE.format(
            sha=short, checks=_names(to_fix), command=command))
        return f"stopped: the same failure after round {len(rounds)}"
    if len(rounds) >= config.ci_fix_attempts:
        await _say(ctx, subject.number, texts.CI_FIX_NO_ROUNDS_LEFT.format(
            sha=short, checks=_names(to_fix), attempts=config.ci_fix_attempts, command=command))
        return f"stopped: {len(rounds)} round(s) of {config.ci_fix_attempts} used"

    about = "\n\n".join(filter(None, [
        texts.CI_FIX_WHAT_FAILED.format(sha=short, round=len(rounds) + 1,
                                        attempts=config.ci_fix_attempts),
        "\n".join(_summary_line(c) for c in to_fix),
        texts.CI_FIX_LEFT_ALONE.format(checks=_names([c for c in checks if c not in to_fix]),
                                       branch=code_span(gathered.default_branch))
        if len(to_fix) < len(checks) else "",
        round_marker(failure),
    ]))
    status = _CiFixStatus(ctx, subject.number, texts.CI_FIX_RETRY_HINT.format(command=command),
                          sha, about)
    # The comment, before the round, is what later jobs for this commit find and stop at.
    await ctx.step("announce", status.show, status.working(), retries=3)
    return _Round(subject, len(rounds) + 1, checks, to_fix, status)


async def _read_pull(ctx: JobContext, gathered: Gathered) -> dict | str:
    """The pull request to fix, its earlier rounds and who made its head; or why not."""
    spec = ctx.job.spec
    repo, sha, branch = spec["repo"], spec["sha"], spec["branch"]
    client = await installation(ctx)
    pull = (await client.get_pull(repo, spec["number"]) if spec.get("number")
            else await client.find_pull_by_head(repo, branch))
    if pull is None:
        return f"no pull request from {branch}"
    if pull.state != "open":
        return f"#{pull.number} is {'merged' if pull.merged else 'closed'}"
    if pull.head_repo != repo or pull.user.login != gathered.bot_login:
        return f"#{pull.number} is not the bot's pull request"
    if not pull.head_ref.startswith(gathered.repo_config.branch_prefix):
        return f"#{pull.number} is not on one of the bot's branches"
    if pull.head_sha != sha:
        return f"{sha[:7]} is no longer the head of #{pull.number}"
    comments = [c.body for c in await client.list_issue_comments(repo, pull.number)
                if c.user.login == gathered.bot_login]
    if any(comment_marker(sha) in body for body in comments):
        return f"{sha[:7]} was dealt with already"
    head = await client.get_commit(repo, sha)
    return {
        "subject": {"number": pull.number, "title": pull.title, "head_ref": pull.head_ref,
                    "base_ref": pull.base_ref},
        "rounds": [match for body in comments for match in _ROUND.findall(body)],
        "head_author": head.author_email,
    }


async def _failing_checks(ctx: JobContext, gathered: Gathered) -> list[dict]:
    repo, sha = ctx.job.spec["repo"], ctx.job.spec["sha"]
    client = await installation(ctx)
    own_slug = gathered.bot_login.removesuffix("[bot]")
    runs = [r for r in await client.list_check_runs(repo, sha)
            if r.conclusion in FAILED_CONCLUSIONS and r.app_slug != own_slug]
    checks = await asyncio.gather(*(_check_run_details(client, repo, r) for r in runs[:MAX_CHECKS]))
    statuses = [s for s in await client.commit_statuses(repo, sha) if s.state in FAILED_STATES]
    return [*checks, *map(_status_check, statuses)]


def _status_check(status: CommitStatus) -> dict:
    return {"name": status.context, "conclusion": status.state, "title": redact(status.description),
            "summary": "", "text": "", "annotations": [], "log": ""}


async def _check_run_details(client: InstallationClient, repo: str, run: CheckRun) -> dict:
    annotations = []
    if run.output.get("annotations_count"):
        annotations = [{"path": a.path, "line": a.start_line, "message": redact(a.message[:500]),
                        "title": redact(a.title[:200])}
                       for a in await client.check_run_annotations(repo, run.id, MAX_ANNOTATIONS)]
    log = ""
    if run.app_slug == ACTIONS_SLUG:  # an Actions job: its check run's id is the job's
        log = _tail(await client.job_log(repo, run.id) or "", LOG_TAIL_LINES)
    output = run.output
    # CI output is where a leaked credential shows up: none of it reaches the model, the
    # checkpoint or the transcript.
    return {"name": run.name, "conclusion": run.conclusion or "",
            "title": redact((output.get("title") or "")[:500]),
            "summary": redact((output.get("summary") or "")[:MAX_CHECK_CHARS]),
            "text": redact((output.get("text") or "")[-MAX_CHECK_CHARS:]),
            "annotations": annotations, "log": redact(log[-MAX_CHECK_CHARS:])}


async def _failing_on_default(ctx: JobContext, gathered: Gathered, names: list[str]) -> dict[str, str]:
    """How each of the checks `names` fails on the default branch's head (its fingerprint), for
    those that fail there."""
    repo, branch = ctx.job.spec["repo"], gathered.default_branch
    client = await installation(ctx)
    wanted = set(names)
    runs = [r for r in await client.list_check_runs(repo, branch)
            if r.conclusion in FAILED_CONCLUSIONS and r.name in wanted]
    checks = await asyncio.gather(*(_check_run_details(client, repo, r) for r in runs[:MAX_CHECKS]))
    statuses = [s for s in await client.commit_statuses(repo, branch)
                if s.state in FAILED_STATES and s.context in wanted]
    return {check["name"]: fingerprint([check]) for check in [*checks, *map(_status_check, statuses)]}


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.replace("\r\n", "\n").splitlines()[-lines:])


async def _say(ctx: JobContext, number: int, text: str) -> None:
    """The commit's one comment, when no round runs."""
    sha = ctx.job.spec["sha"]

    async def post() -> None:
        client = await installation(ctx)
        body = f"{comment_marker(sha)}\n{text}\n\n{texts.FOOTER.format(job_id=ctx.job.id)}"
        await client.upsert_comment(ctx.job.spec["repo"], number, comment_marker(sha), body)

    await ctx.step("say", post, retries=3)


def _names(checks: list[dict]) -> str:
    # Check names come from the repository's workflow files and outside CI: inert here.
    return ", ".join(code_span(neutralise_line(c["name"])[:100]) for c in checks)


def _summary_line(check: dict) -> str:
    title = neutralise_line(check["title"])[:200]
    return f"- {code_span(neutralise_line(check['name'])[:100])} ({check['conclusion']})" + (
        f": {title}" if title else "")


def _prompt_check(check: dict) -> FailingCheck:
    parts = [check["title"], check["summary"], check["text"]]
    parts += [f"{a['path']}:{a['line']}: {a['title']} {a['message']}".strip()
              for a in check["annotations"]]
    if check["log"]:
        parts.append(f"(last {LOG_TAIL_LINES} lines of the job's log)\n{check['log']}")
    output = "\n\n".join(p for p in parts if p.strip())
    if len(output) > MAX_CHECK_CHARS:
        output = "(cut to its end)\n" + output[-MAX_CHECK_CHARS:]
    return FailingCheck(name=check["name"], conclusion=check["conclusion"],
                        output=output or "(the check gave no output)")
