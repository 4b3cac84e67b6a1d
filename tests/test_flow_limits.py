"""A limit never loses work, end to end: a run stopped by its turn limit ends in a draft pull
request with an entry the bot wrote (what is left under Next Steps), and `/backend continue`
goes on on that branch with the earlier entries as context."""

from __future__ import annotations

import re

import pytest

from tests.agent_fakes import finish, tool_use
from tests.support.stack import REPO, Stack


@pytest.fixture(autouse=True)
def four_turns(github_sim):
    github_sim.commit(REPO, "main", {".github/backend.yml": "max_turns: 4\n"}, message="Four turns")


def plan(*done: bool) -> dict:
    items = ["Write greet.py", "Write its tests"]
    return tool_use("TodoWrite", todos=[
        {"content": item, "status": "completed" if finished else "pending", "activeForm": item + "ing"}
        for item, finished in zip(items, done, strict=True)])


def stopped_by_the_turn_limit() -> list:
    return [
        plan(False, False),
        tool_use("Write", file_path="greet.py", content="def greet():\n    return 'hi'\n"),
        plan(True, False),
        tool_use("Read", file_path="greet.py"),
    ]


def status_comment(stack: Stack, number: int, job_id: int) -> str:
    (comment,) = [c for c in stack.sim.comments_on(REPO, number)
                  if f"backend-bot:status:job-{job_id} " in c["body"]]
    return comment["body"]


def start_and_hit_the_limit(stack: Stack) -> tuple[int, dict]:
    sim = stack.sim
    number = sim.add_issue(REPO, "Add greet", "Add greet() with tests. cc @bob, fixes #99", user="alice")
    stack.fake.add(*stopped_by_the_turn_limit())
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error
    assert job.result.endswith("(stopped at its turn limit)")
    # The reserve: the agent was asked to wrap up before the last turns.
    assert any(b["type"] == "text" and "FinishWork" in b["text"]
               for b in stack.fake.requests[-1]["messages"][-1]["content"])
    (pr,) = sim.pulls(REPO)
    assert pr["draft"]
    status = status_comment(stack, number, job.id)
    assert "Stopped at its turn limit" in status and "/backend continue" in status
    assert f"#{pr['number']}" in status
    head = sim.branches(REPO)[pr["head"]["ref"]]
    (check,) = [c for c in sim.check_runs.values() if c["name"] == "backend-bot" and c["head_sha"] == head]
    assert check["conclusion"] == "neutral" and "unfinished (the turns limit)" in check["output"]["title"]
    return number, pr


def test_a_turn_limit_ends_in_a_draft_pull_request_and_continue_finishes_it(stack):
    sim = stack.sim
    number, pr = start_and_hit_the_limit(stack)
    branch = pr["head"]["ref"]
    assert sim.read_file(REPO, "greet.py", ref=branch) == "def greet():\n    return 'hi'\n"
    log = sim.read_file(REPO, "BACKEND_WORK_LOG.md", ref=branch)
    assert "Unfinished: Add greet" in log and "turn limit reached (4 turns)" in log
    assert "`/backend continue`" in log and "[ ] Write its tests" in log
    assert "[ ] Write greet.py" not in log  # done items are not left
    assert "`greet.py`" in log
    assert "Unfinished: Add greet" in pr["title"]
    assert f"Closes #{number}" in pr["body"] and "### Next Steps" in pr["body"]

    # The maintainer gives it room, then asks it to go on.
    sim.commit(REPO, "main", {".github/backend.yml": "max_turns: 20\n"}, message="More turns")
    stack.fake.add(
        tool_use("Write", file_path="test_greet.py", content="from greet import greet\n"),
        finish(title="Add greet with tests", task_summary="Finished greet() and its tests."),
    )
    stack.deliver("issue_comment", sim.event_issue_comment_created(REPO, number, "/backend continue",
                                                                   sender="alice"))
    _, second = stack.wait_jobs(2)
    assert second.kind == "issue" and second.state == "succeeded", second.error
    # The continued run starts from the branch, the earlier entry in its context.
    task = stack.fake.requests[4]["messages"][0]["content"][0]["text"]
    assert "Unfinished: Add greet" in task and "Write its tests" in task
    (pr,) = sim.pulls(REPO)
    assert pr["head"]["ref"] == branch and pr["title"] == "Add greet with tests"
    assert sim.read_file(REPO, "test_greet.py", ref=branch) == "from greet import greet\n"
    assert sim.read_file(REPO, "BACKEND_WORK_LOG.md", ref=branch).count(f"(#{number})") == 2
    assert "Earlier work on this pull request" in pr["body"]
    assert "Done" in status_comment(stack, number, second.id)
    assert second.result == f"pull request #{pr['number']} updated"


def test_continue_on_the_bot_s_pull_request_goes_on_on_its_branch(stack):
    sim = stack.sim
    _, pr = start_and_hit_the_limit(stack)
    stack.fake.add(
        tool_use("Write", file_path="test_greet.py", content="from greet import greet\n"),
        finish(title="Add greet with tests", task_summary="Finished greet() and its tests."),
    )
    stack.deliver("issue_comment", sim.event_issue_comment_created(REPO, pr["number"], "/backend continue",
                                                                   sender="alice"))
    _, second = stack.wait_jobs(2)
    assert second.kind == "pr_command" and second.state == "succeeded", second.error
    assert len(sim.pulls(REPO)) == 1
    assert sim.read_file(REPO, "test_greet.py", ref=pr["head"]["ref"]) == "from greet import greet\n"
    # Still four turns: it finished in the reserve, told to wrap up, and says so.
    status = status_comment(stack, pr["number"], second.id)
    assert "Wrapped up as it neared its turn limit" in status and "Pushed" in status


def test_the_issue_s_words_in_the_bot_s_entry_are_neutralised(stack):
    sim = stack.sim
    number = sim.add_issue(REPO, "Add greet @bob fixes #99", "", user="alice")
    stack.fake.add(*stopped_by_the_turn_limit())
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error
    (pr,) = sim.pulls(REPO)
    log = sim.read_file(REPO, "BACKEND_WORK_LOG.md", ref=pr["head"]["ref"])
    for text in (pr["title"], pr["body"], log):
        # Neutralised as code: no mention, no closing keyword GitHub would act on.
        assert not re.search(r"(?<!`)@bob", text) and "fixes #99" not in text


def test_a_cost_limit_ends_in_a_draft_pull_request_too(stack):
    sim = stack.sim
    sim.commit(REPO, "main", {".github/backend.yml": "max_cost_usd: 0.01\n"}, message="A small budget")
    number = sim.add_issue(REPO, "Add greet", "", user="alice")
    dear = {"input_tokens": 4_000, "output_tokens": 100}  # $0.0045 a turn on haiku
    stack.fake.add(
        tool_use("Write", file_path="greet.py", content="def greet():\n    return 'hi'\n", usage=dear),
        *[tool_use("Read", file_path="greet.py", usage=dear) for _ in range(2)],
    )
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded" and job.result.endswith("(stopped at its cost limit)"), job.error
    (pr,) = sim.pulls(REPO)
    assert pr["draft"]
    assert "Stopped at its cost limit" in status_comment(stack, number, job.id)
    assert "cost limit reached" in sim.read_file(REPO, "BACKEND_WORK_LOG.md", ref=pr["head"]["ref"])
