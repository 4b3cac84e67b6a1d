"""Where a job works: a cached bare mirror per repository, and a checkout per job.

    <data dir>/mirrors/<owner>/<repo>.git           bare mirror, refreshed with one fetch per job
    <data dir>/workspaces/job-<id>/                 the job's checkout, while it runs
    <data dir>/checkouts/<owner>/<repo>/<name>/     idle checkouts, reused by the next job

A checkout borrows the mirror's objects (`git clone --shared`), so nothing in it grows with the
length of the history, and its own `.git` lives inside it, so the agent's sandbox (which may
write only the workspace) can run git there. Writing out every file of a large repository is
what costs (seconds for 10,000 files on a slow disk), so a finished job's checkout is kept and
the next job of the same repository resets it (`checkout -f -B`, `clean -ffdx`): only the files
that differ are written. The token never touches disk: fetch and push pass it per command.

The work tree belongs to the attacker once the agent (or the repository's own test command)
has run in it. Host-side git is hardened (`bot.github.git`), and before the bot looks at the
changes or stages them it removes every repository nested in the work tree
(`remove_nested_repositories`): a planted `.git` is another repository's configuration, and
the gits the bot runs would otherwise be asked to descend into it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

from bot.github import git
from bot.github.errors import GitError
from bot.logs import get_logger

log = get_logger(__name__)

JOB_TRAILER = "Backend-Bot-Job"
IDLE_CHECKOUTS_PER_REPO = 2
# Files are written by several workers at once: on slow disks, ten times faster for big trees.
_CHECKOUT = ["-c", "checkout.workers=8", "checkout", "--quiet", "--force", "-B"]


def slugify(text: str, max_length: int = 40) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "work"


@dataclass(frozen=True)
class Identity:
    name: str
    email: str

    def env(self) -> dict[str, str]:
        """A git command's environment that makes this identity the author and committer."""
        return {"GIT_AUTHOR_NAME": self.name, "GIT_AUTHOR_EMAIL": self.email,
                "GIT_COMMITTER_NAME": self.name, "GIT_COMMITTER_EMAIL": self.email}


@dataclass
class Workspace:
    path: Path
    branch: str
    base_branch: str
    # The branch already existed on GitHub (a second run continues it).
    continued: bool
    start_sha: str
    clone_url: str


class Workspaces:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir).resolve()
        self._mirror_locks: dict[str, asyncio.Lock] = {}

    def mirror_path(self, repo: str) -> Path:
        owner, name = repo.split("/", 1)
        return self.root / "mirrors" / owner / f"{name}.git"

    def workspace_path(self, job_id: int) -> Path:
        return self.root / "workspaces" / f"job-{job_id}"

    def _idle_dir(self, repo: str) -> Path:
        owner, name = repo.split("/", 1)
        return self.root / "checkouts" / owner / name

    async def refresh_mirror(self, repo: str, clone_url: str, token: str) -> Path:
        """Bring the cached mirror up to date with GitHub (one fetch), creating it if needed."""
        mirror = self.mirror_path(repo)
        async with self._mirror_locks.setdefault(repo, asyncio.Lock()):
            # Only this process touches its mirrors, and only under this lock: a lock file
            # found now was left by a git that a crash or kill -9 interrupted.
            for lock in _lock_files(mirror):
                lock.unlink(missing_ok=True)
            if not (mirror / "HEAD").exists():
                shutil.rmtree(mirror, ignore_errors=True)
                mirror.parent.mkdir(parents=True, exist_ok=True)
                await git.clone(clone_url, mirror, token=token, bare=True)
            await git.fetch(
                mirror, token=token, remote=clone_url, prune=True,
                refspecs=["+refs/heads/*:refs/heads/*"],
            )
        return mirror

    async def prepare(
        self, *, job_id: int, repo: str, clone_url: str, token: str, branch: str,
        base_branch: str,
    ) -> Workspace:
        """The job's checkout on `branch`: the existing branch if GitHub has it, else a new one
        from `base_branch`."""
        mirror = await self.refresh_mirror(repo, clone_url, token)
        path = self.workspace_path(job_id)
        try:
            return await self._check_out(path, repo, mirror, clone_url, branch, base_branch)
        except GitError as error:
            # A checkout a kill left half-made fails in ways no retry cures: make a new one.
            log.warning("the checkout at %s is unusable (%s); making a new one", path, error)
            shutil.rmtree(path, ignore_errors=True)
            return await self._check_out(path, repo, mirror, clone_url, branch, base_branch)

    async def _check_out(self, path: Path, repo: str, mirror: Path, clone_url: str,
                         branch: str, base_branch: str) -> Workspace:
        if not _usable(path):  # not left whole by an earlier attempt of this job
            shutil.rmtree(path, ignore_errors=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not self._take_idle(repo, path):
                await git.run_git(["clone", "--shared", "--no-checkout", "--quiet",
                                   str(mirror), str(path)])
        await git.run_git(["fetch", "--quiet", "--prune", "origin",
                           "+refs/heads/*:refs/remotes/origin/*"], cwd=path)
        heads = await git.run_git(["for-each-ref", "--format=%(refname:lstrip=3)",
                                   f"refs/remotes/origin/{branch}"], cwd=path)
        continued = bool(heads.strip())
        start = f"origin/{branch}" if continued else f"origin/{base_branch}"
        await git.run_git([*_CHECKOUT, branch, start], cwd=path)
        await git.run_git(["clean", "-ffdxq"], cwd=path)
        sha = (await git.run_git(["rev-parse", "HEAD"], cwd=path)).strip()
        return Workspace(path, branch, base_branch, continued, sha, clone_url)

    def _take_idle(self, repo: str, path: Path) -> bool:
        idle = self._idle_dir(repo)
        for candidate in sorted(idle.iterdir()) if idle.is_dir() else []:
            try:
                os.rename(candidate, path)  # atomic: two jobs never get one checkout
            except OSError:
                continue
            if _usable(path):
                return True
            shutil.rmtree(path, ignore_errors=True)
        return False

    def release(self, job_id: int, repo: str) -> None:
        """Keep the job's checkout for the next job of this repository (or delete it)."""
        path = self.workspace_path(job_id)
        if not path.exists():
            return
        idle = self._idle_dir(repo)
        idle.mkdir(parents=True, exist_ok=True)
        if (path / ".git").is_dir() and len(os.listdir(idle)) < IDLE_CHECKOUTS_PER_REPO:
            os.rename(path, idle / uuid.uuid4().hex)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _lock_files(git_dir: Path) -> list[Path]:
    """Lock files git leaves behind when it is killed (index.lock, config.lock, ref locks)."""
    if not git_dir.is_dir():
        return []
    found = list(git_dir.glob("*.lock"))
    refs = git_dir / "refs"
    if refs.is_dir():
        found += refs.rglob("*.lock")
    return found


def _usable(path: Path) -> bool:
    """A checkout a job may use: a whole `.git` that no interrupted git left locked."""
    git_dir = path / ".git"
    whole = all((git_dir / part).exists() for part in ("HEAD", "config", "objects"))
    return git_dir.is_dir() and whole and not _lock_files(git_dir)


def find_nested_repositories(root: Path) -> list[str]:
    """Every `.git` under `root` but its own (directories, files and links alike), relative.

    The whole tree is scanned, links not followed: it runs on every job, so it is kept to
    one `scandir` per directory (about 12 ms for 10,000 files).
    """
    root_text = str(root)
    found, stack = [], [root_text]
    while stack:
        directory = stack.pop()
        try:
            entries = os.scandir(directory)
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.name == ".git":
                    if directory != root_text:
                        found.append(os.path.relpath(entry.path, root_text))
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return sorted(found)


def remove_nested_repositories(root: Path) -> list[str]:
    """Remove what makes a directory of the work tree a repository of its own; what was removed.

    Its files stay and are committed as ordinary files, as the agent left them.
    """
    found = find_nested_repositories(root)
    for relative in found:
        path = Path(root) / relative
        if stat.S_ISDIR(path.lstat().st_mode):
            shutil.rmtree(path)  # fd-based on Linux: links inside are removed, not followed
        else:
            path.unlink()
    if found:
        log.warning("removed %d nested repositories from the work tree: %s", len(found),
                    ", ".join(found[:10]))
    return found


async def changed_files(workspace: Workspace) -> list[str]:
    """Paths changed in the workspace (NUL-separated output: any file name survives)."""
    await asyncio.to_thread(remove_nested_repositories, workspace.path)
    out = await git.run_git(["status", "--porcelain", "-z", "--untracked-files=all",
                             "--ignore-submodules=all"], cwd=workspace.path)
    entries, files = out.split("\0"), []
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if not entry:
            continue
        files.append(entry[3:])
        if entry[0] in "RC":  # a rename or copy is followed by its source path
            index += 1
    return files


async def head_trailer(workspace: Workspace, trailer: str = JOB_TRAILER) -> str | None:
    """The value of a trailer on the branch's head commit (which job made it, if any)."""
    out = await git.run_git(
        ["log", "-1", f"--format=%(trailers:key={trailer},valueonly)"], cwd=workspace.path
    )
    return out.strip() or None


async def commit_all(workspace: Workspace, message: str, author: Identity) -> str:
    """Commit everything in the workspace as `author` (hardened git: nothing in it runs)."""
    await asyncio.to_thread(remove_nested_repositories, workspace.path)
    await git.run_git(["add", "--all"], cwd=workspace.path)
    await git.run_git(["commit", "--quiet", "--no-verify", "-F", "-"],
                      cwd=workspace.path, env=author.env(), input=message)
    return (await git.run_git(["rev-parse", "HEAD"], cwd=workspace.path)).strip()


async def push_branch(workspace: Workspace, token: str, *, protected: set[str]) -> None:
    """Push the workspace's branch to GitHub; never to the default branch or other people's."""
    if workspace.branch in protected:
        raise RuntimeError(f"refusing to push to protected branch {workspace.branch!r}")
    await git.push(workspace.path, [f"HEAD:refs/heads/{workspace.branch}"], token=token,
                   remote=workspace.clone_url)
