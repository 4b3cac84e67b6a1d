"""Starting real bot processes on 127.0.0.1 for tests, and stopping them (gently or by kill -9)."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@functools.cache
def test_private_key() -> str:
    """One App key for every bot process of a test run: the bot refuses a key that does not
    parse, and making one costs tens of milliseconds."""
    from tests.simulator import generate_private_key

    return generate_private_key()


def app_credentials(secret: str) -> dict[str, str]:
    """What a configured bot needs in its environment to call itself healthy."""
    return {"APP_ID": "1", "PRIVATE_KEY": test_private_key(), "WEBHOOK_SECRET": secret,
            "ANTHROPIC_API_KEY": "unused"}


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 30.0, *,
                 healthy: bool = True) -> dict:
    """/healthz's answer once the server has started; with `healthy`, once it says it can
    work (200), else once it says anything but "starting" (a bot that cannot work says why)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            response = httpx.get(url + "/healthz", timeout=1.0)
            if response.status_code == 200 or (not healthy and response.json()["status"] != "starting"):
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not become healthy")


class BotProcess:
    """A real server process; `restart()` keeps its data dir, so it resumes its own jobs."""

    def __init__(self, env: dict[str, str], log_path: Path,
                 module: str = "tests.support.server_main", args: list[str] | None = None,
                 cwd: Path = ROOT) -> None:
        self.port = free_port()
        # Tests send many triggers as one person: the hourly limit is for the tests of it to set.
        self.env = {**os.environ, "BOT_TRIGGERS_PER_HOUR": "100000", **env, "PORT": str(self.port),
                    "HOST": "127.0.0.1"}
        self.log_path = log_path
        self.module = module
        self.args = args or []
        self.cwd = cwd
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, healthy: bool = True) -> dict:
        return wait_healthy(self.url, self.launch(), healthy=healthy)

    def launch(self) -> subprocess.Popen:
        """Start the process without waiting for it to answer."""
        log = open(self.log_path, "a")  # noqa: SIM115 (the child writes to it for its whole life)
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        return self.process

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no flushing, exactly like a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def post(self, path: str, *, content: bytes, headers: dict[str, str],
             timeout: float = 10.0) -> httpx.Response:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            return client.post(self.url + path, content=content, headers=headers)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""
