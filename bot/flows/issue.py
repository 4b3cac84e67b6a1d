"""Kind `issue`: implement an issue (labelled `backend`, or `/backend …` on it) as one PR.

A second trigger for the same issue continues the bot's branch and updates its pull request.
So does the answer to the agent's question (bot.flows.answer), which resumes the conversation,
and `/backend continue` after a limit stopped a run (whose pull request is then a draft).
"""

from __future__ import annotations

from bot import markers, pr_body, texts
from bot.agent import issue_task
from bot.engine import JobContext
from bot.flows.answer import waiting_headline
from bot.flows.gather import Gathered, gather, refusal
from bot.flows.publish import footer, report_check_run, request_review
from bot.flows.services import installation, services
from bot.flows.status_comment import (
    Status,
    StatusComment,
    acknowledge,
    guarded,
    reaction_target,
)
from bot.flows.work import WorkRequest, WorkResult, limit_headline, work
from bot.github import git
from bot.workspace import slugify

MAX_COMMENTERS_CHECKED = 20
WRITE_LEVELS = frozenset({"write", "maintain", "admin"})


async def run(ctx: JobContext) -> str:
    spec = ctx.job.spec
    repo, number = spec["repo"], spec["number"]
    gathered = await gather(ctx)
    status = StatusComment(ctx, number, gathered.retry_hint(issue=True))

    async def flow() -> str:
        gathered.require_valid_config(status.retry_hint)
        refused = refusal(gathered, spec["requester"])
        if refused:
            await _refuse(ctx, number, refused)
            return "refused: " + spec["requester"] + " may not trigger work"

        target, target_id = reaction_target(spec)
        await acknowledge(ctx, status, reaction_target=target, reaction_id=target_id)
        issue = await ctx.step("read issue", _read_issue, ctx, gathered, retries=3)
        # A resumed conversation goes on on the branch it asked from.
        branch = spec.get("branch") or await ctx.step("choose branch", _choose_branch, ctx, gathered,
                                                      issue["title"], retries=3)
        result = await work(ctx, gathered, WorkRequest(
            branch=branch,
            base_branch=gathered.default_branch,
            task_prompt=issue_task(
                number=number, title=issue["title"], body=issue["body"],
                requester=spec["requester"], repo=repo,
                comments=[tuple(c) for c in issue["comments"]],
                instruction=spec.get("instruction", ""),
            ),
            trigger=f"#{number}",
            title=issue["title"],
            resume_question=spec.get("resume_question"),
        ), status)
        return await _conclude(ctx, gathered, status, result)

    return await guarded(status, flow)


async def _refuse(ctx: JobContext, number: int, text: str) -> None:
    async def post() -> None:
        client = await installation(ctx)
        await client.upsert_comment(ctx.job.spec["repo"], number,
                                    markers.status(f"refused-job-{ctx.job.id}"), text)

    await ctx.step("refuse", post, retries=3)


async def _read_issue(ctx: JobContext, gathered: Gathered) -> dict:
    """The issue, and the comments of people with write access (others' text is not used)."""
    spec = ctx.job.spec
    client = await installation(ctx)
    issue = await client.get_issue(spec["repo"], spec["number"])
    comments = await client.list_issue_comments(spec["repo"], spec["number"])
    levels: dict[str, str] = {spec["requester"]: gathered.permission}
    kept = []
    for comment in comments:
        login = comment.user.login
        if comment.user.type == "Bot" or login == gathered.bot_login:
            continue
        if login not in levels:
            if len(levels) > MAX_COMMENTERS_CHECKED:
                continue
            levels[login] = await client.permission(spec["repo"], login)
        if levels[login] in WRITE_LEVELS:
            kept.append((login, comment.body))
    return {"title": issue.title, "body": issue.body, "comments": kept}


async def _choose_branch(ctx: JobContext, gathered: Gathered, title: str) -> str:
    """The bot's existing branch for this issue (a second run continues it), or a new name."""
    spec = ctx.job.spec
    prefix = f"{gathered.repo_config.branch_prefix}issue-{spec['number']}-"
    token = await services(ctx).github.installation_token(spec["installation_id"])
    refs = await git.ls_remote(gathered.repo["clone_url"], token=token,
                               pattern=f"refs/heads/{prefix}*")
    existing = sorted(ref.removeprefix("refs/heads/") for ref in refs)
    return existing[0] if existing else prefix + slugify(title)


async def _conclude(ctx: JobContext, gathered: Gathered, status: StatusComment,
                    result: WorkResult) -> str:
    spec = ctx.job.spec
    number = spec["number"]
    command = gathered.repo_config.command
    if result.outcome == "question":
        question = result.question
        assert question is not None  # a question round has one

        async def ask() -> None:
            client = await installation(ctx)
            kind = f"question-job-{ctx.job.id}"
            await client.upsert_comment(spec["repo"], number, markers.status(kind),
                                        texts.QUESTION_COMMENT.format(
                                            marker=markers.status(kind),
                                            login=spec["requester"], question=question))
            await status.asked(question, waiting_headline(
                ctx, requester=spec["requester"], command=command))

        await ctx.step("ask", ask, retries=3)
        return "waiting for an answer to the agent's question"
    limit = limit_headline(result)
    if result.outcome == "no_changes":
        summary = result.summary or result.title
        text = (texts.LIMITED_NO_CHANGES.format(headline=limit, summary=summary, command=command) if limit
                else texts.NO_CHANGES.format(summary=summary))
        await ctx.step("report", status.show, Status(text), retries=3)
        return "finished without changes" + (f" ({limit.lower()})" if limit else "")

    pr = await ctx.step("publish", _publish, ctx, gathered, result, retries=3)

    async def report() -> None:
        client = await installation(ctx)
        link = f"[#{pr['number']}]({pr['html_url']})"
        if limit:
            await status.show(Status(texts.LIMITED.format(headline=limit, pr_link=link, command=command)))
            return
        headline = texts.DONE_OPENED if pr["created"] else texts.DONE_UPDATED
        await status.show(Status(headline.format(pr_link=link)))
        await client.add_reaction(spec["repo"], "issue", number, "rocket")

    await ctx.step("report", report, retries=3)
    return (f"pull request #{pr['number']} {'opened' if pr['created'] else 'updated'}"
            + (f" ({limit.lower()})" if limit else ""))


async def _publish(ctx: JobContext, gathered: Gathered, result: WorkResult) -> dict:
    """Open the issue's pull request, or update the open one (found by its head branch)."""
    spec = ctx.job.spec
    repo, number = spec["repo"], spec["number"]
    client = await installation(ctx)
    model = gathered.repo_config.model or ctx.settings.anthropic_model
    body = pr_body.render_body(
        entry_body=result.entry_body, footer=footer(result, ctx.job.id, model),
        marker_kind=f"issue-{number}", closes=number, earlier=result.earlier,
    )
    title = pr_body.title_for(result.title)
    existing = await client.find_pull_by_head(repo, result.branch)
    if existing is not None and existing.state == "open":
        pr, created = await client.update_pull(repo, existing.number, title=title, body=body), False
    else:
        pr = await client.create_pull(repo, title=title, head=result.branch,
                                      base=gathered.default_branch, body=body,
                                      # Unfinished work (a limit stopped it) is a draft.
                                      draft=gathered.repo_config.draft or result.limit is not None)
        created = True
        await request_review(ctx, client, pr.number)
    await report_check_run(client, repo, result)
    return {"number": pr.number, "html_url": pr.html_url, "created": created}
