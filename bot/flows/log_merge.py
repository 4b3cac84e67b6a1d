"""Kind `log_merge`: the default branch moved; the work log must not block the bot's PRs.

Every bot pull request appends to BACKEND_WORK_LOG.md, so once one is merged the others
conflict there, and GitHub's merge button runs no custom merge driver. For each open pull
request of the bot's into the default branch, a trial merge of the default branch into a
checkout of its branch decides:

- no conflict: nothing to do, GitHub merges it as it is;
- a conflict in the work log only: the log merged entry by entry (`bot.worklog_merge`), one
  merge commit by the bot, pushed without force; the pull request's body is left alone;
- a conflict anywhere else: a job of kind `update` for that pull request (`bot.flows.update`:
  the agent resolves the conflict), submitted once per pull request and default-branch head,
  so a repeated push or a redelivered webhook does not make a second round.

The branch holds what anyone with write access (or the agent) put there: git stays hardened
(`bot.branch_merge`), and the log goes from git's index to git's index as stored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bot import branch_merge
from bot.branch_merge import MergeStart, UnusableLog
from bot.engine import JobContext, is_cancellation, root_cause
from bot.errors import BotError, TransientError
from bot.flows.services import installation, services
from bot.github import git
from bot.github.errors import GitError
from bot.repo_config import CONFIG_PATH, DEFAULT_CONFIG, RepoConfigError, parse_repo_config
from bot.routing import JobRequest, job_key
from bot.worklog_merge import WorklogConflict
from bot.workspace import Identity, Workspace, push_branch

MERGE_RETRIES = 3


class BranchMoved(TransientError):
    """The branch changed on GitHub while the bot merged: merge again from its new head."""


class PushNotFetchedYet(TransientError):
    """GitHub's git does not serve the pushed commit yet (it can lag behind the webhook)."""


@dataclass
class Found:
    default_branch: str
    clone_url: str
    bot_login: str
    bot_email: str
    pulls: list[dict]  # {"number", "branch"}, oldest first


async def run(ctx: JobContext) -> str:
    found = Found(**await ctx.step("find the bot's pull requests", _find, ctx, retries=3))
    pushed = f"push to {found.default_branch} ({ctx.job.spec['after'][:7]})"
    if not found.pulls:
        return f"{pushed}: no open pull request of the bot's into it"
    outcomes = []
    try:
        for pull in found.pulls:
            try:
                outcome = await ctx.step(f"merge {found.default_branch} into #{pull['number']}",
                                         _merge_into, ctx, found, pull["number"], pull["branch"],
                                         retries=MERGE_RETRIES)
            except Exception as error:
                cause = root_cause(error)
                if is_cancellation(error) or not isinstance(cause, BotError):
                    raise
                # One pull request the bot cannot merge into does not hold back the others.
                outcome = f"not merged: {cause}"
            outcomes.append(f"#{pull['number']} {outcome}")
    finally:
        services(ctx).workspaces.release(ctx.job.id, ctx.job.spec["repo"])
    return f"{pushed}: " + "; ".join(outcomes)


async def _find(ctx: JobContext) -> dict:
    """The bot's open pull requests into the default branch, from its own branches here."""
    repo = ctx.job.spec["repo"]
    client = await installation(ctx)
    details = await client.get_repo(repo)
    identity = await services(ctx).github.identity()
    try:
        config = parse_repo_config(
            await client.read_file(repo, CONFIG_PATH, ref=details.default_branch))
    except RepoConfigError:  # said where a person triggers work; the defaults do here
        config = DEFAULT_CONFIG
    pulls = [
        {"number": pull.number, "branch": pull.head_ref}
        for pull in await client.list_pulls(repo, base=details.default_branch)
        if pull.user.login == identity.bot_login and pull.head_repo == repo
        and pull.head_ref.startswith(config.branch_prefix)
    ]
    return asdict(Found(default_branch=details.default_branch, clone_url=details.clone_url,
                        bot_login=identity.bot_login, bot_email=identity.bot_email,
                        pulls=sorted(pulls, key=lambda pull: pull["number"])))


async def _merge_into(ctx: JobContext, found: Found, number: int, branch: str) -> str:
    """Merge the default branch into `branch` if only the work log stands in the way, or hand
    the pull request to an `update` round; what happened, in a few words."""
    spec = ctx.job.spec
    flows = services(ctx)
    # The run, or a command's, may be working on this branch: one writer at a time.
    async with ctx.engine.guard.hold(f"branch:{spec['repo']}:{branch}"):
        token = await flows.github.installation_token(spec["installation_id"])
        workspace = await flows.workspaces.prepare(
            job_id=ctx.job.id, repo=spec["repo"], clone_url=found.clone_url, token=token,
            branch=branch, base_branch=found.default_branch)
        if not workspace.continued:
            return "skipped: its branch is gone"
        path, target = workspace.path, f"origin/{found.default_branch}"
        if not await branch_merge.succeeds(path, ["cat-file", "-e", f"{spec['after']}^{{commit}}"]):
            raise PushNotFetchedYet(f"GitHub's git does not serve {spec['after'][:7]} yet")
        if await branch_merge.succeeds(path, ["merge-base", "--is-ancestor", target, "HEAD"]):
            return f"already has {found.default_branch}"
        try:
            return await _merge(ctx, found, workspace, target, token, number)
        finally:
            await branch_merge.abort(path)


async def _merge(ctx: JobContext, found: Found, workspace: Workspace, target: str,
                 token: str, number: int) -> str:
    path, default, branch = workspace.path, found.default_branch, workspace.branch
    author = Identity(found.bot_login, found.bot_email).env()
    try:
        started = await branch_merge.begin(path, target, author)
    except (WorklogConflict, UnusableLog) as refusal:
        return f"left as it is: {refusal}"
    if started.conflicts:
        return await _hand_to_update(ctx, found, number, started)
    if not started.worklog_combined:
        return f"merges with {default} cleanly: nothing to do"
    sha = await branch_merge.commit_merge(path, default, branch, worklog_combined=True, job_id=ctx.job.id,
                                          author=author)
    try:
        await push_branch(workspace, token, protected={default})
    except GitError:
        heads = await git.ls_remote(workspace.clone_url, token=token,
                                    pattern=f"refs/heads/{branch}")
        if heads.get(f"refs/heads/{branch}") != workspace.start_sha:
            raise BranchMoved(f"{branch} moved on GitHub while the bot merged") from None
        raise
    return f"merged {default} in {sha[:7]}, the work log combined"


async def _hand_to_update(ctx: JobContext, found: Found, number: int, started: MergeStart) -> str:
    """Submit the `update` round for a code conflict, once per pull request and default head."""
    spec = ctx.job.spec
    request = JobRequest(kind="update", key=job_key(spec["repo"], number), spec={
        "repo": spec["repo"], "installation_id": spec["installation_id"], "number": number,
        "is_pull": True, "command": "update", "instruction": "", "trigger": "default_branch",
        # Who moved the default branch; jobs stored before this was kept fall back to the bot.
        "requester": spec.get("requester") or found.bot_login,
        "default_sha": started.target_sha,
    })
    (job_id, new), = await ctx.engine.store.submit(
        f"update:{spec['repo']}#{number}:{started.target_sha}", "update", [request])
    shown = ", ".join(repr(name) for name in started.conflicts[:3])
    more = f" and {len(started.conflicts) - 3} more" if len(started.conflicts) > 3 else ""
    queued = "queued" if new else "already made"  # for this default head, by an earlier push
    return (f"conflicts with {found.default_branch} in {shown}{more}: update round {queued} "
            f"as job {job_id}")
