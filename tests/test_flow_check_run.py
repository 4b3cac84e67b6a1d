"""The run's check in GitHub's Checks tab, end to end: in progress with the plan and the latest
tool calls while the agent works, completed with the summary, the cost and the bot's own test
result when it ends, completed as cancelled when the job is cancelled, never a raw mention,
link or tag from what the agent wrote."""

from __future__ import annotations

import re

import pytest

import bot.flows.check_run as check_run
from tests.agent_fakes import finish, http_error, tool_use
from tests.support.stack import MODEL_KEY, REPO, Stack
from tests.support.waiting import wait_for

HOSTILE = ("echo '@octocat <img src=x onerror=alert(1)> [win](http://evil.example) fixes #1 "
           "<!-- backend-bot:status:job-1 -->'; sleep 2")


@pytest.fixture(autouse=True)
def quick_updates(monkeypatch, github_sim):
    monkeypatch.setattr(check_run, "CHECK_UPDATE_INTERVAL", 0.1)
    github_sim.commit(REPO, "main", {"Makefile": "test:\n\t@test -f hello.txt && echo ok\n"},
                      message="Add a test target")


def run_checks(stack: Stack) -> list[dict]:
    return [dict(c, id=i) for i, c in stack.sim.check_runs.items() if c["name"] == check_run.RUN_CHECK_NAME]


def output(check: dict) -> str:
    out = check.get("output", {})
    return "\n".join(str(out.get(k) or "") for k in ("title", "summary", "text"))


def test_the_check_shows_the_plan_and_calls_while_working_then_what_the_run_delivered(stack):
    sim = stack.sim
    main_head = sim.branches(REPO)["main"]
    number = sim.add_issue(REPO, "Add hello.txt", "Please add hello.txt.", user="alice")
    stack.fake.add(
        tool_use("TodoWrite", todos=[
            {"content": "Write hello.txt", "status": "completed", "activeForm": "Writing hello.txt"},
            {"content": "Say hello loudly", "status": "in_progress", "activeForm": "Saying hello"},
        ]),
        tool_use("Write", file_path="hello.txt", content="hello\n"),
        tool_use("Bash", command=HOSTILE, description="Greet"),
        finish(title="Add hello.txt", task_summary="Added hello.txt as asked."),
    )
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))

    def working():
        return [c for c in run_checks(stack) if c["status"] == "in_progress" and "sleep 2" in output(c)]

    (live,) = wait_for(working, what="the check in progress with the Bash call")
    assert live["head_sha"] == main_head  # a new branch: the work starts from main's head
    assert live["output"]["title"] == "Working: 1 of 2 steps done"
    assert "- [x] Write hello.txt" in live["output"]["summary"]
    assert "Say hello loudly" in live["output"]["summary"]
    assert "`Write` `hello.txt`" in live["output"]["text"]

    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error
    head = sim.branches(REPO)[f"backend/issue-{number}-add-hello-txt"]
    checks = {c["head_sha"]: c for c in run_checks(stack)}
    assert set(checks) == {main_head, head}
    done, started = checks[head], checks[main_head]
    assert (done["status"], done["conclusion"]) == ("completed", "success")
    assert done["output"]["title"] == f"Committed {head[:7]}"
    summary = done["output"]["summary"]
    assert "Added hello.txt as asked." in summary
    assert re.search(r"turns: 4 · tokens: .* · cost: \$\d", summary)
    assert "The bot's own test run: `make test` passed" in summary
    assert f"backend-bot jobs --show {job.id}" in done["output"]["text"]
    # Nothing stays in progress: the check on the starting commit points to the result.
    assert (started["status"], started["conclusion"]) == ("completed", "neutral")
    assert started["output"]["title"] == f"Done: the result is on {head[:7]}"
    # What the agent wrote is shown as code: no mention, image, link or closing keyword acts,
    # and the bot's own marker is gone.
    for check in (live, done, started):
        text = output(check)
        assert "backend-bot:status" not in text
        for line in text.splitlines():
            if "octocat" in line:
                assert re.fullmatch(r"- `Bash` `echo '@octocat [^`]*; sleep 2`", line), line
    # The bot's test output still has its own check, beside this one.
    assert [c["conclusion"] for c in sim.check_runs.values() if c["name"] == check_run.TESTS_CHECK_NAME] == [
        "success"]


def test_updates_are_throttled_not_one_per_tool_call(stack, monkeypatch):
    monkeypatch.setattr(check_run, "CHECK_UPDATE_INTERVAL", 3.0)
    sim = stack.sim
    number = sim.add_issue(REPO, "Look around", "Read the files.", user="alice")
    stack.fake.add(*[tool_use("Glob", pattern=f"*{i}") for i in range(40)],
                   tool_use("Bash", command="sleep 2"),
                   finish(title="Looked around", task_summary="Nothing to change."))
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error
    patches = [r for r in sim.requests if r.method == "PATCH" and "/check-runs/" in r.path]
    # One progress edit per 3 s at most, and the completion: far fewer than the 42 calls.
    assert 1 <= len(patches) <= 12
    (check,) = run_checks(stack)  # no commit: completed where it started
    assert (check["status"], check["conclusion"]) == ("completed", "neutral")
    assert check["output"]["title"] == "Finished without changes"


def test_a_cancelled_run_completes_its_check_as_cancelled(stack):
    sim = stack.sim
    number = sim.add_issue(REPO, "Slow", "Take your time.", user="alice")
    stack.fake.add(tool_use("Bash", command="sleep 57", description="Wait"))
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    wait_for(lambda: [c for c in run_checks(stack) if "sleep 57" in output(c)], what="the long call on the check")
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend cancel", sender="alice"))
    work, _control = stack.wait_jobs(2, timeout=30)
    assert work.state == "cancelled"
    (check,) = wait_for(lambda: [c for c in run_checks(stack) if c["status"] == "completed"],
                        what="the check completed")
    assert check["conclusion"] == "cancelled"
    assert check["output"]["summary"] == "The job was cancelled."


def test_the_check_never_shows_a_secret(stack):
    sim = stack.sim
    number = sim.add_issue(REPO, "Leak", "Print things.", user="alice")
    secret = sim.default_app.webhook_secret
    stack.fake.add(tool_use("Bash", command=f"echo {secret} {MODEL_KEY}; sleep 1"),
                   finish(title="Printed", task_summary="Printed nothing useful."))
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error
    (check,) = run_checks(stack)
    assert "echo" in output(check)
    sent = [str(r.json) for r in sim.requests if "/check-runs" in r.path and r.json]
    for text in [output(check), *sent]:
        assert secret not in text and MODEL_KEY not in text


def test_a_failed_run_completes_its_check_as_failed_with_the_reason(stack):
    sim = stack.sim
    number = sim.add_issue(REPO, "Refused", "Do it.", user="alice")
    stack.fake.add(tool_use("Glob", pattern="*"), http_error(400, "no such model"))
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "failed"
    (check,) = run_checks(stack)
    assert (check["status"], check["conclusion"]) == ("completed", "failure")
    assert check["output"]["summary"].startswith("The run failed: the model service refused the request")
    assert "`Glob` `*`" in check["output"]["text"]
