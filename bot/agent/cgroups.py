"""A control group per sandboxed command, where the host lets the bot make one.

Resource limits of single processes (rlimits) do not add up: a command may start hundreds of
processes of a few gigabytes each, and fill its tmpfs besides. A control group bounds the whole
tree at once: `pids.max` the number of processes and threads, the memory limit everything the
tree holds, its tmpfs pages included. It is also the one limit on processes that binds root:
the kernel exempts uid 0 from RLIMIT_NPROC even without capabilities.

Where the bot may create groups (cgroup v1 `pids` and `memory` hierarchies it can write to, or
cgroup v2 when it runs in the root group, as on a VM or with a delegated hierarchy) every
command gets a group of its own under the bot's current one; elsewhere (most containers) the
sandbox keeps its rlimits only and `Cgroups.detect()` says so once.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from bot.logs import get_logger

log = get_logger(__name__)

_counter = itertools.count(1)


@dataclass(frozen=True)
class Hierarchy:
    version: int  # 1 or 2
    controller: str  # "pids", "memory", or "unified" (v2: both)
    base: Path  # the bot's own group in this hierarchy; new groups go under it


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, file system type, super options) of every mount of this process."""
    found: list[tuple[str, str, str]] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) >= 5 and len(rest) >= 3:
            found.append((fields[4].replace("\\040", " "), rest[0], rest[2]))
    return found


def _own_groups() -> dict[str, str]:
    """controller (or "" for v2) -> this process's group path, from /proc/self/cgroup."""
    groups: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return groups
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            groups[controller] = path
    return groups


def _writable(directory: Path) -> bool:
    probe = directory / f"backend-bot-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
        return True
    except OSError:
        return False


def _detect() -> list[Hierarchy]:
    own = _own_groups()
    v1: dict[str, Hierarchy] = {}
    for mount_point, fstype, options in _mounts():
        if fstype == "cgroup":
            for controller in ("pids", "memory"):
                if controller in options.split(",") and controller in own:
                    base = Path(mount_point) / own[controller].lstrip("/")
                    if _writable(base):
                        v1[controller] = Hierarchy(1, controller, base)
        elif fstype == "cgroup2" and own.get("", None) == "/":
            root = Path(mount_point)
            try:
                available = (root / "cgroup.controllers").read_text().split()
                if {"pids", "memory"} <= set(available):
                    (root / "cgroup.subtree_control").write_text("+pids +memory")
                    if _writable(root):
                        return [Hierarchy(2, "unified", root)]
            except OSError:
                pass
    if {"pids", "memory"} <= set(v1):
        return [v1["pids"], v1["memory"]]
    return []


class Cgroups:
    """The hierarchies this process may use; detected once."""

    _detected: list[Hierarchy] | None = None

    @classmethod
    def detect(cls) -> list[Hierarchy]:
        if cls._detected is None:
            cls._detected = _detect()
            if cls._detected:
                log.info("sandbox commands get a control group each (%s)",
                         ", ".join(f"v{h.version} {h.controller} at {h.base}" for h in cls._detected))
            elif os.geteuid() == 0:
                log.warning(
                    "backend-bot runs as root and cannot create control groups here: the "
                    "sandbox cannot bound its number of processes (the kernel does not apply "
                    "RLIMIT_NPROC to root) nor its total memory. Run the bot as an unprivileged "
                    "user (see SECURITY.md).")
            else:
                log.info("no writable control group here: the sandbox relies on rlimits")
        return cls._detected


class CommandGroup:
    """One command's control group(s); `procs_files` are what its first process joins."""

    def __init__(self, hierarchies: list[Hierarchy], *, processes: int, memory_bytes: int) -> None:
        name = f"backend-bot-{os.getpid()}-{next(_counter)}"
        self.paths: list[Path] = []
        try:
            for hierarchy in hierarchies:
                path = hierarchy.base / name
                path.mkdir()
                self.paths.append(path)
                if hierarchy.version == 2:
                    (path / "pids.max").write_text(str(processes))
                    (path / "memory.max").write_text(str(memory_bytes))
                    (path / "memory.swap.max").write_text("0")
                    # At the memory limit the whole tree goes, not one arbitrary process of it.
                    (path / "memory.oom.group").write_text("1")
                elif hierarchy.controller == "pids":
                    (path / "pids.max").write_text(str(processes))
                else:
                    (path / "memory.limit_in_bytes").write_text(str(memory_bytes))
        except OSError:
            self.close()
            raise

    @property
    def procs_files(self) -> list[str]:
        return [str(path / "cgroup.procs") for path in self.paths]

    def close(self) -> None:
        """Kill whatever is left in the group and remove it."""
        for path in self.paths:
            for _ in range(50):
                try:
                    pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.01)
            try:
                path.rmdir()
            except OSError as error:
                log.warning("could not remove control group %s: %s", path, error)
        self.paths = []


def command_group(*, processes: int, memory_bytes: int) -> CommandGroup | None:
    """A fresh group for one command, or None where the host allows none."""
    hierarchies = Cgroups.detect()
    if not hierarchies:
        return None
    try:
        return CommandGroup(hierarchies, processes=processes, memory_bytes=memory_bytes)
    except OSError as error:
        log.warning("could not create a control group for a sandboxed command: %s", error)
        return None
