"""GitHub failing in the middle of the flow, the worst way: after it took the write.

A 502 that GitHub sends after it created the comment or the pull request must not make the
bot write them twice (the transport does not resend a POST; the step looks for what it wrote
before writing again), and the job still ends as it should.
"""

from __future__ import annotations

from tests.agent_fakes import finish, tool_use
from tests.support.stack import REPO


def test_writes_that_fail_after_taking_effect_are_not_doubled(stack):
    sim = stack.sim
    sim.commit(REPO, "main", {"Makefile": "test:\n\t@test -f notes.txt\n"})  # a check run, too
    number = sim.add_issue(REPO, "Add notes", "", user="alice")
    stack.fake.add(tool_use("Write", file_path="notes.txt", content="notes\n"),
                   finish(title="Add notes"))
    sim.fail_after_next(1, path=r"/issues/\d+/comments$", method="POST")
    sim.fail_after_next(1, path=r"/pulls$", method="POST")
    sim.fail_after_next(1, path=r"/check-runs$", method="POST")
    sim.fail_next(2, path=r"/issues/comments/\d+$", method="PATCH", status=503)
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1, timeout=120)
    assert job.state == "succeeded", job.error
    assert len(sim.pulls(REPO)) == 1
    status = [c for c in sim.comments_on(REPO, number) if "backend-bot:status" in c["body"]]
    assert len(status) == 1 and "Done" in status[0]["body"]
    assert len([c for c in sim.check_runs.values() if c["name"] == "backend-bot / tests"]) == 1
    assert not [f for f in sim.faults if f.remaining]  # every fault was met
