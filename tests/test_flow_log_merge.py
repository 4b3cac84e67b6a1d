"""The work log never blocks a merge, end to end: two issues become two bot pull requests from
one default branch, the first is merged with GitHub's merge button, the `push` webhook follows,
and the second gets one merge commit with the two logs combined (real git over the simulator,
a scripted model)."""

from __future__ import annotations

import re
import stat
import subprocess

from bot.worklog import WORKLOG_FILE, WORKLOG_HEADER, parse_worklog, split_blocks
from tests.agent_fakes import ask, finish, tool_use
from tests.simulator.gitrepo import commit_files, read_blob
from tests.support.stack import REPO, Stack


def bot_pull(stack: Stack, title: str, files: dict[str, str]) -> dict:
    """An issue labelled `backend`, worked on by the (scripted) agent: its pull request."""
    sim = stack.sim
    done = len(stack.jobs())
    number = sim.add_issue(REPO, title, "", user="alice")
    stack.fake.add(*[tool_use("Write", file_path=path, content=text) for path, text in files.items()],
                   finish(title=title, task_summary=f"{title}."))
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    job = stack.wait_jobs(done + 1)[-1]
    assert job.state == "succeeded", job.error
    (pull,) = [p for p in sim.pulls(REPO) if f"Closes #{number}" in (p["body"] or "")]
    return pull


def merge_first(stack: Stack, number: int) -> dict:
    """Merge a pull request with the merge button; the `push` webhook GitHub sends then."""
    before = stack.sim.branches(REPO)["main"]
    stack.sim.merge_pull(REPO, number, user="alice")
    return stack.sim.event_push(REPO, "main", before=before, sender="alice")


def run_log_merge(stack: Stack, push: dict, delivery_id: str | None = None):
    done = len(stack.jobs())
    assert stack.deliver("push", push, delivery_id=delivery_id).status_code == 202
    job = stack.wait_jobs(done + 1)[done]  # an update round it hands work to comes after it
    assert job.kind == "log_merge" and job.state == "succeeded", job.error
    return job


def merges_cleanly(stack: Stack, into: str, head: str) -> bool:
    return subprocess.run(["git", "merge-tree", "--write-tree", into, head], capture_output=True,
                          cwd=stack.sim.repo(REPO).bare).returncode == 0


def bot_pushes(stack: Stack) -> int:
    return len([r for r in stack.sim.requests_to("POST", r"/acme/widgets(\.git)?/git-receive-pack")
                if r.status == 200])


def test_a_bot_pull_request_conflicting_only_in_the_work_log_gets_one_merge_commit(stack):
    sim = stack.sim
    first = bot_pull(stack, "Add a.txt", {"a.txt": "a\n"})
    second = bot_pull(stack, "Add b.txt", {"b.txt": "b\n"})
    number, branch = second["number"], second["head"]["ref"]
    old_head = sim.branches(REPO)[branch]
    own_entry = split_blocks(sim.read_file(REPO, WORKLOG_FILE, ref=branch))[1][-1]
    body_edits = len(sim.requests_to("PATCH", rf"/repos/{REPO}/pulls/{number}"))

    push = merge_first(stack, first["number"])
    main = push["after"]
    assert not merges_cleanly(stack, main, branch)
    job = run_log_merge(stack, push, delivery_id="push-1")
    assert f"#{number} merged main in " in job.result, job.result

    # Exactly one new commit, a merge of the default branch; nothing force-pushed.
    new_head = sim.branches(REPO)[branch]
    assert stack.git("rev-list", new_head, f"^{old_head}", f"^{main}").split() == [new_head]
    assert stack.git("rev-list", "--parents", "-n1", new_head).split() == [new_head, old_head, main]
    author, committer, subject = stack.git("log", "-1", "--format=%an%n%cn%n%s", new_head).splitlines()
    assert author == committer == "backend-bot[bot]"
    assert subject == f"Merge main into {branch}"

    # The default branch's log as it is, then this branch's entry.
    main_log = sim.read_file(REPO, WORKLOG_FILE, ref="main")
    merged_log = sim.read_file(REPO, WORKLOG_FILE, ref=branch)
    assert merged_log == main_log + "\n" + own_entry
    assert [e.title for e in parse_worklog(merged_log)] == ["Add a.txt", "Add b.txt"]
    assert sim.read_file(REPO, "a.txt", ref=branch) == "a\n"
    assert merges_cleanly(stack, "main", branch)

    # The pull request's description is the run's, untouched.
    assert sim.pull_json(REPO, number)["body"] == second["body"]
    assert len(sim.requests_to("PATCH", rf"/repos/{REPO}/pulls/{number}")) == body_edits

    # The same delivery again is answered as a repeat; the same push again changes nothing.
    assert stack.deliver("push", push, delivery_id="push-1").status_code == 200
    again = run_log_merge(stack, push, delivery_id="push-1-redelivered")
    assert f"#{number} already has main" in again.result
    assert sim.branches(REPO)[branch] == new_head

    # The default branch moves without touching the log: nothing to do, GitHub can merge.
    before = sim.branches(REPO)["main"]
    sim.commit(REPO, "main", {"README.md": "# widgets, documented\n"})
    clean = run_log_merge(stack, sim.event_push(REPO, "main", before=before))
    assert f"#{number} merges with main cleanly: nothing to do" in clean.result
    assert sim.branches(REPO)[branch] == new_head

    # And the merge button merges it.
    sim.merge_pull(REPO, number)
    assert [e.title for e in parse_worklog(sim.read_file(REPO, WORKLOG_FILE))] == [
        "Add a.txt", "Add b.txt"]


def test_a_bot_pull_request_with_a_code_conflict_is_handed_to_an_update_round(stack):
    sim = stack.sim
    first = bot_pull(stack, "Greet in English", {"greeting.txt": "hello\n"})
    second = bot_pull(stack, "Greet in Spanish", {"greeting.txt": "hola\n"})
    branch = second["head"]["ref"]
    head, pushes = sim.branches(REPO)[branch], bot_pushes(stack)
    # The round's agent (tests/test_flow_update.py has the rest) asks instead of resolving.
    stack.fake.add(ask("Which greeting?"))

    job = run_log_merge(stack, merge_first(stack, first["number"]))
    assert re.search(rf"#{second['number']} conflicts with main in 'greeting.txt': update round "
                     r"queued as job \d+", job.result), job.result
    (update,) = [j for j in stack.jobs() if j.kind == "update"]
    assert update.spec["number"] == second["number"] and update.spec["trigger"] == "default_branch"
    assert sim.branches(REPO)[branch] == head
    assert bot_pushes(stack) == pushes


def test_only_the_bots_own_pull_requests_into_the_default_branch_are_touched(stack):
    sim = stack.sim
    bare = sim.repo(REPO).bare
    first = bot_pull(stack, "Add a.txt", {"a.txt": "a\n"})
    hand_entry = "## 2026-03-01T09:00:00Z — Notes by hand\n\n### Task Summary\nNotes.\n\n---\n"
    own_log = {WORKLOG_FILE: WORKLOG_HEADER + hand_entry}
    # A person's pull requests that append to the log, one even on a branch named like the bot's.
    sim.add_pull(REPO, "feature/notes", user="alice", files=own_log)
    sim.add_pull(REPO, "backend/issue-99-by-hand", user="alice", files=own_log)
    # The bot's pull request into someone else's branch (`/backend` on their pull request).
    sim.add_pull(REPO, "backend/pr-2-tidy-7", base="feature/notes", user="backend-bot[bot]",
                 files={WORKLOG_FILE: WORKLOG_HEADER + hand_entry + "\n" + hand_entry.replace(
                     "Notes by hand", "Tidy")})
    heads = {name: sha for name, sha in sim.branches(REPO).items() if name != "main"}

    # A push elsewhere than the default branch is no work at all.
    before = heads["feature/notes"]
    commit_files(bare, "feature/notes", {"notes.txt": "more\n"}, parent=before)
    jobs = len(stack.jobs())
    assert stack.deliver("push", sim.event_push(REPO, "feature/notes", before=before)).status_code == 200
    assert len(stack.jobs()) == jobs
    heads["feature/notes"] = sim.branches(REPO)["feature/notes"]

    job = run_log_merge(stack, merge_first(stack, first["number"]))
    assert job.result.endswith("no open pull request of the bot's into it"), job.result
    assert {name: sha for name, sha in sim.branches(REPO).items() if name != "main"} == heads


def test_a_branch_that_moves_while_the_bot_merges_is_merged_again_not_forced(stack):
    sim = stack.sim
    bare = sim.repo(REPO).bare
    first = bot_pull(stack, "Add a.txt", {"a.txt": "a\n"})
    second = bot_pull(stack, "Add b.txt", {"b.txt": "b\n"})
    branch = second["head"]["ref"]
    # Someone's commit on the branch lands just before the bot's push: GitHub refuses the
    # bot's push once, as it refuses a push that is not a fast-forward.
    theirs = commit_files(bare, "scratch", {"c.txt": "c\n"}, parent=sim.branches(REPO)[branch])
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\n"
        "while read old new ref; do\n"
        f'  if [ "$ref" = "refs/heads/{branch}" ] && [ ! -e moved ]; then\n'
        "    touch moved\n"
        f"    env -u GIT_QUARANTINE_PATH git update-ref \"$ref\" {theirs}\n"
        "    echo 'someone pushed first' >&2; exit 1\n"
        "  fi\n"
        "done\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)

    push = merge_first(stack, first["number"])
    job = run_log_merge(stack, push)
    assert (bare / "moved").exists()
    assert f"#{second['number']} merged main in " in job.result, job.result
    new_head = sim.branches(REPO)[branch]
    assert stack.git("rev-list", "--parents", "-n1", new_head).split() == [
        new_head, theirs, push["after"]]
    assert sim.read_file(REPO, "c.txt", ref=branch) == "c\n"
    assert [e.title for e in parse_worklog(sim.read_file(REPO, WORKLOG_FILE, ref=branch))] == [
        "Add a.txt", "Add b.txt"]


def test_hand_edits_on_the_default_branch_survive_byte_for_byte(stack):
    sim = stack.sim
    bare = sim.repo(REPO).bare
    first = bot_pull(stack, "Add a.txt", {"a.txt": "a\n"})
    second = bot_pull(stack, "Add b.txt", {"b.txt": "b\n"})
    branch = second["head"]["ref"]
    own_entry = split_blocks(sim.read_file(REPO, WORKLOG_FILE, ref=branch))[1][-1].encode()
    before = sim.branches(REPO)["main"]
    sim.merge_pull(REPO, first["number"])
    # Someone edits the log on the default branch: Windows line endings, a Latin-1 byte, and
    # a .gitattributes that would have `git add` rewrite the file.
    edited = read_blob(bare, f"main:{WORKLOG_FILE}").replace(b"\n", b"\r\n") + b"Caf\xe9 $Id$\r\n"
    sim.commit(REPO, "main", {WORKLOG_FILE: edited,
                              ".gitattributes": f"{WORKLOG_FILE} text eol=lf ident\n"})
    job = run_log_merge(stack, sim.event_push(REPO, "main", before=before))
    assert f"#{second['number']} merged main in " in job.result, job.result
    assert read_blob(bare, f"{branch}:{WORKLOG_FILE}") == edited + b"\r\n" + own_entry
