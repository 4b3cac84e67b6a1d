"""The durable engine: jobs from the jobs table run as DBOS workflows, one at a time per key.

    webhook ─▶ JobStore.submit (group commit, before the 202)
                   │ forwarder, in id order
                   ▼
             DBOS queue, partitioned by key (partition_concurrency=1)
                   │
                   ▼
             run_job workflow ─▶ key guard ─▶ the function registered for the job's kind
                                              (its `ctx.step(...)` calls are checkpointed:
                                               a completed step is not run again after a crash)

Why a jobs table in front of DBOS: one DBOS enqueue costs a few milliseconds, too slow for the
webhook's hot path; the table takes a whole burst in one commit, and the forwarder enqueues
behind it, offering the queue one waiting job per key (so a burst on the table does not turn
into a burst of enqueues competing with the intake). The workflow id is derived from the job
id, so forwarding twice is harmless, and zero-padded, so DBOS's same-second tie-break on
SQLite follows arrival order.

Why a key guard on top of the partitioned queue: cancelling a workflow frees its partition at
once, while a cancelled step may still be cleaning up (killing the agent's processes). The
guard is held until the job's function has really returned.

DBOS is a process-wide singleton, so is the engine: `run_job` finds it in `_active`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from dbos import DBOS, DBOSClient, Queue, SetEnqueueOptions, SetWorkflowID, StepOptions
from dbos._error import DBOSMaxStepRetriesExceeded, DBOSWorkflowCancelledError

from bot import database, dbos_sqlite, logs
from bot.errors import JobCancelled, TransientError
from bot.executors import ExecutorStore, Heartbeats
from bot.jobstore import FINAL_STATES, Job, JobStore, workflow_id_for
from bot.keyguard import key_guard_for
from bot.questions import QuestionStore
from bot.rate_limits import TriggerGate
from bot.redact import redact
from bot.routing import JobRequest
from bot.settings import Settings
from bot.transcripts import TranscriptStore
from bot.triggers import TriggerWordStore

log = logs.get_logger(__name__)

# Before any DBOS engine connects: on Python 3.12+ with a SQLite older than 3.42, DBOS's
# timestamps are NULL without it (see bot/dbos_sqlite.py).
dbos_sqlite.install()

QUEUE_NAME = "backend-bot-jobs"
# Acknowledgements and controls (`/backend status`, `cancel`...) run on a queue of their own, so
# they never wait for a worker that an agent run holds for minutes.
CONTROL_QUEUE_NAME = "backend-bot-controls"
CONTROL_CONCURRENCY = 8
# Pinned: DBOS only resumes a dead process's workflows under the same application version.
APPLICATION_VERSION = "backend-bot-1"

_WORKFLOW_ENDED = frozenset(
    {"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"}
)

JobFunction = Callable[["JobContext"], Awaitable[str | None]]
# Jobs to submit when a job is given up: a way to tell the person who asked for it.
AbandonedHook = Callable[[Job, str], list[JobRequest]]

# A job that a crash or kill interrupted this many times is given up (and said so), rather
# than resumed for ever. DBOS's own limit sits above it, so that the bot, not DBOS, decides,
# and no job is left running in the table with nothing running it.
MAX_ATTEMPTS = 20
SWEEP_INTERVAL = 30.0
# How long a background task gets to end after each cancellation, while the engine stops.
STOP_GRACE = 1.0


def is_transient(error: BaseException) -> bool:
    """Worth a step's retry: a failure that passes (GitHub's 5xx and rate limits, the model
    service overloaded, the network, the database busy or its connection dropped)."""
    return isinstance(error, (TransientError, httpx.TransportError, ConnectionError,
                              TimeoutError)) or database.is_transient_error(error)


# What a job's function sees when it is cancelled (from GitHub or the command line): DBOS
# interrupts a preemptible step with its own error, a flow may raise ours.
CANCELLATION_ERRORS: tuple[type[BaseException], ...] = (DBOSWorkflowCancelledError, JobCancelled)


def is_cancellation(error: BaseException) -> bool:
    return isinstance(error, CANCELLATION_ERRORS)


def root_cause(error: BaseException) -> BaseException:
    """The failure itself, when a step gave up retrying it (DBOS wraps the last one)."""
    if isinstance(error, DBOSMaxStepRetriesExceeded) and error.errors:
        return error.errors[-1]
    return error


@dataclass
class JobContext:
    """What a job's function is given: the job, the settings, shared services, durable steps."""

    job: Job
    settings: Settings
    engine: Engine
    services: dict[str, Any] = field(default_factory=dict)

    @property
    def log(self) -> logging.Logger:
        return logs.get_logger(f"bot.jobs.{self.job.kind}")

    async def step(
        self,
        name: str,
        fn: Callable[..., Any],
        *args: Any,
        retries: int = 0,
        preemptible: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Run `fn` as a checkpointed step: after a crash its recorded result is reused.

        `retries` retries transient failures with exponential backoff; `preemptible` lets a
        cancellation interrupt a long step (the agent) rather than wait for it to end.
        """
        options: StepOptions = {"name": name, "preemptible": preemptible}
        if retries:
            options.update({
                "retries_allowed": True,
                "max_attempts": retries + 1,
                "interval_seconds": self.engine.retry_interval,
                "backoff_rate": 2.0,
                "should_retry": is_transient,
            })
        return await DBOS.run_step_async(options, fn, *args, **kwargs)


_active: Engine | None = None


def active_engine() -> Engine:
    if _active is None:
        raise RuntimeError("no engine is running in this process")
    return _active


class Engine:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        *,
        run_workers: bool = True,
        retry_interval: float = 2.0,
        polling_interval: float = 0.1,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.settings = settings
        self.store = store
        # The database's other tables, on the jobs table's connections.
        self.database = store.database
        if store.gate is None:
            store.gate = TriggerGate(settings.triggers_per_hour)
        self.trigger_words = TriggerWordStore(self.database)
        self.executors = ExecutorStore(self.database)
        self.transcripts = TranscriptStore(self.database)
        self.questions = QuestionStore(self.database)
        self.run_workers = run_workers
        self.retry_interval = retry_interval
        self.polling_interval = polling_interval
        self.max_attempts = max_attempts
        self.kinds: dict[str, JobFunction] = {}
        self.control_kinds: set[str] = set()
        self.on_abandoned: AbandonedHook | None = None
        # Periodic chores of the workers (e.g. ending expired waits): (interval, function).
        self.sweeps: list[tuple[float, Callable[[], Awaitable[None]]]] = []
        self.services: dict[str, Any] = {}
        self.guard = key_guard_for(self.database)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._queue: Queue | None = None
        self._control_queue: Queue | None = None

    def register(self, kind: str, fn: JobFunction, *, control: bool = False) -> None:
        """Run jobs of `kind` with `fn`; `control` jobs are short (a few GitHub calls) and must
        answer at once, so they get a queue of their own."""
        self.kinds[kind] = fn
        if control:
            self.control_kinds.add(kind)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        global _active
        if _active is not None:
            raise RuntimeError("an engine is already running in this process")
        self.store.open()
        self.trigger_words.create_table()
        self.executors.create_table()
        self.transcripts.create_table()
        self.questions.create_table()
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.store.on_commit(lambda: self._loop.call_soon_threadsafe(self._wake.set))
        DBOS(
            config={
                "name": "backend-bot",
                "system_database_url": self.settings.engine_database_url,
                "executor_id": self.settings.executor_id(),
                "application_version": APPLICATION_VERSION,
                "log_level": "WARNING",
                "max_executor_threads": max(8, self.settings.workers * 2),
                # On SQLite a thread polls for notifications the bot never waits on, and
                # sleeps its whole interval before it sees a stop: shorter, a stop is quick.
                "notification_listener_polling_interval_sec": 0.1,
            }
        )
        # DBOS brings its own log handler; ours tags lines with delivery and job ids.
        dbos_logger = logging.getLogger("dbos")
        dbos_logger.handlers[:] = []
        dbos_logger.propagate = True
        if not self.run_workers:
            DBOS.listen_queues([])
        executor_id = self.settings.executor_id()
        heartbeats = Heartbeats(
            self.executors, executor_id, "worker" if self.run_workers else "web",
            take_over=self.run_workers and self.database.postgres,
        )
        await asyncio.to_thread(heartbeats.claim)
        _active = self
        # Launched from this loop's thread, so DBOS runs the workflows on this loop (with the
        # shared clients) rather than on a background loop of its own.
        DBOS.launch()
        self._queue = await DBOS.register_queue_async(
            QUEUE_NAME,
            worker_concurrency=self.settings.workers,
            partition_concurrency=1,
            polling_interval_sec=self.polling_interval,
        )
        self._control_queue = await DBOS.register_queue_async(
            CONTROL_QUEUE_NAME,
            worker_concurrency=CONTROL_CONCURRENCY,
            partition_concurrency=1,
            polling_interval_sec=self.polling_interval,
        )
        self._tasks = [
            asyncio.create_task(self._forward_loop(), name="job-forwarder"),
            asyncio.create_task(heartbeats.run(), name="heartbeats"),
        ]
        if self.run_workers:
            self._tasks.append(asyncio.create_task(self._sweep_loop(), name="limbo-sweeper"))
            self._tasks += [asyncio.create_task(self._every(interval, sweep), name=f"sweep-{sweep.__name__}")
                            for interval, sweep in self.sweeps]
        log.info(
            "engine started: %s, %s workers, executor %s",
            "PostgreSQL" if self.database.postgres else "SQLite",
            self.settings.workers if self.run_workers else "no",
            executor_id,
        )

    async def stop(self) -> None:
        global _active
        for task in self._tasks:
            # Cancelled until it ends: a library that swallows one cancellation must not hold
            # the shutdown.
            while not task.done():
                task.cancel()
                await asyncio.wait([task], timeout=STOP_GRACE)
            if not task.cancelled() and task.exception() is not None:
                log.warning("%s ended with an error as the engine stopped: %s", task.get_name(),
                            task.exception())
        await asyncio.to_thread(DBOS.destroy, destroy_registry=False)
        self.store.close()
        _active = None

    # -- intake --------------------------------------------------------------------------

    async def submit(
        self, delivery_id: str, event: str, requests: list[JobRequest]
    ) -> list[tuple[int, bool]]:
        return await self.store.submit(delivery_id, event, requests)

    async def _forward_loop(self) -> None:
        # With several processes on one PostgreSQL, one forwards at a time, so jobs reach
        # the queue in id order; the others stand by and take over if it dies.
        wake = self._wake
        assert wake is not None  # start() made it before starting this loop
        while not await asyncio.to_thread(self.store.try_forwarder_lock):
            await asyncio.sleep(1.0)
        while True:
            try:
                jobs = await asyncio.to_thread(self.store.forwardable, 200)
                for job in jobs:
                    await self._enqueue(job)
                if jobs:
                    # Enqueueing is idempotent (the workflow id is the job's), so a crash
                    # before this mark only means those jobs are offered to the queue again.
                    await asyncio.to_thread(self.store.mark_forwarded, [job.id for job in jobs])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("forwarding jobs to the queue failed; retrying")
                await asyncio.sleep(1)
                continue
            if not jobs:
                wake.clear()
                # Other processes' jobs starting also free their keys' next jobs, and they
                # cannot wake this one: poll often when processes share PostgreSQL.
                # Not `asyncio.wait_for`: on Python 3.11 it swallows a cancellation that
                # arrives as the event is set (a job finishing as the bot stops), and this loop
                # would then run on and hold the shutdown for ever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2 if self.database.postgres else 1.0):
                        await wake.wait()

    async def _enqueue(self, job: Job) -> None:
        with SetWorkflowID(job.workflow_id), SetEnqueueOptions(queue_partition_key=job.key):
            queue = self._control_queue if job.kind in self.control_kinds else self._queue
            assert queue is not None  # start() registered both before starting the forwarder
            await queue.enqueue_async(run_job, job.id)

    # -- running -------------------------------------------------------------------------

    async def run(self, job_id: int) -> str | None:
        job = await asyncio.to_thread(self.store.get, job_id)
        if job is None or job.state in FINAL_STATES:
            return None
        with logs.bound(delivery_id=job.delivery_id, job_id=str(job.id)):
            # An earlier job of this key interrupted by a crash is resumed outside the queue's
            # partition: let it finish first, so the key's jobs stay in arrival order.
            await self._wait_for_earlier_jobs(job)
            async with self.guard.hold(job.key):
                return await self._run_held(job)

    async def _wait_for_earlier_jobs(self, job: Job) -> None:
        while earlier := await asyncio.to_thread(self.store.earlier_running, job.key, job.id):
            for job_id in earlier:
                await self._abandon_if_unrun(job_id)
            await asyncio.sleep(0.5)

    async def _abandon_if_unrun(self, job_id: int) -> None:
        """A job the table says is running, whose workflow ended without recording an outcome
        (or never existed): nothing will finish it, so it is given up, and said so."""
        status = await DBOS.get_workflow_status_async(workflow_id_for(job_id))
        if status is None or status.status in _WORKFLOW_ENDED:
            job = await asyncio.to_thread(self.store.get, job_id)
            if job is not None and job.state == "running":
                await self._abandon(job, "its run was interrupted and ended without an outcome")

    async def _abandon(self, job: Job, reason: str) -> None:
        await self._finish(job, "failed", error=f"abandoned: {reason}")
        log.warning("job %s abandoned: %s", job.id, reason)
        if self.on_abandoned is None:
            return
        requests = self.on_abandoned(job, reason)
        if requests:
            # Keyed by the job: a sweep repeated after a crash reports it once.
            await self.store.submit(f"abandoned:{job.id}", "abandoned", requests)

    async def _sweep_loop(self) -> None:
        """Now and then, give up the jobs no process will ever finish (see _abandon_if_unrun)."""
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                for job_id in await asyncio.to_thread(self.store.running_ids):
                    await self._abandon_if_unrun(job_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweeping for abandoned jobs failed; retrying later")

    async def _every(self, interval: float, sweep: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweep %s failed; retrying later", sweep.__name__)

    async def _run_held(self, job: Job) -> str | None:
        fn = self.kinds.get(job.kind)
        if fn is None:
            await self._finish(job, "failed", error=f"no function registered for kind {job.kind!r}")
            return None
        await asyncio.to_thread(self.store.start_attempt, job.id)
        self._offer_next()  # the next job of this key may now be offered to the queue
        current = await asyncio.to_thread(self.store.get, job.id)
        assert current is not None  # rows of the jobs table are never deleted
        job = current
        if job.state != "running":  # cancelled while waiting for the key
            return None
        if job.attempts > self.max_attempts:
            await self._abandon(job, f"it was interrupted {job.attempts - 1} times")
            return None
        log.info("job %s (%s on %s) started, attempt %d", job.id, job.kind, job.key, job.attempts)
        started = time.monotonic()
        try:
            result = await fn(JobContext(job, self.settings, self, self.services))
        except CANCELLATION_ERRORS:
            log.info("job %s cancelled", job.id)
            await self._finish(job, "cancelled", error="cancelled")
            return None
        except Exception as error:
            reason = redact(f"{type(error).__name__}: {error}")
            log.warning("job %s failed: %s", job.id, reason)
            await self._finish(job, "failed", error=reason)
            return None
        log.info("job %s succeeded in %.2fs: %s", job.id, time.monotonic() - started, result)
        await self._finish(job, "succeeded", result=result)
        return result

    async def _finish(self, job: Job, state: str, *, error: str | None = None,
                      result: str | None = None) -> None:
        await asyncio.to_thread(self.store.finish, job.id, state, error=error, result=result)
        self._offer_next()

    def _offer_next(self) -> None:
        """Wake the forwarder: a job started or ended, so its key's next job may be offered."""
        assert self._wake is not None  # jobs start, end and are cancelled only once start() ran
        self._wake.set()

    # -- control -------------------------------------------------------------------------

    async def cancel(self, job_id: int) -> Job | None:
        """Stop a job: a queued one never starts; a running one is interrupted."""
        job = await asyncio.to_thread(self.store.get, job_id)
        if job is None or job.state in FINAL_STATES:
            return job
        await asyncio.to_thread(self.store.finish, job_id, "cancelled", error="cancelled")
        self._offer_next()
        with contextlib.suppress(Exception):
            await DBOS.cancel_workflow_async(job.workflow_id)
        return await asyncio.to_thread(self.store.get, job_id)


@DBOS.workflow(name="backend_bot_job", max_recovery_attempts=MAX_ATTEMPTS + 10)
async def run_job(job_id: int) -> str | None:
    return await active_engine().run(job_id)


def cancel_from_outside(settings: Settings, store: JobStore, job_id: int) -> Job | None:
    """Cancel a job from another process (the command line): the serving process notices."""
    job = store.get(job_id)
    if job is None or job.state in FINAL_STATES:
        return job
    store.finish(job_id, "cancelled", error="cancelled from the command line")
    client = DBOSClient(system_database_url=settings.engine_database_url)
    try:
        client.cancel_workflow(workflow_id_for(job_id))
    except Exception as error:  # not forwarded yet: the state above is enough
        log.debug("DBOS had no workflow for job %s: %s", job_id, error)
    finally:
        client.destroy()
    return store.get(job_id)
