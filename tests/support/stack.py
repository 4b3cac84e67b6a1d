"""The whole bot as a user meets it: the GitHub simulator (REST, and git over HTTP on
127.0.0.1), a scripted model on 127.0.0.1, and `backend-bot serve` either in this process
(`InProcessBot`, the `stack` fixture: fast) or in its own (`BotProcess`, the `process_stack`
fixture: for kill -9 and restarts, and whatever reads the process's own environment)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bot.jobstore import Job, JobStore
from tests.agent_fakes import FakeAnthropic
from tests.simulator import GitHubSimulator
from tests.support.in_process import InProcessBot
from tests.support.processes import BotProcess

REPO = "acme/widgets"
MODEL_KEY = "sk-ant-test-0123456789abcdefghij"
WEBHOOK_PATH = "/api/github/webhooks"


def bot_env(sim: GitHubSimulator, fake: FakeAnthropic, data_dir: Path, **extra: str) -> dict:
    overrides = sim.settings_overrides()
    env = {
        "APP_ID": str(overrides["app_id"]),
        "PRIVATE_KEY": overrides["private_key"],
        "WEBHOOK_SECRET": overrides["webhook_secret"],
        "GHE_HOST": overrides["ghe_host"],
        "GHE_PROTOCOL": overrides["ghe_protocol"],
        "ANTHROPIC_BASE_URL": fake.base_url,
        "ANTHROPIC_API_KEY": MODEL_KEY,
        "BOT_DATA_DIR": str(data_dir),
        "BOT_WORKERS": "2",
        "LOG_LEVEL": "debug",
    }
    env.update(extra)
    return env


def bot_settings(sim: GitHubSimulator, fake: FakeAnthropic, data_dir: Path, **extra) -> dict:
    """`bot_env`'s values as settings overrides, for a bot in this process."""
    return {
        **sim.settings_overrides(),
        "anthropic_base_url": fake.base_url,
        "anthropic_api_key": MODEL_KEY,
        "data_dir": data_dir,
        "workers": 2,
        "log_level": "debug",
        # Tests send many triggers as one person: the hourly limit is for the tests of it to set.
        "triggers_per_hour": 100_000,
        **extra,
    }


@dataclass
class Stack:
    sim: GitHubSimulator
    fake: FakeAnthropic
    bot: InProcessBot | BotProcess
    data_dir: Path

    def deliver(self, event: str, payload: dict, delivery_id: str | None = None):
        """Post a delivery signed as GitHub signs it."""
        headers, body = self.sim.webhook_request(self.sim.default_app.webhook_secret, event,
                                                 payload, delivery_id=delivery_id)
        return self.bot.post(WEBHOOK_PATH, content=body, headers=headers)

    def jobs(self, *, acks: bool = False) -> list[Job]:
        """The jobs stored, without the acknowledgement jobs unless `acks`."""
        store = JobStore(f"sqlite:///{self.data_dir}/backend-bot.db")
        try:
            return [job for job in store.list(limit=1000) if acks or job.kind != "ack"]
        finally:
            store.close()

    def wait_jobs(self, count: int, timeout: float = 60.0) -> list[Job]:
        """Wait until at least `count` jobs exist and all of them have ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # One reading for both the count and the states, so a job is never returned as
            # it was before the reading that saw it end.
            every = self.jobs(acks=True)
            jobs = [job for job in every if job.kind != "ack"]
            if len(jobs) >= count and all(
                    j.state in ("succeeded", "failed", "cancelled") for j in every):
                return sorted(jobs, key=lambda j: j.id)
            time.sleep(0.1)
        raise AssertionError(f"jobs did not end: {[(j.id, j.state) for j in self.jobs()]}\n"
                             + self.bot.log()[-4000:])

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.sim.repo(REPO).bare, check=True,
                              capture_output=True, text=True).stdout

    def minted_tokens(self) -> list[str]:
        return list(self.sim.tokens)
