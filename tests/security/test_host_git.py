"""Class 2: host-side git running configuration that the workspace controls.

A repository whose tree has a submodule entry (a gitlink) only needs something to plant a
`.git` with `core.fsmonitor` in that directory: the bot's own `git status` and `git add` then
run the program it names, on the host, with the bot's environment. Here the repository's own
test command plants one (no prompt injection needed: a Makefile is enough) and the agent's
shell plants another."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from bot.github import git
from bot.workspace import find_nested_repositories, remove_nested_repositories
from tests.agent_fakes import finish, make_repo, tool_use
from tests.simulator import Gitlink
from tests.support.stack import REPO

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


def plant(directory: str, canary) -> str:
    """Shell that makes `directory` a repository whose fsmonitor writes the canary on the host."""
    hook = f"env > {canary}; false"
    return (f"mkdir -p {directory} && git init -q {directory} && "
            f"git -C {directory} config core.fsmonitor '{hook}'")


@needs_bwrap
def test_nested_repositories_planted_by_tests_and_agent_never_run_on_the_host(stack, tmp_path):
    by_tests, by_agent = tmp_path / "ran-from-tests", tmp_path / "ran-from-agent"
    sim = stack.sim
    sim.commit(REPO, "main", {
        "vendor/lib": Gitlink("1" * 40),
        "tools/dep": Gitlink("2" * 40),
        "Makefile": f"test:\n\t{plant('vendor/lib', by_tests)}\n\t@echo planted\n",
    })
    number = sim.add_issue(REPO, "Add notes.txt", "", user="alice")
    stack.fake.add(
        tool_use("Bash", command=plant("tools/dep", by_agent) + " && echo notes > notes.txt"),
        finish(title="Add notes.txt"),
    )
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error
    assert not by_tests.exists() and not by_agent.exists()

    (pr,) = sim.pulls(REPO)
    branch = pr["head"]["ref"]
    tree = stack.git("ls-tree", "-r", branch)
    assert "160000 commit 1111111111111111111111111111111111111111\tvendor/lib" in tree
    assert "160000 commit 2222222222222222222222222222222222222222\ttools/dep" in tree
    assert "notes.txt" in tree and ".git/" not in tree


def test_nested_repositories_are_found_and_removed_at_any_depth(tmp_path):
    repo = make_repo(tmp_path / "ws", {"src/app.py": "x = 1\n"})
    subprocess.run(["git", "init", "-q", str(repo / "src" / "inner")], check=True)
    (repo / "deep" / "a" / "b").mkdir(parents=True)
    (repo / "deep" / "a" / "b" / ".git").write_text("gitdir: /somewhere/else\n")
    os.symlink("/etc", repo / "deep" / ".git")
    assert find_nested_repositories(repo) == ["deep/.git", "deep/a/b/.git", "src/inner/.git"]
    assert remove_nested_repositories(repo) == ["deep/.git", "deep/a/b/.git", "src/inner/.git"]
    assert find_nested_repositories(repo) == []
    assert (repo / ".git").is_dir() and os.path.isdir("/etc")  # the link was removed, not followed


def test_host_git_gets_no_secret_and_no_global_configuration(monkeypatch):
    monkeypatch.setenv("PRIVATE_KEY", "-----BEGIN RSA PRIVATE KEY-----")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("WEBHOOK_SECRET", "hook-secret")
    monkeypatch.setenv("GIT_EXTERNAL_DIFF", "/tmp/evil")
    env = git.git_env()
    assert not {"PRIVATE_KEY", "ANTHROPIC_API_KEY", "WEBHOOK_SECRET", "GIT_EXTERNAL_DIFF"} & set(env)
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == os.devnull
    argv = git.git_argv(["status"])
    assert "core.fsmonitor=false" in argv and f"core.hooksPath={os.devnull}" in argv
    assert argv[-1] == "status"
