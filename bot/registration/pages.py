"""The registration pages, as HTML."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse

from bot.registration.exchange import install_url
from bot.settings import Settings

APP_NAME_MAX = 34  # GitHub's limit on an App's name
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "[::1]"}

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
TOKEN_PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def page(
    title: str, body: str, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    content = _PAGE.format(title=html.escape(title), style=_STYLE, body=body)
    return HTMLResponse(content, status_code=status_code, headers=headers)


def _is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in _LOCAL_HOSTS or host.endswith(".localhost")


def _missing(settings: Settings) -> str:
    return ", ".join(f"<code>{html.escape(m)}</code>" for m in settings.missing_credentials())


def locked_body(settings: Settings, *, wrong_token: bool) -> str:
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


def register_body(
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
        f'<input type="text" id="name" name="name" maxlength="{APP_NAME_MAX}" '
        f'placeholder="{e(str(manifest.get("name", "")))}" value="{e(name)}"></div>'
        '<div><label for="org">Organization (empty: your account)</label>'
        f'<input type="text" id="org" name="org" value="{e(org)}"></div>'
        '<div><button class="secondary" type="submit">Update</button></div></form>'
    )
    return "\n".join(parts)


def created_body(info: dict[str, Any], env_file: Path) -> str:
    e = html.escape
    install = install_url(info)
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


def running_body(settings: Settings, info: dict[str, Any] | None) -> str:
    e = html.escape
    rows = [f"<tr><th>App id</th><td><code>{e(str(settings.app_id))}</code></td></tr>"]
    if info and info.get("name"):
        rows.append(f"<tr><th>App</th><td>{e(str(info['name']))}</td></tr>")
    rows.append(f"<tr><th>Webhook path</th><td><code>{e(settings.webhook_path)}</code></td></tr>")
    rows.append(f"<tr><th>GitHub</th><td><code>{e(settings.github_web_url)}</code></td></tr>")
    install = install_url(info) if info else ""
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
