"""`.github/backend.yml` as users meet it: read from the default branch, invalid files answered
in plain words, and a new label or command word learnt from the push that changed it."""

from __future__ import annotations

import time

from tests.agent_fakes import finish, tool_use
from tests.support.stack import REPO, Stack


def push_event(stack: Stack, sha: str, paths: list[str]) -> dict:
    payload = stack.sim._envelope(REPO, "alice", "pushed")
    payload.pop("action", None)
    payload.update({
        "ref": "refs/heads/main", "before": "0" * 40, "after": sha, "created": False,
        "deleted": False, "forced": False, "compare": "", "pusher": {"name": "alice"},
        "commits": [{"id": sha, "message": "Configure backend-bot", "added": [],
                     "modified": paths, "removed": [], "distinct": True}],
        "head_commit": None,
    })
    return payload


def test_an_invalid_config_is_answered_in_plain_words_and_nothing_runs(stack):
    sim = stack.sim
    sim.commit(REPO, "main", {".github/backend.yml": "max_turns: lots\nlabell: x\n"})
    number = sim.add_issue(REPO, "Add hello.txt", "", user="alice")
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "failed"
    (status,) = [c for c in sim.comments_on(REPO, number) if "backend-bot:status" in c["body"]]
    body = status["body"]
    assert "`.github/backend.yml` on the default branch is not valid" in body
    assert "`max_turns` must be a whole number" in body and "'lots'" in body
    assert "`labell`" in body and "label" in body  # unknown key, with a suggestion
    assert stack.fake.requests == []


def test_the_rules_come_from_the_default_branch_not_the_pull_request(stack):
    sim = stack.sim
    # The PR's own branch tries to lock everyone out and to cap the run at one turn.
    number = sim.add_pull(REPO, "backend/issue-9-x", user="backend-bot[bot]", files={
        ".github/backend.yml": "min_permission: admin\nmax_turns: 1\n", "a.txt": "a\n"})
    stack.fake.add(
        tool_use("Write", file_path="a.txt", content="b\n"),
        tool_use("Bash", command="cat a.txt"),
        finish(title="Change a", task_summary="a is b."),
    )
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend make a say b", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error  # alice (write) allowed, three turns allowed
    assert sim.read_file(REPO, "a.txt", ref="backend/issue-9-x") == "b\n"


def test_a_new_label_and_command_word_are_learnt_from_the_push(stack):
    sim = stack.sim
    sha = sim.commit(REPO, "main", {".github/backend.yml": "label: ai-help\ncommand: bot\n"})
    assert stack.deliver("push", push_event(stack, sha, [".github/backend.yml"])).status_code == 202
    config, log_merge = stack.wait_jobs(2)
    assert config.kind == "config" and "ai-help" in config.result
    assert log_merge.kind == "log_merge" and "no open pull request" in log_merge.result
    time.sleep(3.5)  # the serving process refreshes its copy of the words every few seconds
    number = sim.add_issue(REPO, "Do it", "", user="alice")
    assert stack.deliver("issues", sim.event_issues_labeled(
        REPO, number, "backend", sender="alice")).status_code == 200  # the old label: nothing
    stack.fake.add(finish(title="Nothing", task_summary="Nothing to change."))
    assert stack.deliver("issues", sim.event_issues_labeled(
        REPO, number, "ai-help", sender="alice")).status_code == 202
    pr = sim.add_pull(REPO, "feature/y", user="alice")
    assert stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, pr, "/backend help", sender="alice")).status_code == 200
    assert stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, pr, "/bot help", sender="alice")).status_code == 202
    jobs = stack.wait_jobs(4)
    assert [j.kind for j in jobs] == ["config", "log_merge", "issue", "control"]
    help_reply = [c for c in sim.comments_on(REPO, pr) if "runs a backend-engineer agent" in c["body"]]
    assert help_reply and "Label an issue `ai-help`" in help_reply[0]["body"]
    assert "`/bot status`" in help_reply[0]["body"]


def test_a_new_branch_prefix_is_learnt_for_failing_checks(stack):
    sim = stack.sim
    sha = sim.commit(REPO, "main", {".github/backend.yml": "branch_prefix: ai/\n"})
    assert stack.deliver("push", push_event(stack, sha, [".github/backend.yml"])).status_code == 202
    config, _ = stack.wait_jobs(2)
    assert config.kind == "config", config.result
    time.sleep(3.5)  # the serving process refreshes its copy of the words every few seconds

    def failing_check_on(branch: str) -> int:
        head = sim.commit(REPO, branch, {"x.txt": branch})
        run = sim.add_check_run(REPO, head, "test")
        return stack.deliver("check_run", sim.event_check_run(REPO, run)).status_code

    assert failing_check_on("ai/issue-1-x") == 202  # the repository's bot branches now
    assert failing_check_on("backend/issue-2-y") == 200  # no longer one of them


def test_a_push_elsewhere_or_without_the_config_is_no_config_job(stack):
    sim = stack.sim
    sha = sim.commit(REPO, "main", {"README.md": "changed\n"})
    payload = push_event(stack, sha, [".github/backend.yml"])
    payload["ref"] = "refs/heads/feature"
    assert stack.deliver("push", payload).status_code == 200
    assert stack.jobs() == []
    # Any push to the default branch is work for the bot's own pull requests, not config.
    assert stack.deliver("push", push_event(stack, sha, ["README.md"])).status_code == 202
    assert [job.kind for job in stack.wait_jobs(1)] == ["log_merge"]
