"""Several bot processes on one PostgreSQL, as on several machines: one web process
(`serve --no-workers`) and N workers, each with its own BOT_DATA_DIR and BOT_EXECUTOR_ID,
all recording what their jobs do in one events file."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bot.jobstore import JobStore
from tests.support.processes import BotProcess, app_credentials
from tests.support.worker_main import WorkerProcess


class Cluster:
    def __init__(self, root: Path, database_url: str, workers: int, *, secret: str,
                 bot_workers: int = 4, worker_args: list[str] | None = None,
                 log_level: str = "info") -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.database_url = database_url
        self.events_path = root / "events.jsonl"
        common = {
            "DATABASE_URL": database_url,
            **app_credentials(secret),
            "TEST_EVENTS": str(self.events_path),
            "BOT_WORKERS": str(bot_workers),
            "LOG_LEVEL": log_level,
        }
        self.web = BotProcess({**common, "BOT_DATA_DIR": str(root / "web"),
                               "BOT_EXECUTOR_ID": "web-1"}, root / "web.log",
                              args=["--no-workers"])
        self.workers = [
            WorkerProcess({**common, "BOT_DATA_DIR": str(root / f"worker-{i}"),
                           "BOT_EXECUTOR_ID": f"worker-{i}"}, root / f"worker-{i}.log",
                          args=worker_args or [])
            for i in range(1, workers + 1)
        ]
        self.store = JobStore(database_url)

    def start(self, *, web: bool = True, workers: bool = True) -> None:
        """Start processes all at once, as machines do (they also race to create the schema)."""
        processes = ([self.web] if web else []) + (self.workers if workers else [])
        with ThreadPoolExecutor(len(processes)) as pool:
            for future in [pool.submit(process.start) for process in processes]:
                future.result()

    def stop(self) -> None:
        with ThreadPoolExecutor(1 + len(self.workers)) as pool:
            list(pool.map(lambda p: p.stop(), [self.web, *self.workers]))
        self.store.close()

    def logs(self) -> str:
        parts = [f"--- web ---\n{self.web.log()[-4000:]}"]
        parts += [f"--- worker pid {w.pid} ---\n{w.log()[-4000:]}" for w in self.workers]
        return "\n".join(parts)
