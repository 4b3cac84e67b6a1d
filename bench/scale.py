"""Scale-out benchmark: short jobs drained by one and by two `worker` processes on PostgreSQL,
then the takeover time after kill -9 of a worker mid-job.

    .venv/bin/python bench/scale.py                  # 300 jobs of 20 ms over 100 keys
    .venv/bin/python bench/scale.py --jobs 1000 --keys 250 --sleep 0 --concurrency 8

Setup: a throwaway PostgreSQL (tests/support/postgres.py), one `serve --no-workers` process
and 1 or 2 worker processes (tests/support/worker_main.py: the engine exactly as
`backend-bot worker` runs it, with the test job kinds; the queue's polling interval defaults
to the real worker's, Engine's default), each with its own BOT_DATA_DIR and BOT_EXECUTOR_ID.
Jobs are the `noop` kind (sleeps --sleep seconds, records nothing), over --keys keys.

Two figures per worker count, each on a fresh database:
  * drain: the jobs are written straight into the jobs table with JobStore.submit (not
    through the webhook, so the load generator is not what is measured) while no worker runs;
    the web process forwards the first job of each key to the queue (the forwarder offers the
    queue one waiting job per key); then the workers start. jobs/s =
    N / (last finished_at - first started_at), from the jobs table: worker start-up excluded.
  * online: the workers are running; N jobs are submitted the same way at once; jobs/s =
    N / (last finished_at - submit time): includes forwarding by the web process.

Takeover: web + 2 workers; a job `effects sleep=3` (test kind `issue`) is submitted; when it has
recorded its first (checkpointed) effect, the worker running it is killed with -9; the time
from the kill to the job starting again on the other worker, and to its end, is printed,
against the bound of bot/executors.py. Missed expectations are reported, never an exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.executors import CHECK_INTERVAL, DEAD_AFTER, HEARTBEAT_INTERVAL
from bot.jobstore import workflow_id_for
from bot.routing import JobRequest
from tests.support.cluster import Cluster as BaseCluster
from tests.support.kinds import read_events
from tests.support.postgres import ThrowawayPostgres, skip_reason

SECRET = "bench-secret"


class Cluster(BaseCluster):
    def __init__(self, root: Path, database_url: str, workers: int, args: argparse.Namespace):
        super().__init__(root, database_url, workers, secret=SECRET, bot_workers=args.concurrency,
                         worker_args=["--polling-interval", str(args.polling_interval)],
                         log_level="warning")

    def submit(self, requests: list[JobRequest]) -> tuple[list[int], float]:
        """Store the jobs in one group commit, as a burst of webhooks would be."""
        self.store.open()

        async def go() -> tuple[list[int], float]:
            submitted = time.time()
            stored = await asyncio.gather(*(
                self.store.submit(f"bench-{submitted}-{i}", "issues", [request])
                for i, request in enumerate(requests)))
            return [job_id for ((job_id, _),) in stored], submitted

        return asyncio.run(go())

    def count(self, where: str) -> int:
        return self.store.database.execute(f"SELECT COUNT(*) FROM bot_jobs WHERE {where}")[0][0]

    def wait(self, where: str, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count(where) >= n:
                return True
            time.sleep(0.05)
        return False

    def span(self) -> tuple[float, float]:
        return self.store.database.execute(
            "SELECT MIN(started_at), MAX(finished_at) FROM bot_jobs WHERE state = 'succeeded'")[0]


def _default_polling() -> float:
    import inspect

    from bot.engine import Engine

    return inspect.signature(Engine.__init__).parameters["polling_interval"].default


def noop_jobs(n: int, keys: int, sleep: float) -> list[JobRequest]:
    return [JobRequest("noop", f"bench/scale#{i % keys}", {"sleep": sleep}) for i in range(n)]


def drain(pg: ThrowawayPostgres, root: Path, workers: int, args) -> float | None:
    cluster = Cluster(root, pg.create_database(f"drain{workers}"), workers, args)
    try:
        cluster.web.start()
        ids, _ = cluster.submit(noop_jobs(args.jobs, args.keys, args.sleep))
        # The forwarder offers the queue one waiting job per key: the head of each key.
        heads = min(args.keys, len(ids))
        if not cluster.wait("forwarded = 1", heads, 120):
            print(f"  drain, {workers} worker(s): the web process did not forward the "
                  f"{heads} first jobs of the keys")
            return None
        cluster.start(web=False)
        if not cluster.wait("state = 'succeeded'", len(ids), args.timeout):
            done = cluster.count("state = 'succeeded'")
            print(f"  drain, {workers} worker(s): only {done}"
                  f" of {len(ids)} succeeded within {args.timeout:.0f}s")
            return None
        first, last = cluster.span()
        rate = len(ids) / (last - first)
        print(f"  drain,  {workers} worker(s): {len(ids)} jobs in {last - first:6.2f}s "
              f"= {rate:7.1f} jobs/s")
        return rate
    finally:
        cluster.stop()


def online(pg: ThrowawayPostgres, root: Path, workers: int, args) -> float | None:
    cluster = Cluster(root, pg.create_database(f"online{workers}"), workers, args)
    try:
        cluster.start()
        ids, submitted = cluster.submit(noop_jobs(args.jobs, args.keys, args.sleep))
        if not cluster.wait("state = 'succeeded'", len(ids), args.timeout):
            print(f"  online, {workers} worker(s): not all jobs succeeded within "
                  f"{args.timeout:.0f}s")
            return None
        _, last = cluster.span()
        rate = len(ids) / (last - submitted)
        print(f"  online, {workers} worker(s): {len(ids)} jobs in {last - submitted:6.2f}s "
              f"= {rate:7.1f} jobs/s (submit to last finish, forwarding included)")
        return rate
    finally:
        cluster.stop()


def takeover(pg: ThrowawayPostgres, root: Path, args) -> tuple[float, float] | None:
    cluster = Cluster(root, pg.create_database("takeover"), 2, args)
    try:
        cluster.start()
        (job_id,), _ = cluster.submit(
            [JobRequest("issue", "bench/scale#takeover", {"title": "effects sleep=3"})])

        def phase(name: str, count: int = 1) -> dict | None:
            found = [e for e in read_events(cluster.events_path)
                     if e.get("job") == job_id and e["phase"] == name]
            return found[count - 1] if len(found) >= count else None

        deadline = time.monotonic() + 30
        while (effect := phase("effect-1")) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if effect is None:
            print("  takeover: the job never started")
            return None
        # Kill once the step's result is checkpointed (a moment after its event): a kill
        # in between would rightly run the step again.
        import psycopg

        with psycopg.connect(cluster.database_url, autocommit=True) as conn:
            while not conn.execute(
                "SELECT 1 FROM dbos.operation_outputs WHERE workflow_uuid = %s AND "
                "function_name = 'effect-1'", (workflow_id_for(job_id),),
            ).fetchone() and time.monotonic() < deadline:
                time.sleep(0.01)
        victim = next(w for w in cluster.workers if w.pid == effect["pid"])
        killed_at = time.time()
        victim.kill()
        deadline = time.monotonic() + DEAD_AFTER + CHECK_INTERVAL + 30
        while (end := phase("end")) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        resumed = phase("start", 2)
        job = cluster.store.get(job_id)
        if end is None or resumed is None:
            print(f"  takeover: the job was not finished by the other worker ({job.state})")
            return None
        effects = [e["phase"] for e in read_events(cluster.events_path) if e.get("job") == job_id]
        print(f"  takeover after kill -9: resumed after {resumed['t'] - killed_at:5.2f}s, ended "
              f"after {end['t'] - killed_at:5.2f}s (state {job.state}, attempts {job.attempts}, "
              f"effect-1 x{effects.count('effect-1')}, effect-2 x{effects.count('effect-2')})")
        return resumed["t"] - killed_at, end["t"] - killed_at
    finally:
        cluster.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--sleep", type=float, default=0.02, help="seconds each job sleeps")
    parser.add_argument("--concurrency", type=int, default=4, help="BOT_WORKERS per worker")
    parser.add_argument("--polling-interval", type=float, default=_default_polling(),
                        help="the queue's polling interval (default: the real worker's)")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--no-takeover", action="store_true")
    args = parser.parse_args()

    reason = skip_reason()
    if reason is not None:
        print(f"no PostgreSQL to benchmark against: {reason}")
        return 0
    pg = ThrowawayPostgres()
    pg.start()
    root = Path(tempfile.mkdtemp(prefix="backend-bot-scale-"))
    print(f"{args.jobs} noop jobs of {args.sleep * 1000:.0f} ms over {args.keys} keys; "
          f"BOT_WORKERS={args.concurrency} per worker, queue polling {args.polling_interval}s")
    try:
        rates: dict[str, dict[int, float | None]] = {"drain": {}, "online": {}}
        for workers in (1, 2):
            rates["drain"][workers] = drain(pg, root / f"drain-{workers}", workers, args)
            rates["online"][workers] = online(pg, root / f"online-{workers}", workers, args)
        for name, by_workers in rates.items():
            one, two = by_workers[1], by_workers[2]
            if one and two:
                print(f"{name:>6}: 1 worker {one:7.1f} jobs/s, 2 workers {two:7.1f} jobs/s, "
                      f"ratio {two / one:4.2f}")
        if not args.no_takeover:
            result = takeover(pg, root / "takeover", args)
            bound = DEAD_AFTER + CHECK_INTERVAL + HEARTBEAT_INTERVAL + args.polling_interval
            if result is not None:
                verdict = "within" if result[0] <= bound else "OVER"
                print(f"takeover: {result[0]:.2f}s, {verdict} the bound of {bound:.2f}s "
                      f"(DEAD_AFTER {DEAD_AFTER:.0f} + CHECK_INTERVAL {CHECK_INTERVAL:.0f} + "
                      f"heartbeat {HEARTBEAT_INTERVAL:.0f} + polling)")
    finally:
        pg.stop()
    print(f"logs under {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
