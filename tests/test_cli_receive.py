"""`backend-bot receive`: one saved payload through routing and handlers, like Probot's."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import payloads
from tests.support.processes import ROOT


def receive(tmp_path, event: str, payload, *extra: str) -> subprocess.CompletedProcess:
    path = tmp_path / "payload.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return subprocess.run(
        [sys.executable, "-m", "bot", "receive", "--event", event, *extra, str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "BOT_DATA_DIR": str(tmp_path / "data")},
    )


def test_a_trigger_prints_the_job_it_would_queue(tmp_path):
    result = receive(tmp_path, "issues", payloads.issues_labeled(42, "Add profile endpoints"))
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["kind"] == "issue" and job["key"] == "acme/widgets#42"
    assert job["spec"]["title"] == "Add profile endpoints"


def test_a_non_trigger_says_so(tmp_path):
    result = receive(tmp_path, "issues", payloads.issues_labeled(label="bug"))
    assert result.returncode == 0
    assert "no job" in result.stdout


def test_a_bot_sender_is_ignored(tmp_path):
    result = receive(tmp_path, "issues", payloads.issues_labeled(sender="x[bot]", bot=True))
    assert "ignored: sent by a bot" in result.stdout


def test_a_broken_file_is_a_clear_error(tmp_path):
    result = receive(tmp_path, "issues", '{"action": ')
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr


def test_control_commands_get_their_own_key(tmp_path):
    result = receive(tmp_path, "issue_comment", payloads.pr_comment(9, "/backend cancel"))
    job = json.loads(result.stdout)
    assert job["kind"] == "control" and job["key"] == "acme/widgets#9/control"
    assert job["spec"]["command"] == "cancel"


def test_a_missing_file_or_a_folder_is_one_line_and_exit_2(tmp_path):
    for path in (tmp_path / "nope.json", tmp_path):
        result = subprocess.run(
            [sys.executable, "-m", "bot", "receive", "--event", "issues", str(path)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
            env={"PATH": "/usr/bin:/bin", "BOT_DATA_DIR": str(tmp_path / "data")},
        )
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith(f"error: cannot read {path}: ")


def test_a_ping_says_what_a_ping_is(tmp_path):
    result = receive(tmp_path, "ping", {"zen": "Keep it logically awesome.", "hook_id": 1})
    assert result.returncode == 0
    assert result.stdout == "no job: a ping is GitHub's test delivery; the bot answers it with pong\n"
    assert "None" not in result.stdout
