"""Workspaces after a kill: a half-made checkout, stale lock files in a checkout or in the
mirror, never break later jobs of the repository (real git against the served simulator)."""

from __future__ import annotations

import pytest

from bot.github import GitHubApp
from bot.settings import load_settings
from bot.workspace import Workspaces

REPO = "acme/widgets"


@pytest.fixture
async def prepared(github_sim_server, tmp_path):
    sim, _ = github_sim_server
    settings = load_settings(_env_file=None, **sim.settings_overrides(), data_dir=tmp_path)
    app = GitHubApp(settings)
    token = await app.installation_token(42)
    workspaces = Workspaces(tmp_path / "data")
    clone_url = (await (await app.installation(42)).get_repo(REPO)).clone_url

    async def prepare(job_id: int):
        return await workspaces.prepare(job_id=job_id, repo=REPO, clone_url=clone_url,
                                        token=token, branch=f"backend/job-{job_id}",
                                        base_branch="main")

    yield workspaces, prepare
    await app.aclose()


async def test_a_checkout_left_locked_or_half_made_is_rebuilt(prepared):
    workspaces, prepare = prepared
    first = await prepare(1)
    (first.path / ".git" / "index.lock").write_text("")  # killed during `git checkout`
    workspaces.release(1, REPO)  # (as the pool would hold a checkout a later kill corrupted)
    second = await prepare(2)
    assert (second.path / "README.md").read_text() == "# widgets\n"
    assert not (second.path / ".git" / "index.lock").exists()

    half = workspaces.workspace_path(3)
    (half / ".git").mkdir(parents=True)  # killed in the middle of `git clone`
    (half / ".git" / "config").write_text("[core]\n")
    third = await prepare(3)
    assert (third.path / "README.md").exists() and third.start_sha == second.start_sha


async def test_a_stale_lock_in_the_mirror_does_not_stop_the_next_fetch(prepared):
    workspaces, prepare = prepared
    await prepare(1)
    mirror = workspaces.mirror_path(REPO)
    (mirror / "packed-refs.lock").write_text("")
    (mirror / "refs" / "heads" / "main.lock").write_text("")  # killed during a fetch
    second = await prepare(2)
    assert (second.path / "README.md").exists()
    assert not list(mirror.rglob("*.lock"))
