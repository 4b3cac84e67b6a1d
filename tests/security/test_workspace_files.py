"""Class 1 and the host side of class 5: the bot's own process reading and writing workspace
files that are links to the host, FIFOs or huge sparse files.

End to end through `backend-bot serve` in a process of its own (a committed link, one of them to
that process's environment), through the bot in this process (a link made by the agent's
shell) and through `backend-bot run`, and in-process for what must never block the event loop."""

from __future__ import annotations

import asyncio
import os
import shutil
import time

import pytest

from bot import confined
from bot.agent.context import build_first_message
from bot.agent.sandbox import Sandbox
from bot.agent.tools import ToolContext, default_tools, execute
from bot.repo_config import detect_test_command
from bot.worklog import WorkLogEntry, append_entry
from tests.agent_fakes import FakeAnthropic, finish, make_repo, tool_use
from tests.simulator import Symlink
from tests.support.stack import MODEL_KEY, REPO

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
CANARY = "CANARY-host-secret-7f3a9c"


def requests_text(stack) -> str:
    return "\n".join(str(request) for request in stack.fake.requests)


@needs_bwrap
def test_a_committed_instruction_file_linking_to_the_host_is_not_read(process_stack, tmp_path):
    # A process of its own: only there does the environment hold the bot's keys, as it does
    # in production.
    stack = process_stack
    host_file = tmp_path / "host-secrets.env"
    host_file.write_text(f"SECRET={CANARY}\n")
    sim = stack.sim
    # AGENTS.md points at the bot's own process environment: its keys, were it followed.
    sim.commit(REPO, "main", {"CLAUDE.md": Symlink(str(host_file)),
                              "AGENTS.md": Symlink("/proc/self/environ")})
    number = sim.add_issue(REPO, "Add notes.txt", "", user="alice")
    stack.fake.add(tool_use("Write", file_path="notes.txt", content="notes\n"),
                   finish(title="Add notes.txt"))
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error

    sent = requests_text(stack)
    assert CANARY not in sent
    assert MODEL_KEY not in sent and "PRIVATE KEY" not in sent and "WEBHOOK_SECRET" not in sent
    assert "CLAUDE.md is a link or a special file" in sent  # the agent is told, not left guessing
    assert sim.pulls(REPO)


@needs_bwrap
def test_a_work_log_turned_into_a_link_by_the_agent_is_not_written_through(stack, tmp_path):
    target = tmp_path / "bot.env"
    target.write_text("ORIGINAL=1\n")
    sim = stack.sim
    number = sim.add_issue(REPO, "Add notes.txt", "", user="alice")
    stack.fake.add(
        tool_use("Bash", command=f"echo notes > notes.txt && ln -sf {target} BACKEND_WORK_LOG.md"),
        finish(title="Add notes.txt"),
    )
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert target.read_text() == "ORIGINAL=1\n"
    assert job.state == "failed"
    assert "BACKEND_WORK_LOG.md is a link or a special file" in job.error
    status = [c["body"] for c in sim.comments_on(REPO, number) if "backend-bot:status" in c["body"]]
    assert "BACKEND_WORK_LOG.md is a link" in status[0]
    assert not sim.pulls(REPO)


@needs_bwrap
def test_backend_bot_run_does_not_write_through_a_linked_work_log(tmp_path):
    from bot.agent.local import main as run_local
    from bot.settings import load_settings

    target = tmp_path / "venv-site.pth"
    target.write_text("# untouched\n")
    repo = make_repo(tmp_path / "repo", {"README.md": "hi\n"})
    with FakeAnthropic([
        tool_use("Bash", command=f"ln -s {target} BACKEND_WORK_LOG.md"),
        finish(title="Link the log"),
    ]) as fake:
        import io

        out, err = io.StringIO(), io.StringIO()
        code = run_local(str(repo), "do it", load_settings(_env_file=None, data_dir=tmp_path / "d"),
                         client=fake.client(), out=out, err=err)
    assert code == 1
    assert target.read_text() == "# untouched\n"
    assert "BACKEND_WORK_LOG.md is a link or a special file" in err.getvalue()


def test_host_side_helpers_refuse_links_fifos_and_huge_files(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text(CANARY)
    ws = tmp_path / "ws"
    ws.mkdir()
    os.symlink(outside, ws / "CLAUDE.md")
    os.mkfifo(ws / "AGENTS.md")
    os.symlink(outside, ws / "Makefile")
    os.mkfifo(ws / "package.json")
    with open(ws / "BACKEND_WORK_LOG.md", "wb") as sparse:
        sparse.truncate(64 * 1024**3)  # 64 GB that take no disk
    started = time.monotonic()
    message = build_first_message(ws, "the task")
    assert CANARY not in message
    assert "AGENTS.md is not a regular file" in message
    assert "over the limit" in message  # the sparse work log is not read
    assert detect_test_command(ws) is None
    with pytest.raises(confined.UnsafePath):
        append_entry(ws, WorkLogEntry(title="x"))
    assert time.monotonic() - started < 5  # nothing waited on a FIFO or read 64 GB
    (ws / "BACKEND_WORK_LOG.md").unlink()
    os.symlink(outside, ws / "BACKEND_WORK_LOG.md")
    with pytest.raises(confined.UnsafePath):
        append_entry(ws, WorkLogEntry(title="x"))
    assert outside.read_text() == CANARY
    os.link(outside, ws / "hardlinked.md")
    with pytest.raises(confined.UnsafePath, match="hard links"):
        confined.write_text(ws, "hardlinked.md", "overwritten")
    assert outside.read_text() == CANARY


@needs_bwrap
async def test_reading_a_fifo_or_a_sparse_file_keeps_the_event_loop_free(tmp_path):
    repo = make_repo(tmp_path / "ws", {"README.md": "hi\n"})
    ctx = ToolContext(workspace=repo, sandbox=Sandbox(repo))
    tools = {t.name: t for t in default_tools()}
    made, failed = await execute(tools, ctx, "Bash",
                                 {"command": "mkfifo pipe && truncate -s 1G sparse.bin"}, 30_000)
    assert not failed, made
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    running = asyncio.create_task(ticker())
    try:
        started = time.monotonic()
        for path in ("pipe", "sparse.bin"):
            for name, args in [("Read", {"file_path": path}),
                               ("Edit", {"file_path": path, "old_string": "a", "new_string": "b"})]:
                text, is_error = await asyncio.wait_for(execute(tools, ctx, name, args, 30_000), 5)
                assert is_error, (name, path, text)
        text, is_error = await asyncio.wait_for(
            execute(tools, ctx, "Grep", {"pattern": "x", "path": "pipe"}, 30_000), 5)
        assert is_error and "not a directory or a regular file" in text
        for args in ({"pattern": "x", "path": "sparse.bin"}, {"pattern": "x"}):  # binary: skipped
            await asyncio.wait_for(execute(tools, ctx, "Grep", args, 30_000), 10)
        elapsed = time.monotonic() - started
    finally:
        running.cancel()
    assert elapsed < 5
    assert ticks >= elapsed / 0.01 * 0.3  # the loop kept turning meanwhile
