"""Classes 3, 4 and 5 and `network: true`: what a command in the sandbox can do to the host.

These run as whatever user the suite runs as; CI runs as root, which is the case the sandbox
used to get wrong (root kept every capability inside it)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading

import pytest

from bot.agent import egress
from bot.agent.sandbox import ResourceLimits, Sandbox
from tests.test_sandbox import listener

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
]


def workspace(tmp_path):
    path = tmp_path / "ws"
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


async def test_the_sandbox_holds_no_privilege_whoever_runs_the_bot(tmp_path):
    ws = workspace(tmp_path)
    result = await Sandbox(ws).run(
        "grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs)' /proc/self/status;"
        "mount -o remount,rw / && echo REMOUNTED-ROOT;"
        "mount -o remount,rw /usr && echo REMOUNTED-USR;"
        f"umount {ws}/.git && echo UNMOUNTED-GIT;"
        "unshare -U true && echo NESTED-USERNS;"
        "cat /etc/shadow && echo READ-SHADOW;"
        "touch .git/planted && echo WROTE-GIT;"
        "echo done", timeout=20)
    out = result.output
    assert "CapEff:\t0000000000000000" in out and "CapPrm:\t0000000000000000" in out
    assert "CapBnd:\t0000000000000000" in out and "NoNewPrivs:\t1" in out
    for escaped in ("REMOUNTED-ROOT", "REMOUNTED-USR", "UNMOUNTED-GIT", "NESTED-USERNS",
                    "READ-SHADOW", "WROTE-GIT"):
        assert escaped not in out, out
    assert "done" in out
    assert not (ws / ".git" / "planted").exists()


async def test_host_unix_sockets_are_out_of_reach(tmp_path):
    paths = [tmp_path / "docker.sock"]
    run_dir = "/run" if os.access("/run", os.W_OK) else None
    if run_dir:
        paths.append(tmp_path.parent / "ignored")  # placeholder replaced below
        paths[-1] = type(tmp_path)(run_dir) / f"backend-bot-test-{os.getpid()}.sock"
    servers, accepted = [], []
    abstract = f"\0backend-bot-test-{os.getpid()}"
    try:
        for address in [*map(str, paths), abstract]:
            server = socket.socket(socket.AF_UNIX)
            server.bind(address)
            server.listen(5)
            server.settimeout(0.2)
            servers.append(server)

        stop = threading.Event()

        def accept():
            while not stop.is_set():
                for server in servers:
                    try:
                        accepted.append(server.accept()[0])
                    except OSError:
                        pass

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        probe = "; ".join(
            f"python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect({address!r}); "
            f"print('CONNECTED')\" 2>/dev/null || echo REFUSED"
            for address in [*map(str, paths), abstract.replace("\0", "\\0")])
        result = await Sandbox(workspace(tmp_path)).run(probe, timeout=20)
        stop.set()
        thread.join(2)
    finally:
        for server in servers:
            server.close()
        for path in paths:
            path.unlink(missing_ok=True)
    assert "CONNECTED" not in result.output
    assert result.output.count("REFUSED") == len(paths) + 1
    assert not accepted


async def test_resource_limits_hold_for_the_whole_tree(tmp_path):
    limits = ResourceLimits(processes=64, memory_bytes=256 << 20, file_size_bytes=16 << 20,
                            tmpfs_bytes=32 << 20, open_files=256)
    sandbox = Sandbox(workspace(tmp_path), limits=limits)
    # Python counts the forks that succeed (a shell whose fork fails just exits).
    many = await sandbox.run(
        "python3 -c 'import os, time\n"
        "started = 0\n"
        "for _ in range(200):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError:\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(3)\n"
        "        os._exit(0)\n"
        "    started += 1\n"
        "print(\"started\", started)'", timeout=30)
    started = int(many.output.rsplit("started", 1)[1].split()[0])
    assert 0 < started < 64, many.output
    memory = await sandbox.run(
        "python3 -c 'x = bytearray(1 << 30); print(\"ALLOCATED\")'; echo exit=$?", timeout=30)
    assert "ALLOCATED" not in memory.output and "exit=0" not in memory.output
    tmpfs = await sandbox.run("for i in 1 2 3 4 5 6 7 8; do head -c 8M /dev/zero > /tmp/fill$i; "
                              "done; du -sm /tmp", timeout=30)
    assert "No space left on device" in tmpfs.output
    assert int(tmpfs.output.split()[-2]) <= 33  # 32 MiB, and du rounds up
    big = await sandbox.run("head -c 64M /dev/zero > big.bin; echo exit=$?; stat -c %s big.bin",
                            timeout=30)
    assert "exit=153" in big.output  # killed by SIGXFSZ
    assert int(big.output.split()[-1]) <= 16 << 20
    shown = await sandbox.run("ulimit -t; ulimit -n; ulimit -c", timeout=10)
    cpu, files, core = shown.output.split()
    assert cpu != "unlimited" and int(cpu) > 0 and files == "256" and core == "0"


@pytest.mark.skipif(bool(egress.missing_tools()), reason=f"needs {', '.join(egress.TOOLS)}")
async def test_network_true_opens_the_internet_but_not_the_host(tmp_path):
    addresses = [a for a in egress.host_addresses() if not a.startswith("127.")]
    with listener("0.0.0.0") as (port, accepted):
        targets = ["127.0.0.1", "10.0.2.2", "169.254.169.254", *addresses]
        probe = "; ".join(f"timeout 3 bash -c 'exec 3<>/dev/tcp/{host}/{port}' 2>/dev/null "
                          f"&& echo CONNECTED {host} || echo REFUSED {host}" for host in targets)
        result = await Sandbox(workspace(tmp_path), network=True).run(
            f"{probe}; ip -4 route; cat /etc/resolv.conf", timeout=30)
    assert not accepted
    assert "CONNECTED" not in result.output
    for host in targets:
        assert f"REFUSED {host}" in result.output
    assert "default via 10.0.2.2 dev tap0" in result.output  # the way out exists
    assert "nameserver 10.0.2.3" in result.output
    assert egress.ruleset().count("reject") == 2
