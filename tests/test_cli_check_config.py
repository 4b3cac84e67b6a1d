"""`backend-bot check-config`: the real command on a file, as someone at a terminal runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.repo_config import RepoConfigError, parse_repo_config
from tests.agent_fakes import make_repo
from tests.support.processes import ROOT


def check_config(cwd, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check-config", *args],
        cwd=cwd, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "BOT_DATA_DIR": str(cwd / "data")},
    )
    assert "Traceback" not in result.stdout + result.stderr
    return result


def test_a_valid_file_prints_its_settings_merged_over_the_defaults(tmp_path):
    repo = make_repo(tmp_path / "repo", {".github/backend.yml": "max_turns: 12\ndraft: true\n"})
    (repo / "src").mkdir()
    result = check_config(repo / "src")  # the file at the checkout's top, from below it
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (f"# {repo / '.github/backend.yml'} is valid; the settings it gives, "
                        "merged over the defaults:")
    assert "max_turns: 12" in lines and "draft: true" in lines
    assert any(line.startswith("max_cost_usd: 5.0") and line.endswith("# default") for line in lines)
    assert parse_repo_config(result.stdout) == parse_repo_config("max_turns: 12\ndraft: true\n")


def test_an_invalid_file_gets_the_bots_own_words_one_line_each_and_exit_2(tmp_path):
    text = "max_turns: lots\nlable: x\ndraft: maybe\n"
    (tmp_path / "backend.yml").write_text(text)
    result = check_config(tmp_path, "backend.yml")
    assert result.returncode == 2
    with pytest.raises(RepoConfigError) as caught:
        parse_repo_config(text)
    assert result.stdout == str(caught.value) + "\n"  # str(): what the bot's comment on GitHub holds
    assert len(result.stdout.splitlines()) == 3
    assert "`max_turns` must be a whole number between 1 and 500, got 'lots'." in result.stdout
    assert "Did you mean `label`?" in result.stdout


def test_a_missing_file_is_one_line(tmp_path):
    result = check_config(tmp_path, "nope.yml")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "error: there is no file nope.yml\n"


def test_no_file_in_the_checkout_says_the_defaults_apply(tmp_path):
    repo = make_repo(tmp_path / "repo")
    result = check_config(repo)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: there is no {repo / '.github/backend.yml'} (without one, the bot uses the defaults)"]


def test_a_directory_is_one_line(tmp_path):
    (tmp_path / ".github/backend.yml").mkdir(parents=True)
    result = check_config(tmp_path)  # not a git checkout: the current directory's file
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: .github/backend.yml is a directory, not a file"]


def test_help_says_what_it_does_with_an_example(tmp_path):
    result = check_config(tmp_path, "--help")
    assert result.returncode == 0
    assert "backend-bot check-config draft/backend.yml" in result.stdout
    assert "exits with 2" in result.stdout


def test_a_value_above_the_operators_cap_is_said_to_be_ignored(tmp_path):
    text = "max_cost_usd: 50\ndaily_budget_usd: 3\n"
    (tmp_path / "backend.yml").write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check-config", "backend.yml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "BOT_DATA_DIR": str(tmp_path / "data"),
             "BOT_MAX_COST_PER_RUN_USD": "2", "BOT_BUDGET_REPO_DAILY_USD": "10"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "# ignored: `max_cost_usd: 50` in `.github/backend.yml` is above the bot operator's cap of "
        "$2.00 per run, so $2.00 applies.")
    assert "daily_budget_usd: 3.0" in result.stdout  # lower than the operator's: it stands
