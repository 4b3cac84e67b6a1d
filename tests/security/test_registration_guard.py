"""The App registration is locked behind the one-time token `serve` prints at start-up.

Whoever finishes GitHub's manifest flow on an unconfigured bot chooses the App whose private
key and webhook secret the bot saves as its own; without the token, `GET /` must not start it.
"""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from dotenv import dotenv_values
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.registration import new_setup_token, registration_routes, setup_url
from bot.settings import load_settings
from tests.simulator import GitHubSimulator, generate_private_key
from tests.support.processes import ROOT, BotProcess

APP_YML = ROOT / "app.yml"
NO_CREDENTIALS = dict(
    app_id=None, private_key=None, private_key_path=None, webhook_secret=None, public_url=None,
    ghe_host=None,
)
CONVERSIONS = r"/app-manifests/[^/]+/conversions"
TOKEN = new_setup_token()
# Whatever the calling shell holds, the bot under test starts with none of these.
INHERITED_SETTINGS = (
    "APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "WEBHOOK_SECRET", "BOT_PUBLIC_URL", "DATABASE_URL",
    "LOG_FORMAT",
)


@pytest.fixture
def sim(tmp_path):
    sim = GitHubSimulator(tmp_path / "github")
    sim.add_manifest_code("good-code", slug="my-backend-bot", owner="octocat")
    yield sim
    assert not sim.unmatched, sim.unmatched


def make_client(tmp_path, sim: GitHubSimulator, **overrides) -> TestClient:
    settings = load_settings(_env_file=None, data_dir=tmp_path / "data", **{**NO_CREDENTIALS, **overrides})
    routes = registration_routes(
        settings, env_path=tmp_path / ".env", manifest_path=APP_YML,
        transport=sim.transport(), setup_token=TOKEN,
    )
    return TestClient(Starlette(routes=routes))


def github_form(page: str) -> tuple[str, dict]:
    action = re.search(r'<form class="go" method="post" action="([^"]+)"', page)
    manifest = re.search(r'<input type="hidden" name="manifest" value="([^"]+)"', page)
    assert action and manifest, page
    return html.unescape(action.group(1)), json.loads(html.unescape(manifest.group(1)))


def state_of(action: str) -> str:
    return parse_qs(urlsplit(action).query)["state"][0]


def assert_offers_no_registration(page: str) -> None:
    assert "<form" not in page
    assert "settings/apps/new" not in page
    assert "state=" not in page
    assert "hook_attributes" not in html.unescape(page)
    assert TOKEN not in page


# ---- without the token ------------------------------------------------------------------


@pytest.mark.parametrize("params", [
    {},
    {"token": ""},
    {"token": "wrong"},
    {"token": TOKEN[:-1]},
    {"token": TOKEN + "x"},
    {"token": TOKEN.swapcase()},
    {"token": "é" * 43},  # not ASCII: compare_digest on str would raise
    {"org": "acme"},
    {"org": "acme", "name": "acme-backend"},
], ids=["none", "empty", "wrong", "prefix", "longer", "other-case", "non-ascii", "org", "org-name"])
def test_without_the_token_the_page_explains_and_offers_no_registration(tmp_path, sim, params):
    client = make_client(tmp_path, sim)

    response = client.get("/", params=params)

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert_offers_no_registration(page)
    assert "<title>backend-bot is not configured</title>" in page
    assert "<code>backend-bot serve</code> printed on its terminal" in page
    for variable in ("APP_ID", "PRIVATE_KEY", "PRIVATE_KEY_PATH", "WEBHOOK_SECRET", "ANTHROPIC_API_KEY"):
        assert f"<code>{variable}</code>" in page
    assert ("The token in this address is not valid" in page) == bool(params.get("token"))

    # no state was handed out, so GitHub's redirect back cannot be completed
    callback = client.get("/setup/callback", params={"code": "good-code", "state": "any-state"})
    assert callback.status_code == 400
    assert sim.requests_to("POST", CONVERSIONS) == []
    assert not (tmp_path / ".env").exists()


def test_a_routes_table_without_a_token_never_offers_registration(tmp_path, sim):
    settings = load_settings(_env_file=None, data_dir=tmp_path / "data", **NO_CREDENTIALS)
    routes = registration_routes(settings, env_path=tmp_path / ".env", manifest_path=APP_YML,
                                 transport=sim.transport())
    client = TestClient(Starlette(routes=routes))
    for params in ({}, {"token": ""}, {"token": "None"}):
        response = client.get("/", params=params)
        assert response.status_code == 403
        assert_offers_no_registration(response.text)


# ---- with the token ---------------------------------------------------------------------


def test_with_the_token_the_form_is_there_and_the_manifest_flow_works(tmp_path, sim):
    client = make_client(tmp_path, sim)

    response = client.get("/", params={"token": TOKEN})

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert '<meta name="referrer" content="no-referrer">' in response.text
    action, manifest = github_form(response.text)
    assert action.startswith("https://github.com/settings/apps/new?state=")
    assert len(state_of(action)) >= 20
    # the token goes nowhere near GitHub: not in the form's address, not in the manifest
    assert TOKEN not in action
    assert TOKEN not in json.dumps(manifest)
    assert manifest["redirect_url"] == "http://testserver/setup/callback"
    # the steps say what else the bot needs
    assert "Set <code>ANTHROPIC_API_KEY</code>" in response.text

    done = client.get("/setup/callback", params={"code": "good-code", "state": state_of(action)})

    assert done.status_code == 200
    assert len(sim.requests_to("POST", CONVERSIONS)) == 1
    (app,) = [a for a in sim.apps.values() if a.slug == "my-backend-bot"]
    env = dotenv_values(tmp_path / ".env")
    assert env["APP_ID"] == str(app.id) and env["WEBHOOK_SECRET"] == app.webhook_secret
    assert TOKEN not in (tmp_path / ".env").read_text()
    for path in (tmp_path / "data").rglob("*"):
        assert not path.is_file() or TOKEN.encode() not in path.read_bytes(), path


def test_the_options_form_carries_the_token_along(tmp_path, sim):
    client = make_client(tmp_path, sim)
    page = client.get("/", params={"token": TOKEN}).text

    options = re.search(r'<form class="options" method="get" action="/">(.*?)</form>', page, re.S)
    assert options, page
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', options.group(1))
    assert hidden == [("token", TOKEN)]

    # submitting it (as a browser would: every field) keeps the page unlocked
    updated = client.get("/", params={"token": TOKEN, "name": "acme-backend", "org": "acme"})
    assert updated.status_code == 200
    action, manifest = github_form(updated.text)
    assert action.startswith("https://github.com/organizations/acme/settings/apps/new?state=")
    assert manifest["name"] == "acme-backend"


def test_the_token_is_spent_by_a_registration(tmp_path, sim):
    client = make_client(tmp_path, sim)
    assert client.get("/").status_code == 403
    first, _ = github_form(client.get("/", params={"token": TOKEN}).text)
    second, _ = github_form(client.get("/", params={"token": TOKEN}).text)  # another tab
    assert client.get("/setup/callback", params={"code": "good-code", "state": state_of(first)}).status_code == 200

    again = client.get("/", params={"token": TOKEN})
    assert again.status_code == 200
    assert "<title>GitHub App created</title>" in again.text
    assert_offers_no_registration(again.text)
    # a state handed out before the registration no longer leads anywhere
    late = client.get("/setup/callback", params={"code": "good-code", "state": state_of(second)})
    assert late.status_code == 409
    assert len(sim.requests_to("POST", CONVERSIONS)) == 1


@pytest.mark.parametrize("params", [{}, {"token": TOKEN}, {"token": "wrong"}])
def test_a_configured_bot_offers_no_registration_with_or_without_the_token(tmp_path, sim, params):
    pem = generate_private_key()
    client = make_client(tmp_path, sim, app_id=99, private_key=pem, webhook_secret="x")

    response = client.get("/", params=params)

    assert response.status_code == 200
    assert "<title>backend-bot is running</title>" in response.text
    assert_offers_no_registration(response.text)
    callback = client.get("/setup/callback", params={"code": "good-code", "state": "x"})
    assert callback.status_code == 409
    assert sim.requests_to("POST", CONVERSIONS) == []


# ---- the token and its link -------------------------------------------------------------


def test_setup_tokens_are_long_random_and_url_safe():
    tokens = {new_setup_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 32 random bytes: 256 bits


@pytest.mark.parametrize(("host", "public_url", "expected"), [
    ("0.0.0.0", None, "http://localhost:3000/?token=T"),
    ("::", None, "http://localhost:3000/?token=T"),
    ("127.0.0.1", None, "http://127.0.0.1:3000/?token=T"),
    ("::1", None, "http://[::1]:3000/?token=T"),
    ("0.0.0.0", "https://bot.example.com/", "https://bot.example.com/?token=T"),
    ("0.0.0.0", "https://example.com/bot", "https://example.com/bot/?token=T"),
])
def test_setup_url(host, public_url, expected):
    settings = load_settings(_env_file=None, public_url=public_url)
    assert setup_url(settings, host, 3000, "T") == expected


# ---- a real `backend-bot serve` ---------------------------------------------------------


def wait_answering(bot: BotProcess, timeout: float = 60.0) -> None:
    """Wait until the server answers `GET /` at all (an unconfigured bot need not be healthy)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert bot.process.poll() is None, "the bot exited:\n" + bot.log()
        try:
            httpx.get(bot.url + "/", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the bot did not answer:\n" + bot.log())


def files_under(*folders: Path) -> list[Path]:
    return [path for folder in folders for path in folder.rglob("*") if path.is_file()]


def test_serve_prints_one_token_link_that_alone_unlocks_registration(tmp_path):
    sim = GitHubSimulator(tmp_path / "github")
    sim.add_manifest_code("good-code", slug="my-backend-bot", owner="octocat")
    # An empty working directory: no `.env` to read, and the one registration would write.
    cwd = tmp_path / "empty"
    cwd.mkdir()
    data = tmp_path / "data"
    with sim.serve() as github:
        proto, host = github.split("://", 1)
        bot = BotProcess(
            {"BOT_DATA_DIR": str(data), "PYTHONPATH": str(ROOT), "LOG_LEVEL": "debug",
             "GHE_HOST": host, "GHE_PROTOCOL": proto},
            tmp_path / "bot.log", module="bot", args=["serve"], cwd=cwd,
        )
        for name in INHERITED_SETTINGS:
            bot.env.pop(name, None)
        bot.launch()
        try:
            wait_answering(bot)
            links = re.findall(r"\S*\?token=\S*", bot.log())
            assert len(links) == 1, bot.log()
            assert links[0].startswith(f"http://127.0.0.1:{bot.port}/?token=")
            token = parse_qs(urlsplit(links[0]).query)["token"][0]
            assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
            assert "one-time link" in bot.log()

            locked = httpx.get(bot.url + "/")
            assert locked.status_code == 403
            assert "<form" not in locked.text and "settings/apps/new" not in locked.text
            wrong = httpx.get(bot.url + "/", params={"token": token[:-1]})
            assert wrong.status_code == 403 and "<form" not in wrong.text

            unlocked = httpx.get(links[0])
            assert unlocked.status_code == 200
            action, manifest = github_form(unlocked.text)
            assert action.startswith(f"{github}/settings/apps/new?state=")
            assert manifest["hook_attributes"]["url"] == f"{bot.url}/api/github/webhooks"

            done = httpx.get(bot.url + "/setup/callback",
                             params={"code": "good-code", "state": state_of(action)})
            assert done.status_code == 200, done.text
            spent = httpx.get(links[0])
            assert "<form" not in spent.text and "GitHub App created" in spent.text
        finally:
            bot.stop()

    assert not sim.unmatched, sim.unmatched
    (app,) = [a for a in sim.apps.values() if a.slug == "my-backend-bot"]
    assert dotenv_values(cwd / ".env")["APP_ID"] == str(app.id)
    # the token was printed once and kept nowhere: not in the log again, not on disk
    assert bot.log().count(token) == 1
    written = files_under(cwd, data)
    assert cwd / ".env" in written and any(path.parent == data for path in written)
    for path in written:
        assert token.encode() not in path.read_bytes(), path
