"""Every configured secret, and every secret's encoded forms, are redacted wherever the bot
writes: its log, comments, check runs, pull requests and commits."""

from __future__ import annotations

import base64
import json
import secrets
import time
from urllib.parse import quote, quote_plus

import pytest

from bot import redact as redaction
from bot.github import GitHubApp
from bot.redact import REDACTED, redact, register_secret
from bot.settings import load_settings
from tests.agent_fakes import finish, tool_use
from tests.support.stack import MODEL_KEY, REPO

REPOSITORY = "acme/widgets"


def fresh(prefix: str) -> str:
    """A secret no pattern recognises: only its registration can redact it."""
    return f"{prefix}-{secrets.token_hex(12)}"


def test_the_webhook_secret_and_a_model_key_of_any_shape_are_redacted_once_settings_load(tmp_path):
    webhook, model_key = fresh("hook"), fresh("key")
    line = f"signed with {webhook}, calling with {model_key}"
    assert redact(line) == line
    load_settings(webhook_secret=webhook, anthropic_api_key=model_key, data_dir=tmp_path)
    assert redact(line) == f"signed with {REDACTED}, calling with {REDACTED}"


def test_the_private_key_is_redacted_without_its_end_line_and_line_by_line(github_sim, tmp_path):
    pem = github_sim.default_app.private_key_pem
    path = tmp_path / "app.pem"
    path.write_text(pem)
    load_settings(private_key_path=path, data_dir=tmp_path)
    body = [line for line in pem.splitlines() if line and "-----" not in line]
    assert redact(f"line 3 of the key: {body[3]}") == f"line 3 of the key: {REDACTED}"
    assert redact(f"as one line: {''.join(body)}") == f"as one line: {REDACTED}"
    cut_short = "\n".join(pem.splitlines()[:8])  # the BEGIN line and 7 lines, no END line
    assert redact(f"cut short: {cut_short}.") == f"cut short: {REDACTED}."
    middle = "\n".join(body[2:5])
    assert redact(f"some lines:\n{middle}\n") == f"some lines:\n{REDACTED}\n{REDACTED}\n{REDACTED}\n"
    assert base64.b64encode(pem.encode()).decode() not in redact(base64.b64encode(pem.encode()).decode())


def test_a_private_key_nobody_registered_is_redacted_without_its_end_line():
    key = ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
           "MzEfYyjiWA4R4\n\nThe next paragraph.")
    assert redact(key) == f"{REDACTED}\n\nThe next paragraph."
    assert redact(key.replace("\n", "\\n")) == f"{REDACTED}\\n\\nThe next paragraph."


@pytest.mark.parametrize("offset", [0, 1, 2])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_base64_of_a_secret_is_redacted_at_any_alignment_inside_a_blob(offset, encode):
    secret = fresh("blob")
    register_secret(secret)
    blob = encode(b"\xff" * offset + secret.encode() + b"\xfe\xfd and more after it").decode()
    redacted = redact(f"payload={blob};")
    assert REDACTED in redacted
    # What is left around it carries at most the bits next to the secret, never the secret.
    before, after = redacted.removeprefix("payload=").removesuffix(";").split(REDACTED)
    assert len(before) <= 3 and after == blob[len(blob) - len(after):]
    assert len(blob) - len(before) - len(after) >= len(secret) * 4 // 3 - 2


def test_hex_and_percent_encodings_of_a_secret_are_redacted():
    secret = "p@ss w/rd:" + secrets.token_hex(6)
    register_secret(secret)
    for form in (secret.encode().hex(), secret.encode().hex().upper(), quote(secret, safe=""),
                 quote(secret), quote_plus(secret), quote(secret, safe="").lower()):
        assert redact(f"<{form}>") == f"<{REDACTED}>", form


def test_the_newest_tokens_are_remembered_and_configured_secrets_for_good():
    configured = fresh("configured")
    register_secret(configured, configured=True)
    tokens = [fresh("token") for _ in range(redaction.TOKENS_KEPT + 1)]
    for token in tokens:
        register_secret(token)
    oldest, newest = tokens[0].encode().hex(), tokens[-1].encode().hex()
    assert redact(oldest) == oldest
    assert redact(newest) == REDACTED
    assert redact(configured.encode().hex()) == REDACTED
    # Linear in the text, however many values are known: every log line goes through it.
    text = "a log line, with words and numbers 1234567890 abcdefghijklmnop\n" * 1600
    started = time.perf_counter()
    assert redact(text) == text
    assert time.perf_counter() - started < 0.5


async def test_check_runs_are_redacted_like_comments(github_sim, tmp_path):
    secret = fresh("check")
    settings = load_settings(**github_sim.settings_overrides(), data_dir=tmp_path)
    register_secret(secret)
    app = GitHubApp(settings, transport=github_sim.transport())
    try:
        gh = await app.installation(42)
        sha = github_sim.branches(REPOSITORY)["main"]
        await gh.create_check_run(REPOSITORY, name="backend-bot", head_sha=sha,
                                  title=f"t {secret}", summary=f"s {secret}", text=f"x {secret}")
        await gh.create_check_run(REPOSITORY, name="backend-bot / tests", head_sha=sha,
                                  status="completed", conclusion="success", title=f"T {secret}",
                                  summary=f"S {secret}", text=base64.b64encode(secret.encode()).decode())
    finally:
        await app.aclose()
    sent = json.dumps([r.json for r in github_sim.requests if "/check-runs" in r.path])
    assert secret not in sent and base64.b64encode(secret.encode()).decode() not in sent
    assert sent.count(REDACTED) == 6


def test_secrets_the_agent_writes_never_reach_github_or_the_log(stack):
    sim = stack.sim
    webhook_secret = sim.default_app.webhook_secret
    model_key_b64 = base64.b64encode(MODEL_KEY.encode()).decode()
    leak = f"webhook={webhook_secret} key={model_key_b64}"
    sim.commit(REPO, "main", {"Makefile": "test:\n\t@cat notes.txt\n"}, message="Add a test target")
    number = sim.add_issue(REPO, "Add notes", "Please add notes.txt.", user="alice")
    stack.fake.add(
        tool_use("Write", file_path="notes.txt", content=f"{leak}\n"),
        tool_use("TodoWrite", todos=[{"content": f"Leak {leak}", "status": "in_progress",
                                      "activeForm": "Leaking"}]),
        finish(title=f"Add notes {webhook_secret}", task_summary=f"Done. {leak}",
               testing_performed=f"Printed {leak}"),
    )
    stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice"))
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error

    (pr,) = sim.pulls(REPO)
    assert REDACTED in pr["body"] and REDACTED in pr["title"]
    written = [json.dumps(r.json) for r in sim.requests if r.json and r.method != "GET"]
    written.append(stack.git("log", "-1", "--format=%B", pr["head"]["ref"]))
    written.append(stack.bot.log())
    assert any("/check-runs" in r.path for r in sim.requests)
    for text in written:
        assert webhook_secret not in text and model_key_b64 not in text and MODEL_KEY not in text
