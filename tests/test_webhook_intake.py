"""The webhook endpoint of a real server process on 127.0.0.1, fed deliveries signed and
shaped as GitHub sends them."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from bot.jobstore import JobStore
from tests.support import payloads
from tests.support.deliveries import deliver, github_headers, sign
from tests.support.processes import BotProcess, app_credentials
from tests.webhook_fuzz import hostile_delivery

SECRET = "it's a secret to everybody"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("bot")
    bot = BotProcess(
        {
            **app_credentials(SECRET),
            "BOT_DATA_DIR": str(data),
            "TEST_EVENTS": str(data / "events.jsonl"),
            "LOG_LEVEL": "info",
        },
        data / "server.log",
    )
    bot.start()
    yield bot
    bot.stop()


@pytest.fixture
def hook(server):
    return server.url + "/api/github/webhooks"


def stored_jobs(server) -> list:
    store = JobStore(f"sqlite:///{server.env['BOT_DATA_DIR']}/backend-bot.db")
    try:
        return store.list(limit=1000)
    finally:
        store.close()


def test_trigger_is_stored_before_202(server, hook):
    delivery_id = str(uuid.uuid4())
    response = deliver(hook, "issues", payloads.issues_labeled(7, "plain work"), SECRET,
                       delivery_id=delivery_id)
    assert response.status_code == 202
    job_id = response.json()["jobs"][0]
    # Read straight from the database file, as a second process would.
    job = next(job for job in stored_jobs(server) if job.id == job_id)
    assert (job.kind, job.key, job.delivery_id) == ("issue", "acme/widgets#7", delivery_id)
    assert job.spec["requester"] == "octocat"


def test_repeated_delivery_is_one_job(server, hook):
    delivery_id = str(uuid.uuid4())
    payload = payloads.issues_labeled(8, "plain work")
    first = deliver(hook, "issues", payload, SECRET, delivery_id=delivery_id)
    second = deliver(hook, "issues", payload, SECRET, delivery_id=delivery_id)
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json()["jobs"] == first.json()["jobs"]
    assert sum(job.delivery_id == delivery_id and job.kind == "issue"
               for job in stored_jobs(server)) == 1


@pytest.mark.parametrize(
    "signature, why",
    [
        (None, "Missing X-Hub-Signature-256"),
        ("sha256=zz", "Malformed"),
        ("sha1=" + "0" * 40, "Malformed"),
        ("sha256=" + "0" * 64, "does not match"),
    ],
)
def test_bad_signatures_are_401(hook, signature, why):
    body = json.dumps(payloads.issues_labeled()).encode()
    headers = github_headers("issues", body, None)
    if signature:
        headers["X-Hub-Signature-256"] = signature
    response = httpx.post(hook, content=body, headers=headers)
    assert response.status_code == 401
    assert why in response.json()["message"]


def test_signature_with_another_secret_is_401(hook):
    response = deliver(hook, "issues", payloads.issues_labeled(), "some other secret")
    assert response.status_code == 401


def test_signature_is_checked_before_the_body_is_read_as_json(hook):
    # A broken body with a wrong signature is a 401, not a 400: nothing is parsed unsigned.
    headers = github_headers("issues", b"{", None)
    headers["X-Hub-Signature-256"] = sign("wrong", b"{")
    assert httpx.post(hook, content=b"{", headers=headers).status_code == 401


def test_truncated_json_is_400(hook):
    body = json.dumps(payloads.issues_labeled()).encode()[:-20]
    response = deliver(hook, "issues", body, SECRET)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["message"]


def test_body_that_is_not_the_event_it_claims_is_400(hook):
    # A push payload sent as an `issues` event.
    push = {"ref": "refs/heads/main", "before": "a" * 40, "after": "b" * 40,
            "repository": payloads.repository(), "sender": payloads.user("octocat")}
    response = deliver(hook, "issues", push, SECRET)
    assert response.status_code == 400
    assert "not a `issues` event" in response.json()["message"]


def test_json_that_is_not_an_object_is_400(hook):
    assert deliver(hook, "issues", b"[1, 2, 3]", SECRET).status_code == 400


def test_wrongly_typed_fields_are_400(hook):
    payload = payloads.issues_labeled()
    payload["issue"]["number"] = "forty-two"
    response = deliver(hook, "issues", payload, SECRET)
    assert response.status_code == 400
    assert "issue.number" in response.json()["message"]


def test_body_over_25_mb_is_413(hook):
    body = b'{"action": "labeled", "pad": "' + b"x" * (26 * 1024 * 1024) + b'"}'
    response = deliver(hook, "issues", body, SECRET, timeout=60)
    assert response.status_code == 413


def test_missing_event_header_is_400(hook):
    body = json.dumps(payloads.issues_labeled()).encode()
    headers = github_headers("issues", body, SECRET)
    del headers["X-GitHub-Event"]
    assert httpx.post(hook, content=body, headers=headers).status_code == 400


def test_ping_is_200(hook):
    response = deliver(hook, "ping", {"zen": "Keep it logically awesome.", "hook_id": 1,
                                      "hook": {"type": "App"}}, SECRET)
    assert response.status_code == 200
    assert response.json()["zen"] == "Keep it logically awesome."


def test_unknown_and_unrouted_events_are_200(server, hook):
    before = len(stored_jobs(server))
    assert deliver(hook, "star", {"action": "created", "starred_at": None,
                                  "repository": payloads.repository(),
                                  "sender": payloads.user("fan")}, SECRET).status_code == 200
    assert deliver(hook, "some_future_event", {"anything": True}, SECRET).status_code == 200
    assert deliver(hook, "issues", {**payloads.issues_labeled(), "action": "opened"},
                   SECRET).status_code == 200
    assert len(stored_jobs(server)) == before


def test_other_labels_and_plain_comments_need_no_work(server, hook):
    before = len(stored_jobs(server))
    assert deliver(hook, "issues", payloads.issues_labeled(label="bug"), SECRET).status_code == 200
    assert deliver(hook, "issue_comment", payloads.pr_comment(5, "LGTM"), SECRET).status_code == 200
    assert len(stored_jobs(server)) == before


def test_a_labeller_that_is_a_bot_triggers_nothing(server, hook):
    before = len(stored_jobs(server))
    payload = payloads.issues_labeled(sender="backend-bot[bot]", bot=True)
    response = deliver(hook, "issues", payload, SECRET)
    assert response.status_code == 200
    assert len(stored_jobs(server)) == before


def test_pr_command_is_queued(server, hook):
    response = deliver(hook, "issue_comment",
                       payloads.pr_comment(9, "/backend add a health endpoint"), SECRET)
    assert response.status_code == 202
    job = next(j for j in stored_jobs(server) if j.id == response.json()["jobs"][0])
    assert (job.kind, job.key) == ("pr_command", "acme/widgets#9")
    assert job.spec["instruction"] == "add a health endpoint"


def test_healthz_and_metrics(server, hook):
    deliver(hook, "issues", payloads.issues_labeled(label="bug"), SECRET)
    health = httpx.get(server.url + "/healthz").json()
    assert health["status"] == "ok" and health["missing"] == []
    metrics = httpx.get(server.url + "/metrics").text
    assert 'backend_bot_webhook_deliveries_total{event="issues",outcome="200"}' in metrics
    assert "backend_bot_webhook_seconds_bucket" in metrics
    assert 'backend_bot_jobs{state="queued"}' in metrics or 'backend_bot_jobs{state="succeeded"}' in metrics


def test_every_log_line_of_a_delivery_carries_its_id(server, hook):
    delivery_id = str(uuid.uuid4())
    deliver(hook, "issues", payloads.issues_labeled(11, "plain work"), SECRET,
            delivery_id=delivery_id)
    deliver(hook, "issues", b"{", SECRET, delivery_id=delivery_id + "-bad")
    log = server.log()
    assert f"delivery={delivery_id}" in log
    assert f"delivery={delivery_id}-bad" in log


def test_unconfigured_app_answers_503_and_says_what_is_missing(tmp_path):
    bot = BotProcess({"BOT_DATA_DIR": str(tmp_path), "TEST_EVENTS": str(tmp_path / "e"),
                      "APP_ID": "", "WEBHOOK_SECRET": "", "PRIVATE_KEY": ""},
                     tmp_path / "server.log")
    for name in ("APP_ID", "WEBHOOK_SECRET", "PRIVATE_KEY", "PRIVATE_KEY_PATH"):
        bot.env.pop(name, None)
    health = bot.start(healthy=False)
    try:
        assert health["status"] == "unconfigured"
        assert "APP_ID" in health["missing"] and "WEBHOOK_SECRET" in health["missing"]
        response = deliver(bot.url + "/api/github/webhooks", "issues", payloads.issues_labeled(),
                           SECRET)
        assert response.status_code == 503
        assert "APP_ID" in response.json()["message"]
        assert "WEBHOOK_SECRET" in response.json()["message"]
    finally:
        bot.stop()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(delivery=hostile_delivery())
def test_a_signed_body_never_gets_a_5xx(server, delivery):
    """Whatever a body holds, once it is signed the answer is 200, 202 or 400: never a 5xx,
    which would make GitHub send it again and again."""
    event, body = delivery
    response = deliver(server.url + "/api/github/webhooks", event, body, SECRET)
    assert response.status_code in (200, 202, 400), (response.status_code, response.text, body[:300])


def test_metrics_labels_stay_bounded(server, hook):
    """`X-GitHub-Event` is anyone's to write: unknown names share one series."""
    for index in range(30):
        deliver(hook, f"made-up-event-{index}", {"zen": "z", "hook_id": 1}, None)
        deliver(hook, f"other-made-up-{index}", {"zen": "z", "hook_id": 1}, SECRET)
    text = httpx.get(server.url + "/metrics").text
    assert "made-up" not in text
    assert 'event="other"' in text
