"""bot/branch_merge.py with real git: what a repository (or the agent) leaves cannot slip a
conflict past the bot's own check."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bot import branch_merge

AUTHOR = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
          "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env={**os.environ, **AUTHOR})


def conflicting_repo(tmp_path: Path, name: bytes, files: dict[bytes, bytes] | None = None) -> Path:
    """A checkout on `ours` whose `theirs` changes the same line of `name`."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "ours")
    for path, content in {name: b"base\n", **(files or {})}.items():
        (repo / os.fsdecode(path)).write_bytes(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    git(repo, "checkout", "-qb", "theirs")
    (repo / os.fsdecode(name)).write_bytes(b"theirs\n")
    git(repo, "commit", "-qam", "theirs")
    git(repo, "checkout", "-q", "ours")
    (repo / os.fsdecode(name)).write_bytes(b"ours\n")
    git(repo, "commit", "-qam", "ours")
    return repo


async def test_markers_a_repository_made_short_are_still_found(tmp_path):
    repo = conflicting_repo(tmp_path, b"app.txt", {b".gitattributes": b"* conflict-marker-size=3\n"})
    started = await branch_merge.begin(repo, "theirs", AUTHOR)
    assert started.conflicts == ["app.txt"]
    assert (repo / "app.txt").read_bytes().startswith(b"<<<<<<< ")  # the bot's size, not the repository's
    assert await branch_merge.unresolved(repo, started.conflicts) == ["app.txt"]  # left as git wrote it


async def test_a_conflicted_file_whose_name_is_not_utf8_counts_as_unresolved(tmp_path):
    repo = conflicting_repo(tmp_path, b"caf\xe9.txt")
    started = await branch_merge.begin(repo, "theirs", AUTHOR)
    (name,) = started.conflicts
    assert await branch_merge.unresolved(repo, started.conflicts) == [name]


async def test_a_resolved_file_passes(tmp_path):
    repo = conflicting_repo(tmp_path, b"app.txt")
    started = await branch_merge.begin(repo, "theirs", AUTHOR)
    (repo / "app.txt").write_bytes(b"ours and theirs\n")
    assert await branch_merge.unresolved(repo, started.conflicts) == []


async def test_abort_where_no_checkout_was_made_does_nothing(tmp_path):
    await branch_merge.abort(tmp_path / "never-made")
