"""The whole bot as a user meets it: `backend-bot serve` in its own process on 127.0.0.1,
the GitHub simulator (REST + git over HTTP) and a scripted model, both on 127.0.0.1."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bot.jobstore import Job, JobStore
from tests.agent_fakes import FakeAnthropic
from tests.simulator import GitHubSimulator
from tests.support.processes import BotProcess

REPO = "acme/widgets"
MODEL_KEY = "sk-ant-test-0123456789abcdefghij"


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


@dataclass
class Stack:
    sim: GitHubSimulator
    fake: FakeAnthropic
    bot: BotProcess

    @property
    def hook(self) -> str:
        return self.bot.url + "/api/github/webhooks"

    def deliver(self, event: str, payload: dict, delivery_id: str | None = None):
        return self.sim.deliver(self.hook, self.sim.default_app.webhook_secret, event, payload,
                                delivery_id=delivery_id)

    def jobs(self, *, acks: bool = False) -> list[Job]:
        """The jobs stored, without the acknowledgement jobs unless `acks`."""
        store = JobStore(f"sqlite:///{self.bot.env['BOT_DATA_DIR']}/backend-bot.db")
        try:
            return [job for job in store.list(limit=1000) if acks or job.kind != "ack"]
        finally:
            store.close()

    def wait_jobs(self, count: int, timeout: float = 60.0) -> list[Job]:
        """Wait until at least `count` jobs exist and all of them have ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.jobs()
            if len(jobs) >= count and all(
                    j.state in ("succeeded", "failed", "cancelled") for j in self.jobs(acks=True)):
                return sorted(jobs, key=lambda j: j.id)
            time.sleep(0.1)
        raise AssertionError(f"jobs did not end: {[(j.id, j.state) for j in self.jobs()]}\n"
                             + self.bot.log()[-4000:])

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.sim.repo(REPO).bare, check=True,
                              capture_output=True, text=True).stdout

    def minted_tokens(self) -> list[str]:
        return list(self.sim.tokens)
