"""`backend-bot run`: the whole local flow on a real git checkout, the model faked."""

import io
import shutil
import subprocess

import pytest

from bot.agent.local import main, slugify
from bot.settings import load_settings
from bot.worklog import read_worklog
from tests.agent_fakes import FakeAnthropic, ask, finish, make_repo, tool_use

TOKEN = "ghs_" + "z" * 36


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "checkout", {"app.py": "def add(a, b):\n    return a + b\n"})


@pytest.fixture
def settings():
    return load_settings(anthropic_model="claude-haiku-4-5", allow_unsandboxed_shell=shutil.which("bwrap") is None)


def run_main(repo, settings, fake, **kwargs):
    out, err = io.StringIO(), io.StringIO()
    code = main(str(repo), "Add a subtract function", settings, client=fake.client(), out=out, err=err, **kwargs)
    return code, out.getvalue(), err.getvalue()


def test_finished_run_commits_on_a_fresh_branch_and_prints_the_pr_body(repo, settings):
    script = [
        tool_use("Edit", file_path="app.py", old_string="    return a + b\n",
                 new_string="    return a + b\n\n\ndef subtract(a, b):\n    return a - b\n"),
        tool_use("Bash", command="python3 -c 'from app import subtract; assert subtract(3, 1) == 2' && echo ok"),
        finish("Add subtract", files_modified="- `app.py`: subtract()", potential_issues=f"token {TOKEN}"),
    ]  # fmt: skip
    with FakeAnthropic(script) as fake:
        code, out, err = run_main(repo, settings, fake)
    assert code == 0, err
    branch = git(repo, "branch", "--show-current")
    assert branch.startswith("backend/local-add-a-subtract-function-")
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "log", "-1", "--format=%an <%ae>|%s") == "Test Person <test@example.com>|Add subtract"
    changed = git(repo, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert sorted(changed) == ["BACKEND_WORK_LOG.md", "app.py"]
    [entry] = read_worklog(repo)
    assert entry.title == "Add subtract" and entry.timestamp is not None
    assert out.startswith("## 20") and "— Add subtract" in out.splitlines()[0]
    assert "### Potential Issues" in out and TOKEN not in out
    assert TOKEN not in (repo / "BACKEND_WORK_LOG.md").read_text()
    assert "Model: `claude-haiku-4-5`" in out and "turns: 3" in out and "cost: $" in out
    assert git(repo, "rev-parse", "main") != git(repo, "rev-parse", "HEAD")  # main untouched


def test_question_exits_3_and_commits_nothing(repo, settings):
    with FakeAnthropic([ask("Integers only, or floats too?")]) as fake:
        code, out, _err = run_main(repo, settings, fake, branch="backend/my-branch")
    assert code == 3
    assert "Integers only, or floats too?" in out
    assert git(repo, "branch", "--show-current") == "backend/my-branch"
    assert git(repo, "rev-parse", "HEAD") == git(repo, "rev-parse", "main")


def test_bound_exits_1_with_the_reason(repo, settings):
    with FakeAnthropic([tool_use("Read", file_path="app.py")] * 3) as fake:
        code, out, _err = run_main(repo, settings, fake, max_turns=2)
    assert code == 1
    assert "turn limit reached (2 turns)" in out
    assert len(fake.requests) == 2


def test_dirty_checkout_is_refused_before_any_model_call(repo, settings):
    (repo / "app.py").write_text("changed\n")
    with FakeAnthropic([finish()]) as fake:
        code, _out, err = run_main(repo, settings, fake)
    assert code == 1 and "uncommitted changes" in err
    assert fake.requests == []


def test_not_a_git_checkout(tmp_path, settings):
    with FakeAnthropic([finish()]) as fake:
        code, _, err = run_main(tmp_path, settings, fake)
    assert code == 1 and "not a git checkout" in err


def test_missing_sandbox_refuses_to_start(repo, monkeypatch):
    monkeypatch.setattr("bot.agent.sandbox.shutil.which", lambda name: None)
    settings = load_settings(allow_unsandboxed_shell=False)
    with FakeAnthropic([finish()]) as fake:
        code, _, err = run_main(repo, settings, fake)
    assert code == 1 and "BOT_ALLOW_UNSANDBOXED_SHELL" in err
    assert fake.requests == []


def test_slugify():
    assert slugify("Add /profile endpoints — fast!") == "add-profile-endpoints-fast"
    assert slugify("???") == "task"
