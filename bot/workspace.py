"""Where a job works: a cached bare mirror per repository, and a fresh checkout per job.

    <data dir>/mirrors/<owner>/<repo>.git      bare mirror, refreshed with one fetch per job
    <data dir>/workspaces/job-<id>/            a clone sharing the mirror's objects

The checkout borrows the mirror's objects (`git clone --shared`), so preparing it costs a
checkout of the files and nothing that grows with the length of the history. The checkout's
own `.git` lives inside it, so the agent's sandbox (which may write only the workspace) can
run git there. The token never touches disk: fetch and push pass it per command.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from bot.github import git
from bot.logs import get_logger

log = get_logger(__name__)

JOB_TRAILER = "Backend-Bot-Job"


def slugify(text: str, max_length: int = 40) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "work"


@dataclass(frozen=True)
class Identity:
    name: str
    email: str


@dataclass
class Workspace:
    path: Path
    branch: str
    base_branch: str
    # The branch already existed on GitHub (a second run continues it).
    continued: bool
    start_sha: str


class Workspaces:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir).resolve()
        self._mirror_locks: dict[str, asyncio.Lock] = {}

    def mirror_path(self, repo: str) -> Path:
        owner, name = repo.split("/", 1)
        return self.root / "mirrors" / owner / f"{name}.git"

    def workspace_path(self, job_id: int) -> Path:
        return self.root / "workspaces" / f"job-{job_id}"

    async def refresh_mirror(self, repo: str, clone_url: str, token: str) -> Path:
        """Bring the cached mirror up to date with GitHub (one fetch), creating it if needed."""
        mirror = self.mirror_path(repo)
        async with self._mirror_locks.setdefault(repo, asyncio.Lock()):
            if not (mirror / "HEAD").exists():
                shutil.rmtree(mirror, ignore_errors=True)
                mirror.parent.mkdir(parents=True, exist_ok=True)
                await git.clone(clone_url, mirror, token=token, bare=True)
                await git.run_git(["config", "remote.origin.url", clone_url], cwd=mirror)
            await git.fetch(
                mirror, token=token, remote=clone_url, prune=True,
                refspecs=["+refs/heads/*:refs/heads/*"],
            )
        return mirror

    async def prepare(
        self, *, job_id: int, repo: str, clone_url: str, token: str, branch: str,
        base_branch: str, start_from: str | None = None,
    ) -> Workspace:
        """A fresh checkout on `branch`: the existing branch if GitHub has it, else a new one
        from `start_from` (default: `base_branch`)."""
        mirror = await self.refresh_mirror(repo, clone_url, token)
        path = self.workspace_path(job_id)
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        await git.run_git(["clone", "--shared", "--no-checkout", "--quiet", str(mirror), str(path)])
        # Pushes go to GitHub; the URL carries no credentials.
        await git.run_git(["remote", "add", "github", clone_url], cwd=path)
        heads = await self._heads(path)
        continued = branch in heads
        start = f"origin/{branch}" if continued else f"origin/{start_from or base_branch}"
        await git.run_git(["checkout", "--quiet", "-B", branch, start], cwd=path)
        sha = (await git.run_git(["rev-parse", "HEAD"], cwd=path)).strip()
        return Workspace(path, branch, base_branch, continued, sha)

    async def _heads(self, path: Path) -> set[str]:
        out = await git.run_git(["for-each-ref", "--format=%(refname)", "refs/remotes/origin/"],
                                cwd=path)
        return {line.removeprefix("refs/remotes/origin/") for line in out.split()}

    async def find_branch(self, repo: str, prefix: str) -> str | None:
        """A branch of the mirror whose name starts with `prefix` (call after a refresh)."""
        out = await git.run_git(["for-each-ref", "--format=%(refname:short)", "refs/heads/"],
                                cwd=self.mirror_path(repo))
        matches = sorted(name for name in out.split() if name.startswith(prefix))
        return matches[0] if matches else None

    def remove(self, job_id: int) -> None:
        shutil.rmtree(self.workspace_path(job_id), ignore_errors=True)


async def changed_files(workspace: Workspace) -> list[str]:
    """Paths changed in the workspace (NUL-separated output: any file name survives)."""
    out = await git.run_git(["status", "--porcelain", "-z", "--untracked-files=all"],
                            cwd=workspace.path)
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
    """Commit everything in the workspace as `author`; hooks planted by the agent never run."""
    env = {
        "GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": author.name, "GIT_COMMITTER_EMAIL": author.email,
    }
    await git.run_git(["add", "--all"], cwd=workspace.path)
    await git.run_git(
        ["-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false",
         "commit", "--quiet", "--no-verify", "-F", "-"],
        cwd=workspace.path, env=env, input=message,
    )
    return (await git.run_git(["rev-parse", "HEAD"], cwd=workspace.path)).strip()


async def push_branch(workspace: Workspace, token: str, *, protected: set[str]) -> None:
    """Push the workspace's branch to GitHub; never to the default branch or other people's."""
    if workspace.branch in protected:
        raise RuntimeError(f"refusing to push to protected branch {workspace.branch!r}")
    await git.push(workspace.path, [f"HEAD:refs/heads/{workspace.branch}"], token=token,
                   remote="github")
