"""`network: true`: the internet for a sandboxed command, and nothing of the bot's host.

Sharing the host's network namespace would hand the command the bot's own port, its database,
every service on loopback and the cloud's metadata address. Instead each command gets a network
namespace of its own, connected by user-mode networking (slirp4netns, which makes every
connection from the host as an ordinary socket) and filtered inside the namespace by nftables
before the command starts:

- slirp4netns runs with `--disable-host-loopback`, so its gateway (10.0.2.2) is not the host's
  127.0.0.1;
- packets leaving through the tap device to loopback, private (RFC 1918, CGNAT), link-local
  (the metadata service), multicast and reserved addresses, and to every address of the host's
  own interfaces, are rejected; slirp's DNS forwarder (10.0.2.3) is the one exception;
- the command gets a resolv.conf naming that forwarder.

Why this and not an egress proxy: package managers, git and test suites open plain TCP
connections that an HTTP proxy does not carry, and a proxy needs every tool configured to use
it; a filtered namespace is invisible to them. It costs two Debian packages (slirp4netns and
nftables) and about a tenth of a second per command.

The namespace is made by an unprivileged helper (`unshare --user --map-root-user --net`) owned
by the bot's user, so the same steps work whether the bot runs as root or not; the sandbox is
started inside it with `nsenter` and makes its own user namespace below it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from bot.errors import BotError
from bot.logs import get_logger

log = get_logger(__name__)

TAP = "tap0"
DNS_FORWARDER = "10.0.2.3"
RESOLV_CONF = f"nameserver {DNS_FORWARDER}\n"
SETUP_TIMEOUT = 10.0
TOOLS = ("unshare", "nsenter", "slirp4netns", "nft", "ip")

BLOCKED_V4 = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/3",
)


class EgressUnavailable(BotError):
    """The filtered network could not be set up; the command must not run with another."""


def _search_path() -> str:
    # nft and ip live in /usr/sbin, which an unprivileged user's PATH often lacks.
    return os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool, path=_search_path()) is None]


def host_addresses() -> list[str]:
    """Every IPv4 address of the host's own interfaces (from /proc/net/fib_trie's LOCAL routes)."""
    addresses: set[str] = set()
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
    except OSError:
        return []
    for previous, line in itertools.pairwise(lines):
        if line.strip() == "/32 host LOCAL":
            candidate = previous.strip().removeprefix("|-- ").strip()
            try:
                addresses.add(str(ipaddress.IPv4Address(candidate)))
            except ValueError:
                continue
    return sorted(addresses)


def ruleset() -> str:
    """The nftables rules loaded in the command's namespace before it starts."""
    blocked = ", ".join([*BLOCKED_V4, *host_addresses()])
    return (
        "table inet backend_bot_egress {\n"
        "  chain output {\n"
        "    type filter hook output priority 0; policy accept;\n"
        f'    oifname "{TAP}" ip daddr {DNS_FORWARDER} accept\n'
        f'    oifname "{TAP}" ip daddr {{ {blocked} }} reject\n'
        f'    oifname "{TAP}" meta nfproto ipv6 reject\n'
        "  }\n"
        "}\n"
    )


def _env() -> dict[str, str]:
    return {"PATH": _search_path()}


async def _run(argv: list[str], *, input: str | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=_env(), stdin=asyncio.subprocess.PIPE if input else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    # `asyncio.timeout` here and below: `wait_for` can lose a cancellation on Python 3.11.
    async with asyncio.timeout(SETUP_TIMEOUT):
        out, _ = await proc.communicate(input.encode() if input else None)
    if proc.returncode != 0:
        raise EgressUnavailable(f"{argv[0]} failed: {out.decode(errors='replace').strip()[:300]}")


async def _kill(proc: asyncio.subprocess.Process | None) -> None:
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()


async def _start_holder() -> tuple[asyncio.subprocess.Process, str]:
    """A process whose namespaces the command joins; it lives until its stdin closes."""
    holder = await asyncio.create_subprocess_exec(
        "unshare", "--user", "--map-root-user", "--net", "--",
        "/bin/sh", "-c", "ip link set lo up && echo ready && exec cat >/dev/null",
        env=_env(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL)
    assert holder.stdout is not None
    async with asyncio.timeout(SETUP_TIMEOUT):
        line = await holder.stdout.readline()
    if line.strip() != b"ready":
        await _kill(holder)
        raise EgressUnavailable("could not create a network namespace (unshare)")
    return holder, str(holder.pid)


async def _start_slirp(pid: str) -> asyncio.subprocess.Process:
    ready_read, ready_write = os.pipe()
    try:
        slirp = await asyncio.create_subprocess_exec(
            "slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback",
            f"--ready-fd={ready_write}", f"--userns-path=/proc/{pid}/ns/user", pid, TAP,
            env=_env(), pass_fds=(ready_write,), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        os.close(ready_write)
        ready_write = -1
        async with asyncio.timeout(SETUP_TIMEOUT):
            ready = await asyncio.to_thread(os.read, ready_read, 1)
    finally:
        os.close(ready_read)
        if ready_write >= 0:
            os.close(ready_write)
    if ready != b"1":
        await _kill(slirp)
        raise EgressUnavailable("slirp4netns did not start")
    return slirp


@contextlib.asynccontextmanager
async def filtered_namespace() -> AsyncIterator[list[str]]:
    """A network namespace with filtered user-mode networking, for one command; yields the
    argv prefix (`nsenter …`) that starts a program inside it."""
    missing = missing_tools()
    if missing:
        raise EgressUnavailable(f"missing {', '.join(missing)}")
    holder = slirp = None
    try:
        try:
            holder, pid = await _start_holder()
            slirp = await _start_slirp(pid)
            enter = ["nsenter", f"--target={pid}", "--user", "--net", "--preserve-credentials"]
            await _run([*enter, "nft", "-f", "-"], input=ruleset())
        except (OSError, TimeoutError) as error:
            raise EgressUnavailable(str(error) or type(error).__name__) from error
        yield [*enter, "--"]
    finally:
        await _kill(slirp)
        if holder is not None and holder.stdin is not None:
            holder.stdin.close()
        await _kill(holder)
