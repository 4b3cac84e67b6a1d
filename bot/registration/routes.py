"""The manifest flow's routes: `GET /` (the registration page) and `GET /setup/callback`."""

from __future__ import annotations

import html
import inspect
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import yaml
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bot.logs import get_logger
from bot.registration import pages
from bot.registration.env_file import write_env
from bot.registration.exchange import (
    ENV_KEYS,
    RegistrationError,
    exchange_code,
    public_info,
    read_app_info,
    write_app_info,
)
from bot.registration.manifest import CALLBACK_PATH, build_manifest, load_app_manifest
from bot.registration.tokens import SetupToken, States
from bot.settings import Settings

# The name these lines have always been logged under, whichever module now writes them.
log = get_logger("bot.registration")

_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")

OnRegistered = Callable[[dict[str, Any]], Awaitable[None] | None]


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
    states = States()
    token = SetupToken(setup_token)
    registered: dict[str, Any] = {}

    def base_url(request: Request) -> str:
        if settings.public_url:
            return settings.public_url.rstrip("/")
        return str(request.base_url).rstrip("/")

    async def home(request: Request) -> HTMLResponse:
        if not settings.missing_credentials():
            return pages.page(
                "backend-bot is running",
                pages.running_body(settings, read_app_info(settings)),
            )
        if registered:
            return pages.page("GitHub App created", pages.created_body(registered, env_file))
        given = request.query_params.get("token")
        if not token.admits(given):
            # 403 where Probot's setup page answers 200: people read the page in a browser all
            # the same, while an uptime check or a script probing `/` learns that registration
            # was refused here, not offered.
            return pages.page(
                "backend-bot is not configured",
                pages.locked_body(settings, wrong_token=bool(given)),
                status_code=403,
            )

        org = (request.query_params.get("org") or "").strip()
        name = (request.query_params.get("name") or "").strip()
        problems = []
        if org and not _LOGIN.match(org):
            problems.append(f"“{org}” is not a GitHub organization name.")
            org = ""
        if len(name) > pages.APP_NAME_MAX:
            problems.append(f"An App name has at most {pages.APP_NAME_MAX} characters.")
            name = ""
        try:
            template = load_app_manifest(manifest_path)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            log.error("Cannot offer the App registration: %s", exc)
            return pages.page(
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
        body = pages.register_body(settings, manifest, action, org, name, problems, given)
        return pages.page("Register backend-bot", body, headers=pages.TOKEN_PAGE_HEADERS)

    async def callback(request: Request) -> HTMLResponse:
        if registered or not settings.missing_credentials():
            return pages.page(
                "Already registered",
                "<p>This bot already has a GitHub App. To register another, remove "
                "<code>APP_ID</code>, <code>PRIVATE_KEY</code> and <code>WEBHOOK_SECRET</code> "
                "from its settings and restart it.</p>",
                status_code=409,
            )
        code = request.query_params.get("code")
        if not states.consume(request.query_params.get("state")):
            return pages.page(
                "Registration link expired",
                "<p>This address did not come from this bot's registration page, was already "
                "used, or is more than an hour old.</p>"
                '<p><a class="button" href="/">Start again</a></p>',
                status_code=400,
            )
        if not code:
            return pages.page(
                "No registration code",
                "<p>GitHub did not send a registration code back.</p>"
                '<p><a class="button" href="/">Start again</a></p>',
                status_code=400,
            )
        try:
            app = await exchange_code(settings, code, transport=transport)
        except RegistrationError as exc:
            log.warning("App registration failed: %s", exc)
            return pages.page(
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
            return pages.page(
                "Could not save the credentials",
                f"<p>GitHub created the App, but writing <code>{html.escape(str(env_file))}</code> "
                f"failed: {html.escape(exc.strerror or type(exc).__name__)}. Delete the App on "
                "GitHub, fix the file's permissions and start again.</p>",
                status_code=500,
            )
        token.spend()
        info = public_info(app, settings)
        registered.update(info)
        write_app_info(settings, info)
        log.info("GitHub App %s (id %s) registered; credentials written to %s", info["slug"], info["id"], env_file)
        if on_registered is not None:
            result = on_registered(app)
            if inspect.isawaitable(result):
                await result
        return pages.page(
            "GitHub App created",
            pages.created_body(info, env_file),
            headers={"Cache-Control": "no-store"},
        )

    return [
        Route("/", home, methods=["GET"], name="registration"),
        Route(CALLBACK_PATH, callback, methods=["GET"], name="registration_callback"),
    ]
