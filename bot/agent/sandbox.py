"""Run shell commands for the agent (and the repository's test command) under bubblewrap.

The workspace belongs to the attacker, and so does every command run in it. The sandbox is
unprivileged whatever user the bot runs as (root included: CI, the bootstrap script, many
container set-ups):

- a user namespace of its own with every capability dropped, no new privileges (bwrap sets
  `PR_SET_NO_NEW_PRIVS`), and no further user namespaces inside (`--disable-userns`), so the
  mounts below cannot be undone: a remount or unmount needs a capability it does not have;
- only what commands need is mounted, read-only: `/usr` (and the `/bin`, `/lib…` links into
  it), `/etc` with its secrets masked, `/opt`. Not the host's `/run`, `/var/run`, `/tmp`,
  `/home`, `/root` or `/sys`, so no host unix socket (a container engine's, a database's) is
  reachable; `/tmp` and `/dev/shm` are private tmpfs of bounded size, `/dev` and `/proc` private;
- the workspace is writable, except its `.git` (read-only, so nothing run here can plant a
  hook or configuration that host-side git would read); what the bot keeps for itself (its
  data directory, `.env`, private key) is masked wherever it would otherwise be visible;
- no network (`--unshare-net`); `network: true` gives a namespace of its own with filtered
  user-mode networking (`bot.agent.egress`): the internet, never the bot's host;
- limits on processes, memory, file size, open files and CPU time: rlimits on every process,
  and where the host allows it a control group per command (`bot.agent.cgroups`) bounding the
  whole tree, tmpfs included; sandboxed processes are the OOM killer's first choice;
- the environment is built from an allow-list (PATH, LANG, TERM...), never inherited, so no
  token or key of the bot's process is visible;
- each command has a time limit; at the limit the whole process tree is killed (the command
  runs in its own session and PID namespace, bwrap dies with its parent);
- the output (stdout and stderr together) is capped, keeping its head and its tail.

Where bubblewrap is missing or unusable, `Sandbox.check()` raises `SandboxUnavailable`
unless the operator allowed an unsandboxed shell (`BOT_ALLOW_UNSANDBOXED_SHELL=true`), in
which case commands run directly, with the same clean environment, time limit, rlimits and
output cap, and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bot.agent import cgroups, egress
from bot.errors import BotError
from bot.logs import get_logger

log = get_logger(__name__)

DEFAULT_OUTPUT_LIMIT = 30_000
DEFAULT_TIMEOUT = 120.0

# Variables passed through from the bot's environment when set. Nothing else is inherited.
ENV_ALLOW_LIST = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ")
_SECRET_NAME_RE = re.compile(r"(?i)(token|secret|key|password|passwd|credential|auth)")
SANDBOX_HOME = "/tmp/home"

# Mounted read-only from the host. The `/bin`, `/lib…` of a merged-/usr system are links.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
# Root-owned files a sandbox running as root (in its namespace) could otherwise read.
ETC_SECRETS = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers",
               "/etc/sudoers.d", "/etc/ssh", "/etc/ssl/private", "/etc/security/opasswd")

# Runs on the host between the bot and bwrap: joins the command's control groups, makes its
# processes the OOM killer's first choice, sets the rlimits, then becomes the sandbox.
# Arguments: the number of cgroup.procs files, those files, the five limits, the command.
_LIMITS_PRELUDE = r"""
count=$1; shift
while [ "$count" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; count=$((count - 1)); done
echo 1000 > /proc/self/oom_score_adj 2>/dev/null
ulimit -c 0 && ulimit -n "$1" && ulimit -u "$2" && ulimit -d "$3" && ulimit -f "$4" \
  && ulimit -t "$5" || exit 125
shift 5
exec "$@"
"""


@dataclass(frozen=True)
class ResourceLimits:
    """What one sandboxed command may use."""

    processes: int = 512  # processes and threads
    memory_bytes: int = 4 << 30  # each process; the whole tree where a control group exists
    file_size_bytes: int = 2 << 30  # the largest file a command may write
    tmpfs_bytes: int = 1 << 30  # /tmp and /dev/shm, each
    open_files: int = 4096

    def cpu_seconds(self, timeout: float) -> int:
        """CPU time of one process: the wall-clock limit on every core, and a margin."""
        return math.ceil(timeout) * max(1, os.cpu_count() or 1) + 10

    def prelude_args(self, timeout: float) -> list[str]:
        """The rlimits in `ulimit`'s units, clamped to what this process may set."""
        wanted = [
            (resource.RLIMIT_NOFILE, self.open_files, 1),
            (resource.RLIMIT_NPROC, self.processes, 1),
            (resource.RLIMIT_DATA, self.memory_bytes, 1024),
            (resource.RLIMIT_FSIZE, self.file_size_bytes, 1024),
            (resource.RLIMIT_CPU, self.cpu_seconds(timeout), 1),
        ]
        values = []
        for limit, value, unit in wanted:
            _, hard = resource.getrlimit(limit)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            values.append(str(max(1, value // unit)))
        return values


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
        # The options every command relies on (--disable-userns needs bubblewrap 0.8).
        proc = subprocess.run(
            [bwrap, "--unshare-user", "--disable-userns", "--cap-drop", "ALL", "--ro-bind", "/usr",
             "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
             "--symlink", "usr/lib64", "/lib64", "--dev", "/dev", "--proc", "/proc",
             "--unshare-pid", "--unshare-net", "--", "/usr/bin/true"],
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
        limits: ResourceLimits = ResourceLimits(),
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
        self.limits = limits
        self._checked: bool | None = None  # True: sandboxed, False: unsandboxed allowed

    @classmethod
    def from_settings(cls, workspace: Path, settings, **kwargs) -> Sandbox:
        kwargs.setdefault("allow_unsandboxed", bool(settings.allow_unsandboxed_shell))
        secrets = [Path(".env"), settings.private_key_path, settings.google_credentials_path,
                   settings.aws_shared_credentials_file]
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
            cgroups.Cgroups.detect()
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
                f"Cannot sandbox the agent's shell: {problem}. Install bubblewrap 0.8 or newer "
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

    def _bwrap_argv(self, command: str, *, resolv_conf_fd: int | None) -> list[str]:
        """bwrap's arguments; with `resolv_conf_fd` the command joins a prepared network
        namespace (`network: true`) instead of getting an empty one."""
        assert self.bwrap is not None  # run() gets here only after check() found bwrap working
        ws = str(self.workspace)
        argv = [self.bwrap, "--unshare-user", "--disable-userns", "--cap-drop", "ALL",
                "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--die-with-parent", "--new-session"]  # fmt: skip
        if resolv_conf_fd is None:
            argv.append("--unshare-net")
        bound = []
        for system_dir in SYSTEM_DIRS:
            if os.path.islink(system_dir):
                argv += ["--symlink", os.readlink(system_dir), system_dir]
            elif os.path.isdir(system_dir):
                argv += ["--ro-bind", system_dir, system_dir]
                bound.append(Path(system_dir))
        for secret in ETC_SECRETS:
            argv += _mask(Path(secret))
        argv += ["--dev", "/dev", "--proc", "/proc",
                 "--size", str(self.limits.tmpfs_bytes), "--tmpfs", "/tmp",
                 "--size", str(self.limits.tmpfs_bytes), "--tmpfs", "/dev/shm",
                 "--dir", SANDBOX_HOME, "--symlink", "/tmp", "/var/tmp"]  # fmt: skip
        if resolv_conf_fd is not None:
            # Where /etc/resolv.conf leads, so a link to /run/systemd/... is covered too.
            argv += ["--ro-bind-data", str(resolv_conf_fd), str(Path("/etc/resolv.conf").resolve())]
        # Later mounts win: what the bot keeps for itself is masked where a system directory
        # would show it (the workspace may sit in it), then what is exposed again, the
        # workspace, its read-only .git, and last the hidden files (which may sit in it).
        hidden_dirs = [p for p in self.hide if p.is_dir() and _under_any(p, bound)]
        argv += [arg for path in hidden_dirs for arg in ("--tmpfs", str(path))]
        for path in self.expose:
            argv += ["--ro-bind", str(path), str(path)]
        argv += ["--bind", ws, ws]
        git = self.workspace / ".git"
        if git.exists():
            argv += ["--ro-bind", str(git), str(git)]
        for path in self.hide:
            if path.is_file():
                argv += ["--ro-bind", "/dev/null", str(path)]
        argv += ["--chdir", ws, "--clearenv"]
        for name, value in self.environment(SANDBOX_HOME).items():
            argv += ["--setenv", name, value]
        return [*argv, "--", "/bin/bash", "-c", command]

    def _limited(self, argv: list[str], timeout: float, group: cgroups.CommandGroup | None) -> list[str]:
        procs = group.procs_files if group else []
        return ["/bin/bash", "-c", _LIMITS_PRELUDE, "backend-bot-limits", str(len(procs)), *procs,
                *self.limits.prelude_args(timeout), *argv]

    async def run(
        self, command: str, timeout: float = DEFAULT_TIMEOUT, network: bool | None = None
    ) -> CommandResult:
        """Run `command` with bash in the workspace; never raises for the command's failures."""
        sandboxed = self.check()
        network = self.network if network is None else network
        if not sandboxed:
            home_dir = tempfile.mkdtemp(prefix="backend-bot-home-")
            try:
                argv = self._limited(["/bin/bash", "-c", command], timeout, None)
                return await self._execute(argv, self.environment(home_dir), timeout)
            finally:
                shutil.rmtree(home_dir, ignore_errors=True)
        # bwrap itself gets a minimal environment too.
        env = {"PATH": os.environ.get("PATH", os.defpath)}
        group = cgroups.command_group(processes=self.limits.processes,
                                      memory_bytes=self.limits.memory_bytes)
        try:
            if not network:
                argv = self._limited(self._bwrap_argv(command, resolv_conf_fd=None), timeout, group)
                return await self._execute(argv, env, timeout)
            try:
                async with egress.filtered_namespace() as enter:
                    with _data_fd(egress.RESOLV_CONF) as resolv_fd:
                        bwrap = self._bwrap_argv(command, resolv_conf_fd=resolv_fd)
                        argv = self._limited([*enter, *bwrap], timeout, group)
                        return await self._execute(argv, env, timeout, pass_fds=(resolv_fd,))
            except egress.EgressUnavailable as error:
                log.warning("network for a sandboxed command is unavailable: %s", error)
                return CommandResult(
                    exit_code=-1, timed_out=False, duration=0.0,
                    output=f"[not run: the network this repository's config asks for "
                           f"(`network: true`) could not be set up: {error}. The bot's "
                           f"operator needs {', '.join(egress.TOOLS)} on its host.]")
        finally:
            if group is not None:
                await asyncio.to_thread(group.close)

    async def _execute(self, argv: list[str], env: dict[str, str], timeout: float, *,
                       pass_fds: tuple[int, ...] = ()) -> CommandResult:
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
            pass_fds=pass_fds,
        )

        async def pump() -> None:
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(65536):
                buffer.feed(chunk)

        reader = asyncio.ensure_future(pump())
        timed_out = False
        try:
            # `asyncio.timeout`, not `wait_for`: on Python 3.11 wait_for loses a cancellation
            # (`/backend cancel`) that arrives as the command ends.
            async with asyncio.timeout(timeout):
                await asyncio.shield(proc.wait())
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
            async with asyncio.timeout(2.0):
                await reader
        except TimeoutError:
            pass
        output = buffer.text()
        if timed_out:
            output += f"\n[killed: the command ran longer than {timeout:g} seconds]"
        return CommandResult(
            exit_code=-1 if timed_out else (proc.returncode if proc.returncode is not None else -1),
            output=output,
            timed_out=timed_out,
            duration=time.monotonic() - started,
        )


def _mask(path: Path) -> list[str]:
    """bwrap arguments that make an existing host path empty inside the sandbox."""
    if path.is_symlink() or not path.exists():
        return []
    return ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]


def _under_any(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


@contextlib.contextmanager
def _data_fd(text: str):
    """A file descriptor to read `text` from (a sealed-off memory file), for bwrap's --*-data."""
    fd = os.memfd_create("backend-bot-data", 0)
    try:
        os.write(fd, text.encode())
        os.lseek(fd, 0, os.SEEK_SET)
        yield fd
    finally:
        os.close(fd)


def _kill_tree(pid: int) -> None:
    """Kill the command's process group (bwrap's PID namespace then takes its children)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
