"""`/backend …` on pull requests, control commands, and review rounds, end to end through the
bot (in this process), the GitHub simulator, real git and a scripted model."""

from __future__ import annotations

import re
import time

from tests.agent_fakes import finish, tool_use
from tests.support.stack import REPO, Stack
from tests.support.waiting import wait_for

BOT = "backend-bot[bot]"


def bot_pull(stack: Stack, *, log: bool = True) -> int:
    """A pull request opened by the bot earlier, with its work-log entry on the branch."""
    files = {"app.py": "def greet():\n    return 'hi'\n\n\ndef add(a, b):\n    return a + b\n"}
    if log:
        files["BACKEND_WORK_LOG.md"] = (
            "# Backend work log\n\n## 2026-11-20T10:00:00Z — Add greet (#1)\n\n"
            "### Task Summary\nAdded greet.\n\n---\n")
    body = "### Task Summary\nAdded greet.\n\nCloses #1\n\n---\nfooter\n\n<!-- backend-bot:pr:issue-1 -->\n"
    return stack.sim.add_pull(REPO, "backend/issue-1-add-greet", title="Add greet", body=body,
                              user=BOT, files=files)


def comments_with(stack: Stack, number: int, text: str) -> list[dict]:
    return [c for c in stack.sim.comments_on(REPO, number) if text in c["body"]]


def test_command_on_the_bots_own_pull_request_adds_a_commit_and_an_entry(stack):
    sim = stack.sim
    number = bot_pull(stack)
    head_before = sim.branches(REPO)["backend/issue-1-add-greet"]
    stack.fake.add(
        tool_use("Edit", file_path="app.py", old_string="return 'hi'", new_string="return 'hello'"),
        finish(title="Say hello", task_summary="greet() now says hello.",
               files_modified=["app.py: greeting"], testing_performed="Read the diff."),
    )
    assert stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend make greet say hello", sender="alice")).status_code == 202
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error
    branch = "backend/issue-1-add-greet"
    assert stack.git("rev-list", "--count", f"{head_before}..{branch}").strip() == "1"
    assert "return 'hello'" in sim.read_file(REPO, "app.py", ref=branch)
    log = sim.read_file(REPO, "BACKEND_WORK_LOG.md", ref=branch)
    assert len(re.findall(r"^## ", log, re.M)) == 2 and f"Say hello (#{number})" in log
    (pr,) = [p for p in sim.pulls(REPO) if p["number"] == number]
    assert pr["title"] == "Say hello"
    assert pr["body"].startswith("### Task Summary\ngreet() now says hello.")
    assert "Closes #1" in pr["body"]  # kept from the original body
    assert "Earlier work on this pull request" in pr["body"] and "Add greet (#1)" in pr["body"]
    assert "<!-- backend-bot:pr:issue-1 -->" in pr["body"]
    sha = sim.branches(REPO)[branch]
    (done,) = comments_with(stack, number, "backend-bot:status:job-")
    assert "Done" in done["body"] and sha[:7] in done["body"] and "greet() now says hello." in done["body"]
    assert len(sim.pulls(REPO)) == 1


def test_command_on_someone_elses_pull_request_opens_a_child_pull_request(stack):
    sim = stack.sim
    number = sim.add_pull(REPO, "feature/totals", title="Totals", user="alice",
                          files={"totals.py": "TOTAL = 1\n"})
    their_head = sim.branches(REPO)["feature/totals"]
    stack.fake.add(
        tool_use("Write", file_path="totals.py", content="TOTAL = 2\n"),
        finish(title="Bump the total", task_summary="TOTAL is 2 now."),
    )
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend bump the total", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error
    assert sim.branches(REPO)["feature/totals"] == their_head  # never pushed to their branch
    child = next(p for p in sim.pulls(REPO) if p["number"] != number)
    assert child["base"]["ref"] == "feature/totals"
    assert child["head"]["ref"].startswith(f"backend/pr-{number}-bump-the-total")
    assert sim.read_file(REPO, "totals.py", ref=child["head"]["ref"]) == "TOTAL = 2\n"
    assert f"Into #{number}" in child["body"]
    (review_request,) = sim.requests_to(
        "POST", rf"/repos/{REPO}/pulls/{child['number']}/requested_reviewers")
    assert review_request.json["reviewers"] == ["alice"]
    (done,) = comments_with(stack, number, "backend-bot:status:job-")
    assert f"#{child['number']}" in done["body"] and "feature/totals" in done["body"]


def test_command_on_a_fork_pull_request_gets_a_polite_explanation(stack):
    sim = stack.sim
    sim.add_user("forker")
    sim.add_repo("forker/widgets", fork_of=REPO)
    number = sim.add_pull(REPO, "patch-1", head_repo="forker/widgets", user="forker")
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend fix the tests", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded" and "fork" in job.result
    (reply,) = comments_with(stack, number, "comes from a fork")
    assert "@alice" in reply["body"]
    assert stack.fake.requests == []


def test_command_from_someone_without_write_access_is_refused(stack):
    sim = stack.sim
    number = bot_pull(stack)
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend delete everything", sender="mallory"))
    (job,) = stack.wait_jobs(1)
    assert job.result.startswith("refused")
    assert comments_with(stack, number, "Sorry @mallory")
    assert stack.fake.requests == []


def test_help_and_status(stack):
    sim = stack.sim
    number = bot_pull(stack)
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend help", sender="mallory"))
    stack.wait_jobs(1)
    (help_reply,) = comments_with(stack, number, "runs a backend-engineer agent")
    assert "`max_turns` | `60`" in help_reply["body"]
    assert "/backend status" in help_reply["body"]
    stack.fake.add(finish(title="Nothing", task_summary="Nothing to do."))
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend check the tests", sender="alice"))
    stack.wait_jobs(2)
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend status", sender="alice"))
    stack.wait_jobs(3)
    (status_reply,) = comments_with(stack, number, "backend-bot jobs for")
    assert re.search(r"\| \d+ \| pr_command \| succeeded \| @alice \|", status_reply["body"])


def test_cancel_stops_a_job_in_a_long_tool_call_and_retry_runs_it_again(stack):
    sim = stack.sim
    number = bot_pull(stack)
    stack.fake.add(tool_use("Bash", command="sleep 60; touch finished", description="Wait"))
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend do the slow thing", sender="alice"))
    wait_for(lambda: any("Working" in c["body"] or "Queued" in c["body"]
                           for c in comments_with(stack, number, "backend-bot:status:job-")),
               what="the job to start")
    wait_for(lambda: len(stack.fake.requests) >= 1, what="the agent's first turn")
    time.sleep(0.5)  # the Bash command is now running
    started = time.monotonic()
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend cancel", sender="alice"))
    work, control = stack.wait_jobs(2, timeout=30)
    assert time.monotonic() - started < 15
    assert work.state == "cancelled"
    assert control.state == "succeeded"
    assert comments_with(stack, number, f"Cancelled job {work.id}")
    # The job is marked cancelled at once; its status comment follows when it has stopped.
    wait_for(lambda: "Cancelled" in comments_with(
        stack, number, f"backend-bot:status:job-{work.id}")[0]["body"], what="the status edit")
    # The sandboxed command was killed with its job: no `sleep 60` survives.
    import subprocess

    assert "sleep 60" not in subprocess.run(["ps", "-eo", "args"], capture_output=True,
                                            text=True).stdout
    stack.fake.add(
        tool_use("Write", file_path="slow.txt", content="done\n"),
        finish(title="Do the slow thing", task_summary="Done, quickly this time."),
    )
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend retry", sender="alice"))
    jobs = stack.wait_jobs(4, timeout=60)
    rerun = jobs[-1]
    assert rerun.kind == "pr_command" and rerun.state == "succeeded", rerun.error
    assert rerun.spec["instruction"] == "do the slow thing"
    assert sim.read_file(REPO, "slow.txt", ref="backend/issue-1-add-greet") == "done\n"
    assert comments_with(stack, number, f"Running job {work.id} again as job {rerun.id}")


def review_with_three_comments(stack: Stack, number: int, user: str = "alice") -> dict:
    return stack.sim.add_review(REPO, number, user=user, state="CHANGES_REQUESTED",
                                body="A few things.", comments=[
        {"path": "app.py", "line": 2, "body": "Say hello instead."},
        {"path": "app.py", "line": 6, "body": "Add a docstring."},
        {"path": "BACKEND_WORK_LOG.md", "line": 3, "body": "Is this heading right?"},
    ])


def test_a_review_with_three_comments_is_one_commit_and_three_replies(stack):
    sim = stack.sim
    number = bot_pull(stack)
    head_before = sim.branches(REPO)["backend/issue-1-add-greet"]
    review = review_with_three_comments(stack, number)
    stack.fake.add(
        tool_use("Edit", file_path="app.py", old_string="return 'hi'", new_string="return 'hello'"),
        tool_use("Edit", file_path="app.py", old_string="def add(a, b):\n",
                 new_string='def add(a, b):\n    """Add two numbers."""\n'),
        finish(title="Address the review", task_summary="Hello and a docstring.",
               key_decisions="Comment 1: greet() now returns 'hello'.\n"
                             "Comment 2: added a docstring to add().\n"
                             "Comment 3: the heading follows the log format, so it stays."),
    )
    assert stack.deliver("pull_request_review", sim.event_pull_request_review_submitted(
        REPO, number, review["id"])).status_code == 202
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error
    branch = "backend/issue-1-add-greet"
    assert stack.git("rev-list", "--count", f"{head_before}..{branch}").strip() == "1"
    sha = sim.branches(REPO)[branch]
    replies = sim.requests_to("POST", rf"/repos/{REPO}/pulls/{number}/comments/\d+/replies")
    assert len(replies) == 3
    bodies = {int(r.path.split("/")[-2]): r.json["body"] for r in replies}
    first, second, third = sorted(bodies)  # the review's comments, in the order written
    assert f"Changed `app.py` in {sha[:7]}. greet() now returns 'hello'." in bodies[first]
    assert "added a docstring" in bodies[second]
    assert f"No change to `BACKEND_WORK_LOG.md` in {sha[:7]}" in bodies[third]
    assert "the heading follows the log format" in bodies[third]
    log = sim.read_file(REPO, "BACKEND_WORK_LOG.md", ref=branch)
    assert len(re.findall(r"^## ", log, re.M)) == 2 and "Address the review" in log


def test_two_reviews_in_quick_succession_are_two_ordered_rounds(stack):
    sim = stack.sim
    number = bot_pull(stack)
    first = sim.add_review(REPO, number, user="alice", state="COMMENTED", body="Say hello.")
    second = sim.add_review(REPO, number, user="alice", state="COMMENTED", body="Now say hey.")
    stack.fake.add(
        tool_use("Edit", file_path="app.py", old_string="return 'hi'", new_string="return 'hello'"),
        finish(title="Say hello", task_summary="Round one."),
        tool_use("Edit", file_path="app.py", old_string="return 'hello'", new_string="return 'hey'"),
        finish(title="Say hey", task_summary="Round two."),
    )
    stack.deliver("pull_request_review", sim.event_pull_request_review_submitted(REPO, number, first["id"]))
    stack.deliver("pull_request_review", sim.event_pull_request_review_submitted(REPO, number, second["id"]))
    one, two = stack.wait_jobs(2, timeout=60)
    assert one.state == two.state == "succeeded", (one.error, two.error)
    assert one.finished_at <= two.started_at
    branch = "backend/issue-1-add-greet"
    assert "return 'hey'" in sim.read_file(REPO, "app.py", ref=branch)
    subjects = stack.git("log", "--format=%s", "-3", branch).split("\n")
    assert subjects[:2] == ["Say hey", "Say hello"]


def test_reviews_that_need_no_work_do_nothing(stack):
    sim = stack.sim
    number = bot_pull(stack)
    by_reader = sim.add_review(REPO, number, user="mallory", state="CHANGES_REQUESTED", body="No.")
    approval = sim.add_review(REPO, number, user="alice", state="APPROVED", body="Ship it")
    human = sim.add_pull(REPO, "feature/x", user="alice")
    on_human = sim.add_review(REPO, human, user="alice", state="COMMENTED", body="Hmm")
    assert stack.deliver("pull_request_review", sim.event_pull_request_review_submitted(
        REPO, number, approval["id"])).status_code == 200
    assert stack.deliver("pull_request_review", sim.event_pull_request_review_submitted(
        REPO, human, on_human["id"])).status_code == 200
    assert stack.deliver("pull_request_review", sim.event_pull_request_review_submitted(
        REPO, number, by_reader["id"])).status_code == 202
    (job,) = stack.wait_jobs(1)
    assert job.result.startswith("ignored")
    assert stack.fake.requests == []
    assert sim.comments_on(REPO, number) == []


def test_backend_fix_this_on_a_review_thread_works_on_that_thread_and_replies_there(stack):
    sim = stack.sim
    number = bot_pull(stack)
    review = sim.add_review(REPO, number, user="alice", state="COMMENTED", body="", comments=[
        {"path": "app.py", "line": 2, "body": "/backend fix this: it should say hello"}])
    (comment_id,) = [cid for cid, c in sim.review_comments.items()
                     if c.get("review_id", c.get("pull_request_review_id")) == review["id"]]
    payload = sim._envelope(REPO, "alice", "created")
    payload["comment"] = sim.review_comment_json(comment_id)
    payload["pull_request"] = sim.pull_json(REPO, number)

    def check_the_prompt(request):
        prompt = "".join(block["text"] for block in request["messages"][0]["content"])
        assert "app.py" in prompt and "line 2" in prompt and "return 'hi'" in prompt
        return tool_use("Edit", file_path="app.py", old_string="return 'hi'",
                        new_string="return 'hello'")

    stack.fake.add(check_the_prompt, finish(title="Say hello", task_summary="Now says hello."))
    assert stack.deliver("pull_request_review_comment", payload).status_code == 202
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error
    assert "return 'hello'" in sim.read_file(REPO, "app.py", ref="backend/issue-1-add-greet")
    replies = sim.requests_to("POST", rf"/repos/{REPO}/pulls/{number}/comments/{comment_id}/replies")
    assert len(replies) == 1 and "Now says hello." in replies[0].json["body"]
    eyes = sim.reactions_on(REPO, "review_comment", comment_id)
    assert [r["content"] for r in eyes] == ["eyes"]


def test_a_question_in_a_review_round_is_answered_in_a_comment_and_the_round_goes_on(stack):
    sim = stack.sim
    number = bot_pull(stack)
    review = sim.add_review(REPO, number, user="alice", state="COMMENTED", body="Say something else.")
    stack.fake.add(tool_use("AskQuestion", question="Hello or hey?"))
    stack.deliver("pull_request_review", sim.event_pull_request_review_submitted(REPO, number, review["id"]))
    (asking,) = stack.wait_jobs(1)
    assert asking.state == "succeeded" and "question" in asking.result, asking.error
    (status,) = comments_with(stack, number, f"backend-bot:status:job-{asking.id} ")
    assert "Waiting for an answer from @alice" in status["body"] and "> Hello or hey?" in status["body"]
    stack.fake.add(
        tool_use("Edit", file_path="app.py", old_string="return 'hi'", new_string="return 'hey'"),
        finish(title="Say hey", task_summary="greet() says hey."),
    )
    stack.deliver("issue_comment", sim.event_issue_comment_created(REPO, number, "Hey.", sender="alice"))
    jobs = stack.wait_jobs(3)
    assert jobs[-1].kind == "review" and jobs[-1].state == "succeeded", jobs[-1].error
    (answer,) = stack.fake.tool_results(1)
    assert answer["content"] == "@alice answered:\n\nHey."
    assert "return 'hey'" in sim.read_file(REPO, "app.py", ref="backend/issue-1-add-greet")
