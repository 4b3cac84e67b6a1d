"""The payload fixtures follow GitHub's webhook schema, and route as README.md says."""

from __future__ import annotations

import json

import pytest
from githubkit.webhooks import parse_obj

import handlers
from bot import webhooks
from bot.routing import Delivery
from tests.payloads import event_of, load, names, raw

EXPECTED = {
    "issues.labeled.json", "issues.labeled.other-label.json", "issues.labeled.by-bot.json",
    "issues.opened.json", "issue_comment.created.pr.json", "issue_comment.created.issue.json",
    "pull_request_review.submitted.json", "pull_request_review_comment.created.json",
    "pull_request.opened.json", "push.json", "check_run.completed.json",
    "check_suite.completed.json", "status.json", "workflow_run.completed.json",
    "workflow_job.queued.json", "create.json", "delete.json", "star.created.json",
    "watch.started.json", "fork.json", "release.published.json", "installation.created.json",
    "installation_repositories.added.json", "label.created.json", "ping.json",
    "pull_request.synchronize.json", "pull_request.closed.json",
}

# Fixtures githubkit's strict models would wrongly reject although GitHub sends that shape.
# Each entry says why; today there are none (every fixture passes the strict models).
GITHUBKIT_KNOWN_GAPS: dict[str, str] = {}


def dispatch(name: str, app_slug: str | None = "backend-bot"):
    return handlers.router.dispatch(
        Delivery(event=event_of(name), delivery_id="x", payload=load(name), app_slug=app_slug)
    )


def test_every_expected_fixture_exists():
    assert {f"{name}.json" for name in names()} >= EXPECTED


@pytest.mark.parametrize("name", names())
def test_githubkit_accepts_the_shape(name):
    if name in GITHUBKIT_KNOWN_GAPS:
        pytest.xfail(GITHUBKIT_KNOWN_GAPS[name])
    event = parse_obj(event_of(name), load(name))
    action = load(name).get("action")
    if action is not None:
        assert getattr(event, "action", None) == action


@pytest.mark.parametrize("name", names())
def test_bot_decodes_it(name):
    payload = webhooks.decode(event_of(name), raw(name))
    assert payload == json.loads(raw(name))


@pytest.mark.parametrize("name", names())
def test_shape_basics(name):
    payload = load(name)
    sender = payload["sender"]
    for key in ("login", "id", "node_id", "avatar_url", "url", "html_url", "type", "site_admin"):
        assert key in sender, key
    if "repository" in payload:
        repository = payload["repository"]
        assert repository["full_name"] == "acme/widgets"
        assert repository["default_branch"] == "main"
        assert repository["url"] == "https://api.github.com/repos/acme/widgets"
        assert repository["owner"]["login"] == "acme"
        assert "permissions" not in repository
        assert set(payload["installation"]) == {"id", "node_id"}
    if name.startswith(("pull_request.", "pull_request_review")):
        assert len(raw(name)) > 10_000, "a pull_request payload carries three full repositories"


def test_issues_labeled_backend_is_one_issue_job():
    payload = load("issues.labeled")
    assert payload["label"]["name"] == "backend"
    assert payload["sender"]["login"] == "octocat" and payload["sender"]["type"] == "User"
    jobs = dispatch("issues.labeled")
    assert [(job.kind, job.key) for job in jobs] == [("issue", f"acme/widgets#{payload['issue']['number']}")]
    assert jobs[0].spec["requester"] == "octocat"
    assert jobs[0].spec["installation_id"] == payload["installation"]["id"]


def test_other_label_is_not_a_trigger():
    assert load("issues.labeled.other-label")["label"]["name"] != "backend"
    assert dispatch("issues.labeled.other-label") == []


def test_label_added_by_a_bot_is_ignored():
    sender = load("issues.labeled.by-bot")["sender"]
    assert sender["type"] == "Bot" and sender["login"].endswith("[bot]")
    assert load("issues.labeled.by-bot")["label"]["name"] == "backend"
    assert dispatch("issues.labeled.by-bot") == []


def test_backend_command_on_a_pull_request():
    payload = load("issue_comment.created.pr")
    assert "pull_request" in payload["issue"]
    assert payload["comment"]["body"] == "/backend add a health endpoint"
    jobs = dispatch("issue_comment.created.pr")
    assert [(job.kind, job.key) for job in jobs] == [
        ("pr_command", f"acme/widgets#{payload['issue']['number']}")
    ]
    assert jobs[0].spec["instruction"] == "add a health endpoint"


def test_plain_comment_is_not_a_trigger():
    assert "pull_request" not in load("issue_comment.created.issue")["issue"]
    assert dispatch("issue_comment.created.issue") == []


@pytest.mark.parametrize("app_slug", ["backend-bot", None])
def test_review_on_the_bots_pull_request(app_slug):
    payload = load("pull_request_review.submitted")
    pull = payload["pull_request"]
    assert payload["review"]["state"] == "changes_requested"
    assert pull["user"]["login"] == "backend-bot[bot]" and pull["user"]["type"] == "Bot"
    assert pull["head"]["ref"] == "backend/issue-42-add-profile"
    jobs = dispatch("pull_request_review.submitted", app_slug=app_slug)
    assert [(job.kind, job.key) for job in jobs] == [("review", f"acme/widgets#{pull['number']}")]


def test_review_comment_without_a_command_is_not_a_trigger():
    assert dispatch("pull_request_review_comment.created") == []


NOT_ROUTED = [name for name in names() if event_of(name) not in handlers.router.events()]


def test_a_push_to_the_default_branch_is_one_log_merge_job_decided_from_the_payload():
    payload = load("push")
    assert payload["ref"] == "refs/heads/main"
    jobs = dispatch("push")
    assert [(job.kind, job.key) for job in jobs] == [("log_merge", "acme/widgets/default-branch")]
    assert jobs[0].spec == {"repo": "acme/widgets", "installation_id": payload["installation"]["id"],
                            "after": payload["after"], "requester": payload["sender"]["login"]}


def test_a_push_to_the_default_branch_touching_the_config_is_a_config_job_too():
    payload = load("push")
    payload["commits"][0]["modified"].append(".github/backend.yml")
    jobs = handlers.router.dispatch(Delivery(event="push", delivery_id="x", payload=payload))
    assert [(job.kind, job.key) for job in jobs] == [
        ("config", "acme/widgets/config"), ("log_merge", "acme/widgets/default-branch")]


def test_a_merge_queue_moving_the_default_branch_is_heard_but_a_bots_config_change_is_not():
    """Merge queues and auto-merging bots push to default branches: the work log must not block
    the PRs they leave behind. The rest of the bot keeps ignoring what bots send."""
    payload = load("push")
    payload["sender"] = {**payload["sender"], "login": "github-merge-queue[bot]", "type": "Bot"}
    payload["commits"][0]["modified"].append(".github/backend.yml")
    jobs = handlers.router.dispatch(Delivery(event="push", delivery_id="x", payload=payload))
    assert [(job.kind, job.key) for job in jobs] == [("log_merge", "acme/widgets/default-branch")]


@pytest.mark.parametrize("change", [
    {"ref": "refs/heads/feature"},
    {"ref": "refs/tags/main"},
    {"created": True, "before": "0" * 40},
    {"deleted": True, "after": "0" * 40},
    {"after": "--upload-pack=touch /tmp/x"},
    {"after": ["6dcb09b5b57875f334f61aebed695e2e4193db5e"]},
])
def test_a_push_that_does_not_move_the_default_branch_is_no_log_merge(change):
    payload = {**load("push"), **change}
    jobs = handlers.router.dispatch(Delivery(event="push", delivery_id="x", payload=payload))
    assert "log_merge" not in {job.kind for job in jobs}


@pytest.mark.parametrize("name", NOT_ROUTED)
def test_other_events_are_not_routed(name):
    payload = load(name)
    assert not handlers.router.routes(event_of(name), payload.get("action"))
    if "repository" in payload:
        assert dispatch(name) == []


def test_issues_opened_is_not_a_trigger():
    assert dispatch("issues.opened") == []


def test_every_job_kind_a_handler_emits_has_a_flow_and_every_flow_a_trigger():
    """The link from handlers to flows is a string (the job's kind): check it both ways."""
    from bot.flows import KINDS
    from bot.routing import with_acknowledgements

    def kinds(event: str, payload: dict) -> set[str]:
        delivery = Delivery(event=event, delivery_id="x", payload=payload, app_slug="backend-bot")
        return {job.kind for job in with_acknowledgements(handlers.router.dispatch(delivery))}

    emitted: set[str] = set()
    for name in names():
        emitted |= kinds(event_of(name), load(name))
    for body in ("/backend help", "/backend add a test", "/backend update", "/backend answer yes"):
        for fixture in ("issue_comment.created.pr", "issue_comment.created.issue"):
            payload = load(fixture)
            payload["comment"]["body"] = body
            emitted |= kinds("issue_comment", payload)
    push = load("push")
    push["commits"][0]["modified"].append(".github/backend.yml")
    emitted |= kinds("push", push)
    failed = load("check_run.completed")
    failed["check_run"]["conclusion"] = "failure"
    failed["check_run"]["check_suite"]["head_branch"] = "backend/issue-7-settings"
    emitted |= kinds("check_run", failed)
    from bot.flows import abandoned
    from bot.jobstore import Job

    # And the engine's own: the report of a job it gave up.
    emitted |= {r.kind for r in abandoned.report(Job(1, "d", "issues", "issue", "k", {}, "running"), "x")}
    # And the end of a wait for an answer that outlived BOT_ANSWER_WAIT_DAYS.
    from bot.flows.answer import wait_ended
    from bot.questions import Question

    question = Question(1, 1, "o/r", 1, "issue", "o/r#1", {"installation_id": 1}, "alice", "?", "b", "main",
                        None, 0.0, 1.0, "expired", None, None)
    emitted.add(wait_ended(question, 7).kind)
    # And the intake's: a trigger over its person's hourly limit is stored as its refusal
    # (tests/test_rate_limit.py shows the store doing it).
    from bot.rate_limits import REFUSAL_KIND

    emitted.add(REFUSAL_KIND)
    assert emitted <= set(KINDS), emitted - set(KINDS)
    assert set(KINDS) <= emitted, set(KINDS) - emitted
