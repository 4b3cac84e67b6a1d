"""`backend-bot run`: the whole local flow on a real git checkout, the model faked."""

import io
import shutil
import subprocess

import pytest

from bot.agent.local import LOCAL_LIMITS, main, slugify
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
    branch = git(repo, "branch", "--list", "--format=%(refname:short)", "backend/local-*")
    assert branch.startswith("backend/local-add-a-subtract-function-")
    sha = git(repo, "rev-parse", branch)
    assert f"committed {sha[:12]} on {branch}; back on main" in err
    assert git(repo, "branch", "--show-current") == "main"
    assert git(repo, "status", "--porcelain") == ""
    author_and_subject = git(repo, "log", "-1", "--format=%an <%ae>|%s", branch)
    assert author_and_subject == "Test Person <test@example.com>|Add subtract"
    changed = git(repo, "show", "--name-only", "--format=", branch).splitlines()
    assert sorted(changed) == ["BACKEND_WORK_LOG.md", "app.py"]
    assert not (repo / "BACKEND_WORK_LOG.md").exists()  # main's work tree, as it was
    git(repo, "switch", "-q", branch)
    [entry] = read_worklog(repo)
    assert entry.title == "Add subtract" and entry.timestamp is not None
    assert out.startswith("## 20") and "— Add subtract" in out.splitlines()[0]
    assert "### Potential Issues" in out and TOKEN not in out
    assert TOKEN not in (repo / "BACKEND_WORK_LOG.md").read_text()
    assert "Model: `claude-haiku-4-5`" in out and "turns: 3" in out and "cost: $" in out
    assert git(repo, "rev-parse", "main") != git(repo, "rev-parse", "HEAD")  # main untouched
    assert "the tests (pytest" not in err  # nothing tells this checkout's test command


def test_question_without_changes_exits_3_back_on_the_branch_it_started_on(repo, settings):
    with FakeAnthropic([ask("Integers only, or floats too?")]) as fake:
        code, out, err = run_main(repo, settings, fake, branch="backend/my-branch")
    assert code == 3
    assert "Integers only, or floats too?" in out
    assert "nothing changed; back on main" in err
    assert git(repo, "branch", "--show-current") == "main"
    assert git(repo, "branch", "--list", "backend/my-branch") == ""  # an empty branch is not kept


def test_question_with_changes_keeps_them_in_a_wip_commit_on_its_branch(repo, settings):
    script = [tool_use("Write", file_path="app.py", content="half done\n"), ask("Floats too?")]
    with FakeAnthropic(script) as fake:
        code, _, err = run_main(repo, settings, fake, branch="backend/my-branch")
    assert code == 3
    sha = git(repo, "rev-parse", "backend/my-branch")
    assert f"work in progress committed as {sha[:12]} on backend/my-branch; back on main" in err
    assert git(repo, "branch", "--show-current") == "main" and git(repo, "status", "--porcelain") == ""
    message = git(repo, "log", "-1", "--format=%B", "backend/my-branch")
    assert message.startswith("WIP: Add a subtract function") and "the agent asked a question" in message
    assert git(repo, "show", "--name-only", "--format=", "backend/my-branch") == "app.py"  # no log entry
    assert git(repo, "show", "backend/my-branch:app.py") == "half done"


def test_bound_exits_1_with_the_reason(repo, settings):
    with FakeAnthropic([tool_use("Read", file_path="app.py")] * 3) as fake:
        code, out, _err = run_main(repo, settings, fake, max_turns=2)
    assert code == 1
    assert "turn limit reached (2 turns)" in out
    assert len(fake.requests) == 2


def test_the_checkouts_own_settings_bound_the_run_and_flags_override_them(repo, settings):
    (repo / ".github").mkdir()
    (repo / ".github/backend.yml").write_text("max_turns: 1\nbranch_prefix: mine/\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "settings")
    with FakeAnthropic([tool_use("Read", file_path="app.py")] * 3) as fake:
        code, out, err = run_main(repo, settings, fake)
    assert code == 1 and "turn limit reached (1 turns)" in out
    assert "working on branch mine/local-add-a-subtract-function-" in err
    with FakeAnthropic([tool_use("Read", file_path="app.py")] * 3) as fake:
        code, out, err = run_main(repo, settings, fake, max_turns=2)
    assert code == 1 and "turn limit reached (2 turns)" in out


def test_the_operators_cost_cap_bounds_the_checkouts_own_setting(repo):
    (repo / ".github").mkdir()
    (repo / ".github/backend.yml").write_text("max_cost_usd: 50\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "settings")
    capped = load_settings(anthropic_model="claude-haiku-4-5", max_cost_per_run_usd=0.01,
                           allow_unsandboxed_shell=shutil.which("bwrap") is None)
    costly = {"input_tokens": 20_000, "output_tokens": 100}  # $0.02 a turn at Haiku's price
    with FakeAnthropic([tool_use("Read", file_path="app.py", usage=costly)] * 3) as fake:
        code, out, _err = run_main(repo, capped, fake)
    assert code == 1 and "cost limit reached ($0.0205 of $0.01)" in out
    assert len(fake.requests) == 1
    with FakeAnthropic([tool_use("Read", file_path="app.py", usage=costly)] * 3) as fake:
        code, out, _err = run_main(repo, capped, fake, max_cost=0.03, max_turns=3)
    assert code == 1 and "of $0.03)" in out and len(fake.requests) == 2


def test_an_invalid_settings_file_stops_the_run_before_any_model_call(repo, settings):
    (repo / ".github").mkdir()
    (repo / ".github/backend.yml").write_text("max_turns: lots\nlable: x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "settings")
    with FakeAnthropic([finish()]) as fake:
        code, _, err = run_main(repo, settings, fake)
    assert code == 1 and fake.requests == []
    assert err.splitlines() == [
        "`.github/backend.yml`: `lable` is not a setting this bot knows. Did you mean `label`? "
        "Known settings: label, command, model, max_turns, max_cost_usd, daily_budget_usd, max_minutes, test_command, "
        "setup_command, branch_prefix, draft, network, min_permission, allowed_users, ci_fix_attempts.",
        "`.github/backend.yml`: `max_turns` must be a whole number between 1 and 500, got 'lots'.",
    ]
    assert git(repo, "branch", "--list", "backend/*") == ""


def test_the_bot_runs_the_checkouts_test_command_and_reports_it_in_the_entry(repo, settings):
    (repo / ".github").mkdir()
    (repo / ".github/backend.yml").write_text("test_command: python3 -c 'print(40 + 2)'\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "settings")
    script = [tool_use("Write", file_path="app.py", content="X = 1\n"), finish("Set X")]
    with FakeAnthropic(script) as fake:
        code, out, err = run_main(repo, settings, fake, branch="backend/x")
    assert code == 0, err
    assert "the tests (python3 -c 'print(40 + 2)') passed (exit 0" in err
    assert "The bot's own run of the test command" in out and "42" in out


def test_a_detached_head_is_where_the_run_comes_back_to(repo, settings):
    start = git(repo, "rev-parse", "HEAD")
    git(repo, "switch", "-q", "--detach", "HEAD")
    with FakeAnthropic([tool_use("Write", file_path="app.py", content="X = 1\n"), finish()]) as fake:
        code, _, err = run_main(repo, settings, fake, branch="backend/x")
    assert code == 0, err
    assert f"back on {start[:12]} (detached HEAD)" in err
    assert git(repo, "branch", "--show-current") == "" and git(repo, "rev-parse", "HEAD") == start


def test_changes_that_cannot_be_committed_keep_the_checkout_on_the_runs_branch(repo, settings):
    script = [tool_use("Bash", command="mkdir nested && git init -q nested && echo x > nested/f"),
              ask("Why?")]
    with FakeAnthropic(script) as fake:
        code, _, err = run_main(repo, settings, fake, branch="backend/x")
    assert code == 3
    assert "nested repositories" in err and "the checkout stays on backend/x" in err
    assert git(repo, "branch", "--show-current") == "backend/x"


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


def test_an_unreachable_model_service_is_given_up_on_within_half_a_minute():
    assert LOCAL_LIMITS.retry_window() <= 30
