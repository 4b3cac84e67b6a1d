"""The first hour, as a new operator meets it: `backend-bot` run as a real command with bad
settings, an unreachable database or a broken key says so in one line per problem and exits
with a status of its own; a bot that is up says what state it is in, and `/healthz` is `ok`
only when the bot can work."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import ThrowawayPostgres, skip_reason
from tests.support.processes import ROOT, BotProcess, app_credentials, free_port

EXIT_UNAVAILABLE = 69
EXIT_CONFIG = 78


def backend_bot(cwd: Path, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    """The command as an operator runs it: in a folder of their own (no `.env` of the
    checkout's), with only the settings given here."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "BOT_DATA_DIR": str(cwd / "data"),
             **env},
    )


def assert_clean(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr


@pytest.mark.parametrize("setting, value, words", [
    ("APP_ID", "abc", "APP_ID='abc': expected the App's numeric id"),
    ("PORT", "abc", "PORT='abc': expected a port number from 1 to 65535"),
    ("PORT", "70000", "PORT='70000': expected a port number from 1 to 65535"),
    ("BOT_WORKERS", "0", "BOT_WORKERS='0': expected a whole number of workers from 1 to 256"),
    ("LOG_FORMAT", "xml", "LOG_FORMAT='xml': expected pretty or json"),
    ("LOG_LEVEL", "verbose", "LOG_LEVEL='verbose': expected debug, info, warning, error or critical"),
    ("DATABASE_URL", "postgress://bot@db/bot", "the scheme 'postgress' is not supported"),
    ("DATABASE_URL", "mysql://bot@db/bot", "the scheme 'mysql' is not supported"),
    ("DATABASE_URL", "nonsense", "it is not a database URL"),
    ("PRIVATE_KEY_PATH", "missing.pem", "PRIVATE_KEY_PATH: there is no file at missing.pem"),
    ("MODEL_PROVIDER", "azure", "MODEL_PROVIDER='azure': expected anthropic, bedrock or vertex"),
    ("BOT_MAX_COST_PER_RUN_USD", "0", "BOT_MAX_COST_PER_RUN_USD='0': expected a number of US dollars above 0"),
    ("BOT_BUDGET_REPO_DAILY_USD", "-5", "BOT_BUDGET_REPO_DAILY_USD='-5': expected a number of US dollars"),
    ("BOT_BUDGET_INSTALLATION_MONTHLY_USD", "lots", "BOT_BUDGET_INSTALLATION_MONTHLY_USD='lots': expected"),
    ("BOT_BUDGET_INSTALLATION_MONTHLY_USD", "inf", "BOT_BUDGET_INSTALLATION_MONTHLY_USD='inf': expected"),
    ("BOT_TRIGGERS_PER_HOUR", "0", "BOT_TRIGGERS_PER_HOUR='0': expected a whole number of triggers"),
    ("BOT_TRIGGERS_PER_HOUR", "2.5", "BOT_TRIGGERS_PER_HOUR='2.5': expected a whole number of triggers"),
])
def test_a_bad_setting_is_one_line_naming_it_and_exit_78(tmp_path, setting, value, words):
    result = backend_bot(tmp_path, "serve", **{setting: value})
    assert result.returncode == EXIT_CONFIG
    assert_clean(result)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("backend-bot: configuration error: ")
    assert words in line
    # Nothing started: no data folder, and (for a mistyped key path) no registration link
    # sending the operator off to register a second App.
    assert not (tmp_path / "data").exists()
    assert "token=" not in result.stderr


def test_several_bad_settings_are_one_line_each(tmp_path):
    result = backend_bot(tmp_path, "jobs", APP_ID="abc", PORT="abc", LOG_LEVEL="verbose")
    assert result.returncode == EXIT_CONFIG
    assert_clean(result)
    assert [line.split(":")[2].split("=")[0].strip() for line in result.stderr.splitlines()] == [
        "APP_ID", "PORT", "LOG_LEVEL"]


def test_a_database_password_never_reaches_the_terminal(tmp_path):
    result = backend_bot(tmp_path, "serve", DATABASE_URL="mysql://bot:hunter2@db.example/bot")
    assert result.returncode == EXIT_CONFIG
    assert "hunter2" not in result.stderr
    assert "mysql://bot:***@db.example/bot" in result.stderr


def test_an_unreachable_postgresql_is_one_line_naming_host_and_port(tmp_path):
    port = free_port()  # nothing listens there
    url = f"postgresql://bot:hunter2@127.0.0.1:{port}/bot"
    for command in (["serve"], ["jobs"], ["worker"]):
        env = {"DATABASE_URL": url, **app_credentials("s")}
        result = backend_bot(tmp_path, *command, **env)
        assert result.returncode == EXIT_UNAVAILABLE, (command, result.stderr)
        assert_clean(result)
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"backend-bot: cannot reach the database at 127.0.0.1:{port}/bot: ")
        assert "hunter2" not in line


@pytest.mark.parametrize("key", ["garbage", "-----BEGIN RSA PRIVATE KEY-----\\nAAAA\\n-----END RSA PRIVATE KEY-----"])
def test_a_private_key_that_does_not_parse_stops_serve_at_start_up(tmp_path, key):
    result = backend_bot(tmp_path, "serve", APP_ID="1", WEBHOOK_SECRET="s", PRIVATE_KEY=key)
    assert result.returncode == EXIT_CONFIG
    assert_clean(result)
    assert "PRIVATE_KEY: is not a private key in PEM form" in result.stderr
    assert "App's settings page" in result.stderr
    assert "token=" not in result.stderr


def test_a_worker_without_credentials_says_what_it_needs(tmp_path):
    result = backend_bot(tmp_path, "worker")
    assert result.returncode == EXIT_CONFIG
    assert_clean(result)
    assert "APP_ID is not set" in result.stderr and "WEBHOOK_SECRET is not set" in result.stderr


def test_version_and_help_with_examples(tmp_path):
    version = backend_bot(tmp_path, "--version")
    assert version.returncode == 0
    assert re.fullmatch(r"backend-bot \d+\.\d+\.\d+\S*\n", version.stdout)
    for command in ("serve", "worker", "jobs", "receive", "run", "check-config"):
        help_text = backend_bot(tmp_path, command, "--help")
        assert help_text.returncode == 0, help_text.stderr
        assert "examples:" in help_text.stdout, command
        assert f"backend-bot {command}" in help_text.stdout.split("examples:")[1]
        assert "78  a setting is invalid" in help_text.stdout


# ---- a bot that is up says what it is -----------------------------------------------------


def test_serve_opens_with_the_apps_slug_webhook_database_and_workers(process_stack):
    log = process_stack.bot.log()
    app = process_stack.sim.default_app
    assert f"backend-bot: configured as GitHub App {app.id}, slug {app.slug}" in log
    assert (f"backend-bot:   webhook   http://127.0.0.1:{process_stack.bot.port}/api/github/webhooks"
            in log)
    assert "backend-bot:   database  SQLite " + str(process_stack.data_dir.resolve()) in log
    assert "backend-bot:   workers   2" in log
    assert "backend-bot:   model     claude-haiku-4-5 on anthropic" in log
    assert "not ready" not in log
    health = httpx.get(process_stack.bot.url + "/healthz").json()
    assert health["status"] == "ok" and health["problems"] == [] and health["provider"] == "anthropic"


def test_healthz_is_503_naming_the_missing_model_key(tmp_path):
    env = app_credentials("s")
    del env["ANTHROPIC_API_KEY"]
    bot = BotProcess({**env, "BOT_DATA_DIR": str(tmp_path / "data"),
                      "TEST_EVENTS": str(tmp_path / "events")}, tmp_path / "bot.log")
    bot.env.pop("ANTHROPIC_API_KEY", None)
    health = bot.start(healthy=False)
    try:
        answer = httpx.get(bot.url + "/healthz")
        assert answer.status_code == 503
        assert health["status"] == "unavailable" and health["configured"] is True
        assert health["problems"] == ["ANTHROPIC_API_KEY is not set (the agent cannot run without it)"]
    finally:
        bot.stop()


@pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")
def test_healthz_is_503_naming_the_database_while_it_is_down_and_ok_again_after(tmp_path):
    postgres = ThrowawayPostgres()
    url = postgres.start()
    bot = BotProcess({**app_credentials("s"), "DATABASE_URL": url,
                      "BOT_DATA_DIR": str(tmp_path / "data"), "TEST_EVENTS": str(tmp_path / "e")},
                     tmp_path / "bot.log")
    try:
        assert bot.start()["status"] == "ok"
        postgres.halt()
        answer = httpx.get(bot.url + "/healthz", timeout=10)
        assert answer.status_code == 503
        (problem,) = answer.json()["problems"]
        assert problem.startswith(f"cannot reach the database at 127.0.0.1:{postgres.port}/postgres")
        postgres.resume()
        assert httpx.get(bot.url + "/healthz", timeout=10).json()["status"] == "ok"
    finally:
        bot.stop()
        postgres.stop()


# ---- `jobs` --------------------------------------------------------------------------------


def stored_jobs(data_dir: Path, *requests: tuple[str, str]) -> None:
    """Jobs as the webhook stores them, in the data folder an operator's bot would have."""
    import asyncio

    from bot.database import default_url
    from bot.jobstore import JobStore
    from bot.routing import JobRequest

    store = JobStore(default_url(data_dir))
    store.open()
    try:
        asyncio.run(store.submit("d-1", "issues", [JobRequest(kind, key, {}) for kind, key in requests]))
    finally:
        store.close()


def test_jobs_names_the_database_it_read_and_hides_internal_jobs_unless_all(tmp_path):
    stored_jobs(tmp_path / "data", ("issue", "acme/widgets#1"), ("ack", "acme/widgets#1/ack"))
    shown = backend_bot(tmp_path, "jobs")
    assert shown.returncode == 0
    assert_clean(shown)
    assert f"backend-bot: jobs in {(tmp_path / 'data').resolve()}/backend-bot.db" in shown.stderr
    assert "acme/widgets#1" in shown.stdout and "ack" not in shown.stdout
    everything = backend_bot(tmp_path, "jobs", "--all")
    assert "acme/widgets#1/ack" in everything.stdout


def test_jobs_in_a_folder_where_no_bot_ran_says_so_and_creates_nothing(tmp_path):
    result = backend_bot(tmp_path, "jobs")
    assert result.returncode == 1
    assert_clean(result)
    assert "no database at" in result.stderr and "BOT_DATA_DIR" in result.stderr
    assert not (tmp_path / "data").exists()


def test_jobs_state_must_be_one_it_lists(tmp_path):
    stored_jobs(tmp_path / "data", ("issue", "acme/widgets#1"))
    result = backend_bot(tmp_path, "jobs", "--state", "bogus")
    assert result.returncode == 2
    assert_clean(result)
    assert "invalid choice: 'bogus' (choose from 'queued', 'running', 'succeeded', 'failed', 'cancelled')" \
        in result.stderr
    queued = backend_bot(tmp_path, "jobs", "--state", "queued")
    assert queued.returncode == 0 and "acme/widgets#1" in queued.stdout


def test_jobs_never_prints_what_would_drive_a_terminal(tmp_path):
    stored_jobs(tmp_path / "data", ("issue", "acme/widgets#1\x1b]0;owned\x07\x1b[2J"))
    shown = backend_bot(tmp_path, "jobs")
    assert shown.returncode == 0
    assert "acme/widgets#1" in shown.stdout and "\x1b" not in shown.stdout and "\x07" not in shown.stdout
