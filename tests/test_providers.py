"""MODEL_PROVIDER: a labelled issue worked through Bedrock and through Vertex AI, end to end, by
the bot's own client construction against the scripted model on 127.0.0.1 (which answers each
provider's paths). And the model names each provider is sent, and that no cloud credential
reaches the agent's shell or the log."""

from __future__ import annotations

import json

import pytest

from bot.agent.sandbox import Sandbox
from bot.budgets import ledger
from bot.database import Database
from bot.github.git import git_env
from bot.providers import canonical_model, describe, make_client, provider_model_id
from bot.settings import load_settings
from tests.agent_fakes import GOOGLE_ACCESS_TOKEN, GOOGLE_TOKEN_PATH, FakeAnthropic, finish, http_error, tool_use
from tests.support.in_process import InProcessBot
from tests.support.stack import REPO, Stack, bot_settings

AWS_KEY_ID = "AKIAFAKEFAKEFAKE1234"
AWS_SECRET = "fake-aws-secret-access-key-0123456789abcdef"
GOOGLE_KEY_ID = "fake-google-key-id-0123456789abcdef"


def google_credentials(path, fake: FakeAnthropic):
    """A service account's key file whose token endpoint is the fake: Google's own library
    signs its assertion and trades it there for an access token, as it would at Google."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "acme-ml", "private_key_id": GOOGLE_KEY_ID,
        "private_key": pem, "client_email": "backend-bot@acme-ml.iam.gserviceaccount.com",
        "client_id": "1234567890", "token_uri": fake.base_url + GOOGLE_TOKEN_PATH,
    }))
    return path


def provider_overrides(provider: str, fake: FakeAnthropic, tmp_path) -> dict:
    if provider == "bedrock":
        return {"model_provider": "bedrock", "aws_region": "eu-west-3",
                "bedrock_base_url": fake.base_url}
    return {"model_provider": "vertex", "vertex_region": "europe-west1",
            "vertex_project_id": "acme-ml", "vertex_base_url": fake.base_url,
            "google_credentials_path": google_credentials(tmp_path / "adc.json", fake)}


@pytest.fixture(params=["bedrock", "vertex"])
def provider_stack(request, github_sim_server, people, tmp_path, capfd, monkeypatch):
    # The AWS keys come from the process's environment, as an operator's deployment gives them.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    sim, _ = github_sim_server
    with FakeAnthropic([]) as fake:
        overrides = bot_settings(sim, fake, tmp_path / "data", anthropic_api_key=None,
                                 anthropic_model="claude-sonnet-4-5",
                                 **provider_overrides(request.param, fake, tmp_path))
        bot = InProcessBot(overrides, tmp_path / "bot.log", transport=sim.transport(), console=capfd)
        try:
            health = bot.start()
            yield request.param, health, Stack(sim, fake, bot, tmp_path / "data")
        finally:
            bot.stop()


def test_an_issue_is_worked_through_each_provider(provider_stack):
    provider, health, stack = provider_stack
    assert health["status"] == "ok", health
    assert health["provider"] == provider  # no project or region to anyone who asks
    sim = stack.sim
    number = sim.add_issue(REPO, "Add hello.txt", "Please add hello.txt.", user="alice")
    stack.fake.add(
        http_error(529, retry_after=0),  # overloaded: the loop's own retry, as on Anthropic's API
        tool_use("Write", file_path="hello.txt", content="hello\n"),
        tool_use("Bash", command="env", description="What the shell sees"),
        finish(title="Add hello.txt"),
    )
    assert stack.deliver("issues", sim.event_issues_labeled(REPO, number, "backend", sender="alice")).status_code == 202
    (job,) = stack.wait_jobs(1)
    assert job.state == "succeeded", job.error

    fake = stack.fake
    assert len(fake.requests) == 4
    if provider == "bedrock":
        assert fake.paths == ["/model/anthropic.claude-sonnet-4-5-20250929-v1:0/invoke"] * 4
        for headers in fake.headers:
            auth = headers["Authorization"]
            assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/")
            assert "/eu-west-3/bedrock/aws4_request" in auth
    else:
        assert fake.paths == ["/projects/acme-ml/locations/europe-west1/publishers/anthropic/models/"
                              "claude-sonnet-4-5@20250929:rawPredict"] * 4
        assert fake.token_requests == 1  # refreshed once, then reused
        assert all(h["Authorization"] == f"Bearer {GOOGLE_ACCESS_TOKEN}" for h in fake.headers)
    for body in fake.requests:
        assert "model" not in body and body["anthropic_version"]
        # Prompt caching is the same on each: the tools', the system prompt's and the
        # conversation's breakpoints are all sent.
        assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
        assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
        assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}

    # Usage is counted as on Anthropic's API, under the model's own name.
    (spent,) = ledger(Database(stack.bot.settings.database_url)).by_repo_model()
    assert (spent.model, spent.runs, spent.input_tokens, spent.output_tokens) == ("claude-sonnet-4-5", 1, 300, 60)
    (pr,) = sim.pulls(REPO)
    assert "cost: $" in pr["body"]
    # The agent's shell saw none of the cloud's credentials, and neither did the log.
    shell = json.dumps(fake.tool_results(3))
    log = stack.bot.log()
    for secret in (AWS_KEY_ID, AWS_SECRET, GOOGLE_KEY_ID, GOOGLE_ACCESS_TOKEN):
        assert secret not in shell
        assert secret not in log
    assert "AWS_" not in shell and "GOOGLE_" not in shell


def test_model_names_per_provider():
    assert provider_model_id("anthropic", "claude-sonnet-4-5") == "claude-sonnet-4-5"
    assert provider_model_id("bedrock", "claude-sonnet-4-5") == "anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert provider_model_id("vertex", "claude-sonnet-4-5") == "claude-sonnet-4-5@20250929"
    assert provider_model_id("vertex", "claude-haiku-4-5-20251001") == "claude-haiku-4-5@20251001"
    # The provider's own ids pass through: inference profiles, ARNs, Vertex's dated names.
    for own in ("us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc"):
        assert provider_model_id("bedrock", own) == own
    assert provider_model_id("vertex", "claude-opus-4-5@20251101") == "claude-opus-4-5@20251101"
    # Every form comes back to the one name prices, budgets and metrics use.
    for form in ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "anthropic.claude-sonnet-4-5-20250929-v1:0",
                 "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5@20250929"):
        assert canonical_model(form) == "claude-sonnet-4-5"


def test_each_provider_needs_its_own_settings_not_the_anthropic_key(tmp_path):
    anthropic = load_settings(_env_file=None, app_id=1, anthropic_api_key=None)
    assert any("ANTHROPIC_API_KEY" in p for p in anthropic.work_problems())
    bedrock = load_settings(_env_file=None, model_provider="bedrock", aws_region="us-east-1")
    assert not any("ANTHROPIC_API_KEY" in p for p in bedrock.work_problems())
    assert describe(bedrock) == "bedrock (us-east-1)"
    vertex = load_settings(_env_file=None, model_provider="vertex", vertex_project_id="p")
    assert any("CLOUD_ML_REGION" in p for p in vertex.work_problems())
    missing = tmp_path / "adc.json"
    vertex = load_settings(_env_file=None, model_provider="vertex", vertex_region="us-east5",
                           google_credentials_path=missing)
    assert vertex.work_problems()[-1] == f"GOOGLE_APPLICATION_CREDENTIALS: there is no file at {missing}"
    # Another provider's bot does not read the file, so it need not exist.
    bedrock = load_settings(_env_file=None, model_provider="bedrock", google_credentials_path=missing)
    assert not [p for p in bedrock.work_problems() if "GOOGLE" in p]


def test_a_provider_missing_a_setting_says_which(monkeypatch):
    from bot.errors import UserFacingError

    for name in ("CLOUD_ML_REGION", "ANTHROPIC_VERTEX_PROJECT_ID", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(_env_file=None, model_provider="vertex")
    with pytest.raises(UserFacingError, match="CLOUD_ML_REGION"):
        make_client(settings)


def test_cloud_credentials_never_reach_a_subprocess(monkeypatch, tmp_path):
    names = {"AWS_ACCESS_KEY_ID": AWS_KEY_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
             "AWS_SESSION_TOKEN": "fake-session-token-0123456789", "AWS_BEARER_TOKEN_BEDROCK": "fake-bearer-0123456789",
             "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "adc.json"), "AWS_PROFILE": "prod",
             "ANTHROPIC_VERTEX_PROJECT_ID": "acme-ml"}
    for name, value in names.items():
        monkeypatch.setenv(name, value)
    sandbox_env = Sandbox(tmp_path, allow_unsandboxed=True).environment("/tmp/home")
    for env in (sandbox_env, git_env()):
        assert not [name for name in env if name.startswith(("AWS_", "GOOGLE_", "ANTHROPIC_"))]


def test_cloud_tokens_are_redacted_whatever_their_source():
    from bot.redact import redact

    text = f"Authorization failed for {AWS_KEY_ID} with token {GOOGLE_ACCESS_TOKEN}"
    assert AWS_KEY_ID not in redact(text) and GOOGLE_ACCESS_TOKEN not in redact(text)


def test_missing_cloud_credentials_are_said_before_any_request(monkeypatch, tmp_path):
    from bot.errors import UserFacingError

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_BEARER_TOKEN_BEDROCK", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    bedrock = load_settings(_env_file=None, model_provider="bedrock", aws_region="us-east-1")
    with pytest.raises(UserFacingError, match="MODEL_PROVIDER=bedrock: no AWS credentials were found"):
        make_client(bedrock)

    broken = tmp_path / "adc.json"
    broken.write_text('{"type": "nonsense"}')
    vertex = load_settings(_env_file=None, model_provider="vertex", vertex_region="us-east5",
                           google_credentials_path=broken)
    with pytest.raises(UserFacingError, match="MODEL_PROVIDER=vertex: no usable Google credentials"):
        make_client(vertex)
