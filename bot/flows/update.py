"""Kind `update`: bring one of the bot's pull requests up to date with the branch it targets.

Submitted by `log_merge` when the default branch moved and a bot pull request conflicts with it
in code (once per pull request and default-branch head), or asked for with `/backend update`
on a bot pull request. One bounded round (`bot.flows.work` with `merge_from`): the base branch
merged into the bot's branch, the agent resolving the conflict markers with its usual tools,
the bot checking that none is left and running the tests, then one merge commit (the branch's
head and the base's as parents) holding the resolution and the round's work-log entry, pushed
without force; the pull request's body shows the entry, as after any round.

When the agent cannot (it asks, stops, or leaves markers), the merge is abandoned, nothing is
pushed, and one comment on the pull request, edited in place by later rounds, names the
conflicting files. Rounds nobody asked for in a comment share one status comment per pull
request, so pushes to the default branch do not pile comments up.

On someone else's pull request, or from a fork, `/backend update` gets a polite answer and no
work: the bot pushes only to its own branches.
"""

from __future__ import annotations

import dataclasses

from bot import markers, texts
from bot.agent import update_task
from bot.engine import JobContext
from bot.flows.gather import Gathered, gather, refusal
from bot.flows.publish import reply, update_own_pull
from bot.flows.services import installation
from bot.flows.status_comment import (
    Status,
    StatusComment,
    acknowledge,
    guarded,
    reaction_target,
)
from bot.flows.work import WorkRequest, WorkResult, work
from bot.sanitize import blockquote, code_span, neutralise

# Automatic rounds' status comment, one per pull request.
ROUND_STATUS_KIND = "update"
CONFLICTS_KIND = "update-conflicts"
FILES_SHOWN = 20
NAME_MAX_CHARS = 200


async def run(ctx: JobContext) -> str:
    spec = ctx.job.spec
    number = spec["number"]
    gathered = await gather(ctx)
    on_demand = spec.get("trigger") == "command"
    status = StatusComment(ctx, number,
                           texts.RETRY_HINT_UPDATE.format(command=gathered.repo_config.command),
                           kind=None if on_demand else ROUND_STATUS_KIND)

    async def flow() -> str:
        gathered.require_valid_config(status.retry_hint)
        config = gathered.repo_config
        if on_demand:
            refused = refusal(gathered, spec["requester"])
            if refused:
                await reply(ctx, refused, kind="refused")
                return "refused: " + spec["requester"] + " may not trigger work"
            if not spec.get("is_pull"):
                await reply(ctx, texts.UPDATE_NOT_A_PULL.format(command=config.command),
                            kind="not-a-pull")
                return "not run: not a pull request"
        pull = await ctx.step("read pull request", _read_pull, ctx, retries=3)
        if pull["state"] != "open":
            if on_demand:
                await reply(ctx, texts.CLOSED_PR.format(
                    state="merged" if pull["merged"] else "closed", label=config.label),
                    kind="closed")
            return f"not run: the pull request is {pull['state']}"
        why = _not_the_bots(pull, gathered)
        if why:
            if on_demand:
                await reply(ctx, texts.UPDATE_NOT_OURS.format(
                    login=spec["requester"], command=config.command, why=why), kind="not-ours")
            return f"not run: {why}"

        target, target_id = reaction_target(spec)
        await acknowledge(ctx, status, reaction_target=target, reaction_id=target_id)
        base = pull["base_ref"]

        def task(conflicts: list[str]) -> str:
            return update_task(number=number, title=pull["title"], repo=spec["repo"],
                               head=pull["head_ref"], base=base, conflicts=conflicts)

        result = await work(ctx, gathered, WorkRequest(
            branch=pull["head_ref"], base_branch=base, task_prompt="", trigger=f"#{number}",
            merge_from=base, conflict_task=task,
        ), status)
        return await _conclude(ctx, gathered, status, result, base=base, title=pull["title"])

    return await guarded(status, flow)


async def _read_pull(ctx: JobContext) -> dict:
    client = await installation(ctx)
    pull = await client.get_pull(ctx.job.spec["repo"], ctx.job.spec["number"])
    return {
        "state": pull.state, "merged": pull.merged, "title": pull.title,
        "author": pull.user.login, "head_ref": pull.head_ref, "head_repo": pull.head_repo,
        "base_ref": pull.base_ref,
    }


def _not_the_bots(pull: dict, gathered: Gathered) -> str | None:
    """Why the bot may not push to this pull request's branch, or None."""
    if pull["head_repo"] != gathered.repo["full_name"]:
        return "it comes from a fork"
    if pull["author"] != gathered.bot_login:
        return f"it was opened by @{pull['author']}"
    if not pull["head_ref"].startswith(gathered.repo_config.branch_prefix):
        return "its branch is not one of backend-bot's"
    return None


async def _conclude(ctx: JobContext, gathered: Gathered, status: StatusComment,
                    result: WorkResult, *, base: str, title: str) -> str:
    spec = ctx.job.spec
    number, shown_base = spec["number"], code_span(base)
    if result.outcome in ("question", "unresolved"):
        await ctx.step("report conflicts", _report_conflicts, ctx, gathered, result, base,
                       retries=3)
        await ctx.step("report", status.show, Status(texts.UPDATE_LEFT.format(base=shown_base)),
                       retries=3)
        return (f"not merged: {len(result.conflicts)} conflicting file(s) left for a person "
                f"({result.reason or 'the agent asked a question'})")
    if result.outcome == "up_to_date":
        text = texts.UPDATE_UP_TO_DATE.format(base=shown_base)
        outcome = f"already up to date with {base}"
    else:
        assert result.sha is not None  # "merged" or "committed": pushed
        pr = {"html_url": f"{gathered.repo['html_url']}/pull/{number}"}
        if result.outcome == "committed":
            # The body shows the round's entry; the title stays what the pull request is about.
            shown = dataclasses.replace(result, title=title)
            pr = await ctx.step("publish", update_own_pull, ctx, gathered, number, shown,
                                retries=3)
        commit = f"[`{result.sha[:7]}`]({pr['html_url']}/commits/{result.sha})"
        text = (texts.UPDATE_RESOLVED.format(base=shown_base, commit=commit,
                                             summary=result.summary)
                if result.outcome == "committed"
                else texts.UPDATE_MERGED.format(base=shown_base, commit=commit))
        outcome = f"merged {base} into #{number} in {result.sha[:7]}"
        await ctx.step("settle conflicts comment", _settle_conflicts, ctx,
                       texts.UPDATE_SETTLED.format(base=shown_base, commit=commit), retries=3)
    await ctx.step("report", status.show, Status(text), retries=3)
    if spec.get("comment_kind") == "review_comment":
        await reply(ctx, text, kind="done")
    return outcome


async def _report_conflicts(ctx: JobContext, gathered: Gathered, result: WorkResult,
                            base: str) -> None:
    """The one comment naming the files, edited in place by every round that ends so."""
    spec = ctx.job.spec
    names = [_file_name(name) for name in result.conflicts[:FILES_SHOWN]]
    if len(result.conflicts) > FILES_SHOWN:
        names.append(f"- and {len(result.conflicts) - FILES_SHOWN} more")
    detail = ""
    if result.outcome == "question" and result.question:
        detail = f"The agent asks:\n\n{blockquote(result.question)}\n\n"
    marker = markers.status(CONFLICTS_KIND)
    body = texts.UPDATE_CONFLICTS.format(
        base=code_span(base), reason=result.reason or texts.UPDATE_QUESTION,
        files="\n".join(names), detail=detail, command=gathered.repo_config.command)
    client = await installation(ctx)
    await client.upsert_comment(spec["repo"], spec["number"], marker, f"{marker}\n{body}")


async def _settle_conflicts(ctx: JobContext, text: str) -> None:
    """An earlier round's comment naming conflicts, if there is one, now says they are gone."""
    repo, number = ctx.job.spec["repo"], ctx.job.spec["number"]
    client = await installation(ctx)
    marker, own = markers.status(CONFLICTS_KIND), await client.own_login()
    if any(marker in comment.body and comment.user.login == own
           for comment in await client.list_issue_comments(repo, number)):
        await client.upsert_comment(repo, number, marker, f"{marker}\n{text}")


def _file_name(name: str) -> str:
    """A path anyone could have named, as inert inline code on one list line."""
    if len(name) > NAME_MAX_CHARS:
        name = name[:NAME_MAX_CHARS] + "…"
    # In code GitHub shows every character as it is; neutralise takes out what it would not
    # show, and anything that would pass for one of the bot's markers.
    return "- " + neutralise(code_span(name))
