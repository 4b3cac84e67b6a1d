"""handlers/ci_failure.py: failing checks on one of the bot's branches become one `ci_fix` job
per delivery, keyed by the branch; anything else is answered with no work. From the payload
alone, in GitHub's real shapes (tests/payloads)."""

from __future__ import annotations

import pytest

import handlers
from bot.routing import Delivery
from tests.payloads import load

SHA = "4f9a2c1e8b7d6a5f3e2d1c0b9a8f7e6d5c4b3a21"
BRANCH = "backend/issue-7-settings"


def failing(event: str, branch: str = BRANCH) -> dict:
    """The fixture, failed, on one of the bot's branches."""
    name = {"check_run": "check_run.completed", "check_suite": "check_suite.completed",
            "workflow_run": "workflow_run.completed", "status": "status"}[event]
    payload = load(name)
    if event == "status":
        payload["state"] = "failure"
        payload["branches"][0]["name"] = branch
        return payload
    body = payload[event]
    body["conclusion"] = "failure"
    suite = body.get("check_suite", body)
    suite["head_branch"] = branch
    for pull in body["pull_requests"]:
        pull["head"]["ref"] = branch
    return payload


def dispatch(event: str, payload: dict, *, app_slug: str | None = "backend-bot"):
    return handlers.router.dispatch(Delivery(event, "d-1", payload, app_slug=app_slug))


@pytest.mark.parametrize("event", ["check_run", "check_suite", "workflow_run", "status"])
def test_a_failure_on_a_bot_branch_is_one_job_keyed_by_its_pull_request(event):
    (job,) = dispatch(event, failing(event))
    assert job.kind == "ci_fix" and job.spec["sha"] == SHA and job.spec["branch"] == BRANCH
    # Check events name the pull request; a status names only the commit and its branches.
    if event == "status":
        assert job.key == f"acme/widgets/ci:{BRANCH}" and job.spec["number"] is None
    else:
        assert job.key == "acme/widgets#7" and job.spec["number"] == 7


@pytest.mark.parametrize("event", ["check_run", "check_suite", "workflow_run"])
@pytest.mark.parametrize("conclusion", ["success", "neutral", "cancelled", "skipped", None])
def test_a_check_that_did_not_fail_is_no_work(event, conclusion):
    payload = failing(event)
    payload[event]["conclusion"] = conclusion
    assert dispatch(event, payload) == []


def test_timed_out_is_a_failure_and_a_pending_status_is_not():
    payload = failing("check_run")
    payload["check_run"]["conclusion"] = "timed_out"
    assert len(dispatch("check_run", payload)) == 1
    status = failing("status")
    status["state"] = "pending"
    assert dispatch("status", status) == []
    status["state"] = "error"
    assert len(dispatch("status", status)) == 1


@pytest.mark.parametrize("event", ["check_run", "check_suite", "workflow_run", "status"])
def test_a_failure_on_someone_elses_branch_is_no_work(event):
    payload = failing(event)
    if event == "status":
        payload["branches"][0]["name"] = "mona/settings-refactor"
    else:
        body = payload[event]
        body.get("check_suite", body)["head_branch"] = "mona/settings-refactor"
    assert dispatch(event, payload) == []


def test_the_bots_own_check_run_alone_is_no_work():
    payload = failing("check_run")
    payload["check_run"]["app"]["slug"] = "backend-bot"
    assert dispatch("check_run", payload) == []
    suite = failing("check_suite")
    suite["check_suite"]["app"]["slug"] = "backend-bot"
    assert dispatch("check_suite", suite) == []
    # Before the slug is known: the bot's check runs are those its own bot user sends.
    payload["sender"] = {"login": "backend-bot[bot]", "type": "Bot"}
    assert dispatch("check_run", payload, app_slug=None) == []


def test_checks_sent_by_a_bot_are_heard():
    # The bot pushed the commit, so GitHub names the bot as the sender of its checks' events.
    payload = failing("workflow_run")
    payload["sender"] = {"login": "backend-bot[bot]", "type": "Bot"}
    assert len(dispatch("workflow_run", payload)) == 1


def test_a_workflow_run_from_a_fork_is_no_work():
    payload = failing("workflow_run")
    payload["workflow_run"]["head_repository"]["full_name"] = "mallory/widgets"
    assert dispatch("workflow_run", payload) == []


@pytest.mark.parametrize("sha", ["not-a-sha", "--upload-pack=evil", None, 42])
def test_a_malformed_sha_is_no_work(sha):
    payload = failing("check_run")
    payload["check_run"]["head_sha"] = sha
    assert dispatch("check_run", payload) == []


def test_malformed_shapes_are_no_work_not_a_crash():
    payload = failing("check_run")
    payload["check_run"]["check_suite"] = "nonsense"
    payload["check_run"]["pull_requests"] = "nonsense"
    assert dispatch("check_run", payload) == []
    status = failing("status")
    status["branches"] = {"name": BRANCH}
    assert dispatch("status", status) == []


@pytest.mark.parametrize("event", ["check_run", "check_suite", "workflow_run", "status"])
def test_check_events_are_read_raw_and_build_no_validator(event):
    from bot import webhooks

    webhooks.prepare_models({event})
    assert webhooks._adapter(event) is None
    assert Delivery(event, "d-1", failing(event)).typed is None


@pytest.mark.parametrize("event", ["check_run", "check_suite", "workflow_run", "status"])
def test_the_repositorys_own_branch_prefix_decides_which_branches_are_the_bots(event):
    payload = failing(event)
    assert handlers.router.dispatch(Delivery(event, "d-1", payload, app_slug="backend-bot",
                                             branch_prefix="ai/")) == []
    own = failing(event, branch="ai/issue-7-settings")
    (job,) = handlers.router.dispatch(Delivery(event, "d-1", own, app_slug="backend-bot", branch_prefix="ai/"))
    assert job.kind == "ci_fix" and job.spec["branch"] == "ai/issue-7-settings"
