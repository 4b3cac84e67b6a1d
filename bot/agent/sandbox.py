"""Run shell commands for the agent (and the repository's test command) under bubblewrap.

Inside the sandbox:

- the workspace is writable, except its `.git` (read-only, so nothing run here can plant a
  hook that the bot would later execute when it commits);
- the rest of the file system is read-only (`--ro-bind / /`), `/tmp` is a private tmpfs,
  `/dev` and `/proc` are minimal and private;
- what the bot keeps for itself is hidden: its data directory (other repositories' mirrors
  and workspaces, the job database) is an empty tmpfs but for this job's workspace and its
  repository's mirror (read-only), and its `.env` and private key file cannot be opened;
- there is no network (`--unshare-net`) unless the caller asks for it;
- the environment is built from an allow-list (PATH, LANG, TERM...), never inherited, so no
  token or key of the bot's process is visible;
- each command has a time limit; at the limit the whole process tree is killed (the command
  runs in its own session and PID namespace, bwrap dies with its parent);
- the output (stdout and stderr together) is capped, keeping its head and its tail.

Where bubblewrap is missing or unusable, `Sandbox.check()` raises `SandboxUnavailable`
unless the operator allowed an unsandboxed shell (`BOT_ALLOW_UNSANDBOXED_SHELL=true`), in
which case commands run directly, with the same clean environment, time limit and output cap.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bot.errors import BotError
from bot.logs import get_logger

log = get_logger(__name__)

DEFAULT_OUTPUT_LIMIT = 30_000
DEFAULT_TIMEOUT = 120.0

# Variables passed through from the bot's environment when set. Nothing else is inherited.
ENV_ALLOW_LIST = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ")
_SECRET_NAME_RE = re.compile(r"(?i)(token|secret|key|password|passwd|credential|auth)")
SANDBOX_HOME = "/tmp/home"


class SandboxUnavailable(BotError):
    """bubblewrap cannot be used here and an unsandboxed shell was not allowed."""


@dataclass(frozen=True)
class CommandResult:
    exit_code: int  # -1 when killed at the time limit
    output: str  # stdout and stderr interleaved, capped
    timed_out: bool
    duration: float  # seconds

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def cap_text(text: str, limit: int) -> str:
    """Keep the head and tail of text longer than limit, with a note of what was cut."""
    if limit <= 0 or len(text) <= limit:
        return text
    head = limit * 2 // 5
    tail = limit - head
    cut = text[head : len(text) - tail]
    note = f"\n[... {len(cut)} characters ({cut.count(chr(10))} lines) cut ...]\n"
    return text[:head] + note + text[len(text) - tail :]


class _CappedBuffer:
    """Collect a stream's bytes keeping only the first and last parts; count what is dropped."""

    def __init__(self, limit: int) -> None:
        self.head_limit = limit * 2 // 5
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0
        self.dropped_lines = 0

    def feed(self, data: bytes) -> None:
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        self.tail += data
        excess = len(self.tail) - self.tail_limit
        if excess > 0:
            self.dropped += excess
            self.dropped_lines += self.tail.count(b"\n", 0, excess)
            del self.tail[:excess]

    def text(self) -> str:
        head = self.head.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        if not self.dropped:
            return head + tail
        note = f"\n[... {self.dropped} bytes ({self.dropped_lines} lines) cut ...]\n"
        return head + note + tail


_probe_cache: dict[str, str | None] = {}


def _probe_bwrap(bwrap: str) -> str | None:
    """None when bwrap works here, otherwise why not (e.g. user namespaces disabled)."""
    if bwrap in _probe_cache:
        return _probe_cache[bwrap]
    try:
        proc = subprocess.run(
            [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
             "--unshare-net", "--", "true"],
            capture_output=True, text=True, timeout=15, env={"PATH": os.defpath},
        )  # fmt: skip
        problem = None if proc.returncode == 0 else (proc.stderr.strip() or f"exit {proc.returncode}")
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = str(exc)
    _probe_cache[bwrap] = problem
    return problem


class Sandbox:
    """Runs commands in one workspace; see the module docstring for what is confined."""

    def __init__(
        self,
        workspace: Path,
        *,
        network: bool = False,
        allow_unsandboxed: bool = False,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        env: dict[str, str] | None = None,
        bwrap: str | None = None,
        hide: list[Path] | None = None,
        expose: list[Path] | None = None,
    ) -> None:
        self.workspace = Path(workspace).resolve()
        # Paths the bot can read but the sandbox must not: the bot's data directory (other
        # repositories' mirrors and workspaces, the job database), its `.env` and private key.
        self.hide = [Path(p).resolve() for p in hide or []]
        # Paths under a hidden one that commands still need to read (the repository's mirror,
        # whose objects the workspace borrows).
        self.expose = [Path(p).resolve() for p in expose or []]
        self.network = network
        self.allow_unsandboxed = allow_unsandboxed
        self.output_limit = output_limit
        # Extra variables for commands (e.g. from the repository's config); anything named
        # like a credential is refused, whatever the caller meant.
        self.extra_env = {k: v for k, v in (env or {}).items() if not _SECRET_NAME_RE.search(k)}
        self.bwrap = bwrap if bwrap is not None else shutil.which("bwrap")
        self._checked: bool | None = None  # True: sandboxed, False: unsandboxed allowed

    @classmethod
    def from_settings(cls, workspace: Path, settings, **kwargs) -> Sandbox:
        kwargs.setdefault("allow_unsandboxed", bool(settings.allow_unsandboxed_shell))
        secrets = [Path(".env"), settings.private_key_path]
        kwargs.setdefault("hide", [settings.data_dir, *[p for p in secrets if p]])
        return cls(workspace, **kwargs)

    @property
    def sandboxed(self) -> bool:
        return self.check()

    def check(self) -> bool:
        """True when bwrap will be used; False when running unsandboxed was allowed.

        Raises SandboxUnavailable otherwise, with what the operator can do about it.
        """
        if self._checked is not None:
            return self._checked
        problem = "bubblewrap (bwrap) is not installed" if not self.bwrap else _probe_bwrap(self.bwrap)
        if problem is None:
            self._checked = True
        elif self.allow_unsandboxed:
            log.warning(
                "the agent's shell runs WITHOUT a sandbox (%s; BOT_ALLOW_UNSANDBOXED_SHELL is set): "
                "commands can read and write anything this process can, and reach the network",
                problem,
            )
            self._checked = False
        else:
            raise SandboxUnavailable(
                f"Cannot sandbox the agent's shell: {problem}. Install bubblewrap "
                "(e.g. `apt-get install bubblewrap`) and make sure unprivileged user namespaces "
                "are enabled, or set BOT_ALLOW_UNSANDBOXED_SHELL=true to run commands without "
                "a sandbox (only on a machine and repositories you trust)."
            )
        return self._checked

    def environment(self, home: str) -> dict[str, str]:
        env = {name: os.environ[name] for name in ENV_ALLOW_LIST if name in os.environ}
        env.setdefault("PATH", os.defpath)
        env.setdefault("LANG", "C.UTF-8")
        env.update(
            HOME=home,
            TMPDIR="/tmp",
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONUNBUFFERED="1",
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            GIT_TERMINAL_PROMPT="0",
            CI="1",
        )
        env.update(self.extra_env)
        return env

    def _bwrap_argv(self, command: str, network: bool) -> tuple[list[str], dict[str, str]]:
        ws = str(self.workspace)
        argv = [
            self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--tmpfs", "/tmp", "--dir", SANDBOX_HOME,
        ]  # fmt: skip
        # Later mounts win: hidden directories first (the workspace may sit in one), then what
        # is exposed again, the workspace, and last the hidden files (which may sit in it;
        # they then cannot be opened at all).
        argv += [arg for path in self.hide if path.is_dir() for arg in ("--tmpfs", str(path))]
        for path in self.expose:
            argv += ["--ro-bind", str(path), str(path)]
        argv += ["--bind", ws, ws]
        git = self.workspace / ".git"
        if git.exists():
            argv += ["--ro-bind", str(git), str(git)]
        for path in self.hide:
            if path.is_file():
                argv += ["--ro-bind", "/dev/null", str(path)]
        argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
                 "--new-session", "--chdir", ws, "--clearenv"]  # fmt: skip
        if not network:
            argv.append("--unshare-net")
        for name, value in self.environment(SANDBOX_HOME).items():
            argv += ["--setenv", name, value]
        argv += ["--", "/bin/bash", "-c", command]
        # bwrap itself gets a minimal environment too.
        return argv, {"PATH": os.environ.get("PATH", os.defpath)}

    async def run(
        self, command: str, timeout: float = DEFAULT_TIMEOUT, network: bool | None = None
    ) -> CommandResult:
        """Run `command` with bash in the workspace; never raises for the command's failures."""
        sandboxed = self.check()
        network = self.network if network is None else network
        home_dir = None
        if sandboxed:
            argv, env = self._bwrap_argv(command, network)
        else:
            home_dir = tempfile.mkdtemp(prefix="backend-bot-home-")
            argv, env = ["/bin/bash", "-c", command], self.environment(home_dir)
        started = time.monotonic()
        buffer = _CappedBuffer(self.output_limit)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=self.workspace,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )

        async def pump() -> None:
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(65536):
                buffer.feed(chunk)

        reader = asyncio.ensure_future(pump())
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), timeout)
        except TimeoutError:
            timed_out = True
            _kill_tree(proc.pid)
        except BaseException:
            _kill_tree(proc.pid)
            reader.cancel()
            raise
        finally:
            await proc.wait()
        # A grandchild that escaped the group (unsandboxed only) may still hold the pipe.
        try:
            await asyncio.wait_for(reader, 2.0)
        except TimeoutError:
            pass
        if home_dir:
            shutil.rmtree(home_dir, ignore_errors=True)
        output = buffer.text()
        if timed_out:
            output += f"\n[killed: the command ran longer than {timeout:g} seconds]"
        return CommandResult(
            exit_code=-1 if timed_out else (proc.returncode if proc.returncode is not None else -1),
            output=output,
            timed_out=timed_out,
            duration=time.monotonic() - started,
        )


def _kill_tree(pid: int) -> None:
    """Kill the command's process group (bwrap's PID namespace then takes its children)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
