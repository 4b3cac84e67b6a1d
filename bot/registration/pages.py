"""The registration pages: what each one shows, rendered from `templates/`.

`base.html` is the layout (the card, the styles); each page is one template, the errors under
`templates/errors/`. Every value reaches a template as plain data and leaves it escaped by
Jinja: none of these functions builds HTML.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from bot.registration.exchange import install_url
from bot.settings import Settings

TEMPLATES_DIR = Path(__file__).parent / "templates"
APP_NAME_MAX = 34  # GitHub's limit on an App's name
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "[::1]"}

# Autoescape every template whatever its file name (Starlette's default environment escapes
# only .html, .htm and .xml): the values these pages show come from the query string and from
# GitHub. StrictUndefined makes a variable a page forgot to pass an error in the tests, not an
# empty spot on the page.
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)

# A page holding the setup token: no copy in any cache, and (with the page's own meta tag, for
# older browsers) no Referer carrying the address to GitHub when the form is posted there.
TOKEN_PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The template `name`, filled with `context`."""
    return templates.TemplateResponse(
        request, name, dict(context or {}), status_code=status_code, headers=headers
    )


def register_page(
    request: Request,
    settings: Settings,
    manifest: dict[str, Any],
    *,
    action: str,
    org: str,
    name: str,
    rejected_org: str,
    name_too_long: bool,
    token: str,
) -> HTMLResponse:
    """The unlocked page: the App from `app.yml`, the form to GitHub, the options."""
    hook_url = manifest["hook_attributes"]["url"]
    context = {
        "missing": settings.missing_credentials(),
        "rejected_org": rejected_org,
        "name_too_long": name_too_long,
        "app_name_max": APP_NAME_MAX,
        "hook_url": hook_url,
        "hook_is_local": _is_local(hook_url),
        "app_name": str(manifest.get("name", "")),
        "org": org,
        "name": name,
        "events": [str(event) for event in manifest.get("default_events", [])],
        "permissions": [f"{k}: {v}" for k, v in (manifest.get("default_permissions") or {}).items()],
        "github_web_url": settings.github_web_url,
        "action": action,
        "manifest_json": json.dumps(manifest),
        "token": token,
    }
    return render(request, "register.html", context, headers=TOKEN_PAGE_HEADERS)


def locked_page(request: Request, settings: Settings, *, wrong_token: bool) -> HTMLResponse:
    """How to register without the token; no form."""
    # 403 where Probot's setup page answers 200: people read the page in a browser all the
    # same, while an uptime check or a script probing `/` learns that registration was refused
    # here, not offered.
    base = settings.public_url.rstrip("/") if settings.public_url else "https://<the bot>"
    context = {
        "missing": settings.missing_credentials(),
        "wrong_token": wrong_token,
        "hook_url": base + "/" + settings.webhook_path.lstrip("/"),
    }
    return render(request, "locked.html", context, status_code=403)


def created_page(
    request: Request,
    info: dict[str, Any],
    env_file: Path,
    *,
    model_key_set: bool,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The new App (`info`: its public details), where its credentials went, and what is left
    to do (the model's key, if the bot started without one; the installation; the restart)."""
    context = {
        "app_name": str(info.get("name") or ""),
        "app_id": str(info.get("id")),
        "env_file": str(env_file),
        "install_url": install_url(info),
        "model_key_set": model_key_set,
    }
    return render(request, "created.html", context, headers=headers)


def running_page(request: Request, settings: Settings, info: dict[str, Any] | None) -> HTMLResponse:
    """A configured bot: its App, and where to install it."""
    context = {
        "app_id": str(settings.app_id),
        "app_name": str(info["name"]) if info and info.get("name") else "",
        "webhook_path": settings.webhook_path,
        "github_web_url": settings.github_web_url,
        "install_url": install_url(info) if info else "",
        "apps_url": f"{settings.github_web_url}/settings/apps",
    }
    return render(request, "running.html", context)


def error_page(request: Request, name: str, status_code: int, **context: Any) -> HTMLResponse:
    """The page `templates/errors/{name}.html`."""
    return render(request, f"errors/{name}.html", context, status_code=status_code)


def _is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in _LOCAL_HOSTS or host.endswith(".localhost")
