"""Merging the default branch into a checkout of one of the bot's branches, with hardened git.

Shared by the two jobs that keep the bot's pull requests mergeable: `log_merge` (only the work
log conflicts: combined here, no agent) and `update` (code conflicts: the agent resolves the
markers, the bot checks what it left). The checkout holds what anyone with write access, or the
agent, put there: git stays hardened (`bot.github.git`), the work log goes from git's index to
git's index as stored, and what the bot checks after the agent it reads from the index, never
through the work tree (where a file may be a link to anywhere).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import BotError
from bot.github import git
from bot.github.errors import GitError
from bot.logs import get_logger
from bot.redact import redact
from bot.worklog import WORKLOG_FILE, WORKLOG_MAX_BYTES
from bot.worklog_merge import merge_worklog
from bot.workspace import JOB_TRAILER, remove_nested_repositories

log = get_logger(__name__)

REGULAR_FILE_MODES = frozenset({"100644", "100755"})
# Bigger files are not searched for leftover markers: they count as unresolved.
MARKER_SCAN_MAX_BYTES = 20 * 1024 * 1024
# The lines git writes around each side of a conflict (`=======` alone is common in text).
MARKER_SIZE = 7
_MARKER = re.compile(rb"^(?:<{%d,}|\|{%d,}|>{%d,})(?:[ \t]|\r?$)" % ((MARKER_SIZE,) * 3), re.MULTILINE)


class UnusableLog(BotError):
    """One side's work log is not a file the bot reads: a link, a submodule, too large."""


@dataclass
class MergeStart:
    """What `git merge --no-commit` of the default branch left in the checkout."""

    up_to_date: bool = False
    target_sha: str = ""
    worklog_combined: bool = False
    # Paths still conflicted once the work log (if it conflicted) was combined.
    conflicts: list[str] = field(default_factory=list)


async def succeeds(path: Path, args: list[str]) -> bool:
    done = await asyncio.to_thread(git.run_git_sync, args, cwd=path)
    return done.returncode == 0


async def begin(path: Path, target: str, author: dict[str, str]) -> MergeStart:
    """`git merge --no-ff --no-commit target` in the checkout at `path`, the work log combined
    when it conflicts (`WorklogConflict`, `UnusableLog` when it cannot be)."""
    sha = (await git.run_git(["rev-parse", "--verify", f"{target}^{{commit}}"], cwd=path)).strip()
    if await succeeds(path, ["merge-base", "--is-ancestor", sha, "HEAD"]):
        return MergeStart(up_to_date=True, target_sha=sha)
    # The repository's .gitattributes may make git's markers shorter than the bot looks for;
    # $GIT_DIR/info/attributes (the bot's own, out of the agent's reach) outranks it.
    info = Path(path) / ".git" / "info"
    await asyncio.to_thread(info.mkdir, exist_ok=True)
    await asyncio.to_thread((info / "attributes").write_text, f"* conflict-marker-size={MARKER_SIZE}\n")
    try:
        await git.run_git(["merge", "--quiet", "--no-commit", "--no-ff", sha], cwd=path, env=author)
    except GitError:
        if not await unmerged(path):
            raise
    conflicts = await unmerged(path)
    combined = WORKLOG_FILE in conflicts
    if combined:
        await combine_worklog(path, conflicts.pop(WORKLOG_FILE))
    return MergeStart(target_sha=sha, worklog_combined=combined, conflicts=sorted(conflicts))


async def commit_merge(path: Path, source: str, branch: str, *, worklog_combined: bool, job_id: int,
                       author: dict[str, str]) -> str:
    """Commit a merge the bot made alone (nothing for the agent to resolve); its sha."""
    combined = (f"{WORKLOG_FILE} was combined entry by entry: the entries of {source} as they are, "
                f"then the ones this branch added.\n\n" if worklog_combined else "")
    message = f"Merge {source} into {branch}\n\n{combined}{JOB_TRAILER}: {job_id}\n"
    await git.run_git(["commit", "--quiet", "--no-verify", "-F", "-"], cwd=path, env=author, input=message)
    return (await git.run_git(["rev-parse", "HEAD"], cwd=path)).strip()


async def abort(path: Path) -> None:
    """Leave no merge in progress behind (a later checkout of the branch would refuse it)."""
    # A round that failed before its checkout was made has nothing to abort, and git would look
    # for a repository above the missing one.
    if not (Path(path) / ".git").is_dir():
        return
    if await succeeds(path, ["rev-parse", "--quiet", "--verify", "MERGE_HEAD"]):
        done = await asyncio.to_thread(git.run_git_sync, ["merge", "--abort"], cwd=path)
        if done.returncode != 0:  # the next checkout (`checkout -f -B`) clears it all the same
            log.warning("git merge --abort failed: %s", redact(done.stderr.decode("utf-8", "replace")))


async def unmerged(path: Path) -> dict[str, dict[int, str]]:
    """The conflicted paths: {path: {stage: mode}}, stage 1 the merge base, 2 ours, 3 theirs."""
    out = await git.run_git(["ls-files", "--unmerged", "-z"], cwd=path)
    found: dict[str, dict[int, str]] = {}
    for record in filter(None, out.split("\0")):
        meta, _, name = record.partition("\t")
        mode, _, stage = meta.split(" ")
        found.setdefault(name, {})[int(stage)] = mode
    return found


async def combine_worklog(path: Path, stages: dict[int, str]) -> None:
    """The conflicted work log merged entry by entry, into the index and the work tree."""
    merged = merge_worklog(*[await _side(path, stages, stage) for stage in (1, 3, 2)])
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
    # The work tree follows, so that a later `git add --all` keeps the combined log.
    if merged is None:
        (Path(path) / WORKLOG_FILE).unlink(missing_ok=True)
    else:
        await git.run_git(["checkout-index", "--force", "-u", "--", WORKLOG_FILE], cwd=path)


async def stage_all(path: Path) -> None:
    """Everything in the work tree into the index (what a commit of it would hold)."""
    await asyncio.to_thread(remove_nested_repositories, path)
    await git.run_git(["add", "--all"], cwd=path)


async def unresolved(path: Path, conflicts: list[str]) -> list[str]:
    """Of the paths that conflicted, those still unmerged or holding conflict markers once the
    work tree is staged: read from the index, so a link in the work tree leads nowhere."""
    await stage_all(path)
    left = set(await unmerged(path))
    for name in conflicts:
        if name in left:
            continue
        if "\ufffd" in name:
            # Not UTF-8: git reads its name back differently, so its content cannot be checked.
            left.add(name)
            continue
        spec = f":0:{name}"
        if not await succeeds(path, ["cat-file", "-e", spec]):
            continue  # resolved by deleting it
        size = int(await git.run_git(["cat-file", "-s", spec], cwd=path))
        if size > MARKER_SCAN_MAX_BYTES:
            left.add(name)
            continue
        done = await asyncio.to_thread(git.run_git_sync, ["cat-file", "-p", spec], cwd=path)
        if done.returncode != 0 or _MARKER.search(done.stdout):
            left.add(name)
    return sorted(left)


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
