"""Every agent run's transcript, kept with its job and printed by `backend-bot jobs --show`:
the model's words, each tool call with its result cut to size, the usage of every turn; never
a secret, never a sequence the operator's terminal would act on."""

from __future__ import annotations

import subprocess
import sys

from bot.database import Database
from bot.redact import register_secret
from bot.transcripts import RESULT_CHARS, Transcript, TranscriptStore, cut, printable, render, turns_of
from tests.agent_fakes import finish, tool_use
from tests.support.in_process import own_secret_registry
from tests.support.processes import ROOT
from tests.support.stack import MODEL_KEY, REPO

MESSAGES = [
    {"role": "user", "content": [{"type": "text", "text": "the task prompt"}]},
    {"role": "assistant", "content": [
        {"type": "text", "text": "I will read the file."},
        {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "app.py"}},
        {"type": "tool_use", "id": "t2", "name": "Bash", "input": {"command": "false"}},
    ]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": "x" * 10_000},
        {"type": "tool_result", "tool_use_id": "t2", "content": "exit 1", "is_error": True},
        {"type": "text", "text": "You have used most of your turns."},
    ]},
    {"role": "assistant", "content": [
        {"type": "tool_use", "id": "t3", "name": "FinishWork", "input": {"title": "Done"}},
    ]},
]
USAGE = [{"input": 1200, "cached": 0, "cache write": 1100, "output": 80, "cost": 0.0021},
         {"input": 40, "cached": 1100, "cache write": 0, "output": 30, "cost": 0.0004}]


def test_turns_pair_each_call_with_its_result_cut_to_size_and_carry_their_usage():
    first, second = turns_of(MESSAGES, USAGE)
    assert first["text"] == ["I will read the file."]
    read, bash = first["calls"]
    assert (read["name"], read["input"]) == ("Read", {"file_path": "app.py"})
    assert len(read["result"]) < RESULT_CHARS + 100 and "characters cut" in read["result"]
    assert bash["error"] is True and bash["result"] == "exit 1"
    assert first["notes"] == ["You have used most of your turns."]
    assert first["usage"] == USAGE[0] and second["usage"] == USAGE[1]
    assert second["calls"][0]["name"] == "FinishWork" and second["calls"][0]["result"] is None
    assert "the task prompt" not in str([first, second])  # the job's spec holds it already


def test_cut_keeps_head_and_tail():
    text = "".join(str(i % 10) for i in range(5000))
    shown = cut(text, 100)
    assert shown.startswith(text[:75]) and shown.endswith(text[-25:])
    assert "4,900 characters cut" in shown
    assert cut("short", 100) == "short"


def test_nothing_a_terminal_acts_on_survives_printing():
    hostile = "ok\x1b[2J\x1b]0;pwned\x07\x1b]8;;http://evil\x1b\\link\x1b[0m\r\x9b31m\x00done\tend"
    # The 8-bit CSI goes; what followed it is plain text once it has.
    assert printable(hostile) == "oklink31mdone\tend"


def test_stored_redacted_and_read_back_in_order(tmp_path):
    store = TranscriptStore(Database(f"sqlite:///{tmp_path}/jobs.db"))
    store.create_table()
    secret = "ghs_" + "s3cr3t" * 6
    with own_secret_registry():
        register_secret(secret, configured=True)
        leaky = [*MESSAGES[:2], {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": f"token={secret}"}]}]
        store.save(7, "finished", leaky, USAGE[:1])
        store.save(7, "turn limit reached (2 turns)", MESSAGES, USAGE)
        store.save(8, "finished", MESSAGES, USAGE)
    first, second = store.of_job(7)
    assert (first.outcome, second.outcome) == ("finished", "turn limit reached (2 turns)")
    assert secret not in str(first.turns) and "token=" in str(first.turns)
    assert len(second.turns) == 2


def test_render_shows_turns_calls_results_and_usage():
    text = render(Transcript(7, 0.0, "finished", turns_of(MESSAGES, USAGE)))
    assert "ended: finished, 2 turns" in text
    assert "── turn 1 (input 1,200, cached 0, cache write 1,100, output 80, cost $0.0021)" in text
    assert '→ Read {"file_path": "app.py"}' in text
    assert "✗ exit 1" in text


def jobs_show(stack, job_id: int) -> subprocess.CompletedProcess:
    """`backend-bot jobs --show ID` as an operator runs it, with nothing but the data folder."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "jobs", "--show", str(job_id)], cwd=ROOT,
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "BOT_DATA_DIR": str(stack.data_dir)},
    )


def test_jobs_show_prints_a_real_runs_transcript(stack):
    sim = stack.sim
    number = sim.add_issue(REPO, "Add hello.txt", "Please add hello.txt.", user="alice")
    stack.fake.add(
        tool_use("Write", file_path="hello.txt", content="hello\x1b]0;owned\x07\n"),
        tool_use("Bash", command="cat hello.txt", description="Check the file"),
        finish(title="Add hello.txt", task_summary="Added hello.txt."),
    )
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error
    shown = jobs_show(stack, job.id)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"job {job.id}: issue on {REPO}#{number}, succeeded" in out
    assert "ended: finished, 3 turns" in out
    assert "→ Write" in out and "→ Bash" in out and "→ FinishWork" in out
    assert "← hello" in out  # cat's output, as the agent saw it
    assert "── turn 1 (input " in out and "cost $" in out
    assert "\x1b" not in out and "\x07" not in out
    missing = jobs_show(stack, 999999)
    assert missing.returncode == 1 and "no job 999999" in missing.stderr


def test_jobs_show_prints_no_secret_the_run_saw(stack):
    sim = stack.sim
    number = sim.add_issue(REPO, "Print the keys", "Please print them.", user="alice")
    webhook_secret = sim.default_app.webhook_secret

    def leak(_request):
        token = stack.minted_tokens()[-1]
        return tool_use("Bash", command=f"echo {token} {webhook_secret} {MODEL_KEY}",
                        text=f"The key is {MODEL_KEY}.")

    stack.fake.add(leak, finish(title="Print the keys", task_summary="Printed them."))
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error
    shown = jobs_show(stack, job.id)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "→ Bash" in out and "echo " in out and "The key is" in out
    assert out.count("[REDACTED]") >= 3, out
    for secret in [*stack.minted_tokens(), webhook_secret, MODEL_KEY]:
        assert secret not in out
