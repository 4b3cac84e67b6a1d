"""Kind `log_merge`: the default branch moved; the work log must not block the bot's PRs.

Every bot pull request appends to BACKEND_WORK_LOG.md, so once one is merged the others
conflict there, and GitHub's merge button runs no custom merge driver. For each open pull
request of the bot's into the default branch, a trial merge of the default branch into a
checkout of its branch decides:

- no conflict: nothing to do, GitHub merges it as it is;
- a conflict in the work log only: the log merged entry by entry (`bot.worklog_merge`), one
  merge commit by the bot, pushed without force; the pull request's body is left alone;
- a conflict anywhere else: left as it is, and said in the job's result.

The branch holds what anyone with write access (or the agent) put there: git stays hardened,
and the log goes from git's index to git's index as stored; the work tree is not read.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from pathlib import Path

from bot.engine import JobContext, is_cancellation, root_cause
from bot.errors import BotError, TransientError
from bot.flows.services import installation, services
from bot.github import git
from bot.github.errors import GitError
from bot.redact import redact
from bot.repo_config import CONFIG_PATH, DEFAULT_CONFIG, RepoConfigError, parse_repo_config
from bot.worklog import WORKLOG_FILE, WORKLOG_MAX_BYTES
from bot.worklog_merge import WorklogConflict, merge_worklog
from bot.workspace import JOB_TRAILER, Identity, Workspace, push_branch

MERGE_RETRIES = 3
REGULAR_FILE_MODES = frozenset({"100644", "100755"})


class BranchMoved(TransientError):
    """The branch changed on GitHub while the bot merged: merge again from its new head."""


class PushNotFetchedYet(TransientError):
    """GitHub's git does not serve the pushed commit yet (it can lag behind the webhook)."""


class UnusableLog(BotError):
    """One side's work log is not a file the bot reads: a link, a submodule, too large."""


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
                                         _merge_into, ctx, found, pull["branch"],
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


async def _merge_into(ctx: JobContext, found: Found, branch: str) -> str:
    """Merge the default branch into `branch` if only the work log stands in the way; what
    happened, in a few words."""
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
        if not await _succeeds(path, ["cat-file", "-e", f"{spec['after']}^{{commit}}"]):
            raise PushNotFetchedYet(f"GitHub's git does not serve {spec['after'][:7]} yet")
        if await _succeeds(path, ["merge-base", "--is-ancestor", target, "HEAD"]):
            return f"already has {found.default_branch}"
        try:
            return await _merge(ctx, found, workspace, target, token)
        finally:
            if await _succeeds(path, ["rev-parse", "--quiet", "--verify", "MERGE_HEAD"]):
                await git.run_git(["merge", "--abort"], cwd=path)


async def _merge(ctx: JobContext, found: Found, workspace: Workspace, target: str,
                 token: str) -> str:
    path, default, branch = workspace.path, found.default_branch, workspace.branch
    author = Identity(found.bot_login, found.bot_email).env()
    try:
        await git.run_git(["merge", "--quiet", "--no-commit", "--no-ff", target],
                          cwd=path, env=author)
    except GitError:
        if not await _unmerged(path):
            raise
    conflicts = await _unmerged(path)
    if not conflicts:
        return f"merges with {default} cleanly: nothing to do"
    others = sorted(set(conflicts) - {WORKLOG_FILE})
    if others:
        shown = ", ".join(repr(name) for name in others[:3])
        more = f" and {len(others) - 3} more" if len(others) > 3 else ""
        return f"left as it is: conflicts with {default} in {shown}{more}"
    stages = conflicts[WORKLOG_FILE]
    try:
        merged = merge_worklog(*[await _side(path, stages, stage) for stage in (1, 3, 2)])
    except (WorklogConflict, UnusableLog) as refusal:
        return f"left as it is: {refusal}"
    # Straight into the index, not through the work tree and `git add`: the repository's
    # .gitattributes (eol, ident, working-tree-encoding) would rewrite bytes kept as they are.
    if merged is None:
        await git.run_git(["rm", "--quiet", "--cached", "--", WORKLOG_FILE], cwd=path)
    else:
        blob = (await git.run_git(["hash-object", "-w", "--no-filters", "--stdin"], cwd=path,
                                  input=merged.encode("utf-8", "surrogateescape"))).strip()
        mode = stages.get(2) or stages[3]
        await git.run_git(["update-index", "--cacheinfo", f"{mode},{blob},{WORKLOG_FILE}"],
                          cwd=path)
    message = (f"Merge {default} into {branch}\n\n"
               f"{WORKLOG_FILE} was combined entry by entry: the entries of {default} as they "
               f"are, then the ones this branch added.\n\n"
               f"{JOB_TRAILER}: {ctx.job.id}\n")
    await git.run_git(["commit", "--quiet", "--no-verify", "-F", "-"], cwd=path, env=author,
                      input=message)
    sha = (await git.run_git(["rev-parse", "HEAD"], cwd=path)).strip()
    try:
        await push_branch(workspace, token, protected={default})
    except GitError:
        heads = await git.ls_remote(workspace.clone_url, token=token,
                                    pattern=f"refs/heads/{branch}")
        if heads.get(f"refs/heads/{branch}") != workspace.start_sha:
            raise BranchMoved(f"{branch} moved on GitHub while the bot merged") from None
        raise
    return f"merged {default} in {sha[:7]}, the work log combined"


async def _succeeds(path: Path, args: list[str]) -> bool:
    done = await asyncio.to_thread(git.run_git_sync, args, cwd=path)
    return done.returncode == 0


async def _unmerged(path: Path) -> dict[str, dict[int, str]]:
    """The conflicted paths: {path: {stage: mode}}, stage 1 the merge base, 2 ours, 3 theirs."""
    out = await git.run_git(["ls-files", "--unmerged", "-z"], cwd=path)
    found: dict[str, dict[int, str]] = {}
    for record in filter(None, out.split("\0")):
        meta, _, name = record.partition("\t")
        mode, _, stage = meta.split(" ")
        found.setdefault(name, {})[int(stage)] = mode
    return found


async def _side(path: Path, stages: dict[int, str], stage: int) -> str | None:
    """The work log as one side of the merge has it (None: no file there), byte for byte:
    bytes that are not UTF-8 ride along as surrogates and are written back as they were."""
    if stage not in stages:
        return None
    if stages[stage] not in REGULAR_FILE_MODES:
        raise UnusableLog(f"{WORKLOG_FILE} is not a regular file on one side")
    spec = f":{stage}:{WORKLOG_FILE}"
    size = int(await git.run_git(["cat-file", "-s", spec], cwd=path))
    if size > WORKLOG_MAX_BYTES:
        raise UnusableLog(f"{WORKLOG_FILE} has {size} bytes on one side, over the "
                                  f"limit of {WORKLOG_MAX_BYTES}")
    done = await asyncio.to_thread(git.run_git_sync, ["cat-file", "blob", spec], cwd=path)
    if done.returncode != 0:
        raise GitError(["cat-file", "blob", spec], done.returncode,
                       redact(done.stderr.decode("utf-8", "replace")))
    return done.stdout.decode("utf-8", "surrogateescape")
