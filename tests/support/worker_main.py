"""`backend-bot worker` with the test job functions of tests/support/kinds.py.

Run as `python -m tests.support.worker_main`: the engine with run_workers=True and no HTTP,
exactly as `backend-bot worker` runs it, reading the same environment plus TEST_EVENTS. It has
no /healthz, so it says it is ready by writing its pid to `$BOT_DATA_DIR/worker-ready` once the
engine has started; `WorkerProcess` below starts one and waits for that.

Besides the steered `issue` kind it has `noop` (spec `{"sleep": seconds}`, records nothing),
for benchmarks that should measure the engine rather than the test's event file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot import logs
from bot.engine import Engine, JobContext
from bot.jobstore import JobStore
from bot.settings import load_settings
from tests.support.kinds import register
from tests.support.processes import ROOT, BotProcess

READY_FILE = "worker-ready"


async def _noop(ctx: JobContext) -> str:
    seconds = float(ctx.job.spec.get("sleep", 0) or 0)
    if seconds:
        await asyncio.sleep(seconds)
    return "noop"


async def _run(polling_interval: float) -> None:
    settings = load_settings()
    logs.configure(settings.log_level, settings.log_format)
    engine = Engine(settings, JobStore(settings.database_url), run_workers=True,
                    retry_interval=0.05, polling_interval=polling_interval)
    register(engine, Path(os.environ["TEST_EVENTS"]))
    engine.register("noop", _noop)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await engine.start()
    ready = settings.data_dir / READY_FILE
    ready.write_text(f"{os.getpid()}\n")
    try:
        await stop.wait()
    finally:
        ready.unlink(missing_ok=True)
        await engine.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="worker_main")
    parser.add_argument("--polling-interval", type=float, default=0.1,
                        help="the queue's polling interval, as server_main's")
    args = parser.parse_args(argv)
    asyncio.run(_run(args.polling_interval))


class WorkerProcess(BotProcess):
    """A real worker process (no HTTP); `restart` via `start()` keeps its data dir and
    executor id, so it resumes its own jobs."""

    def __init__(self, env: dict[str, str], log_path: Path, args: list[str] | None = None) -> None:
        super().__init__(env, log_path, module="tests.support.worker_main", args=args)

    @property
    def ready_file(self) -> Path:
        return Path(self.env["BOT_DATA_DIR"]) / READY_FILE

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self, timeout: float = 30.0) -> dict:
        self.ready_file.unlink(missing_ok=True)
        Path(self.env["BOT_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n"
                                   + self.log()[-3000:])
            if self.ready_file.exists() and self.ready_file.read_text().strip() == str(self.pid):
                return {"pid": self.pid}
            time.sleep(0.05)
        raise TimeoutError(f"worker did not become ready:\n{self.log()[-3000:]}")


if __name__ == "__main__":
    main()
