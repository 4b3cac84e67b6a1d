import asyncio
import contextlib
import os
import shutil
import socket
import threading
import time

import pytest

from bot.agent.sandbox import Sandbox, SandboxUnavailable, cap_text
from bot.settings import load_settings
from tests.support.in_process import own_secret_registry

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
pytestmark = pytest.mark.sandbox


@needs_bwrap
async def test_runs_in_workspace_and_writes_there(tmp_path):
    sandbox = Sandbox(tmp_path)
    result = await sandbox.run("pwd; echo hello > out.txt; echo err >&2; exit 3", timeout=20)
    assert result.exit_code == 3 and not result.timed_out
    assert str(tmp_path.resolve()) in result.output and "err" in result.output
    assert (tmp_path / "out.txt").read_text() == "hello\n"


@needs_bwrap
async def test_cannot_write_outside_workspace(tmp_path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    outside = tmp_path / "outside.txt"
    home = os.path.expanduser("~/backend-bot-sandbox-probe")
    result = await Sandbox(workspace).run(
        f"echo x > {outside}; echo y > {home}; echo z > /tmp/private; echo w > /usr/probe; ls /tmp",
        timeout=20,
    )
    assert not outside.exists()  # the host's /tmp is not there: the sandbox has its own
    assert not os.path.exists(home)  # home directories are not mounted at all
    assert "/usr/probe: Read-only file system" in result.output
    assert f"{home}: No such file or directory" in result.output
    assert not os.path.exists("/tmp/private")  # /tmp inside is private
    assert not os.path.exists("/usr/probe")


@needs_bwrap
async def test_git_directory_is_read_only(tmp_path):
    (tmp_path / ".git" / "hooks").mkdir(parents=True)
    result = await Sandbox(tmp_path).run("echo evil > .git/hooks/pre-commit", timeout=20)
    assert result.exit_code != 0
    assert not (tmp_path / ".git" / "hooks" / "pre-commit").exists()


@needs_bwrap
async def test_no_network_at_all_by_default(tmp_path):
    with listener("127.0.0.1") as (port, accepted):
        probe = f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED || echo REFUSED; ip -4 -o addr"
        result = await Sandbox(tmp_path).run(probe, timeout=20)
    assert "REFUSED" in result.output and "CONNECTED" not in result.output
    assert not accepted
    assert "tap0" not in result.output and "127.0.0.1/8" in result.output  # loopback only


@contextlib.contextmanager
def listener(host: str):
    """A TCP listener on the host; yields (port, accepted connections)."""
    server = socket.socket()
    server.bind((host, 0))
    server.listen(5)
    server.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(2)
        server.close()
        for conn in accepted:
            conn.close()


@needs_bwrap
async def test_environment_has_no_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-secret-value")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_" + "b" * 36)
    monkeypatch.setenv("WEBHOOK_SECRET", "hook-secret-value")
    monkeypatch.setenv("PRIVATE_KEY", "pem-value")
    sandbox = Sandbox(tmp_path, env={"MY_API_TOKEN": "leak", "APP_MODE": "test"})
    result = await sandbox.run("env", timeout=20)
    for leaked in ("ANTHROPIC_API_KEY", "sk-ant-test", "GITHUB_TOKEN", "ghs_", "WEBHOOK_SECRET",
                   "PRIVATE_KEY", "MY_API_TOKEN"):
        assert leaked not in result.output
    assert "APP_MODE=test" in result.output
    assert "PATH=" in result.output


@needs_bwrap
async def test_time_limit_kills_the_process_tree(tmp_path):
    marker = tmp_path / "late.txt"
    # A background grandchild that would write the marker after the limit.
    command = f"(sleep 2; echo late > {marker}) & sleep 30"
    started = time.monotonic()
    result = await Sandbox(tmp_path).run(command, timeout=0.5)
    assert result.timed_out and result.exit_code == -1
    assert time.monotonic() - started < 10
    assert "killed" in result.output
    await asyncio.sleep(2.5)
    assert not marker.exists()


@needs_bwrap
async def test_output_is_capped_keeping_head_and_tail(tmp_path):
    sandbox = Sandbox(tmp_path, output_limit=1000)
    result = await sandbox.run("echo START; seq 1 100000; echo END", timeout=20)
    assert result.output.startswith("START")
    assert result.output.rstrip().endswith("END")
    assert "cut" in result.output
    assert len(result.output) < 1200


def test_refuses_without_bwrap_unless_allowed(tmp_path):
    with pytest.raises(SandboxUnavailable, match="BOT_ALLOW_UNSANDBOXED_SHELL"):
        Sandbox(tmp_path, bwrap="").check()
    settings = load_settings(allow_unsandboxed_shell=True)
    sandbox = Sandbox.from_settings(tmp_path, settings, bwrap="")
    assert sandbox.check() is False


async def test_unsandboxed_shell_still_cleans_env_and_times_out(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-secret-value")
    sandbox = Sandbox(tmp_path, allow_unsandboxed=True, bwrap="")
    result = await sandbox.run("env; echo ok", timeout=10)
    assert "ok" in result.output and "ANTHROPIC_API_KEY" not in result.output
    slow = await sandbox.run("sleep 30", timeout=0.3)
    assert slow.timed_out


def test_cap_text():
    assert cap_text("short", 100) == "short"
    capped = cap_text("a" * 50 + "b" * 50, 20)
    assert capped.startswith("a" * 8) and capped.endswith("b" * 12) and "80 characters" in capped


@needs_bwrap
async def test_the_bots_own_files_are_hidden(tmp_path, monkeypatch):
    data = tmp_path / "data"
    workspace = data / "workspaces" / "job-1"
    mirror = data / "mirrors" / "acme" / "widgets.git"
    other = data / "mirrors" / "acme" / "secret-project.git"
    for path in (workspace, mirror, other):
        path.mkdir(parents=True)
    (mirror / "objects").write_text("borrowed objects\n")
    (other / "HEAD").write_text("someone else's code\n")
    (data / "backend-bot.db").write_text("the job database\n")
    key = tmp_path / "app.pem"
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ANTHROPIC_API_KEY=sk-ant-live\n")
    # Its own registry: this half a key, registered as a secret, would be redacted from
    # every later test's text.
    # Where the sandbox would otherwise show it (as it shows /etc and /opt, where such files live).
    google = mirror / "vertex-service-account.json"
    google.write_text('{"type": "service_account", "private_key": "google key"}\n')
    aws = mirror / "aws-credentials"
    aws.write_text("[default]\naws_secret_access_key = aws key\n")
    with own_secret_registry():
        settings = load_settings(data_dir=data, private_key_path=key, google_credentials_path=google,
                                 aws_shared_credentials_file=aws)
    sandbox = Sandbox.from_settings(workspace, settings, expose=[mirror])
    result = await sandbox.run(
        f"cat {mirror}/objects; echo 1; cat {other}/HEAD; echo 2; cat {data}/backend-bot.db;"
        f" echo 3; cat {tmp_path}/.env; echo 4; cat {key}; echo 5; cat {google}; echo 6; cat {aws};"
        " echo mine > here.txt",
        timeout=20,
    )
    assert "google key" not in result.output and "aws key" not in result.output
    assert "borrowed objects" in result.output  # this job's mirror stays readable
    assert "someone else's code" not in result.output
    assert "the job database" not in result.output
    assert "sk-ant-live" not in result.output
    assert "PRIVATE KEY" not in result.output
    assert (workspace / "here.txt").read_text() == "mine\n"  # the workspace stays writable


@needs_bwrap
async def test_git_works_in_a_workspace_borrowing_a_hidden_mirror(tmp_path):
    import subprocess

    data = tmp_path / "data"
    source, mirror = tmp_path / "source", data / "mirrors" / "acme" / "widgets.git"
    workspace = data / "workspaces" / "job-7"
    subprocess.run(["git", "init", "-q", "-b", "main", str(source)], check=True)
    (source / "a.txt").write_text("a\n")
    git = ["git", "-C", str(source), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(mirror)], check=True)
    subprocess.run(["git", "clone", "-q", "--shared", str(mirror), str(workspace)], check=True)
    settings = load_settings(data_dir=data)
    sandbox = Sandbox.from_settings(workspace, settings, expose=[mirror])
    result = await sandbox.run("git log --format=%s -1 && git status --short", timeout=20)
    assert result.exit_code == 0, result.output
    assert "first" in result.output
