"""Kind `pr_command`: `/backend <what to do>` on a pull request.

- On the bot's own pull request: new commits on its branch, a new log entry, the PR body
  updated (latest entry, earlier ones listed), and a reply under the command.
- On someone else's pull request in this repository: a new branch from its head and a new
  pull request into its branch, linked from the reply. Never a push to their branch.
- On a pull request from a fork, or a closed one: a reply saying what the bot can't do there.
"""

from __future__ import annotations

from bot import pr_body, texts
from bot.agent import pull_request_task
from bot.engine import JobContext
from bot.flows.answer import waiting_headline
from bot.flows.gather import Gathered, gather, refusal
from bot.flows.publish import footer, reply, report_check_run, request_review, update_own_pull
from bot.flows.services import installation
from bot.flows.status_comment import (
    Status,
    StatusComment,
    acknowledge,
    guarded,
    reaction_target,
)
from bot.flows.work import WorkRequest, WorkResult, limit_headline, work
from bot.sanitize import code_fence, code_span
from bot.workspace import slugify


async def run(ctx: JobContext) -> str:
    spec = ctx.job.spec
    repo, number = spec["repo"], spec["number"]
    gathered = await gather(ctx)
    status = StatusComment(ctx, number, gathered.retry_hint(issue=False))

    async def flow() -> str:
        gathered.require_valid_config(status.retry_hint)
        config = gathered.repo_config
        refused = refusal(gathered, spec["requester"])
        if refused:
            await reply(ctx, refused, kind="refused")
            return "refused: " + spec["requester"] + " may not trigger work"
        pull = await ctx.step("read pull request", _read_pull, ctx, retries=3)
        if pull["state"] != "open":
            await reply(ctx, texts.CLOSED_PR.format(
                state="merged" if pull["merged"] else "closed", label=config.label), kind="closed")
            return f"not run: the pull request is {pull['state']}"
        if pull["head_repo"] != repo:
            await reply(ctx, texts.FORK_PR.format(
                login=spec["requester"], label=config.label, command=config.command), kind="fork")
            return "not run: the pull request comes from a fork"

        target, target_id = reaction_target(spec)
        await acknowledge(ctx, status, reaction_target=target, reaction_id=target_id)
        own = pull["author"] == gathered.bot_login
        if spec.get("branch"):  # a resumed conversation goes on on the branch it asked from
            branch, base = spec["branch"], spec["base_branch"]
        elif own:
            branch, base = pull["head_ref"], pull["base_ref"]
        else:
            # A branch of our own from their head, and a PR into their branch.
            slug = slugify(spec["instruction"] or "changes", 30)
            branch = f"{config.branch_prefix}pr-{number}-{slug}-{ctx.job.id}"
            base = pull["head_ref"]
        result = await work(ctx, gathered, WorkRequest(
            branch=branch,
            base_branch=base,
            task_prompt=pull_request_task(
                number=number, title=pull["title"], instruction=_instruction(spec),
                requester=spec["requester"], repo=repo, head=pull["head_ref"],
                base=pull["base_ref"], description=pull["body"],
            ),
            trigger=f"#{number}",
            title=spec["instruction"] or pull["title"],
            resume_question=spec.get("resume_question"),
        ), status)
        return await _conclude(ctx, gathered, status, result, own=own, base=base)

    return await guarded(status, flow)


def _instruction(spec: dict) -> str:
    text = spec["instruction"] or "Do what the pull request's discussion asks."
    if spec.get("comment_kind") != "review_comment":
        return text
    hunk = spec.get("diff_hunk") or "(no diff hunk)"
    # Fenced, the hunk is read as the code it is when the instruction is stripped of what
    # GitHub hides (bot.sanitize): its comments are code, its invisible characters are not.
    ticks = code_fence(hunk)
    return (f"{text}\n\n(Written on the review thread of {code_span(spec.get('path') or '')} "
            f"line {spec.get('line')}, which points at this part of the diff:)\n"
            f"{ticks}diff\n{hunk}\n{ticks}")


async def _read_pull(ctx: JobContext) -> dict:
    client = await installation(ctx)
    pull = await client.get_pull(ctx.job.spec["repo"], ctx.job.spec["number"])
    return {
        "state": pull.state, "merged": pull.merged, "title": pull.title, "body": pull.body,
        "author": pull.user.login, "head_ref": pull.head_ref, "head_repo": pull.head_repo,
        "base_ref": pull.base_ref, "html_url": pull.html_url,
    }


async def _conclude(ctx: JobContext, gathered: Gathered, status: StatusComment,
                    result: WorkResult, *, own: bool, base: str) -> str:
    spec = ctx.job.spec
    number = spec["number"]
    command = gathered.repo_config.command
    if result.outcome == "question":
        assert result.question is not None  # a question round has one
        await ctx.step("report", status.asked, result.question,
                       waiting_headline(ctx, requester=spec["requester"], command=command), retries=3)
        if spec.get("comment_kind") == "review_comment":
            await reply(ctx, texts.QUESTION_REPLY.format(
                login=spec["requester"], question=result.question), kind="question")
        return "waiting for an answer to the agent's question"
    limit = limit_headline(result)
    if result.outcome == "no_changes":
        summary = result.summary or result.title
        text = (texts.LIMITED_NO_CHANGES.format(headline=limit, summary=summary, command=command) if limit
                else texts.NO_CHANGES_PR.format(summary=summary))
        await ctx.step("report", status.show, Status(text), retries=3)
        if spec.get("comment_kind") == "review_comment":
            await reply(ctx, text, kind="done")
        return "finished without changes"
    assert result.sha is not None  # what is left is a committed round

    if own:
        pr = await ctx.step("publish", update_own_pull, ctx, gathered, number, result, retries=3)
        commit = f"[`{result.sha[:7]}`]({pr['html_url']}/commits/{result.sha})"
        text = (texts.LIMITED_PUSHED.format(headline=limit, commit=commit, command=command) if limit
                else texts.DONE_PUSHED.format(commit=commit, summary=result.summary))
    else:
        pr = await ctx.step("publish", _open_child_pull, ctx, gathered, result, base, retries=3)
        link = f"[#{pr['number']}]({pr['html_url']})"
        text = (texts.LIMITED.format(headline=limit, pr_link=link, command=command) if limit
                else texts.DONE_CHILD.format(pr_link=link, branch=code_span(base), summary=result.summary))
    await ctx.step("report", status.show, Status(text), retries=3)
    if spec.get("comment_kind") == "review_comment":
        await reply(ctx, text, kind="done")
    return (f"pushed {result.sha[:7]} to #{number}" if own
            else f"pull request #{pr['number']} opened into #{number}")


async def _open_child_pull(ctx: JobContext, gathered: Gathered, result: WorkResult,
                           base: str) -> dict:
    repo, number = ctx.job.spec["repo"], ctx.job.spec["number"]
    client = await installation(ctx)
    existing = await client.find_pull_by_head(repo, result.branch)
    if existing is not None:
        return {"number": existing.number, "html_url": existing.html_url, "created": False}
    model = gathered.repo_config.model or ctx.settings.anthropic_model
    body = pr_body.render_body(
        entry_body=result.entry_body, footer=footer(result, ctx.job.id, model),
        marker_kind=f"pr-{number}-job-{ctx.job.id}",
    )
    body = f"Into #{number}, as @{ctx.job.spec['requester']} asked.\n\n{body}"
    pr = await client.create_pull(repo, title=pr_body.title_for(result.title),
                                  head=result.branch, base=base, body=body,
                                  draft=gathered.repo_config.draft or result.limit is not None)
    await request_review(ctx, client, pr.number)
    await report_check_run(client, repo, result)
    return {"number": pr.number, "html_url": pr.html_url, "created": True}
