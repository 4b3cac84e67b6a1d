"""Scale-out on a real PostgreSQL: one `serve --no-workers` and `worker` processes, each with
its own BOT_DATA_DIR and BOT_EXECUTOR_ID, all on one DATABASE_URL.

Order and no-overlap per key across processes, takeover of a worker killed with -9, a
restarted worker resuming its own job, and cancellation from the command line.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.executors import CHECK_INTERVAL, DEAD_AFTER, HEARTBEAT_INTERVAL
from bot.jobstore import workflow_id_for
from tests.support import payloads
from tests.support.cluster import Cluster as BaseCluster
from tests.support.deliveries import deliver
from tests.support.kinds import read_events
from tests.support.postgres import ThrowawayPostgres, skip_reason
from tests.support.processes import ROOT
from tests.support.waiting import wait_for
from tests.support.worker_main import WorkerProcess

_SKIP = skip_reason()
if _SKIP is not None:
    pytest.skip(f"no PostgreSQL to test scale-out against: {_SKIP}", allow_module_level=True)

SECRET = "scale-secret"
FINAL = ("succeeded", "failed", "cancelled")
# A dead worker's job is resumed within this (bot/executors.py): silence for DEAD_AFTER, seen
# at the next check, plus a heartbeat period of phase and the queue's polling.
TAKEOVER_BOUND = DEAD_AFTER + CHECK_INTERVAL + HEARTBEAT_INTERVAL + 2.0


@pytest.fixture(scope="module")
def pg():
    server = ThrowawayPostgres()
    server.start()
    yield server
    server.stop()


class Cluster(BaseCluster):
    """One web process (`serve --no-workers`) and N workers on one database and one events file."""

    def __init__(self, tmp_path: Path, database_url: str, workers: int) -> None:
        super().__init__(tmp_path, database_url, workers, secret=SECRET)

    def start(self) -> None:
        super().start()
        health = self.web_health()
        assert health["database"] == "postgresql" and health["workers"] == 0, health

    def web_health(self) -> dict:
        import httpx

        return httpx.get(self.web.url + "/healthz", timeout=5).json()

    def trigger(self, number: int, title: str) -> int:
        response = deliver(self.web.url + "/api/github/webhooks", "issues",
                           payloads.issues_labeled(number, title), SECRET)
        assert response.status_code == 202, response.text
        return response.json()["jobs"][0]

    def events(self, job_id: int | None = None) -> list[dict]:
        found = read_events(self.events_path)
        return found if job_id is None else [e for e in found if e.get("job") == job_id]

    def wait_for_event(self, job_id: int, phase: str, timeout: float = 30.0, count: int = 1) -> dict:
        matching = wait_for(
            lambda: [e for e in self.events(job_id) if e["phase"] == phase][count - 1:] or None,
            timeout, f"job {job_id} to record {phase} (x{count})", self.logs,
        )
        return matching[0]

    def wait_checkpointed(self, job_id: int, step: str, timeout: float = 30.0) -> None:
        """Wait until DBOS has recorded the step's result: the job's event is written inside
        the step, a moment before the checkpoint, and a kill in between would rightly run
        the step again (steps are at-least-once; exactly-once holds for recorded ones)."""
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            wait_for(
                lambda: conn.execute(
                    "SELECT 1 FROM dbos.operation_outputs WHERE workflow_uuid = %s "
                    "AND function_name = %s", (workflow_id_for(job_id), step),
                ).fetchone(),
                timeout, f"job {job_id}'s step {step} to be checkpointed", self.logs,
            )

    def wait_final(self, ids: list[int], timeout: float = 60.0) -> list:
        def final():
            jobs = [self.store.get(i) for i in ids]
            return jobs if all(j is not None and j.state in FINAL for j in jobs) else None

        return wait_for(final, timeout, f"{len(ids)} jobs to finish", self.logs)

    def worker_by_pid(self, pid: int) -> WorkerProcess:
        return next(w for w in self.workers if w.pid == pid)


@pytest.fixture
def cluster_of(pg, tmp_path, request):
    started: list[Cluster] = []

    def make(workers: int) -> Cluster:
        name = "t_" + request.node.name.removeprefix("test_")[:50]
        cluster = Cluster(tmp_path, pg.create_database(name), workers)
        started.append(cluster)
        cluster.start()
        return cluster

    yield make
    for cluster in started:
        cluster.stop()


def spans_of(events: list[dict]) -> dict[int, dict[str, list[dict]]]:
    spans: dict[int, dict[str, list[dict]]] = {}
    for event in events:
        spans.setdefault(event["job"], {}).setdefault(event["phase"], []).append(event)
    return spans


def test_many_triggers_over_two_workers_keep_order_and_one_job_per_key(cluster_of):
    cluster = cluster_of(2)
    sent: dict[str, list[int]] = {}
    ids = []
    for i in range(100):
        number = 1 + i % 20
        job_id = cluster.trigger(number, f"sleep=0.05 n{i}")
        ids.append(job_id)
        sent.setdefault(f"acme/widgets#{number}", []).append(job_id)
    jobs = cluster.wait_final(ids, timeout=60)
    assert [job.state for job in jobs] == ["succeeded"] * 100, [
        (job.id, job.state, job.error) for job in jobs if job.state != "succeeded"]

    spans = spans_of(cluster.events())
    for job_id in ids:
        assert len(spans[job_id]["start"]) == 1 and len(spans[job_id]["end"]) == 1, spans[job_id]
    for key, key_ids in sent.items():
        assert key_ids == sorted(key_ids)  # ids are handed out in arrival order
        started = sorted(key_ids, key=lambda j: spans[j]["start"][0]["t"])
        assert started == key_ids, f"{key} ran out of arrival order: {started}"
        for earlier, later in itertools.pairwise(key_ids):
            assert spans[earlier]["end"][0]["t"] <= spans[later]["start"][0]["t"], (
                f"jobs {earlier} and {later} of {key} overlapped")
    ran_on = {spans[j]["start"][0]["pid"] for j in ids}
    per_worker = {w.pid: sum(1 for j in ids if spans[j]["start"][0]["pid"] == w.pid)
                  for w in cluster.workers}
    print(f"\njobs per worker pid: {per_worker}")
    assert ran_on == {w.pid for w in cluster.workers}, per_worker


def test_kill_9_of_a_worker_mid_job_the_other_takes_over_exactly_once(cluster_of):
    cluster = cluster_of(2)
    job_id = cluster.trigger(30, "effects sleep=4")
    effect = cluster.wait_for_event(job_id, "effect-1")
    cluster.wait_checkpointed(job_id, "effect-1")
    victim = cluster.worker_by_pid(effect["pid"])
    survivor = next(w for w in cluster.workers if w is not victim)
    killed_at = time.time()
    victim.kill()
    assert cluster.store.get(job_id).state == "running"

    (job,) = cluster.wait_final([job_id], timeout=TAKEOVER_BOUND + 15)
    resumed = cluster.wait_for_event(job_id, "start", count=2)
    takeover = resumed["t"] - killed_at
    print(f"\ntakeover after kill -9: {takeover:.2f}s (bound {TAKEOVER_BOUND:.0f}s)")
    assert job.state == "succeeded", job.error
    assert job.attempts == 2
    phases = [e["phase"] for e in cluster.events(job_id)]
    assert phases.count("effect-1") == 1, phases  # a completed step is not run again
    assert phases.count("effect-2") == 1, phases
    assert phases.count("end") == 1, phases
    assert resumed["pid"] == survivor.pid
    # Not before the victim could have been declared dead, and within the stated bound.
    assert DEAD_AFTER - HEARTBEAT_INTERVAL - 1 <= takeover <= TAKEOVER_BOUND, takeover


def test_a_restarted_worker_resumes_its_own_unfinished_job(cluster_of):
    cluster = cluster_of(1)
    (worker,) = cluster.workers
    job_id = cluster.trigger(31, "effects sleep=3")
    effect = cluster.wait_for_event(job_id, "effect-1")
    assert effect["pid"] == worker.pid
    cluster.wait_checkpointed(job_id, "effect-1")
    worker.kill()
    assert cluster.store.get(job_id).state == "running"
    worker.start()  # same BOT_DATA_DIR and BOT_EXECUTOR_ID
    restarted_at = time.time()

    (job,) = cluster.wait_final([job_id], timeout=30)
    resumed = cluster.wait_for_event(job_id, "start", count=2)
    assert job.state == "succeeded", job.error
    assert job.attempts == 2
    assert resumed["pid"] == worker.pid
    # Resumed by its own executor at start-up, not by a takeover after DEAD_AFTER.
    assert resumed["t"] - restarted_at < DEAD_AFTER / 2
    phases = [e["phase"] for e in cluster.events(job_id)]
    assert phases.count("effect-1") == 1, phases
    assert phases.count("effect-2") == 1, phases
    assert phases.count("end") == 1, phases


def test_cancel_from_the_command_line_while_a_worker_runs_the_job(cluster_of):
    cluster = cluster_of(2)
    long_id = cluster.trigger(32, "sleep=30")
    next_id = cluster.trigger(32, "sleep=0.1 after-cancel")
    started = cluster.wait_for_event(long_id, "start")
    cancelled_at = time.time()
    result = subprocess.run(
        [sys.executable, "-m", "bot", "jobs", "--cancel", str(long_id)],
        cwd=ROOT, env=cluster.web.env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"job {long_id}: cancelled" in result.stdout

    first, second = cluster.wait_final([long_id, next_id], timeout=30)
    assert first.state == "cancelled"
    assert second.state == "succeeded", second.error
    spans = spans_of(cluster.events())
    assert "end" not in spans[long_id]
    (stopped,) = spans[long_id]["stopped"]
    assert stopped["pid"] == started["pid"]
    (next_start,) = spans[next_id]["start"]
    # The key's next job started only after the cancelled one had really stopped.
    assert next_start["t"] >= stopped["t"] >= cancelled_at
    assert next_start["t"] - cancelled_at < 10
    print(f"\ncancel took {stopped['t'] - cancelled_at:.2f}s to stop the job; next job ran on "
          f"{'the same' if next_start['pid'] == started['pid'] else 'the other'} worker")
