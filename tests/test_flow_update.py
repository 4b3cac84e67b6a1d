"""A bot pull request that conflicts in code with the default branch gets one bounded round, end
to end: two issues become two bot pull requests changing the same file, the first is merged,
the `push` webhook follows, `log_merge` hands the second to an `update` round, and the
(scripted) agent resolves the markers; or cannot, and one comment names the files. Also on
demand with `/backend update` (real git over the simulator, the real sandbox)."""

from __future__ import annotations

import re

import pytest

from bot.worklog import WORKLOG_FILE, parse_worklog
from tests.agent_fakes import ask, finish, tool_use
from tests.support.stack import REPO, Stack
from tests.test_flow_log_merge import bot_pull, bot_pushes, merge_first

MAKEFILE = "test:\n\t@cat greeting.txt\n"
CONFLICTS_MARKER = "<!-- backend-bot:status:update-conflicts -->"
ROUND_STATUS_MARKER = "<!-- backend-bot:status:update -->"


@pytest.fixture(autouse=True)
def make_test_target(github_sim):
    github_sim.commit(REPO, "main", {"Makefile": MAKEFILE}, message="Add a test target")


def conflicting_pulls(stack: Stack, name: str = "greeting.txt") -> tuple[dict, dict]:
    first = bot_pull(stack, "Greet in English", {name: "hello\n"})
    second = bot_pull(stack, "Greet in Spanish", {name: "hola\n"})
    return first, second


def push_and_wait(stack: Stack, push: dict, delivery_id: str | None = None) -> list:
    """Deliver a push; the jobs it made (its `log_merge`, and an `update` round if any)."""
    done = len(stack.jobs())
    assert stack.deliver("push", push, delivery_id=delivery_id).status_code == 202
    jobs = stack.wait_jobs(done + 1)[done:]
    assert jobs[0].kind == "log_merge" and jobs[0].state == "succeeded", jobs[0].error
    return jobs


def comments_with(stack: Stack, number: int, marker: str) -> list[dict]:
    return [c for c in stack.sim.comments_on(REPO, number) if marker in c["body"]]


def resolve_greeting() -> list:
    return [tool_use("Write", file_path="greeting.txt", content="hello\nhola\n"),
            finish(title="Merge main: keep both greetings",
                   task_summary="Kept the English and the Spanish greeting.",
                   files_modified=["greeting.txt: both greetings"],
                   testing_performed="Ran make test.")]


def test_a_code_conflict_is_resolved_by_the_agent_in_one_merge_commit(stack):
    sim = stack.sim
    first, second = conflicting_pulls(stack)
    number, branch = second["number"], second["head"]["ref"]
    old_head = sim.branches(REPO)[branch]
    stack.fake.add(*resolve_greeting())

    push = merge_first(stack, first["number"])
    main = push["after"]
    assert sim.pull_json(REPO, number)["mergeable"] is False
    assert sim.pull_json(REPO, number)["mergeable_state"] == "dirty"
    log_merge, update = push_and_wait(stack, push, delivery_id="push-1")
    assert re.search(r"#\d+ conflicts with main in 'greeting.txt': update round queued as job \d+",
                     log_merge.result), log_merge.result
    assert update.kind == "update" and update.state == "succeeded", update.error
    assert update.result.startswith(f"merged main into #{number} in "), update.result

    # The agent was told which file conflicts, and saw the markers in it.
    task = stack.fake.requests[-1]["messages"][0]["content"][0]["text"]
    assert "- greeting.txt" in task and "resolve the merge conflicts" in task.lower()

    # One merge commit, parents: the branch's head, then main's; nothing forced.
    new_head = sim.branches(REPO)[branch]
    assert stack.git("rev-list", new_head, f"^{old_head}", f"^{main}").split() == [new_head]
    assert stack.git("rev-list", "--parents", "-n1", new_head).split() == [new_head, old_head, main]
    subject = stack.git("log", "-1", "--format=%s", new_head).strip()
    assert subject == f"Merge main into {branch}"
    assert sim.read_file(REPO, "greeting.txt", ref=branch) == "hello\nhola\n"

    # The default branch's log, this branch's entry, then the round's one new entry.
    titles = [e.title for e in parse_worklog(sim.read_file(REPO, WORKLOG_FILE, ref=branch))]
    assert titles == ["Greet in English", "Greet in Spanish", "Merge main: keep both greetings"]

    # GitHub can merge it now; the bot's own test run is on the merge commit.
    pull = sim.pull_json(REPO, number)
    assert (pull["mergeable"], pull["mergeable_state"]) == (True, "clean")
    checks = {r["name"]: r["conclusion"] for r in sim.check_runs.values() if r["head_sha"] == new_head}
    assert checks == {"backend-bot / tests": "success", "backend-bot": "success"}
    # The description shows the round's entry, the earlier one listed; the title stays.
    assert pull["title"] == "Greet in Spanish"
    assert "Kept the English and the Spanish greeting." in pull["body"]
    assert "Greet in Spanish" in pull["body"] and f"Closes #{number - 1}" in pull["body"]
    (status,) = comments_with(stack, number, ROUND_STATUS_MARKER)
    assert "Merged `main` into this pull request in" in status["body"]
    assert not comments_with(stack, number, CONFLICTS_MARKER)

    # The same delivery again is a repeat; a redelivery under a new id makes no second round.
    assert stack.deliver("push", push, delivery_id="push-1").status_code == 200
    (again,) = push_and_wait(stack, push, delivery_id="push-1-redelivered")
    assert f"#{number} already has main" in again.result
    assert sim.branches(REPO)[branch] == new_head
    sim.merge_pull(REPO, number)


def test_an_agent_that_cannot_resolve_leaves_the_branch_and_one_comment_names_the_files(stack):
    sim = stack.sim
    first, second = conflicting_pulls(stack)
    number, branch = second["number"], second["head"]["ref"]
    head, pushes = sim.branches(REPO)[branch], bot_pushes(stack)
    # It says it is done, and left the markers where they were.
    stack.fake.add(finish(title="Merged", task_summary="Merged.", files_modified=["none"],
                          testing_performed="None."))

    push = merge_first(stack, first["number"])
    _, update = push_and_wait(stack, push, delivery_id="push-1")
    assert update.state == "succeeded", update.error
    assert update.result.startswith("not merged: 1 conflicting file(s) left for a person"), update.result
    assert sim.branches(REPO)[branch] == head and bot_pushes(stack) == pushes
    (comment,) = comments_with(stack, number, CONFLICTS_MARKER)
    assert "- `greeting.txt`" in comment["body"]
    assert "`/backend update`" in comment["body"]
    assert sim.pull_json(REPO, number)["mergeable"] is False
    # The run's check, on the commit it started from, ends saying so (not "in progress").
    (check,) = [r for r in sim.check_runs.values() if r.get("external_id") == f"job-{update.id}"]
    assert check["head_sha"] == head
    assert (check["status"], check["conclusion"]) == ("completed", "neutral")
    assert check["output"]["title"] == "Conflicts left for a person: nothing pushed"

    # The same push delivered again under a new id: no second round for the same main.
    (again,) = push_and_wait(stack, push, delivery_id="push-1-redelivered")
    assert f"update round already made as job {update.id}" in again.result, again.result

    # The default branch moves again: one more round (a new head), which ends on a question;
    # the same comment says so, and the rounds' status stays one comment too.
    stack.fake.add(ask("Should the greeting be English or Spanish?"))
    before = sim.branches(REPO)["main"]
    sim.commit(REPO, "main", {"README.md": "# widgets, documented\n"})
    _, second_round = push_and_wait(stack, sim.event_push(REPO, "main", before=before))
    assert second_round.kind == "update" and second_round.state == "succeeded", second_round.error
    assert sim.branches(REPO)[branch] == head and bot_pushes(stack) == pushes
    (comment,) = comments_with(stack, number, CONFLICTS_MARKER)
    assert "English or Spanish?" in comment["body"] and "- `greeting.txt`" in comment["body"]
    (status,) = comments_with(stack, number, ROUND_STATUS_MARKER)
    assert "need a person" in status["body"]

    # Once a round resolves them, that comment says so instead of naming files.
    stack.fake.add(*resolve_greeting())
    done = len(stack.jobs())
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend update", sender="alice"))
    (resolved,) = stack.wait_jobs(done + 1)[done:]
    assert resolved.result.startswith(f"merged main into #{number} in "), resolved.result
    (comment,) = comments_with(stack, number, CONFLICTS_MARKER)
    assert "are resolved: merged into this pull request in" in comment["body"]
    assert "greeting.txt" not in comment["body"]


def test_backend_update_on_demand_on_a_bot_pull_request(stack):
    sim = stack.sim
    first, second = conflicting_pulls(stack)
    number, branch = second["number"], second["head"]["ref"]
    old_head = sim.branches(REPO)[branch]
    sim.merge_pull(REPO, first["number"])  # no push webhook: only the command asks
    main = sim.branches(REPO)["main"]
    stack.fake.add(*resolve_greeting())

    done = len(stack.jobs())
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend update", sender="alice"))
    (job,) = stack.wait_jobs(done + 1)[done:]
    assert job.kind == "update" and job.state == "succeeded", job.error
    new_head = sim.branches(REPO)[branch]
    assert stack.git("rev-list", "--parents", "-n1", new_head).split() == [new_head, old_head, main]
    assert sim.pull_json(REPO, number)["mergeable"] is True
    (status,) = comments_with(stack, number, f"backend-bot:status:job-{job.id} -->")
    assert "Merged `main` into this pull request in" in status["body"]

    # Asked again, with nothing new on main: nothing to merge, and no agent run.
    requests = len(stack.fake.requests)
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend update", sender="alice"))
    (again,) = stack.wait_jobs(done + 2)[done + 1:]
    assert again.result == "already up to date with main"
    assert len(stack.fake.requests) == requests and sim.branches(REPO)[branch] == new_head

    # Main moves without a conflict: the bot merges it alone, still no agent run.
    sim.commit(REPO, "main", {"README.md": "# widgets, documented\n"})
    main = sim.branches(REPO)["main"]
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend update", sender="alice"))
    (clean,) = stack.wait_jobs(done + 3)[done + 2:]
    assert clean.result.startswith(f"merged main into #{number} in "), clean.result
    merged = sim.branches(REPO)[branch]
    assert stack.git("rev-list", "--parents", "-n1", merged).split() == [merged, new_head, main]
    assert stack.git("log", "-1", "--format=%B", merged).startswith(f"Merge main into {branch}\n")
    assert len(stack.fake.requests) == requests


def test_backend_update_on_someone_elses_pull_request_is_answered_and_does_nothing(stack):
    sim = stack.sim
    number = sim.add_pull(REPO, "feature/tidy", user="alice", files={"tidy.txt": "tidy\n"})
    heads, requests = sim.branches(REPO), len(stack.fake.requests)
    done = len(stack.jobs())
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, number, "/backend update", sender="alice"))
    (job,) = stack.wait_jobs(done + 1)[done:]
    assert job.state == "succeeded" and job.result == "not run: it was opened by @alice", job.result
    (answer,) = [c for c in sim.comments_on(REPO, number) if c["user"]["login"] == "backend-bot[bot]"]
    assert "Sorry @alice" in answer["body"] and "not backend-bot's" in answer["body"]
    assert sim.branches(REPO) == heads and len(stack.fake.requests) == requests

    # Someone who may not start work is told so, and nothing runs either.
    sim.add_user("mallory", repo=REPO, permission="read")
    first, second = conflicting_pulls(stack)
    sim.merge_pull(REPO, first["number"])
    heads, requests = sim.branches(REPO), len(stack.fake.requests)
    done = len(stack.jobs())
    stack.deliver("issue_comment", sim.event_issue_comment_created(
        REPO, second["number"], "/backend update", sender="mallory"))
    (job,) = stack.wait_jobs(done + 1)[done:]
    assert job.result.startswith("refused"), job.result
    assert sim.branches(REPO) == heads and len(stack.fake.requests) == requests


def test_a_hostile_file_name_is_named_inert(stack):
    sim = stack.sim
    name = "Fixes #1 @alice <!-- backend-bot:status:job-1 --> ``[x](evil.example)``.txt"
    first, second = conflicting_pulls(stack, name)
    number, branch = second["number"], second["head"]["ref"]
    head = sim.branches(REPO)[branch]
    stack.fake.add(finish(title="Merged", task_summary="Merged.", files_modified=["none"],
                          testing_performed="None."))
    push_and_wait(stack, merge_first(stack, first["number"]))
    assert sim.branches(REPO)[branch] == head
    (comment,) = comments_with(stack, number, CONFLICTS_MARKER)
    (line,) = [line for line in comment["body"].splitlines() if "@alice" in line]
    # The whole name is one code span that nothing inside it ends early: no mention, no link.
    opening = re.match(r"- (`+)", line)
    assert opening and line.endswith(opening.group(1)), line
    fence = opening.group(1)
    inner = line[len("- ") + len(fence):-len(fence)]
    assert all(len(run) != len(fence) for run in re.findall(r"`+", inner)), line
    assert "backend-bot:status:job-1" not in comment["body"]


def test_an_agent_stopped_by_its_limits_leaves_the_branch_and_the_comment_says_why(stack):
    sim = stack.sim
    first, second = conflicting_pulls(stack)
    number, branch = second["number"], second["head"]["ref"]
    head = sim.branches(REPO)[branch]
    before = sim.branches(REPO)["main"]
    sim.commit(REPO, "main", {".github/backend.yml": "max_turns: 1\n"})
    sim.merge_pull(REPO, first["number"])
    stack.fake.add(tool_use("Bash", command="git status", description="See the merge"),
                   tool_use("Bash", command="git diff", description="See the conflict"))
    done = len(stack.jobs())
    stack.deliver("push", sim.event_push(REPO, "main", before=before))
    # The push changes the configuration too, which a job of its own reads.
    (update,) = [job for job in stack.wait_jobs(done + 3)[done:] if job.kind == "update"]
    assert update.state == "succeeded", update.error
    assert update.result.startswith("not merged: 1 conflicting file(s) left for a person"), update.result
    assert sim.branches(REPO)[branch] == head
    (comment,) = comments_with(stack, number, CONFLICTS_MARKER)
    assert "- `greeting.txt`" in comment["body"] and "limit" in comment["body"]
