"""Job functions for engine tests, steered by the issue title: `sleep=0.4 transient=2 fail`.

`transient=2 github=502` fails twice with the error `bot.github` raises for that answer once
its transport has given up (`502`, `429`, `404`, `network`) instead of a bare `TransientError`.

Each records what happened as JSON lines in the file named by `events_path`, with real
timestamps, so tests can check order, overlap and exactly-once effects.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from bot.engine import Engine, JobContext
from bot.errors import TransientError, UserFacingError
from bot.github.errors import NetworkError, NotFound, RateLimited, ServerError
from bot.routing import JobRequest

GITHUB_FAILURES = {
    "502": lambda: ServerError("POST", "/repos/acme/widgets/pulls", 502, "Server Error"),
    "429": lambda: RateLimited("POST", "/repos/acme/widgets/pulls", 429, "rate limit exceeded"),
    "404": lambda: NotFound("POST", "/repos/acme/widgets/pulls", 404, "Not Found"),
    "network": lambda: NetworkError("POST /repos/acme/widgets/pulls: ConnectError('reset')"),
}


def record(path: Path, **entry) -> None:
    with open(path, "a") as file:
        file.write(json.dumps({"t": time.time(), "pid": os.getpid(), **entry}) + "\n")
        file.flush()
        os.fsync(file.fileno())


def read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _directives(title: str) -> dict[str, str]:
    pairs = {}
    for word in title.split():
        name, _, value = word.partition("=")
        pairs[name] = value
    return pairs


def register(engine: Engine, events_path: Path) -> None:
    async def steered(ctx: JobContext) -> str:
        try:
            return await _steered(ctx)
        except BaseException as error:
            # When the function really stopped (cancelled or failed): tests check that the
            # key's next job started only after this.
            record(events_path, job=ctx.job.id, key=ctx.job.key, phase="stopped",
                   error=type(error).__name__)
            raise

    async def _steered(ctx: JobContext) -> str:
        job = ctx.job
        steer = _directives(job.spec.get("title", ""))
        record(events_path, job=job.id, key=job.key, phase="start", attempt=job.attempts)

        if "effects" in steer:
            await ctx.step("effect-1", _effect, events_path, job.id, 1)
            # Past this line the step's result is checkpointed (a kill before it may rightly
            # run the step again).
            record(events_path, job=job.id, phase="effect-1-checkpointed")

        async def sleep(seconds: float) -> None:
            await asyncio.sleep(seconds)

        if "sleep" in steer:
            await ctx.step("sleep", sleep, float(steer["sleep"]), preemptible=True)

        if "transient" in steer:
            failures = int(steer["transient"])

            async def flaky() -> str:
                calls = sum(1 for e in read_events(events_path)
                            if e.get("job") == job.id and e.get("phase") == "try")
                record(events_path, job=job.id, phase="try")
                if calls < failures:
                    if "github" in steer:
                        raise GITHUB_FAILURES[steer["github"]]()
                    raise TransientError(f"GitHub answered 502 (try {calls + 1})")
                return "ok"

            await ctx.step("flaky", flaky, retries=failures + 1)

        if "fail" in steer:
            raise UserFacingError("the test asked this job to fail")

        if "effects" in steer:
            await ctx.step("effect-2", _effect, events_path, job.id, 2)

        record(events_path, job=job.id, key=job.key, phase="end")
        return "done"

    engine.register("issue", steered)

    async def acknowledged(ctx: JobContext) -> str:
        # The real acknowledgement talks to GitHub; these engine tests have none.
        return "acknowledged"

    engine.register("ack", acknowledged)

    async def abandoned(ctx: JobContext) -> str:
        record(events_path, job=ctx.job.spec["for_job"], phase="reported-abandoned",
               reason=ctx.job.spec["reason"])
        return "reported"

    engine.register("abandoned", abandoned, control=True)
    engine.on_abandoned = lambda job, reason: [JobRequest(
        "abandoned", f"{job.key}/abandoned", {**job.spec, "for_job": job.id, "reason": reason})]


async def _effect(events_path: Path, job_id: int, number: int) -> None:
    record(events_path, job=job_id, phase=f"effect-{number}")
