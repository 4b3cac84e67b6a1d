"""Acknowledgements and controls never wait for an agent slot.

One worker (`BOT_WORKERS=1`) is held by an agent run in a long shell command; meanwhile a second
issue is acknowledged, `/backend status` is answered and `/backend cancel` stops the held run
(its process tree gone, no pull request), on one machine (SQLite) and across two processes on
PostgreSQL. The real `backend-bot` processes, the GitHub simulator and a scripted model.

The waits are generous: a broken bot would keep the second issue unanswered for the whole held
run (five minutes); the latencies themselves are measured by `bench/reliability.py`.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from bot.jobstore import JobStore
from tests.agent_fakes import FakeAnthropic, tool_use
from tests.support import postgres
from tests.support.processes import BotProcess
from tests.support.stack import REPO, bot_env
from tests.support.waiting import wait_for

HELD = "sleep 300  # held-run-marker"
PROMPT = 15.0  # far below the held run, far above what a loaded CI machine needs


def held_processes() -> list[str]:
    found = subprocess.run(["pgrep", "-f", "held-run-marker"], capture_output=True, text=True)
    return found.stdout.split()


def run_scenario(sim, fake, processes: list[BotProcess], database_url: str) -> None:
    web = processes[0]
    hook = web.url + "/api/github/webhooks"
    secret = sim.default_app.webhook_secret
    first = sim.add_issue(REPO, "Held work", "", user="alice")
    second = sim.add_issue(REPO, "Waiting work", "", user="alice")
    fake.add(tool_use("Bash", command=HELD, timeout=600_000))
    sim.deliver(hook, secret, "issues", sim.event_issues_labeled(REPO, first, "backend",
                                                                 sender="alice"))
    wait_for(held_processes, timeout=60, what="the held run's shell command")

    started = time.monotonic()
    sim.deliver(hook, secret, "issues", sim.event_issues_labeled(REPO, second, "backend",
                                                                 sender="alice"))
    queued = wait_for(lambda: [c for c in sim.comments_on(REPO, second)
                               if "backend-bot:status" in c["body"]], timeout=PROMPT,
                      what="the second issue's status comment")
    assert "Queued" in queued[0]["body"] and "worker" in queued[0]["body"], queued[0]["body"]
    assert "eyes" in {r["content"] for r in sim.reactions_on(REPO, "issue", second)}
    assert time.monotonic() - started < PROMPT

    sim.deliver(hook, secret, "issue_comment", sim.event_issue_comment_created(
        REPO, first, "/backend status", sender="alice"))
    answer = wait_for(lambda: [c for c in sim.comments_on(REPO, first)
                               if "backend-bot jobs for" in c["body"]], timeout=PROMPT,
                      what="the answer to /backend status")
    assert "running" in answer[0]["body"]

    asked = time.monotonic()
    sim.deliver(hook, secret, "issue_comment", sim.event_issue_comment_created(
        REPO, first, "/backend cancel", sender="alice"))
    store = JobStore(database_url)
    try:
        def held_job():
            return next(j for j in store.list(limit=50) if j.kind == "issue"
                        and j.spec["number"] == first)

        wait_for(lambda: held_job().state == "cancelled", timeout=PROMPT, what="the cancel")
        wait_for(lambda: not held_processes(), timeout=PROMPT, what="the held process tree gone")
        assert time.monotonic() - asked < PROMPT
        wait_for(lambda: any("Cancelled" in c["body"] for c in sim.comments_on(REPO, first)
                             if "backend-bot:status" in c["body"]), timeout=PROMPT,
                 what="the status saying cancelled")
    finally:
        store.close()
    assert not [p for p in sim.pulls(REPO) if f"issue-{first}-" in p["head"]["ref"]]


@pytest.fixture
def model():
    with FakeAnthropic([]) as fake:
        yield fake
    subprocess.run(["pkill", "-f", "held-run-marker"], check=False)


def test_one_machine_one_worker(github_sim_server, model, tmp_path):
    sim, _ = github_sim_server
    sim.add_user("alice", permission="write", repo=REPO)
    bot = BotProcess(bot_env(sim, model, tmp_path / "data", BOT_WORKERS="1"),
                     tmp_path / "bot.log", module="bot", args=["serve"])
    bot.start()
    try:
        run_scenario(sim, model, [bot], f"sqlite:///{tmp_path / 'data'}/backend-bot.db")
    finally:
        bot.stop()


@pytest.mark.postgres
@pytest.mark.skipif(postgres.skip_reason() is not None, reason=str(postgres.skip_reason()))
def test_two_processes_on_postgresql(github_sim_server, model, tmp_path):
    sim, _ = github_sim_server
    sim.add_user("alice", permission="write", repo=REPO)
    server = postgres.ThrowawayPostgres()
    server.start()
    url = server.create_database("controls")
    common = {"DATABASE_URL": url, "BOT_WORKERS": "1"}
    web = BotProcess(bot_env(sim, model, tmp_path / "web", BOT_EXECUTOR_ID="web", **common),
                     tmp_path / "web.log", module="bot", args=["serve", "--no-workers"])
    worker = BotProcess(bot_env(sim, model, tmp_path / "worker", BOT_EXECUTOR_ID="worker",
                                **common), tmp_path / "worker.log", module="bot", args=["worker"])
    try:
        web.start()
        worker.launch()
        run_scenario(sim, model, [web, worker], url)
    finally:
        worker.stop()
        web.stop()
        server.stop()
