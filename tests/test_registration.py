"""The App manifest flow end to end: the page, GitHub's redirect back, `.env` written."""

from __future__ import annotations

import html
import json
import re
import stat
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from dotenv import dotenv_values
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.registration import registration_routes, write_env
from bot.settings import load_settings
from tests.simulator import GitHubSimulator, generate_private_key

APP_YML = Path(__file__).resolve().parents[1] / "app.yml"
NO_CREDENTIALS = dict(
    app_id=None, private_key=None, private_key_path=None, webhook_secret=None, public_url=None,
    ghe_host=None,
)
CONVERSIONS = r"/app-manifests/[^/]+/conversions"
TOKEN = "the-setup-token-serve-printed"


@pytest.fixture
def sim(tmp_path):
    """The GitHub simulator, with one manifest code ready to be exchanged."""
    sim = GitHubSimulator(tmp_path / "github")
    sim.add_manifest_code("good-code", slug="my-backend-bot", owner="octocat")
    yield sim
    assert not sim.unmatched, sim.unmatched


def new_app(sim: GitHubSimulator):
    (app,) = [a for a in sim.apps.values() if a.slug == "my-backend-bot"]
    return app


class Recording(httpx.AsyncBaseTransport):
    """The simulator's transport, keeping each request as sent (full URL and headers)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return await self.inner.handle_async_request(request)


def make_client(tmp_path, sim: GitHubSimulator, **overrides):
    settings = load_settings(_env_file=None, data_dir=tmp_path / "data", **{**NO_CREDENTIALS, **overrides})
    registered = []
    transport = Recording(sim.transport())
    routes = registration_routes(
        settings,
        env_path=tmp_path / ".env",
        manifest_path=APP_YML,
        transport=transport,
        on_registered=registered.append,
        setup_token=TOKEN,
    )
    client = TestClient(Starlette(routes=routes))
    client.registered = registered  # type: ignore[attr-defined]
    client.sent = transport.sent  # type: ignore[attr-defined]
    return client


def open_page(client: TestClient, headers: dict | None = None, **params: str) -> httpx.Response:
    """`GET /` as the operator opens it: with the setup token `serve` printed."""
    return client.get("/", params={"token": TOKEN, **params}, headers=headers)


def form_of(page: str) -> tuple[str, dict]:
    action = re.search(r'<form class="go" method="post" action="([^"]+)"', page)
    manifest = re.search(r'<input type="hidden" name="manifest" value="([^"]+)"', page)
    assert action and manifest, page
    return html.unescape(action.group(1)), json.loads(html.unescape(manifest.group(1)))


def state_of(action: str) -> str:
    return parse_qs(urlsplit(action).query)["state"][0]


# ---- the registration page --------------------------------------------------------------


def test_page_has_a_form_posting_the_manifest_from_app_yml(tmp_path, sim):
    client = make_client(tmp_path, sim)
    response = open_page(client)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    action, manifest = form_of(response.text)

    assert action.startswith("https://github.com/settings/apps/new?state=")
    assert len(state_of(action)) >= 20
    app_yml = yaml.safe_load(APP_YML.read_text())
    assert manifest["default_events"] == app_yml["default_events"]
    assert manifest["default_permissions"] == app_yml["default_permissions"]
    assert manifest["name"] == app_yml["name"]
    # addresses come from the request, not app.yml's placeholders
    assert manifest["hook_attributes"] == {"url": "http://testserver/api/github/webhooks", "active": True}
    assert manifest["redirect_url"] == "http://testserver/setup/callback"
    assert manifest["url"] == "http://testserver/"
    # no external assets
    assert not re.search(r'<(link|script|img)\b', response.text)


def test_each_visit_gets_its_own_state(tmp_path, sim):
    client = make_client(tmp_path, sim)
    first, _ = form_of(open_page(client).text)
    second, _ = form_of(open_page(client).text)
    assert state_of(first) != state_of(second)


def test_org_and_name_options(tmp_path, sim):
    client = make_client(tmp_path, sim)
    action, manifest = form_of(open_page(client, org="acme-inc", name="acme-backend").text)
    assert action.startswith("https://github.com/organizations/acme-inc/settings/apps/new?state=")
    assert manifest["name"] == "acme-backend"


def test_a_bad_org_name_is_refused_in_words_not_put_in_the_url(tmp_path, sim):
    client = make_client(tmp_path, sim)
    response = open_page(client, org="../evil?x=1")
    action, _ = form_of(response.text)
    assert action.startswith("https://github.com/settings/apps/new?state=")
    assert "is not a GitHub organization name" in response.text


def test_public_url_and_webhook_path_shape_the_webhook_url(tmp_path, sim):
    client = make_client(
        tmp_path, sim, public_url="https://bot.example.com/", webhook_path="/hooks"
    )
    response = open_page(client)
    _, manifest = form_of(response.text)
    assert manifest["hook_attributes"]["url"] == "https://bot.example.com/hooks"
    assert manifest["redirect_url"] == "https://bot.example.com/setup/callback"
    assert "GitHub cannot reach this address" not in response.text


def test_a_local_address_gets_a_warning(tmp_path, sim):
    client = make_client(tmp_path, sim)
    response = open_page(client, headers={"host": "127.0.0.1:3000"})
    _, manifest = form_of(response.text)
    assert manifest["hook_attributes"]["url"] == "http://127.0.0.1:3000/api/github/webhooks"
    assert "GitHub cannot reach this address" in response.text
    assert "BOT_PUBLIC_URL" in response.text


def test_github_enterprise_addresses(tmp_path):
    sim = GitHubSimulator(tmp_path / "ghe", web_url="https://ghe.example.com")
    sim.add_manifest_code("good-code", slug="my-backend-bot")
    client = make_client(tmp_path, sim, ghe_host="ghe.example.com")
    action, _ = form_of(open_page(client).text)
    assert action.startswith("https://ghe.example.com/settings/apps/new?state=")
    response = client.get("/setup/callback", params={"code": "good-code", "state": state_of(action)})
    assert response.status_code == 200
    assert [str(r.url) for r in client.sent] == [
        "https://ghe.example.com/api/v3/app-manifests/good-code/conversions"
    ]
    assert "https://ghe.example.com/apps/my-backend-bot/installations/new" in response.text


# ---- GitHub's redirect back -------------------------------------------------------------


@pytest.mark.parametrize("state", [None, "", "made-up-state"])
def test_callback_with_a_bad_state_is_refused(tmp_path, sim, state):
    client = make_client(tmp_path, sim)
    open_page(client)  # a real state exists, but is not the one sent
    params = {"code": "good-code"} | ({"state": state} if state is not None else {})
    response = client.get("/setup/callback", params=params)
    assert response.status_code == 400
    assert "Start again" in response.text
    assert sim.requests_to("POST", CONVERSIONS) == []
    assert not (tmp_path / ".env").exists()


def test_callback_writes_env_and_links_to_the_installation(tmp_path, sim):
    client = make_client(tmp_path, sim)
    env = tmp_path / ".env"
    env.write_text(
        "# mine\nANTHROPIC_API_KEY=sk-ant-keep-me\nAPP_ID=1\n"
        'PRIVATE_KEY="-----BEGIN OLD-----\nold\n-----END OLD-----"\nLOG_LEVEL=debug\n'
    )
    env.chmod(0o644)
    action, _ = form_of(open_page(client).text)

    response = client.get("/setup/callback", params={"code": "good-code", "state": state_of(action)})

    assert response.status_code == 200
    assert len(sim.requests_to("POST", CONVERSIONS)) == 1
    assert client.sent[0].headers["accept"] == "application/vnd.github+json"
    app = new_app(sim)
    # the page: an install link, a restart note, and no secret
    assert 'href="https://github.com/apps/my-backend-bot/installations/new"' in response.text
    assert "Restart the bot" in response.text
    for secret in (app.private_key_pem.splitlines()[1], app.webhook_secret, app.client_secret):
        assert secret not in response.text
    assert response.headers["cache-control"] == "no-store"

    # the file: mode 600, the old lines kept, the old credentials replaced
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    text = env.read_text()
    assert "# mine\nANTHROPIC_API_KEY=sk-ant-keep-me\n" in text and "LOG_LEVEL=debug" in text
    # the old key's armour lines: "OLD" alone turns up in a fresh base64 key about once in 100 runs
    assert "BEGIN OLD" not in text and "END OLD" not in text and "\nold\n" not in text
    assert "APP_ID=1\n" not in text
    assert text.count("APP_ID=") == 1 and text.count("PRIVATE_KEY=") == 1
    assert f"GITHUB_CLIENT_ID={app.client_id}\n" in text
    assert "GITHUB_CLIENT_SECRET=" in text

    # and the bot's own settings read it back exactly
    settings = load_settings(_env_file=env, data_dir=tmp_path / "data")
    assert settings.app_id == app.id
    assert settings.private_key_pem() == app.private_key_pem
    assert settings.webhook_secret.get_secret_value() == app.webhook_secret
    assert settings.missing_credentials() == []
    assert settings.anthropic_api_key.get_secret_value() == "sk-ant-keep-me"

    assert client.registered[0]["id"] == app.id  # the on_registered hook saw GitHub's answer

    # after registering, the page no longer offers a second App, and the state is spent
    home = client.get("/")
    assert "GitHub App created" in home.text and "manifest" not in home.text
    again = client.get("/setup/callback", params={"code": "good-code", "state": state_of(action)})
    assert again.status_code == 409
    assert len(sim.requests_to("POST", CONVERSIONS)) == 1


@pytest.mark.parametrize("key", [None, "sk-ant-already-set"])
def test_the_created_page_asks_for_the_model_key_only_if_the_bot_has_none(tmp_path, sim, key):
    client = make_client(tmp_path, sim, anthropic_api_key=key)
    state = state_of(form_of(open_page(client).text)[0])
    done = client.get("/setup/callback", params={"code": "good-code", "state": state})
    for page in (done.text, client.get("/").text):  # `GET /` shows the same until the restart
        steps = Parsed(page).text
        assert ("Set ANTHROPIC_API_KEY (the model's key) in" in steps) is (key is None)
        assert "Install the App on the repositories" in steps and "Restart the bot" in steps
        assert "sk-ant" not in page


def test_a_state_is_spent_even_when_github_refuses_the_code(tmp_path, sim):
    client = make_client(tmp_path, sim)
    state = state_of(form_of(open_page(client).text)[0])

    refused = client.get("/setup/callback", params={"code": "stale-code", "state": state})
    assert refused.status_code == 502
    assert "HTTP 404" in refused.text and "Start again" in refused.text
    assert not (tmp_path / ".env").exists()

    replay = client.get("/setup/callback", params={"code": "good-code", "state": state})
    assert replay.status_code == 400
    assert len(sim.requests_to("POST", CONVERSIONS)) == 1


def test_callback_without_a_code(tmp_path, sim):
    client = make_client(tmp_path, sim)
    state = state_of(form_of(open_page(client).text)[0])
    response = client.get("/setup/callback", params={"state": state})
    assert response.status_code == 400
    assert sim.requests_to("POST", CONVERSIONS) == []


def test_github_unreachable_is_a_page_not_a_crash(tmp_path, sim):
    sim.drop_next(path="/app-manifests/")
    client = make_client(tmp_path, sim)
    state = state_of(form_of(open_page(client).text)[0])
    response = client.get("/setup/callback", params={"code": "good-code", "state": state})
    assert response.status_code == 502
    assert "Could not reach GitHub" in response.text
    assert not (tmp_path / ".env").exists()


def test_credentials_that_cannot_be_saved_are_a_500_page_that_says_so(tmp_path, sim):
    client = make_client(tmp_path, sim)
    (tmp_path / ".env").mkdir()  # not a file: writing it fails
    state = state_of(form_of(open_page(client).text)[0])
    response = client.get("/setup/callback", params={"code": "good-code", "state": state})
    assert response.status_code == 500
    assert "<title>Could not save the credentials</title>" in response.text
    assert f"writing {tmp_path / '.env'} failed: Is a directory" in Parsed(response.text).text
    assert client.registered == []
    # nothing was saved, so the token still opens the page for another try
    assert open_page(client).status_code == 200


# ---- a configured bot -------------------------------------------------------------------


def test_with_credentials_the_page_says_running_with_the_app_id(tmp_path, sim):
    pem = generate_private_key()
    client = make_client(tmp_path, sim, app_id=99, private_key=pem, webhook_secret="x")
    response = client.get("/")
    assert response.status_code == 200
    assert "backend-bot is running" in response.text
    assert "<code>99</code>" in response.text
    assert "manifest" not in response.text
    assert "/settings/apps" in response.text  # no recorded App page: where to find it
    assert pem.splitlines()[1] not in response.text
    # a configured bot does not take another registration
    assert client.get("/setup/callback", params={"code": "good-code", "state": "x"}).status_code == 409
    assert sim.requests_to("POST", CONVERSIONS) == []


def test_running_page_links_to_the_install_page_recorded_at_registration(tmp_path, sim):
    client = make_client(tmp_path, sim)
    state = state_of(form_of(open_page(client).text)[0])
    client.get("/setup/callback", params={"code": "good-code", "state": state})
    recorded = json.loads((tmp_path / "data" / "github-app.json").read_text())
    assert recorded["id"] == new_app(sim).id and "pem" not in recorded and "webhook_secret" not in recorded

    restarted = make_client(tmp_path, sim, **load_settings(_env_file=tmp_path / ".env").model_dump(
        include={"app_id", "private_key", "webhook_secret"}
    ))
    response = restarted.get("/")
    assert "backend-bot is running" in response.text
    assert 'href="https://github.com/apps/my-backend-bot/installations/new"' in response.text


# ---- hostile values ---------------------------------------------------------------------

HOSTILE = '<script>alert(1)</script>"x'  # short enough to be a valid App name


class Parsed(HTMLParser):
    """A page as a browser reads it: its tags with their attributes, and its text."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text = ""
        self.feed(page)
        self.close()
        self.text = " ".join(self.text.split())  # as a browser shows it: runs of white space are one

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data

    def attrs(self, tag: str, **match: str) -> dict:
        (found,) = [a for t, a in self.tags if t == tag and match.items() <= a.items()]
        return found


def test_query_values_and_githubs_answer_come_out_escaped(tmp_path):
    sim = GitHubSimulator(tmp_path / "github")
    sim.add_manifest_code("good-code", slug="my-backend-bot", name=HOSTILE, owner="octocat")
    client = make_client(tmp_path, sim)

    response = open_page(client, name=HOSTILE, org=HOSTILE)
    assert response.status_code == 200
    page = Parsed(response.text)
    assert "script" not in [tag for tag, _ in page.tags]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    # the org is refused in words, the name kept: both as text, neither as markup
    assert f"\u201c{HOSTILE}\u201d is not a GitHub organization name." in page.text
    assert page.attrs("input", id="name")["value"] == HOSTILE
    assert page.attrs("input", id="org")["value"] == ""
    assert page.attrs("input", type="hidden", name="token")["value"] == TOKEN
    action, manifest = form_of(response.text)
    assert manifest["name"] == HOSTILE
    assert action.startswith("https://github.com/settings/apps/new?state=")

    # the App name GitHub answers with, on the page after the exchange and on the running page
    done = client.get("/setup/callback", params={"code": "good-code", "state": state_of(action)})
    assert done.status_code == 200
    created = Parsed(done.text)
    assert "script" not in [tag for tag, _ in created.tags]
    assert f"GitHub created the App {HOSTILE} (id {new_app(sim).id})" in created.text
    assert f"Install {HOSTILE} on your repositories" in created.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in done.text

    restarted = make_client(tmp_path, sim, **load_settings(_env_file=tmp_path / ".env").model_dump(
        include={"app_id", "private_key", "webhook_secret"}
    ))
    running = restarted.get("/")
    assert "backend-bot is running" in running.text
    shown = Parsed(running.text)
    assert "script" not in [tag for tag, _ in shown.tags]
    assert HOSTILE in shown.text


# ---- the dotenv writer ------------------------------------------------------------------


def test_write_env_creates_a_private_file_and_quotes_what_needs_it(tmp_path):
    env = tmp_path / "sub" / ".env"
    write_env(env, {"A": "plain-value", "B": 'has "quotes" and \\ and\nnewline'})
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert dotenv_values(env) == {"A": "plain-value", "B": 'has "quotes" and \\ and\nnewline'}
    write_env(env, {"A": "new"})
    assert dotenv_values(env) == {
        "A": "new", "B": 'has "quotes" and \\ and\nnewline'
    }
    assert list(env.parent.iterdir()) == [env]  # no temporary files left behind


def test_write_env_follows_a_symlink_into_the_data_folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / ".env").write_text("KEEP=1\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / ".env").symlink_to(data / ".env")
    write_env(app / ".env", {"APP_ID": "7"})
    assert (app / ".env").is_symlink()
    assert dotenv_values(data / ".env") == {"KEEP": "1", "APP_ID": "7"}
    assert stat.S_IMODE((data / ".env").stat().st_mode) == 0o600


def test_write_env_rewrites_in_place_when_its_folder_is_read_only(tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text("KEEP=1\n")
    env.chmod(0o644)

    def no_new_files(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("bot.registration.env_file.tempfile.mkstemp", no_new_files)
    write_env(env, {"APP_ID": "7"})
    assert dotenv_values(env) == {"KEEP": "1", "APP_ID": "7"}
    assert stat.S_IMODE(env.stat().st_mode) == 0o600


def test_a_missing_app_yml_is_a_plain_503_page(tmp_path, sim):
    settings = load_settings(_env_file=None, data_dir=tmp_path / "data", **NO_CREDENTIALS)
    routes = registration_routes(settings, env_path=tmp_path / ".env", manifest_path=tmp_path / "app.yml",
                                 setup_token=TOKEN)
    response = open_page(TestClient(Starlette(routes=routes)))
    assert response.status_code == 503
    assert "app.yml" in response.text and "APP_ID" in response.text
