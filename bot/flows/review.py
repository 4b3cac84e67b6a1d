"""Kind `review`: a review of one of the bot's pull requests, addressed in one round.

One commit for the whole review, a new log entry, the PR body updated, and a reply on each
inline thread saying what changed (with the commit) or why nothing did. Reviews by people
without write access, and reviews with nothing to act on, do nothing at all.
"""

from __future__ import annotations

import re

from bot import markers, texts
from bot.agent import ReviewComment, review_task
from bot.engine import JobContext
from bot.flows.answer import waiting_headline
from bot.flows.gather import gather, refusal
from bot.flows.publish import update_own_pull
from bot.flows.services import installation
from bot.flows.status_comment import Status, StatusComment, acknowledge, guarded
from bot.flows.work import WorkRequest, WorkResult, limit_headline, work
from bot.sanitize import code_span, neutralise_line

_ANSWER = re.compile(r"(?im)^[\s>*_-]*comment\s+(\d+)\s*[:.)-]\s*")


async def run(ctx: JobContext) -> str:
    spec = ctx.job.spec
    repo, number = spec["repo"], spec["number"]
    gathered = await gather(ctx)
    if gathered.config_error is None and refusal(gathered, spec["requester"]):
        return "ignored: the reviewer may not trigger work"
    review = await ctx.step("read review", _read_review, ctx, gathered.bot_login, retries=3)
    if review["skip"]:
        return "ignored: " + review["skip"]
    status = StatusComment(ctx, number, gathered.retry_hint(issue=False))

    async def flow() -> str:
        gathered.require_valid_config(status.retry_hint)
        await acknowledge(ctx, status, reaction_target="issue", reaction_id=number)
        comments = [ReviewComment(c["path"], c["line"], c["diff_hunk"], c["body"])
                    for c in review["comments"]]
        result = await work(ctx, gathered, WorkRequest(
            branch=review["head_ref"],
            base_branch=review["base_ref"],
            task_prompt=review_task(
                number=number, title=review["title"], reviewer=spec["requester"], repo=repo,
                review_body=review["body"], comments=comments,
                state=review["state"].replace("_", " ").lower(),
            ),
            trigger=f"#{number}",
            title=f"Address the review of #{number}",
            resume_question=spec.get("resume_question"),
        ), status)
        return await _conclude(ctx, gathered, status, review, result)

    return await guarded(status, flow)


async def _read_review(ctx: JobContext, bot_login: str) -> dict:
    spec = ctx.job.spec
    client = await installation(ctx)
    pull = await client.get_pull(spec["repo"], spec["number"])
    if pull.user.login != bot_login:
        return {"skip": "not one of the bot's pull requests"}
    if pull.state != "open":
        return {"skip": "the pull request is not open"}
    review = await client.get_review(spec["repo"], spec["number"], spec["review_id"])
    comments = [c for c in await client.list_review_comments(
        spec["repo"], spec["number"], spec["review_id"]) if c.in_reply_to_id is None]
    if not review.body.strip() and not comments:
        return {"skip": "the review has nothing to act on"}
    return {
        "skip": None, "title": pull.title, "head_ref": pull.head_ref, "base_ref": pull.base_ref,
        "body": review.body, "state": review.state,
        "comments": [{"id": c.id, "path": c.path, "line": c.line or c.original_line,
                      "diff_hunk": c.diff_hunk, "body": c.body} for c in comments],
    }


def answers_by_comment(key_decisions: str) -> dict[int, str]:
    """The agent's `Comment N: …` answers (the review prompt asks for them), by number."""
    matches = list(_ANSWER.finditer(key_decisions))
    answers = {}
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(key_decisions)
        answers[int(match.group(1))] = neutralise_line(key_decisions[match.end():end])
    return answers


async def _conclude(ctx: JobContext, gathered, status: StatusComment, review: dict,
                    result: WorkResult) -> str:
    spec = ctx.job.spec
    number = spec["number"]
    command = gathered.repo_config.command
    if result.outcome == "question":
        await ctx.step("report", status.asked, result.question,
                       waiting_headline(ctx, requester=spec["requester"], command=command), retries=3)
        return "waiting for an answer to the agent's question"
    pr = None
    if result.outcome == "committed":
        pr = await ctx.step("publish", update_own_pull, ctx, gathered, number, result, retries=3)
    await ctx.step("reply on threads", _reply_on_threads, ctx, review, result, retries=3)
    if pr is None:
        text = texts.NO_CHANGES_PR.format(summary=result.summary or result.title)
        outcome = f"review {spec['review_id']} answered without changes"
    else:
        assert result.sha is not None  # only a committed round is published
        commit = f"[`{result.sha[:7]}`]({pr['html_url']}/commits/{result.sha})"
        limit = limit_headline(result)
        text = (texts.LIMITED_PUSHED.format(headline=limit, commit=commit, command=command) if limit
                else texts.DONE_PUSHED.format(commit=commit, summary=result.summary))
        outcome = f"review {spec['review_id']} addressed in {result.sha[:7]}"
    await ctx.step("report", status.show, Status(text), retries=3)
    return outcome


async def _reply_on_threads(ctx: JobContext, review: dict, result: WorkResult) -> None:
    """One reply per inline comment; replies already posted (before a crash) are not repeated."""
    spec = ctx.job.spec
    client = await installation(ctx)
    answers = answers_by_comment(result.key_decisions)
    # The bot's own replies only: anyone can paste a marker to silence a thread.
    own = await client.own_login()
    posted = "\n".join(c.body for c in await client.list_pull_comments(spec["repo"], spec["number"])
                        if c.user.login == own)
    for index, comment in enumerate(review["comments"], start=1):
        marker = markers.status(f"reply-job-{ctx.job.id}-comment-{comment['id']}")
        if marker in posted:
            continue
        answer = answers.get(index) or texts.THREAD_NO_ANSWER
        if result.sha and comment["path"] in result.changed_files:
            body = texts.THREAD_CHANGED.format(
                marker=marker, path=code_span(comment["path"]), commit=result.sha[:7],
                answer=answer)
        else:
            where = result.sha[:7] if result.sha else "this round"
            body = texts.THREAD_UNCHANGED.format(
                marker=marker, path=code_span(comment["path"]), commit_or_round=where,
                answer=answer)
        await client.reply_to_review_comment(spec["repo"], spec["number"], comment["id"], body)
