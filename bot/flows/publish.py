"""Publishing a round's work: the pull request's body and footer, the check run with the
bot's own test result, review requests, and replies where a command was written."""

from __future__ import annotations

from bot import markers, pr_body
from bot.agent.usage import Usage, render_footer
from bot.engine import JobContext
from bot.flows.check_run import TESTS_CHECK_NAME
from bot.flows.gather import Gathered
from bot.flows.services import installation
from bot.flows.work import WorkResult
from bot.github.client import InstallationClient
from bot.github.errors import RequestFailed
from bot.sanitize import code_fence


def footer(result: WorkResult, job_id: int, model: str) -> str:
    usage = Usage(**result.usage) if result.usage else None
    text = render_footer(usage) if usage else f"Model: {model} · usage not recorded (resumed run)"
    return f"{text} · job {job_id}"


async def request_review(ctx: JobContext, client: InstallationClient, number: int) -> None:
    """Ask the person who triggered the work to review its pull request."""
    requester = ctx.job.spec["requester"]
    try:
        await client.request_reviewers(ctx.job.spec["repo"], number, [requester])
    except RequestFailed as error:  # e.g. the requester is not a collaborator
        ctx.log.info("could not request a review from %s: %s", requester, error)


async def report_check_run(client: InstallationClient, repo: str, result: WorkResult) -> None:
    """The bot's own test run as a check on the pushed commit (once, after a retry too)."""
    if not result.tests or not result.sha:
        return
    if await client.find_check_run(repo, result.sha, TESTS_CHECK_NAME) is not None:
        return
    tests = result.tests
    fence = code_fence(tests["output"])  # the repository prints what it likes
    await client.create_check_run(
        repo, name=TESTS_CHECK_NAME, head_sha=result.sha, status="completed",
        conclusion="success" if tests["passed"] else "failure",
        title=f"`{tests['command']}` " + ("passed" if tests["passed"] else "failed"),
        summary=f"Run by backend-bot in its sandbox in {tests['duration']} s.",
        text=f"{fence}\n{tests['output']}\n{fence}",
    )


async def reply(ctx: JobContext, text: str, *, kind: str) -> None:
    """Answer the command where it was written: its review thread, or the PR's conversation."""
    spec = ctx.job.spec

    async def post() -> None:
        client = await installation(ctx)
        marker = markers.status(f"{kind}-job-{ctx.job.id}")
        body = f"{marker}\n{text}"
        if spec.get("comment_kind") == "review_comment":
            own = await client.own_login()
            existing = [c for c in await client.list_pull_comments(spec["repo"], spec["number"])
                        if marker in c.body and c.user.login == own]
            if not existing:
                await client.reply_to_review_comment(spec["repo"], spec["number"],
                                                     spec["thread_id"], body)
        else:
            await client.upsert_comment(spec["repo"], spec["number"], marker, body)

    await ctx.step(f"reply {kind}", post, retries=3)


async def update_own_pull(ctx: JobContext, gathered: Gathered, number: int,
                          result: WorkResult) -> dict:
    """Show the latest entry on one of the bot's PRs, keeping what it closes and its marker."""
    repo = ctx.job.spec["repo"]
    client = await installation(ctx)
    current = await client.get_pull(repo, number)
    model = gathered.repo_config.model or ctx.settings.anthropic_model
    body = pr_body.render_body(
        entry_body=result.entry_body, footer=footer(result, ctx.job.id, model),
        marker_kind=markers.pull_request_kind(current.body) or f"pr-{number}",
        closes=pr_body.closes_of(current.body), earlier=result.earlier,
    )
    pr = await client.update_pull(repo, number, title=pr_body.title_for(result.title),
                                  body=body)
    await report_check_run(client, repo, result)
    return {"number": pr.number, "html_url": pr.html_url, "created": False}
