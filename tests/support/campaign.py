"""The reliability campaign's scenarios, shared by the suite (small) and `bench/reliability.py`
(full size): real `backend-bot serve` processes, the GitHub simulator and a scripted model.

- `fuzz`: signed hostile deliveries (tests/webhook_fuzz.py); every answer must be 200/202/400.
- `Fleet`: N issues labelled at once, each run by the scripted agent (a file, then FinishWork),
  optionally under the simulator's chaos (5xx before and after a write takes effect, rate
  limits) and `kill -9` of the bot at the moments that matter; `outcome()` then counts, per
  issue, pull requests, work-log entries and commits: each must be exactly one, no job stuck.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.jobstore import JobStore
from tests.agent_fakes import FakeAnthropic, finish, tool_use
from tests.simulator import GitHubSimulator, gitrepo
from tests.support.processes import BotProcess
from tests.support.stack import REPO, bot_env

FINAL = ("succeeded", "failed", "cancelled")
_ISSUE = re.compile(r"issue #(\d+)")


def agent_turn(request: dict) -> dict:
    """The scripted agent for any issue: write `notes/issue-N.txt`, then FinishWork."""
    first = request["messages"][0]["content"]
    text = first if isinstance(first, str) else " ".join(b.get("text", "") for b in first)
    number = _ISSUE.search(text).group(1)
    last = request["messages"][-1]["content"]
    answered = isinstance(last, list) and any(b.get("type") == "tool_result" for b in last)
    if not answered:
        return tool_use("Write", file_path=f"notes/issue-{number}.txt", content=f"note {number}\n")
    return finish(title=f"Add the note for issue {number}",
                  task_summary=f"Added notes/issue-{number}.txt.")


@dataclass
class Outcome:
    issues: int
    prs: dict[int, int] = field(default_factory=dict)  # issue -> pull requests
    entries: dict[int, int] = field(default_factory=dict)  # issue -> log entries on its branch
    commits: dict[int, int] = field(default_factory=dict)  # issue -> commits on its branch
    stuck: list[int] = field(default_factory=list)  # jobs not final
    failed: list[tuple[int, str]] = field(default_factory=list)

    @property
    def lost(self) -> list[int]:
        return [n for n, count in self.prs.items() if count == 0]

    @property
    def doubled(self) -> list[int]:
        return sorted({n for counts in (self.prs, self.entries, self.commits)
                       for n, count in counts.items() if count > 1})

    @property
    def perfect(self) -> bool:
        return not (self.lost or self.doubled or self.stuck or self.failed) and all(
            count == 1 for counts in (self.entries, self.commits) for count in counts.values())


class Fleet:
    """One bot process and `count` issues to turn into pull requests."""

    def __init__(self, sim: GitHubSimulator, fake: FakeAnthropic, root: Path, count: int, *,
                 workers: int = 4) -> None:
        self.sim, self.fake, self.root = sim, fake, root
        sim.add_user("alice", permission="write", repo=REPO)
        fake.add(*[agent_turn] * (count * 6 + 50))
        self.bot = BotProcess(bot_env(sim, fake, root / "data", BOT_WORKERS=str(workers),
                                      LOG_LEVEL="info"), root / "bot.log", module="bot",
                              args=["serve"])
        self.numbers = [sim.add_issue(REPO, f"Note {i}", "Add a note.", user="alice")
                        for i in range(count)]
        self.kills = 0

    @property
    def hook(self) -> str:
        return self.bot.url + "/api/github/webhooks"

    def start(self) -> None:
        self.bot.start()

    def label_all(self) -> None:
        for number in self.numbers:
            self._deliver(number)

    def _deliver(self, number: int) -> None:
        payload = self.sim.event_issues_labeled(REPO, number, "backend", sender="alice")
        delivery_id = f"label-{number}"
        for _ in range(20):  # as GitHub does: redeliver until the bot answers
            try:
                response = self.sim.deliver(self.hook, self.sim.default_app.webhook_secret,
                                            "issues", payload, delivery_id=delivery_id)
                if response.status_code in (200, 202):
                    return
            except Exception:
                pass
            time.sleep(0.5)
        raise AssertionError(f"issue {number} was never accepted")

    def jobs(self):
        store = JobStore(f"sqlite:///{self.root / 'data'}/backend-bot.db")
        try:
            return store.list(limit=10_000)
        finally:
            store.close()

    def wait_done(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.jobs()
            work = [j for j in jobs if j.kind == "issue"]
            if len(work) >= len(self.numbers) and all(j.state in FINAL for j in jobs):
                return True
            time.sleep(0.25)
        return False

    def kill_at(self, moment: str, rng: random.Random, timeout: float = 30.0) -> bool:
        """kill -9 the bot right after `moment` happens ("write": a GitHub write, "push", "checkout"
        (a fetch of a repository), or "random": after a random delay); then start it again.
        False when the moment did not come (the work may be over)."""
        marks = {"write": ("POST", "PATCH"), "push": ("git-receive-pack",),
                 "checkout": ("git-upload-pack",)}
        seen = len(self.sim.requests)
        deadline = time.monotonic() + (rng.uniform(0.05, 2.0) if moment == "random" else timeout)
        while time.monotonic() < deadline and moment != "random":
            if any(self._is(moment, marks, r) for r in self.sim.requests[seen:]):
                break
            time.sleep(0.005)
        else:
            if moment != "random":
                return False
            time.sleep(max(0.0, deadline - time.monotonic()))
        self.restart()
        return True

    def restart(self) -> None:
        """kill -9, then start again; a start that fails says why (the bot's last words)."""
        self.bot.kill()
        self.kills += 1
        try:
            self.bot.start()
        except RuntimeError as error:
            raise RuntimeError(f"{error}; its log ends:\n{self.bot.log()[-3000:]}") from None

    @staticmethod
    def _is(moment: str, marks: dict, request) -> bool:
        if moment == "write":
            return request.method in marks["write"] and request.path.startswith("/repos/")
        return any(mark in request.path for mark in marks[moment])

    def outcome(self) -> Outcome:
        result = Outcome(issues=len(self.numbers))
        pulls = self.sim.pulls(REPO)
        bare = self.sim.repo(REPO).bare
        for number in self.numbers:
            mine = [p for p in pulls if p["head"]["ref"].startswith(f"backend/issue-{number}-")]
            result.prs[number] = len(mine)
            branches = [b for b in self.sim.branches(REPO) if b.startswith(f"backend/issue-{number}-")]
            log = "".join(self.sim.read_file(REPO, "BACKEND_WORK_LOG.md", ref=b) or "" for b in branches)
            result.entries[number] = log.count(f"(#{number})")
            result.commits[number] = sum(gitrepo.count_commits(bare, "main", b) for b in branches)
        for job in self.jobs():
            if job.state not in FINAL:
                result.stuck.append(job.id)
            elif job.state != "succeeded" and job.kind == "issue":
                result.failed.append((job.id, job.error or ""))
        return result


def fuzz(url: str, secret: str, count: int, seed: int,
         progress: Callable[[int], None] | None = None) -> dict[int, int]:
    """Post `count` hostile signed deliveries; the answers by status code."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as seeded

    from tests.support.deliveries import deliver
    from tests.webhook_fuzz import hostile_delivery

    answers: dict[int, int] = {}

    @seeded(seed)
    @settings(max_examples=count, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(hostile_delivery())
    def post(delivery) -> None:
        event, body = delivery
        try:
            status = deliver(url, event, body, secret).status_code
        except Exception:
            status = 0  # no answer at all
        answers[status] = answers.get(status, 0) + 1
        if progress is not None:
            progress(sum(answers.values()))

    post()
    return answers
