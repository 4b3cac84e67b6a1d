"""`backend-bot run`: the real command on a real checkout, the model scripted (or absent)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time

from tests.agent_fakes import FakeAnthropic, finish, make_repo, tool_use
from tests.support.processes import ROOT, free_port

TASK = "Add a subtract function"
# `python -m bot`, with the local run's retries turned down so an unreachable service gives up
# in a moment: the command's own schedule takes up to half a minute.
FAST_RETRIES = (
    "import sys; import bot.agent.local as local; from bot.agent.loop import Limits; "
    "local.LOCAL_LIMITS = Limits(retries=2, backoff_base=0.05, backoff_max=0.1, connect_timeout=2.0); "
    "from bot.cli import main; sys.exit(main())"
)


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def checkout(tmp_path, settings: str | None = None):
    files = {"app.py": "def add(a, b):\n    return a + b\n"}
    if settings is not None:
        files[".github/backend.yml"] = settings
    repo = make_repo(tmp_path / "checkout", files)
    git(repo, "switch", "-q", "-c", "feature")  # the branch the operator is on
    return repo


def run(repo, base_url: str, *args: str, python: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "BOT_DATA_DIR": str(repo.parent / "data"),
        "ANTHROPIC_API_KEY": "sk-ant-test-fake-key", "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_MODEL": "claude-haiku-4-5",
        "BOT_ALLOW_UNSANDBOXED_SHELL": "true" if shutil.which("bwrap") is None else "false",
    }
    result = subprocess.run(
        [*(python or [sys.executable, "-m", "bot"]), "run", "--repo", str(repo), *args, TASK],
        cwd=repo.parent, capture_output=True, text=True, timeout=120, env=env,
    )
    assert "Traceback" not in result.stdout + result.stderr
    return result


def test_a_finished_run_commits_on_its_branch_and_goes_back(tmp_path):
    repo = checkout(tmp_path)
    script = [tool_use("Write", file_path="app.py", content="def subtract(a, b):\n    return a - b\n"),
              finish("Add subtract")]
    with FakeAnthropic(script) as fake:
        result = run(repo, fake.base_url)
    assert result.returncode == 0, result.stderr
    branch = git(repo, "branch", "--list", "--format=%(refname:short)", "backend/local-*")
    sha = git(repo, "rev-parse", branch)
    assert f"backend-bot: committed {sha[:12]} on {branch}; back on feature" in result.stderr
    assert "— Add subtract" in result.stdout  # the pull-request body
    assert git(repo, "branch", "--show-current") == "feature"
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "log", "-1", "--format=%s", branch) == "Add subtract"


def test_the_checkouts_max_turns_bound_the_run_and_its_changes_are_kept_in_a_wip_commit(tmp_path):
    repo = checkout(tmp_path, "max_turns: 1\n")
    with FakeAnthropic([tool_use("Write", file_path="app.py", content="half\n")] * 3) as fake:
        result = run(repo, fake.base_url, "--branch", "backend/try")
    assert result.returncode == 1
    assert len(fake.requests) == 1
    assert "The run stopped: turn limit reached (1 turns)" in result.stdout
    sha = git(repo, "rev-parse", "backend/try")
    assert (f"backend-bot: work in progress committed as {sha[:12]} on backend/try; back on feature"
            in result.stderr)
    assert git(repo, "branch", "--show-current") == "feature"
    assert (repo / "app.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert git(repo, "log", "-1", "--format=%s", "backend/try").startswith("WIP: ")
    assert git(repo, "show", "backend/try:app.py") == "half"


def test_an_invalid_settings_file_says_what_is_wrong_before_any_model_call(tmp_path):
    repo = checkout(tmp_path, "max_turns: lots\n")
    with FakeAnthropic([finish()]) as fake:
        result = run(repo, fake.base_url)
    assert result.returncode == 1 and fake.requests == []
    assert result.stderr.splitlines() == [
        "`.github/backend.yml`: `max_turns` must be a whole number between 1 and 500, got 'lots'."]
    assert git(repo, "branch", "--show-current") == "feature"


def test_an_unreachable_model_service_is_named_with_how_long_the_run_keeps_trying(tmp_path):
    repo = checkout(tmp_path)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    result = run(repo, url, python=[sys.executable, "-c", FAST_RETRIES])
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    said = [line for line in result.stderr.splitlines() if "model service" in line]
    assert len(said) == 2, result.stderr
    window = re.fullmatch(
        rf"backend-bot: cannot reach the model service at {url} \(Connection refused\); "
        r"retrying for up to ([\d.]+) s", said[0])
    assert window is not None, said[0]
    assert said[1] == result.stderr.splitlines()[-1] == (
        f"error: cannot reach the model service at {url} (Connection refused); gave up after 3 attempts")
    assert elapsed < float(window[1]) + 15  # the bound, and the start-up of a Python process
    assert git(repo, "branch", "--show-current") == "feature"


def test_run_help_has_an_example(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bot", "run", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert 'backend-bot run --repo . "' in result.stdout
    assert ".github/backend.yml" in result.stdout and "ends on the branch" in result.stdout
