"""bot.github.git: clone, fetch and push through `git http-backend` on 127.0.0.1 with the token."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from bot.github import GitError, GitHubApp, git
from bot.settings import load_settings

REPO = "acme/widgets"


@pytest.fixture
async def served(github_sim_server, tmp_path):
    sim, _base_url = github_sim_server
    settings = load_settings(**sim.settings_overrides(), data_dir=tmp_path)
    app = GitHubApp(settings)
    gh = await app.installation(42)
    repo = await gh.get_repo(REPO)
    yield sim, gh, repo, app
    await app.aclose()


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def _files_holding(root: Path, needles: list[bytes]) -> list[Path]:
    hits = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            data = path.read_bytes()
            if any(n in data for n in needles):
                hits.append(path)
    return hits


async def test_clone_commit_push_and_pr_head_follows(served, tmp_path):
    sim, gh, repo, _ = served
    token = await gh.token()
    dest = await git.clone(repo.clone_url, tmp_path / "work", token=token)
    assert (dest / "README.md").read_text() == "# widgets\n"
    assert await git.remote_url(dest) == repo.clone_url  # no credentials in the remote

    _git(dest, "checkout", "-q", "-b", "backend/issue-1-thing")
    (dest / "thing.py").write_text("print('hi')\n")
    _git(dest, "add", "thing.py")
    _git(dest, "commit", "-q", "-m", "Add thing")
    sha = _git(dest, "rev-parse", "HEAD").strip()
    await git.push(dest, ["HEAD:refs/heads/backend/issue-1-thing"], token=token)

    assert sim.branches(REPO)["backend/issue-1-thing"] == sha
    assert sim.read_file(REPO, "thing.py", ref="backend/issue-1-thing") == "print('hi')\n"
    pr = await gh.create_pull(REPO, title="Thing", head="backend/issue-1-thing", base="main")
    assert pr.head_sha == sha

    (dest / "thing.py").write_text("print('hello')\n")
    _git(dest, "commit", "-q", "-am", "More")
    await git.push(dest, ["HEAD:refs/heads/backend/issue-1-thing"], token=await gh.token())
    assert (await gh.get_pull(REPO, pr.number)).head_sha == _git(dest, "rev-parse", "HEAD").strip()

    basic = base64.b64encode(f"x-access-token:{token}".encode())
    assert _files_holding(dest, [token.encode(), basic]) == []
    pushes = sim.requests_to("POST", r"/acme/widgets\.git/git-receive-pack")
    assert [r.status for r in pushes] == [200, 200] and pushes[0].auth == "installation:42"


async def test_fetch_sees_new_commits(served, tmp_path):
    sim, gh, repo, _ = served
    token = await gh.token()
    dest = await git.clone(repo.clone_url, tmp_path / "mirror", token=token, mirror=True)
    sha = sim.commit(REPO, "main", {"new.txt": "new\n"})
    await git.fetch(dest, token=token, prune=True)
    assert _git(dest, "rev-parse", "refs/heads/main").strip() == sha
    assert (await git.ls_remote(repo.clone_url, token=token))["refs/heads/main"] == sha
    assert _files_holding(dest, [token.encode()]) == []


async def test_refused_without_a_token_or_with_a_dead_one(served, tmp_path):
    sim, gh, repo, _ = served
    with pytest.raises(GitError) as err:
        await git.clone(repo.clone_url, tmp_path / "anon", token=None)
    assert err.value.returncode != 0
    assert sim.requests_to("GET", r"/acme/widgets\.git/info/refs")[-1].status == 401

    token = await gh.token()
    dest = await git.clone(repo.clone_url, tmp_path / "ok", token=token)
    sim.expire_tokens()
    _git(dest, "commit", "-q", "--allow-empty", "-m", "x")
    with pytest.raises(GitError) as err:
        await git.push(dest, ["HEAD:refs/heads/x"], token=token)
    assert token not in str(err.value)
    assert "x" not in sim.branches(REPO)
    assert sim.requests_to("GET", r"/acme/widgets\.git/info/refs")[-1].status == 401


async def test_other_installations_token_cannot_push(served, tmp_path):
    sim, _gh, repo, app = served
    sim.add_repo("globex/gadgets", installation_id=77)
    token = await app.installation_token(77)
    with pytest.raises(GitError):
        await git.clone(repo.clone_url, tmp_path / "other", token=token)


async def test_token_travels_in_the_environment_not_the_command_line(monkeypatch, tmp_path):
    seen = {}
    real = subprocess.run

    def spy(args, env=None, **kw):
        seen["args"], seen["env"] = args, env
        return real(["true"], env=env, **kw)

    monkeypatch.setattr(subprocess, "run", spy)
    token = "ghs_" + "a" * 36
    await git.clone("https://github.example/acme/widgets.git", tmp_path / "x", token=token)
    assert not any(token in a for a in seen["args"])
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    env = seen["env"]
    assert env["GIT_CONFIG_KEY_0"] == "http.https://github.example/.extraHeader"
    assert env["GIT_CONFIG_VALUE_0"] == f"Authorization: Basic {basic}"
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert "credential.helper=" in seen["args"]  # no helper of the host's answers for GitHub


async def test_git_errors_are_redacted(tmp_path):
    token = "ghs_" + "b" * 36
    with pytest.raises(GitError) as err:
        await git.run_git(["ls-remote", f"file://{tmp_path}/missing-{token}"],
                          url="https://github.example/x.git", token=token)
    assert token not in str(err.value) and "[REDACTED]" in str(err.value)


def test_urls_with_credentials_are_refused():
    with pytest.raises(ValueError):
        git.auth_env("https://x-access-token:abc@github.com/a/b.git", "t")
