"""Bare repositories on disk, driven by real git (plumbing only, no work trees)."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


def git(bare: Path, *args: str, input: bytes | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        ["git", "--git-dir", str(bare), *args],
        input=input,
        capture_output=True,
        env=_ENV,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode(errors="replace")


def init_bare(path: Path, default_branch: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(path)],
        check=True,
        env=_ENV,
    )
    git(path, "config", "http.receivepack", "true")
    git(path, "config", "uploadpack.allowAnySHA1InWant", "true")


@dataclass(frozen=True)
class Symlink:
    """A committed symbolic link (mode 120000) pointing at `target`."""

    target: str


@dataclass(frozen=True)
class Gitlink:
    """A committed submodule entry (mode 160000) at commit `sha`, as a repository's tree has it."""

    sha: str


def commit_files(
    bare: Path,
    branch: str,
    files: dict[str, str | bytes | Symlink | Gitlink | None],
    *,
    message: str = "Update files",
    parent: str | None = None,
    author: tuple[str, str] = ("Simulator", "sim@example.com"),
) -> str:
    """Commit `files` (path -> content, None deletes) on `branch` on top of `parent`."""
    now = int(time.time())
    name, email = author
    msg = message.encode()
    out = bytearray()
    out += f"commit refs/heads/{branch}\n".encode()
    out += f"author {name} <{email}> {now} +0000\n".encode()
    out += f"committer {name} <{email}> {now} +0000\n".encode()
    out += f"data {len(msg)}\n".encode() + msg + b"\n"
    if parent:
        out += f"from {parent}\n".encode()
    for path, content in files.items():
        if content is None:
            out += f"D {path}\n".encode()
            continue
        if isinstance(content, Gitlink):
            out += f"M 160000 {content.sha} {path}\n".encode()
            continue
        mode = "120000" if isinstance(content, Symlink) else "100644"
        if isinstance(content, Symlink):
            content = content.target
        data = content.encode() if isinstance(content, str) else content
        out += f"M {mode} inline {path}\n".encode()
        out += f"data {len(data)}\n".encode() + data + b"\n"
    out += b"done\n"
    git(bare, "fast-import", "--quiet", "--force", "--done", input=bytes(out))
    return rev_parse(bare, f"refs/heads/{branch}") or ""


def rev_parse(bare: Path, ref: str) -> str | None:
    out = git(bare, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False).strip()
    return out or None


def branches(bare: Path) -> dict[str, str]:
    out = git(bare, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/")
    result = {}
    for line in out.splitlines():
        name, _, sha = line.rpartition(" ")
        result[name] = sha
    return result


def head_branch(bare: Path) -> str:
    return git(bare, "symbolic-ref", "--short", "HEAD").strip()


def set_head(bare: Path, branch: str) -> None:
    git(bare, "symbolic-ref", "HEAD", f"refs/heads/{branch}")


def object_type(bare: Path, spec: str) -> str | None:
    out = git(bare, "cat-file", "-t", spec, check=False).strip()
    return out or None


def read_blob(bare: Path, spec: str) -> bytes:
    proc = subprocess.run(
        ["git", "--git-dir", str(bare), "cat-file", "blob", spec], capture_output=True, env=_ENV
    )
    return proc.stdout


def blob_sha(bare: Path, spec: str) -> str:
    return git(bare, "rev-parse", spec).strip()


def ls_tree(bare: Path, spec: str) -> list[tuple[str, str, str, str]]:
    """(mode, type, sha, name) for each entry of a tree."""
    entries = []
    for line in git(bare, "ls-tree", spec).splitlines():
        meta, _, name = line.partition("\t")
        mode, kind, sha = meta.split()
        entries.append((mode, kind, sha, name))
    return entries


def merge(bare: Path, branch: str, head: str, *, message: str, author: tuple[str, str],
          committer: tuple[str, str] = ("GitHub", "noreply@github.com")) -> str | None:
    """A merge commit of `head` into `branch` (what GitHub's merge button makes), or None when
    the two conflict; the branch moves only if nobody moved it meanwhile."""
    base = rev_parse(bare, f"refs/heads/{branch}")
    merged = subprocess.run(["git", "--git-dir", str(bare), "merge-tree", "--write-tree",
                             base or "", head], capture_output=True, env=_ENV)
    if merged.returncode != 0:
        return None
    tree = merged.stdout.decode().split("\n", 1)[0]
    env = {**_ENV, "GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1],
           "GIT_COMMITTER_NAME": committer[0], "GIT_COMMITTER_EMAIL": committer[1]}
    commit = subprocess.run(["git", "--git-dir", str(bare), "commit-tree", tree, "-p", base or "",
                             "-p", head, "-F", "-"], input=message.encode(), capture_output=True,
                            env=env, check=True).stdout.decode().strip()
    git(bare, "update-ref", f"refs/heads/{branch}", commit, base or "")
    return commit


def commits_between(bare: Path, before: str, after: str) -> list[dict]:
    """The commits `after` brings over `before`, oldest first, with the paths each changed
    (a merge commit: against its first parent, as GitHub's push payload lists them)."""
    out = git(bare, "rev-list", "--reverse", after, f"^{before}")
    found = []
    for sha in out.split():
        meta = git(bare, "show", "-s", "--format=%T%x00%an%x00%ae%x00%cn%x00%ce%x00%cI%x00%B",
                   sha).split("\0")
        changes: dict[str, list[str]] = {"added": [], "removed": [], "modified": []}
        parent = rev_parse(bare, f"{sha}^1")
        status = git(bare, "diff-tree", "-r", "--name-status", "--no-commit-id", "-z",
                     *([parent, sha] if parent else ["--root", sha])).split("\0")
        for letter, path in zip(status[0::2], status[1::2], strict=False):  # a NUL ends it
            changes[{"A": "added", "D": "removed"}.get(letter[:1], "modified")].append(path)
        found.append({"id": sha, "tree_id": meta[0], "author": (meta[1], meta[2]),
                      "committer": (meta[3], meta[4]), "timestamp": meta[5],
                      "message": meta[6].rstrip("\n"), **changes})
    return found


def is_ancestor(bare: Path, ancestor: str, descendant: str) -> bool:
    return subprocess.run(["git", "--git-dir", str(bare), "merge-base", "--is-ancestor",
                           ancestor, descendant], capture_output=True, env=_ENV).returncode == 0


def count_commits(bare: Path, base: str, head: str) -> int:
    out = git(bare, "rev-list", "--count", f"{base}..{head}", check=False).strip()
    return int(out) if out.isdigit() else 0


def diff_hunk(bare: Path, base: str, head: str, path: str, line: int | None) -> str:
    """GitHub's `diff_hunk` for a comment on `line` of `path`: the hunk up to that line."""
    text = git(bare, "diff", f"{base}...{head}", "--", path, check=False)
    hunks: list[list[str]] = []
    for raw in text.splitlines():
        if raw.startswith("@@"):
            hunks.append([raw])
        elif hunks:
            hunks[-1].append(raw)
    if not hunks:
        return ""
    if line is None:
        return "\n".join(hunks[0])
    for hunk in hunks:
        header = hunk[0]
        try:
            new = header.split("+", 1)[1].split(" ", 1)[0]
            start = int(new.split(",")[0])
        except (IndexError, ValueError):
            continue
        current = start - 1
        for i, row in enumerate(hunk[1:], start=1):
            if not row.startswith("-"):
                current += 1
            if current == line and not row.startswith("-"):
                return "\n".join(hunk[: i + 1])
    return "\n".join(hunks[0])


def merges_cleanly(bare: Path, base: str, head: str) -> bool:
    """Whether `head` merges into `base` without a conflict (nothing is written to a ref)."""
    return subprocess.run(["git", "--git-dir", str(bare), "merge-tree", "--write-tree", base, head],
                          capture_output=True, env=_ENV).returncode == 0
