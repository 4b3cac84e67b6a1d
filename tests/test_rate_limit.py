"""BOT_TRIGGERS_PER_HOUR: one person's triggers per installation and hour. Over the limit a
trigger starts no work; the first refusal of the hour is said once, the later ones are not;
controls never count; the limit frees up as the hour passes (the gate's clock moved)."""

from __future__ import annotations

import pytest

from bot import rate_limits
from bot.database import Database
from bot.jobstore import JobStore
from bot.rate_limits import TriggerGate
from bot.routing import JobRequest
from tests.agent_fakes import FakeAnthropic, finish
from tests.support.in_process import InProcessBot
from tests.support.stack import REPO, Stack, bot_settings

T0 = 1_800_000_000.0


@pytest.fixture
def clock(monkeypatch):
    moment = {"now": T0}
    monkeypatch.setattr(rate_limits, "now", lambda: moment["now"])
    return moment


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/jobs.db"
    else:
        url = request.getfixturevalue("pg_url")
        Database(url).execute("DROP TABLE IF EXISTS bot_jobs, bot_triggers")
    store = JobStore(url)
    store.gate = TriggerGate(20)
    store.open()
    yield store
    store.close()


def work(person: str, number: int = 1, installation: int = 42) -> JobRequest:
    return JobRequest("issue", f"{REPO}#{number}", {"repo": REPO, "installation_id": installation,
                                                     "number": number, "requester": person})


async def submit(store: JobStore, delivery: str, *requests: JobRequest) -> list[str]:
    """The kinds stored for this delivery, in order."""
    stored = await store.submit(delivery, "issues", requests)
    return [store.get(job_id).kind for job_id, _ in stored]


async def test_the_21st_trigger_in_an_hour_is_refused_once_and_the_next_hour_is_free(store, clock):
    for index in range(20):
        clock["now"] = T0 + index * 60
        assert await submit(store, f"d{index}", work("alice", number=index)) == ["issue"]
    control = JobRequest("control", f"{REPO}#1/control", {"repo": REPO, "installation_id": 42, "number": 1,
                                                          "requester": "alice", "command": "status"})
    assert await submit(store, "status", control) == ["control"]  # controls are not counted, nor limited

    clock["now"] = T0 + 30 * 60
    assert await submit(store, "d20", work("Alice")) == ["rate_limited"]  # logins are case-insensitive
    assert await submit(store, "d21", work("alice")) == ["rate_limited"]
    refusals = [job for job in store.list(limit=100) if job.kind == "rate_limited"]
    assert [job.spec["speak"] for job in sorted(refusals, key=lambda j: j.id)] == [True, False]
    assert refusals[0].spec["again_at"] == T0 + 3600  # when the oldest trigger leaves the hour
    assert refusals[0].key == f"{REPO}#1/rate_limited"

    # Another person, and the same person on another installation, have hours of their own.
    assert await submit(store, "d22", work("bob")) == ["issue"]
    assert await submit(store, "d23", work("alice", installation=7)) == ["issue"]
    # An update round the bot starts when alice's push moves the default branch is not hers.
    automatic = JobRequest("update", f"{REPO}#9", {"repo": REPO, "installation_id": 42, "number": 9,
                                                   "requester": "alice", "trigger": "default_branch"})
    assert await submit(store, "push", automatic) == ["update"]
    # Nor is the conversation an answer resumes: it goes on whatever alice's hour holds.
    resumed = work("alice")
    resumed.spec["resume_question"] = 3
    assert await submit(store, "answered", resumed) == ["issue"]
    # A repeat of an accepted delivery is the job it made, not another trigger.
    first = await store.submit("d5", "issues", [work("alice", number=5)])
    assert first == [(store.of_delivery("d5", "issue", f"{REPO}#5").id, False)]

    clock["now"] = T0 + 3600 + 30  # the first trigger has left the hour: one place is free
    assert await submit(store, "d24", work("alice")) == ["issue"]
    assert await submit(store, "d25", work("alice")) == ["rate_limited"]
    clock["now"] = T0 + 2 * 3600 + 30 * 60  # a new hour: told again, once
    stored = [await submit(store, f"e{index}", work("alice")) for index in range(22)]
    assert stored == [["issue"]] * 20 + [["rate_limited"]] * 2
    refusals = sorted((job for job in store.list(limit=200) if job.kind == "rate_limited"), key=lambda j: j.id)
    assert [job.spec["speak"] for job in refusals[-2:]] == [True, False]


@pytest.fixture
def limited_stack(github_sim_server, people, tmp_path, capfd):
    sim, _ = github_sim_server
    with FakeAnthropic([]) as fake:
        bot = InProcessBot(bot_settings(sim, fake, tmp_path / "data", triggers_per_hour=2), tmp_path / "bot.log",
                           transport=sim.transport(), console=capfd)
        try:
            bot.start()
            yield Stack(sim, fake, bot, tmp_path / "data")
        finally:
            bot.stop()


def test_over_the_limit_a_polite_refusal_once_and_no_job(limited_stack, clock):
    stack, sim = limited_stack, limited_stack.sim
    numbers = [sim.add_issue(REPO, f"Task {i}", "Please.", user="alice") for i in range(4)]
    stack.fake.add(finish(title="Nothing to change"), finish(title="Nothing to change"))
    for number in numbers:
        assert stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend")).status_code == 202
    jobs = stack.wait_jobs(4)
    assert [job.kind for job in jobs] == ["issue", "issue", "rate_limited", "rate_limited"]
    assert len(stack.fake.requests) == 2 and stack.fake.remaining == 0
    (told,) = [c["body"] for c in sim.comments_on(REPO, numbers[2]) if "Sorry @alice" in c["body"]]
    assert "asked backend-bot for work 2 times in the last hour" in told
    assert "Please ask again after 09:00 UTC" in told  # an hour after the first trigger (08:00 UTC)
    assert not [c for c in sim.comments_on(REPO, numbers[3]) if c["user"]["login"].endswith("[bot]")]

    # A control is still answered.
    comment = sim.event_issue_comment_created(REPO, numbers[3], "/backend status")
    assert stack.deliver("issue_comment", comment).status_code == 202
    assert stack.wait_jobs(5)[-1].kind == "control"
