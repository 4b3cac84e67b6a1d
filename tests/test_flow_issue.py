"""Issue labelled `backend` → pull request, end to end: a signed delivery to the bot, the
GitHub simulator, real git, a scripted model, the real sandbox. The bot runs in this process
(`stack`), or in its own where a test kills it (`process_stack`)."""

from __future__ import annotations

import json
import re

import pytest

from tests.agent_fakes import ask, finish, http_error, tool_use
from tests.support.stack import REPO, Stack
from tests.support.waiting import wait_for

MAKEFILE = "test:\n\t@test -f hello.txt && echo 'hello.txt is here'\n"


def implement_hello(title: str = "Add hello.txt") -> list:
    return [
        tool_use("TodoWrite", todos=[
            {"content": "Write hello.txt", "status": "in_progress", "activeForm": "Writing hello.txt"},
            {"content": "Check it", "status": "pending", "activeForm": "Checking it"},
        ]),
        tool_use("Write", file_path="hello.txt", content="hello\n"),
        tool_use("Bash", command="cat hello.txt", description="Check the file"),
        tool_use("TodoWrite", todos=[
            {"content": "Write hello.txt", "status": "completed", "activeForm": "Writing hello.txt"},
            {"content": "Check it", "status": "completed", "activeForm": "Checking it"},
        ]),
        finish(title=title, task_summary="Added hello.txt as the issue asks.",
               files_modified=["hello.txt: new file"],
               testing_performed="Read the file back with cat."),
    ]


@pytest.fixture(autouse=True)
def make_test_target(github_sim):
    github_sim.commit(REPO, "main", {"Makefile": MAKEFILE}, message="Add a test target")


def status_edits(stack: Stack, number: int) -> list[str]:
    """Every body the status comment had, in order (created, then each edit)."""
    bodies = []
    for request in stack.sim.requests:
        body = (request.json or {}).get("body", "") if isinstance(request.json, dict) else ""
        if "backend-bot:status:job-" in body and request.status < 300:
            bodies.append(body)
    return bodies


def assert_no_token_leaked(stack: Stack) -> None:
    tokens = stack.minted_tokens()
    assert tokens, "the bot never minted a token?"
    history = stack.git("log", "--all", "-p", "--format=%H%n%an <%ae>%n%B")
    texts = [history, stack.bot.log()]
    texts += [c["body"] for c in stack.sim.comments_on(REPO, 1) + stack.sim.comments_on(REPO, 2)]
    texts += [p["body"] or "" for p in stack.sim.pulls(REPO)]
    texts += [json.dumps(r.json) for r in stack.sim.requests if r.json]
    for token in tokens:
        for text in texts:
            assert token not in text
    assert "sk-ant-test" not in stack.bot.log()


def test_labelled_issue_becomes_a_pull_request(stack):
    sim = stack.sim
    number = sim.add_issue(REPO, "Add hello.txt", "Please add a hello.txt file.", user="alice")
    stack.fake.add(*implement_hello())
    response = stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend",
                                                                 sender="alice"))
    assert response.status_code == 202
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error

    (pr,) = sim.pulls(REPO)
    assert pr["title"] == "Add hello.txt"
    assert pr["head"]["ref"] == f"backend/issue-{number}-add-hello-txt"
    assert pr["base"]["ref"] == "main"
    body = pr["body"]
    assert body.startswith("### Task Summary\nAdded hello.txt as the issue asks.")
    assert f"Closes #{number}" in body
    assert re.search(r"Model: `claude-haiku-4-5` · turns: 5 · tokens: .* in .*, .* out · cost: \$0\.\d+ · duration: ",
                     body)
    assert "<!-- backend-bot:pr:issue-" in body
    # The bot ran the repository's tests itself, and says so beside the agent's words.
    assert "Read the file back with cat." in body
    assert "The bot's own run of the test command:** `make test` passed" in body
    assert "hello.txt is here" in body

    branch = pr["head"]["ref"]
    assert sim.read_file(REPO, "hello.txt", ref=branch) == "hello\n"
    log = sim.read_file(REPO, "BACKEND_WORK_LOG.md", ref=branch)
    assert re.search(rf"^## \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ — Add hello.txt \(#{number}\)$", log, re.M)
    assert "### Potential Issues\nNone." in log
    assert log.rstrip().endswith("---")
    commit = stack.git("log", "-1", "--format=%an <%ae>%n%B", branch)
    assert commit.startswith("backend-bot[bot] <")
    assert "[bot]@users.noreply.github.com>" in commit.splitlines()[0]
    assert re.search(r"Co-authored-by: alice <\d+\+alice@users.noreply.github.com>", commit)
    assert sim.branches(REPO)["main"] != sim.branches(REPO)[branch]
    assert sim.read_file(REPO, "hello.txt", ref="main") is None  # never pushed to main

    edits = status_edits(stack, number)
    # The truth at every moment: queued (if the acknowledgement got there first), then working
    # with its stage before any plan exists, then the plan, then done.
    assert "Queued" in edits[0] or "Working on it" in edits[0]
    planned = next(i for i, e in enumerate(edits) if "- [ ] Check it" in e)
    assert "Working on it" in edits[planned]
    assert any(re.search(r"Working on it\*\* \(\d+s\): preparing a checkout", e)
               for e in edits[:planned])
    assert "Done" in edits[-1] and f"#{pr['number']}" in edits[-1]
    status_comments = [c for c in sim.comments_on(REPO, number) if "backend-bot:status" in c["body"]]
    assert len(status_comments) == 1
    reactions = {r["content"] for r in sim.reactions_on(REPO, "issue", number)}
    assert {"eyes", "rocket"} <= reactions
    review_requests = sim.requests_to("POST", rf"/repos/{REPO}/pulls/\d+/requested_reviewers")
    assert review_requests and review_requests[0].json["reviewers"] == ["alice"]
    checks = [c for c in sim.check_runs.values() if c["name"] == "backend-bot / tests"]
    assert checks and checks[0]["conclusion"] == "success"
    assert_no_token_leaked(stack)


def test_a_labeller_without_write_access_gets_a_polite_no(stack):
    sim = stack.sim
    number = sim.add_issue(REPO, "Do a thing", "", user="mallory")
    assert stack.deliver("issues", sim.event_issues_labeled(
        REPO, number, "backend", sender="mallory")).status_code == 202
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded" and job.result.startswith("refused")
    (comment,) = sim.comments_on(REPO, number)
    assert "Sorry @mallory" in comment["body"] and "write access" in comment["body"]
    assert stack.fake.requests == []  # costs nothing
    assert sim.pulls(REPO) == []


def test_a_model_failure_is_reported_with_how_to_retry(stack):
    sim = stack.sim
    number = sim.add_issue(REPO, "Add hello.txt", "", user="alice")
    stack.fake.add(http_error(400, message="prompt is too long"))
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "failed"
    (status,) = [c for c in sim.comments_on(REPO, number) if "backend-bot:status" in c["body"]]
    assert "Failed" in status["body"] and "/backend retry" in status["body"]
    assert sim.pulls(REPO) == []


def test_a_question_is_posted_and_the_run_waits(stack):
    sim = stack.sim
    number = sim.add_issue(REPO, "Make it faster", "", user="alice")
    stack.fake.add(ask("Which endpoint is slow?"))
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded" and "question" in job.result
    bodies = [c["body"] for c in sim.comments_on(REPO, number)]
    assert any("Which endpoint is slow?" in b and "@alice" in b for b in bodies)
    assert any("Waiting for an answer" in b for b in bodies)
    assert sim.pulls(REPO) == []


def test_no_changes_means_no_pull_request(stack):
    sim = stack.sim
    number = sim.add_issue(REPO, "Is hello there?", "", user="alice")
    stack.fake.add(finish(title="Nothing to change", task_summary="It already works."))
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded"
    assert sim.pulls(REPO) == []
    (status,) = [c for c in sim.comments_on(REPO, number) if "backend-bot:status" in c["body"]]
    assert "without changes" in status["body"] and "It already works." in status["body"]


def test_github_5xx_in_the_middle_is_retried(stack):
    sim = stack.sim
    number = sim.add_issue(REPO, "Add hello.txt", "", user="alice")
    stack.fake.add(*implement_hello())
    sim.fail_next(2, path=r"/pulls$", method="POST", status=502)
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1, timeout=90)
    assert job.state == "succeeded", job.error
    assert len(sim.pulls(REPO)) == 1


def test_a_second_label_event_updates_the_same_pull_request(stack):
    sim = stack.sim
    number = sim.add_issue(REPO, "Add hello.txt", "", user="alice")
    stack.fake.add(*implement_hello())
    stack.fake.add(
        tool_use("Write", file_path="hello.txt", content="hello, world\n"),
        finish(title="Greet the world", task_summary="Made the greeting wider."),
    )
    payload = sim.event_issues_labeled(REPO, number, "backend", sender="alice")
    assert stack.deliver("issues", payload).status_code == 202
    assert stack.deliver("issues", payload).status_code == 202  # relabelled while running
    first, second = stack.wait_jobs(2, timeout=90)
    assert first.state == second.state == "succeeded", (first.error, second.error)
    assert first.finished_at <= second.started_at  # one at a time, in order
    (pr,) = sim.pulls(REPO)
    branch = pr["head"]["ref"]
    assert sim.read_file(REPO, "hello.txt", ref=branch) == "hello, world\n"
    log = sim.read_file(REPO, "BACKEND_WORK_LOG.md", ref=branch)
    assert log.count(f"(#{number})") == 2
    assert pr["title"] == "Greet the world"
    assert "Earlier work on this pull request" in pr["body"] and "Add hello.txt" in pr["body"]


def test_kill_9_after_the_push_then_restart_gives_exactly_one_pull_request(process_stack):
    stack = process_stack
    sim = stack.sim
    number = sim.add_issue(REPO, "Add hello.txt", "", user="alice")
    stack.fake.add(*implement_hello())
    sim.slow_next(path=r"/repos/acme/widgets/pulls$", method="POST", seconds=2.0)
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    branch = f"backend/issue-{number}-add-hello-txt"
    wait_for(lambda: branch in sim.branches(REPO))  # pushed; the PR is being created
    stack.bot.kill()
    stack.bot.start()
    (job,) = stack.wait_jobs(1, timeout=60)
    assert job.state == "succeeded", job.error
    assert job.attempts == 2
    assert len(sim.pulls(REPO)) == 1
    log = sim.read_file(REPO, "BACKEND_WORK_LOG.md", ref=branch)
    assert log.count(f"(#{number})") == 1
    assert stack.git("rev-list", "--count", f"main..{branch}").strip() == "1"
    assert len([c for c in sim.comments_on(REPO, number) if "backend-bot:status" in c["body"]]) == 1


def test_kill_9_while_the_agent_works_then_restart_gives_one_commit(process_stack):
    import time

    stack = process_stack
    sim = stack.sim
    number = sim.add_issue(REPO, "Add hello.txt", "", user="alice")
    script = implement_hello()

    def slow_first_turn(request):
        time.sleep(5)  # the bot is killed while it waits for the model
        return script[0]

    stack.fake.add(slow_first_turn, *script)
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    wait_for(lambda: len(stack.fake.requests) >= 1)
    stack.bot.kill()
    stack.bot.start()
    (job,) = stack.wait_jobs(1, timeout=60)
    assert job.state == "succeeded", job.error
    (pr,) = sim.pulls(REPO)
    branch = pr["head"]["ref"]
    assert stack.git("rev-list", "--count", f"main..{branch}").strip() == "1"
    assert sim.read_file(REPO, "BACKEND_WORK_LOG.md", ref=branch).count(f"(#{number})") == 1


def test_a_trigger_behind_running_work_is_acknowledged_at_once(stack):
    import time

    sim = stack.sim
    number = sim.add_issue(REPO, "Add hello.txt", "", user="alice")
    script = implement_hello()

    def slow_first_turn(request):
        time.sleep(4)  # the first run is busy while the second trigger arrives
        return script[0]

    stack.fake.add(slow_first_turn, *script[1:],
                   finish(title="Nothing more", task_summary="Already done."))
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    wait_for(lambda: stack.fake.requests, what="the first run's agent")
    second = stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend",
                                                              sender="alice")).json()["jobs"][0]
    queued = wait_for(lambda: [c for c in sim.comments_on(REPO, number)
                               if f"backend-bot:status:job-{second} " in c["body"]],
                      timeout=10, what="the second job's status comment")
    assert "Queued** behind 1 earlier backend-bot job(s)" in queued[0]["body"]
    assert all(j.state != "succeeded" for j in stack.jobs())  # the first is still at work
    first, last = stack.wait_jobs(2, timeout=60)
    assert first.state == last.state == "succeeded", (first.error, last.error)
    (status,) = [c for c in sim.comments_on(REPO, number)
                 if f"backend-bot:status:job-{second} " in c["body"]]
    assert "without changes" in status["body"]  # the same comment, edited in place
