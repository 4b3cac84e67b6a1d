"""Registering the GitHub App from `app.yml` through GitHub's manifest flow.

    GET /?token=…         no credentials: a page whose button POSTs the manifest to GitHub
    GET /                 no credentials, no token: how to get the link, or register by hand
                          credentials set: "backend-bot is running", the App id, install link
    GET /setup/callback   GitHub sends the browser back with ?code&state; the code is
                          exchanged for the App's credentials, which go to `.env` (mode 600)

Whoever finishes the manifest flow chooses the App whose private key and webhook secret the
bot adopts, so the flow is locked behind a setup token: random, made by `serve` at start-up
and printed on its terminal only, kept in the process (a restart makes a new one), spent by a
successful registration. The `state` is a random value handed out only on the unlocked page
(single use, one hour), so the callback is as locked as the page. The page after the exchange
links to the App's installation page and never shows a secret; the process keeps running with
its old settings until it is restarted (or `on_registered` reloads them).
"""

from __future__ import annotations

import errno
import html
import inspect
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import yaml
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bot.logs import get_logger
from bot.settings import Settings

log = get_logger(__name__)

CALLBACK_PATH = "/setup/callback"
STATE_TTL_SECONDS = 3600
APP_INFO_FILE = "github-app.json"
SETUP_TOKEN_BYTES = 32  # 256 random bits

# Printed by `serve` at start-up while the App is not configured.
SETUP_NOTICE = (
    "backend-bot has no GitHub App yet. To register one, open this one-time link in a browser "
    "(valid until the bot restarts; keep it private, whoever opens it chooses the bot's App):\n"
    "  {url}"
)

# Written to `.env` from GitHub's answer: variable name -> key in the conversion's JSON.
ENV_KEYS: dict[str, str] = {
    "APP_ID": "id",
    "PRIVATE_KEY": "pem",
    "WEBHOOK_SECRET": "webhook_secret",
    "GITHUB_CLIENT_ID": "client_id",
    "GITHUB_CLIENT_SECRET": "client_secret",
}

_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
_APP_NAME_MAX = 34  # GitHub's limit on an App's name
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "[::1]"}

OnRegistered = Callable[[dict[str, Any]], Awaitable[None] | None]


class RegistrationError(Exception):
    """The manifest flow could not finish; the message is for the person registering."""


def find_app_manifest() -> Path:
    """`app.yml` in the working directory, else next to the source tree."""
    for candidate in (Path.cwd() / "app.yml", Path(__file__).resolve().parents[1] / "app.yml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("app.yml not found in the working directory or the source tree")


def load_app_manifest(path: Path | None = None) -> dict[str, Any]:
    """Read `app.yml` as a dict."""
    data = yaml.safe_load((path or find_app_manifest()).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("app.yml must be a mapping")
    return data


def build_manifest(
    template: dict[str, Any], base_url: str, webhook_path: str, *, name: str | None = None
) -> dict[str, Any]:
    """Fill `app.yml`'s addresses with this bot's public base URL."""
    base = base_url.rstrip("/")
    manifest = json.loads(json.dumps(template))  # a deep copy of plain data
    if name:
        manifest["name"] = name
    manifest["url"] = base + "/"
    hook = dict(manifest.get("hook_attributes") or {})
    hook["url"] = base + "/" + webhook_path.lstrip("/")
    hook.setdefault("active", True)
    manifest["hook_attributes"] = hook
    manifest["redirect_url"] = base + CALLBACK_PATH
    return manifest


def write_env(path: Path, values: dict[str, str]) -> None:
    """Set `values` in the dotenv file at `path`, keeping its other lines; the file ends mode 600.

    A symlink is followed (the container image links `/app/.env` to the data volume). The
    file is replaced atomically when its folder is writable, else rewritten in place.
    """
    path = Path(path).resolve()
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept: list[str] = []
    skipping_quote: str | None = None
    for line in lines:
        if skipping_quote is not None:
            # Inside a multi-line quoted value of a key being replaced.
            if _closes_quote(line, skipping_quote):
                skipping_quote = None
            continue
        match = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$", line)
        if match and match.group(1) in values:
            rest = match.group(2)
            if rest[:1] in ("'", '"') and not _closes_quote(rest[1:], rest[0]):
                skipping_quote = rest[0]
            continue
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    if kept:
        kept.append("")
    kept.append("# Written by backend-bot's App registration (GET /setup/callback).")
    kept.extend(f"{key}={_dotenv_value(value)}" for key, value in values.items())
    text = "\n".join(kept) + "\n"

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".env.", dir=path.parent)
    except PermissionError:
        if not path.exists():
            raise
        _write_in_place(path, text)
        return
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno not in (errno.EBUSY, errno.EXDEV, errno.EPERM):  # e.g. a bind-mounted file
            raise
        _write_in_place(path, text)
        return
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


def _write_in_place(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.truncate(0)
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _closes_quote(text: str, quote_char: str) -> bool:
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == quote_char:
            return True
    return False


def _dotenv_value(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.:/+=@-]*", value):
        return value
    # Double quotes: python-dotenv and Compose both turn \n back into a newline (and
    # Settings also accepts a literal \n in PRIVATE_KEY).
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class _States:
    """Random `state` values handed out by the registration page: single use, one hour."""

    def __init__(self, ttl: float = STATE_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._issued: dict[str, float] = {}

    def issue(self) -> str:
        now = time.monotonic()
        self._issued = {s: t for s, t in self._issued.items() if t > now}
        if len(self._issued) >= 1000:  # a crawler reloading the page: forget the oldest
            for old in sorted(self._issued, key=self._issued.__getitem__)[:500]:
                del self._issued[old]
        state = secrets.token_urlsafe(24)
        self._issued[state] = now + self.ttl
        return state

    def consume(self, state: str | None) -> bool:
        if not state:
            return False
        expires = self._issued.pop(state, None)
        return expires is not None and expires > time.monotonic()


def new_setup_token() -> str:
    """A fresh one-time token for the registration page."""
    return secrets.token_urlsafe(SETUP_TOKEN_BYTES)


def setup_url(settings: Settings, host: str, port: int, token: str) -> str:
    """The registration page's address with its token, as the operator can open it."""
    if settings.public_url:
        base = settings.public_url.rstrip("/")
    else:
        # A wildcard address is where the server listens, not one a browser can open.
        if host in ("0.0.0.0", "::", ""):
            host = "localhost"
        elif ":" in host:
            host = f"[{host}]"
        base = f"http://{host}:{port}"
    return f"{base}/?{urlencode({'token': token})}"


class _SetupToken:
    """The token that unlocks the registration page, until a registration spends it."""

    def __init__(self, value: str | None) -> None:
        self._value = value

    def admits(self, candidate: str | None) -> bool:
        if not self._value or not candidate:
            return False
        # Bytes, because compare_digest refuses non-ASCII str and a query can hold anything.
        return secrets.compare_digest(candidate.encode(), self._value.encode())

    def spend(self) -> None:
        self._value = None


async def exchange_code(
    settings: Settings, code: str, *, transport: httpx.AsyncBaseTransport | None = None
) -> dict[str, Any]:
    """Trade the manifest flow's code for the new App's details and credentials."""
    url = f"{settings.github_api_url}/app-manifests/{quote(code, safe='')}/conversions"
    headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "backend-bot",
    }
    try:
        async with httpx.AsyncClient(transport=transport, timeout=30) as client:
            response = await client.post(url, headers=headers)
    except httpx.HTTPError as exc:
        raise RegistrationError(
            f"Could not reach GitHub at {settings.github_api_url} ({type(exc).__name__})."
        ) from exc
    if response.status_code != 201:
        raise RegistrationError(
            f"GitHub did not accept the registration code (HTTP {response.status_code}). "
            "A code works once and for one hour; start again."
        )
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict) or any(not data.get(key) for key in ("id", "pem", "webhook_secret")):
        raise RegistrationError("GitHub's answer did not contain the App's credentials; start again.")
    return data


def registration_routes(
    settings: Settings,
    *,
    env_path: Path | None = None,
    manifest_path: Path | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    on_registered: OnRegistered | None = None,
    setup_token: str | None = None,
) -> list[Route]:
    """The routes of the manifest flow: `GET /` and `GET /setup/callback`.

    `env_path` is the dotenv file to write (default `.env` in the working directory, the one
    Settings reads); `transport` replaces httpx's network transport in tests; `on_registered`
    is called with GitHub's answer (credentials included) after `.env` is written;
    `setup_token` unlocks the registration page (without one, the page only explains how to
    register by hand).
    """
    env_file = Path(env_path) if env_path is not None else Path(".env")
    states = _States()
    token = _SetupToken(setup_token)
    registered: dict[str, Any] = {}

    def base_url(request: Request) -> str:
        if settings.public_url:
            return settings.public_url.rstrip("/")
        return str(request.base_url).rstrip("/")

    async def home(request: Request) -> HTMLResponse:
        if not settings.missing_credentials():
            return _page(
                "backend-bot is running",
                _running_body(settings, _read_app_info(settings)),
            )
        if registered:
            return _page("GitHub App created", _created_body(registered, env_file))
        given = request.query_params.get("token")
        if not token.admits(given):
            # 403 where Probot's setup page answers 200: people read the page in a browser all
            # the same, while an uptime check or a script probing `/` learns that registration
            # was refused here, not offered.
            return _page(
                "backend-bot is not configured",
                _locked_body(settings, wrong_token=bool(given)),
                status_code=403,
            )

        org = (request.query_params.get("org") or "").strip()
        name = (request.query_params.get("name") or "").strip()
        problems = []
        if org and not _LOGIN.match(org):
            problems.append(f"“{org}” is not a GitHub organization name.")
            org = ""
        if len(name) > _APP_NAME_MAX:
            problems.append(f"An App name has at most {_APP_NAME_MAX} characters.")
            name = ""
        try:
            template = load_app_manifest(manifest_path)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            log.error("Cannot offer the App registration: %s", exc)
            return _page(
                "app.yml is missing",
                "<p>The registration page builds the App from <code>app.yml</code>, which this "
                f"bot cannot read ({html.escape(str(exc))}). Run the bot from the folder that "
                "holds <code>app.yml</code>, or set <code>APP_ID</code>, <code>PRIVATE_KEY</code> "
                "and <code>WEBHOOK_SECRET</code> yourself.</p>",
                status_code=503,
            )
        manifest = build_manifest(template, base_url(request), settings.webhook_path, name=name)
        state = states.issue()
        if org:
            action = f"{settings.github_web_url}/organizations/{org}/settings/apps/new"
        else:
            action = f"{settings.github_web_url}/settings/apps/new"
        action += "?" + urlencode({"state": state})
        body = _register_body(settings, manifest, action, org, name, problems, given)
        return _page("Register backend-bot", body, headers=_TOKEN_PAGE_HEADERS)

    async def callback(request: Request) -> HTMLResponse:
        if registered or not settings.missing_credentials():
            return _page(
                "Already registered",
                "<p>This bot already has a GitHub App. To register another, remove "
                "<code>APP_ID</code>, <code>PRIVATE_KEY</code> and <code>WEBHOOK_SECRET</code> "
                "from its settings and restart it.</p>",
                status_code=409,
            )
        code = request.query_params.get("code")
        if not states.consume(request.query_params.get("state")):
            return _page(
                "Registration link expired",
                "<p>This address did not come from this bot's registration page, was already "
                "used, or is more than an hour old.</p>"
                '<p><a class="button" href="/">Start again</a></p>',
                status_code=400,
            )
        if not code:
            return _page(
                "No registration code",
                "<p>GitHub did not send a registration code back.</p>"
                '<p><a class="button" href="/">Start again</a></p>',
                status_code=400,
            )
        try:
            app = await exchange_code(settings, code, transport=transport)
        except RegistrationError as exc:
            log.warning("App registration failed: %s", exc)
            return _page(
                "Registration failed",
                f"<p>{html.escape(str(exc))}</p>"
                '<p><a class="button" href="/">Start again</a></p>',
                status_code=502,
            )
        values = {env: str(app[key]) for env, key in ENV_KEYS.items() if app.get(key) is not None}
        try:
            write_env(env_file, values)
        except OSError as exc:
            log.error("Could not write %s: %s", env_file, exc)
            return _page(
                "Could not save the credentials",
                f"<p>GitHub created the App, but writing <code>{html.escape(str(env_file))}</code> "
                f"failed: {html.escape(exc.strerror or type(exc).__name__)}. Delete the App on "
                "GitHub, fix the file's permissions and start again.</p>",
                status_code=500,
            )
        token.spend()
        info = _public_info(app, settings)
        registered.update(info)
        _write_app_info(settings, info)
        log.info("GitHub App %s (id %s) registered; credentials written to %s", info["slug"], info["id"], env_file)
        if on_registered is not None:
            result = on_registered(app)
            if inspect.isawaitable(result):
                await result
        return _page(
            "GitHub App created",
            _created_body(info, env_file),
            headers={"Cache-Control": "no-store"},
        )

    return [
        Route("/", home, methods=["GET"], name="registration"),
        Route(CALLBACK_PATH, callback, methods=["GET"], name="registration_callback"),
    ]


def _public_info(app: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """What may be shown and kept in the clear about a new App (no secrets)."""
    slug = str(app.get("slug") or "")
    html_url = str(app.get("html_url") or (f"{settings.github_web_url}/apps/{slug}" if slug else ""))
    owner = app.get("owner") or {}
    return {
        "id": app.get("id"),
        "slug": slug,
        "name": str(app.get("name") or slug),
        "html_url": html_url,
        "owner": str(owner.get("login") or "") if isinstance(owner, dict) else "",
    }


def _write_app_info(settings: Settings, info: dict[str, Any]) -> None:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        (settings.data_dir / APP_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    except OSError as exc:  # only the "running" page's install link depends on it
        log.warning("Could not record the App's details in %s: %s", settings.data_dir, exc)


def _read_app_info(settings: Settings) -> dict[str, Any] | None:
    try:
        info = json.loads((settings.data_dir / APP_INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or str(info.get("id")) != str(settings.app_id):
        return None
    return info


# ---- pages -------------------------------------------------------------------------------

_STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f8fa; color: #1f2328;
  font: 16px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; }
main { max-width: 760px; margin: 48px auto; padding: 0 20px; }
.card { background: #fff; border: 1px solid #d1d9e0; border-radius: 12px; padding: 32px 36px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
.lead { color: #59636e; margin: 0 0 20px; }
ol { padding-left: 22px; margin: 8px 0; } li { margin: 4px 0; }
code { font: 13.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: #eff2f5; padding: 2px 6px; border-radius: 6px; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 4px 0; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid #e6eaef; vertical-align: top; }
th { width: 24%; color: #59636e; font-weight: 600; }
.button, button { display: inline-block; background: #1f883d; color: #fff; border: 1px solid #1a7f37;
  border-radius: 8px; padding: 10px 22px; font-family: inherit; font-size: 16px; font-weight: 600;
  line-height: 1.4; cursor: pointer; text-decoration: none; }
.button:hover, button:hover { background: #1a7f37; }
button.secondary { background: #f6f8fa; color: #1f2328; border-color: #d1d9e0; font-size: 14px; padding: 6px 14px; }
.options { display: flex; gap: 12px; align-items: flex-end; flex-wrap: wrap; margin: 8px 0 0; }
label { font-size: 14px; font-weight: 600; display: block; }
td code { white-space: nowrap; line-height: 2; }
input[type=text] { display: block; margin-top: 4px; padding: 6px 10px; font-family: inherit; font-size: 14px;
  border: 1px solid #d1d9e0; border-radius: 6px; width: 210px; }
.note { background: #ddf4ff; border: 1px solid #b6e3ff; border-radius: 8px; padding: 12px 16px; margin: 16px 0; }
.warn { background: #fff8c5; border: 1px solid #eed888; border-radius: 8px; padding: 12px 16px; margin: 16px 0; }
.go { margin: 24px 0 4px; }
footer { color: #59636e; font-size: 13px; margin-top: 16px; text-align: center; }
@media (max-width: 600px) {
  main { margin: 16px auto; padding: 0 10px; }
  .card { padding: 20px 18px; }
  th, td { display: block; width: auto; padding: 2px 0; }
  th { border-bottom: 0; padding-top: 10px; }
  td code { white-space: normal; }
}
"""

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<main>
<div class="card">
<h1>{title}</h1>
{body}
</div>
<footer>backend-bot · a self-hosted GitHub App</footer>
</main>
</body>
</html>
"""


# A page holding the setup token: no copy in any cache, and (with the page's own meta tag, for
# older browsers) no Referer carrying the address to GitHub when the form is posted there.
_TOKEN_PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _page(
    title: str, body: str, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    content = _PAGE.format(title=html.escape(title), style=_STYLE, body=body)
    return HTMLResponse(content, status_code=status_code, headers=headers)


def _is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in _LOCAL_HOSTS or host.endswith(".localhost")


def _missing(settings: Settings) -> str:
    return ", ".join(f"<code>{html.escape(m)}</code>" for m in settings.missing_credentials())


def _locked_body(settings: Settings, *, wrong_token: bool) -> str:
    e = html.escape
    base = settings.public_url.rstrip("/") if settings.public_url else "https://<the bot>"
    hook_url = base + "/" + settings.webhook_path.lstrip("/")
    parts = [f'<p class="lead">This bot has no GitHub App yet (missing {_missing(settings)}).</p>']
    if wrong_token:
        parts.append(
            '<div class="warn">The token in this address is not valid: it was used for a '
            "registration already, or the bot has restarted since it printed it (each start "
            "prints a new one).</div>"
        )
    parts.append(
        "<h2>Register the App from app.yml</h2>"
        "<p>Open the one-time registration link that <code>backend-bot serve</code> printed on "
        "its terminal when it started (in a container: <code>docker logs</code>). The link "
        "carries a token because the App created through this page becomes the bot's own: its "
        "private key and webhook secret are saved to the bot's settings, so only whoever runs "
        "the bot may choose it.</p>"
        "<h2>Or register by hand</h2>"
        "<ol>"
        "<li>Create a GitHub App with the events and permissions of <code>app.yml</code>, "
        f"webhook URL <code>{e(hook_url)}</code>.</li>"
        "<li>Set <code>APP_ID</code>, <code>PRIVATE_KEY</code> (or <code>PRIVATE_KEY_PATH</code>) "
        "and <code>WEBHOOK_SECRET</code> from the App, and <code>ANTHROPIC_API_KEY</code> for "
        "the model, in the environment or <code>.env</code>.</li>"
        "<li>Install the App on the repositories it should work on, and restart the bot.</li>"
        "</ol>"
    )
    return "\n".join(parts)


def _register_body(
    settings: Settings,
    manifest: dict[str, Any],
    action: str,
    org: str,
    name: str,
    problems: list[str],
    token: str,
) -> str:
    e = html.escape
    hook_url = manifest["hook_attributes"]["url"]
    events = ", ".join(f"<code>{e(str(ev))}</code>" for ev in manifest.get("default_events", []))
    permissions = ", ".join(
        f"<code>{e(str(k))}: {e(str(v))}</code>"
        for k, v in (manifest.get("default_permissions") or {}).items()
    )
    owner = f"the organization <b>{e(org)}</b>" if org else "your personal account"
    parts = [
        f'<p class="lead">This bot has no GitHub App yet (missing {_missing(settings)}). '
        "Create one from <code>app.yml</code> in two clicks.</p>",
    ]
    for problem in problems:
        parts.append(f'<div class="warn">{e(problem)}</div>')
    if _is_local(hook_url):
        parts.append(
            '<div class="warn"><b>GitHub cannot reach this address.</b> Webhooks would go to '
            f"<code>{e(hook_url)}</code>. Set <code>BOT_PUBLIC_URL</code> to the address GitHub "
            "can reach (your domain, or a tunnel to this machine), restart, and open this page "
            "again. You can also fix the webhook URL in the App's settings later.</div>"
        )
    parts.append(
        "<ol>"
        "<li>Press the button: GitHub shows the new App with the settings below. Confirm it there.</li>"
        "<li>GitHub sends you back here; the bot saves the App's credentials to "
        "<code>.env</code>.</li>"
        "<li>Set <code>ANTHROPIC_API_KEY</code> (the model's key) in <code>.env</code> or the "
        "environment, install the App on the repositories it should work on, and restart the "
        "bot.</li>"
        "</ol>"
    )
    parts.append(
        "<h2>The App</h2><table>"
        f"<tr><th>Name</th><td><code>{e(str(manifest.get('name', '')))}</code></td></tr>"
        f"<tr><th>Owner</th><td>{owner}</td></tr>"
        f"<tr><th>Webhook URL</th><td><code>{e(hook_url)}</code></td></tr>"
        f"<tr><th>Events</th><td>{events}</td></tr>"
        f"<tr><th>Permissions</th><td>{permissions}</td></tr>"
        f"<tr><th>GitHub</th><td><code>{e(settings.github_web_url)}</code></td></tr>"
        "</table>"
    )
    parts.append(
        f'<form class="go" method="post" action="{e(action)}">'
        f'<input type="hidden" name="manifest" value="{e(json.dumps(manifest))}">'
        "<button type=\"submit\">Create the GitHub App on GitHub</button></form>"
    )
    parts.append(
        '<h2>Options</h2><form class="options" method="get" action="/">'
        f'<input type="hidden" name="token" value="{e(token)}">'
        f'<div><label for="name">App name (unique on GitHub)</label>'
        f'<input type="text" id="name" name="name" maxlength="{_APP_NAME_MAX}" '
        f'placeholder="{e(str(manifest.get("name", "")))}" value="{e(name)}"></div>'
        '<div><label for="org">Organization (empty: your account)</label>'
        f'<input type="text" id="org" name="org" value="{e(org)}"></div>'
        '<div><button class="secondary" type="submit">Update</button></div></form>'
    )
    return "\n".join(parts)


def _install_url(info: dict[str, Any]) -> str:
    return info["html_url"].rstrip("/") + "/installations/new" if info.get("html_url") else ""


def _created_body(info: dict[str, Any], env_file: Path) -> str:
    e = html.escape
    install = _install_url(info)
    link = (
        f'<p class="go"><a class="button" href="{e(install)}">Install {e(info.get("name") or "the App")} '
        "on your repositories</a></p>"
        if install
        else ""
    )
    return (
        f'<p class="lead">GitHub created the App <b>{e(str(info.get("name") or ""))}</b> '
        f"(id {e(str(info.get('id')))}). Its id, private key and webhook secret are saved in "
        f"<code>{e(str(env_file))}</code> (readable only by this user).</p>"
        f"{link}"
        '<div class="note"><b>Restart the bot</b> so that it starts with the new credentials; '
        "until then it answers webhooks with 503.</div>"
    )


def _running_body(settings: Settings, info: dict[str, Any] | None) -> str:
    e = html.escape
    rows = [f"<tr><th>App id</th><td><code>{e(str(settings.app_id))}</code></td></tr>"]
    if info and info.get("name"):
        rows.append(f"<tr><th>App</th><td>{e(str(info['name']))}</td></tr>")
    rows.append(f"<tr><th>Webhook path</th><td><code>{e(settings.webhook_path)}</code></td></tr>")
    rows.append(f"<tr><th>GitHub</th><td><code>{e(settings.github_web_url)}</code></td></tr>")
    install = _install_url(info) if info else ""
    if install:
        link = f'<p class="go"><a class="button" href="{e(install)}">Install the App on more repositories</a></p>'
    else:
        apps = f"{settings.github_web_url}/settings/apps"
        link = (
            f'<p>Install it from the App\'s page on GitHub (<a href="{e(apps)}">your GitHub Apps</a>, '
            "or the organization's Settings › GitHub Apps).</p>"
        )
    return (
        '<p class="lead">Label an issue, or comment <code>/backend …</code> on a pull request, '
        "in a repository where the App is installed.</p>"
        f"<table>{''.join(rows)}</table>{link}"
        '<p><a href="/healthz">Health</a> · <a href="/metrics">Metrics</a></p>'
    )
