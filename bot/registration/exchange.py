"""GitHub's side of the flow: trading the code for the new App, and what of its answer is kept.

The answer holds the App's credentials (`ENV_KEYS` names what goes to `.env`) and its public
details; only the public details are shown on a page or recorded in the data folder, where the
"running" page finds the App's install link after a restart.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx

from bot.errors import BotError
from bot.logs import get_logger
from bot.settings import Settings

# The name these lines have always been logged under, whichever module now writes them.
log = get_logger("bot.registration")

APP_INFO_FILE = "github-app.json"

# Written to `.env` from GitHub's answer: variable name -> key in the conversion's JSON.
ENV_KEYS: dict[str, str] = {
    "APP_ID": "id",
    "PRIVATE_KEY": "pem",
    "WEBHOOK_SECRET": "webhook_secret",
    "GITHUB_CLIENT_ID": "client_id",
    "GITHUB_CLIENT_SECRET": "client_secret",
}


class RegistrationError(BotError):
    """The manifest flow could not finish; the message is for the person registering."""


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


def public_info(app: dict[str, Any], settings: Settings) -> dict[str, Any]:
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


def install_url(info: dict[str, Any]) -> str:
    """The App's "install on repositories" page, when its address is known."""
    return info["html_url"].rstrip("/") + "/installations/new" if info.get("html_url") else ""


def write_app_info(settings: Settings, info: dict[str, Any]) -> None:
    """Record the App's public details in the data folder."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        (settings.data_dir / APP_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    except OSError as exc:  # only the "running" page's install link depends on it
        log.warning("Could not record the App's details in %s: %s", settings.data_dir, exc)


def read_app_info(settings: Settings) -> dict[str, Any] | None:
    """The recorded details of the App this bot runs as, if they are of that App."""
    try:
        info = json.loads((settings.data_dir / APP_INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or str(info.get("id")) != str(settings.app_id):
        return None
    return info
