"""The durable engine in a real server process: order per key, parallelism across keys,
retries, failures, cancellation, and kill -9."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time

import pytest

from bot.jobstore import JobStore
from tests.support import payloads
from tests.support.deliveries import deliver
from tests.support.kinds import read_events
from tests.support.processes import ROOT, BotProcess, app_credentials
from tests.support.waiting import wait_for

SECRET = "engine-secret"


@pytest.fixture
def bot(tmp_path):
    process = BotProcess(
        {
            **app_credentials(SECRET),
            "BOT_DATA_DIR": str(tmp_path / "data"),
            "BOT_WORKERS": "4",
            "TEST_EVENTS": str(tmp_path / "events.jsonl"),
        },
        tmp_path / "server.log",
    )
    process.start()
    yield process
    process.stop()


def events(bot) -> list[dict]:
    return read_events(__import__("pathlib").Path(bot.env["TEST_EVENTS"]))


def store(bot) -> JobStore:
    return JobStore(f"sqlite:///{bot.env['BOT_DATA_DIR']}/backend-bot.db")


def trigger(bot, number: int, title: str) -> int:
    response = deliver(bot.url + "/api/github/webhooks", "issues",
                       payloads.issues_labeled(number, title), SECRET)
    assert response.status_code == 202, response.text
    return response.json()["jobs"][0]


def jobs_in(bot, ids, states=("succeeded", "failed", "cancelled")):
    jobs = store(bot).list(limit=1000)
    by_id = {job.id: job for job in jobs}
    if all(i in by_id and by_id[i].state in states for i in ids):
        return [by_id[i] for i in ids]
    return None


def test_one_job_at_a_time_per_key_in_arrival_order_and_keys_in_parallel(bot):
    # Six jobs on two keys, all sent within the same second (the SQLite tie case).
    ids = []
    for i in range(3):
        ids.append(trigger(bot, 1, f"sleep=0.4 n{i}"))
        ids.append(trigger(bot, 2, f"sleep=0.4 n{i}"))
    wait_for(lambda: jobs_in(bot, ids), what="all six jobs")
    spans: dict[int, dict] = {}
    for event in events(bot):
        spans.setdefault(event["job"], {})[event["phase"]] = event
    for key in ("acme/widgets#1", "acme/widgets#2"):
        mine = sorted((j for j in spans if spans[j]["start"]["key"] == key),
                      key=lambda j: spans[j]["start"]["t"])
        # Arrival order: job ids are handed out in arrival order.
        assert mine == sorted(mine)
        for earlier, later in itertools.pairwise(mine):
            assert spans[earlier]["end"]["t"] <= spans[later]["start"]["t"], "overlap within a key"
    # Different keys ran side by side: some job of key 1 overlapped some job of key 2.
    one = [s for s in spans.values() if s["start"]["key"] == "acme/widgets#1"]
    two = [s for s in spans.values() if s["start"]["key"] == "acme/widgets#2"]
    assert any(a["start"]["t"] < b["end"]["t"] and b["start"]["t"] < a["end"]["t"]
               for a in one for b in two)


def test_transient_failures_are_retried_then_succeed(bot):
    job_id = trigger(bot, 3, "transient=2")
    (job,) = wait_for(lambda: jobs_in(bot, [job_id]), what="the flaky job")
    assert job.state == "succeeded"
    assert sum(1 for e in events(bot) if e.get("job") == job_id and e["phase"] == "try") == 3


def test_github_failures_the_transport_gave_up_on_are_retried_by_the_step(bot):
    # Each job's step fails twice with the error bot.github raises for that answer.
    ids = [trigger(bot, 20 + i, f"transient=2 github={failure}")
           for i, failure in enumerate(["502", "429", "network", "404"])]
    jobs = wait_for(lambda: jobs_in(bot, ids), what="the jobs failing on GitHub")

    def tries(job_id):
        return sum(1 for e in events(bot) if e.get("job") == job_id and e["phase"] == "try")

    assert [job.state for job in jobs] == ["succeeded"] * 3 + ["failed"]
    assert [tries(job_id) for job_id in ids] == [3, 3, 3, 1]
    assert jobs[-1].error == "NotFound: POST /repos/acme/widgets/pulls -> 404: Not Found"


def test_a_final_failure_is_recorded_with_its_reason(bot):
    job_id = trigger(bot, 4, "fail")
    (job,) = wait_for(lambda: jobs_in(bot, [job_id]), what="the failing job")
    assert job.state == "failed"
    assert "the test asked this job to fail" in job.error


def test_cancel_a_running_job_from_the_command_line(bot):
    job_id = trigger(bot, 5, "sleep=30")
    next_id = trigger(bot, 5, "sleep=0.1 after-cancel")
    wait_for(lambda: any(e.get("job") == job_id and e["phase"] == "start" for e in events(bot)),
             what="the long job to start")
    cancelled_at = time.time()
    result = subprocess.run(
        [sys.executable, "-m", "bot", "jobs", "--cancel", str(job_id)],
        cwd=ROOT, env=bot.env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"job {job_id}: cancelled" in result.stdout
    first, second = wait_for(lambda: jobs_in(bot, [job_id, next_id]), what="both jobs")
    assert first.state == "cancelled"
    assert second.state == "succeeded"
    assert not any(e.get("job") == job_id and e["phase"] == "end" for e in events(bot))
    # The next job of the key started only after the cancelled one was stopped.
    start = next(e for e in events(bot) if e.get("job") == next_id and e["phase"] == "start")
    assert start["t"] >= cancelled_at
    assert start["t"] - cancelled_at < 10


def test_kill_9_mid_job_then_restart_completes_it_exactly_once(bot):
    job_id = trigger(bot, 6, "effects sleep=3")
    wait_for(lambda: any(e.get("job") == job_id and e["phase"] == "effect-1-checkpointed"
                         for e in events(bot)), what="the first effect, checkpointed")
    bot.kill()
    assert store(bot).get(job_id).state == "running"
    bot.start()
    (job,) = wait_for(lambda: jobs_in(bot, [job_id]), timeout=60, what="the resumed job")
    assert job.state == "succeeded"
    assert job.attempts == 2
    phases = [e["phase"] for e in events(bot) if e.get("job") == job_id]
    assert phases.count("effect-1") == 1, phases  # checkpointed: not run again
    assert phases.count("effect-2") == 1, phases
    assert phases.count("end") == 1, phases


def test_a_trigger_accepted_just_before_a_crash_is_not_lost(bot):
    # The 202 means stored: kill the process right after it, before the job can run.
    job_id = trigger(bot, 7, "sleep=0.1 right-before-crash")
    bot.kill()
    bot.start()
    (job,) = wait_for(lambda: jobs_in(bot, [job_id]), timeout=60, what="the job after restart")
    assert job.state == "succeeded"


def test_jobs_command_lists_jobs_as_json(bot):
    job_id = trigger(bot, 8, "fail")
    wait_for(lambda: jobs_in(bot, [job_id]), what="the job")
    result = subprocess.run([sys.executable, "-m", "bot", "jobs", "--json"], cwd=ROOT,
                            env=bot.env, capture_output=True, text=True, timeout=60)
    listed = {job["id"]: job for job in json.loads(result.stdout)}
    job = listed[job_id]
    assert job["key"] == "acme/widgets#8" and job["state"] == "failed"
    assert job["attempts"] == 1 and job["error"] and job["created_at"] and job["finished_at"]
    table = subprocess.run([sys.executable, "-m", "bot", "jobs"], cwd=ROOT, env=bot.env,
                           capture_output=True, text=True, timeout=60).stdout
    assert "acme/widgets#8" in table and "failed" in table


def test_a_job_interrupted_too_often_is_given_up_and_reported_never_left_running(tmp_path):
    """Kills are not the job's fault, but a job that every run of the process dies in must end:
    past the attempt limit it fails with the reason, and its requester is told."""
    bot = BotProcess({**app_credentials(SECRET),
                      "BOT_DATA_DIR": str(tmp_path / "data"), "BOT_WORKERS": "1",
                      "TEST_EVENTS": str(tmp_path / "events.jsonl"), "TEST_MAX_ATTEMPTS": "2"},
                     tmp_path / "server.log")
    bot.start()
    try:
        job_id = trigger(bot, 9, "sleep=60")
        for attempt in (1, 2):
            wait_for(lambda attempt=attempt: any(e.get("job") == job_id and e["phase"] == "start"
                                                 and e.get("attempt") == attempt for e in events(bot)),
                     timeout=60, what=f"attempt {attempt}")
            bot.kill()
            bot.start()
        (job,) = wait_for(lambda: jobs_in(bot, [job_id]), timeout=60, what="the job's end")
        assert job.state == "failed"
        assert job.error == "abandoned: it was interrupted 2 times"
        reported = wait_for(lambda: [e for e in events(bot) if e.get("job") == job_id
                                     and e["phase"] == "reported-abandoned"], timeout=30,
                            what="the report")
        assert reported[0]["reason"] == "it was interrupted 2 times"
        assert len([e for e in events(bot) if e.get("job") == job_id
                    and e["phase"] == "start"]) == 2  # not run a third time
    finally:
        bot.stop()
