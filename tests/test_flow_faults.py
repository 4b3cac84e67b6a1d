"""GitHub failing in the middle of the flow, the worst way: after it took the write.

A 502 that GitHub sends after it created the comment or the pull request must not make the
bot write them twice (the transport does not resend a POST; the step looks for what it wrote
before writing again), and the job still ends as it should.
"""

from __future__ import annotations

from tests.agent_fakes import finish, http_error, tool_use
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


def test_a_github_failure_the_transport_gives_up_on_is_retried_by_the_step(stack):
    """A 503 on a POST is not resent by the transport (GitHub may have written): the step
    fails with a transient error and the engine runs it again, to the end."""
    sim = stack.sim
    number = sim.add_issue(REPO, "Add notes", "", user="alice")
    stack.fake.add(tool_use("Write", file_path="notes.txt", content="notes\n"),
                   finish(title="Add notes"))
    sim.fail_next(2, path=r"/pulls$", method="POST", status=503)
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1, timeout=120)
    assert job.state == "succeeded", job.error
    assert len(sim.pulls(REPO)) == 1
    assert len(sim.requests_to("POST", rf"/repos/{REPO}/pulls$")) == 3


def test_an_overloaded_model_past_the_agents_retries_is_retried_by_the_step(stack):
    """The agent retries the model itself; past that, the whole round is run again later."""
    sim = stack.sim
    number = sim.add_issue(REPO, "Add notes", "", user="alice")
    overloaded = [http_error(529, retry_after=0) for _ in range(7)]  # the agent's 1 + 6 retries
    stack.fake.add(*overloaded, tool_use("Write", file_path="notes.txt", content="notes\n"),
                   finish(title="Add notes"))
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1, timeout=120)
    assert job.state == "succeeded", job.error
    assert len(sim.pulls(REPO)) == 1
    assert stack.fake.remaining == 0
