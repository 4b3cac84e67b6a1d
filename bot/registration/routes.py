"""The manifest flow's routes: `GET /` (the registration page) and `GET /setup/callback`."""

from __future__ import annotations

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
from bot.registration.pages import (
    APP_NAME_MAX,
    created_page,
    error_page,
    locked_page,
    register_page,
    running_page,
)
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
    # As the bot started: a key added to .env now counts after the restart the page asks for.
    model_key_set = settings.anthropic_api_key is not None

    def base_url(request: Request) -> str:
        if settings.public_url:
            return settings.public_url.rstrip("/")
        return str(request.base_url).rstrip("/")

    async def home(request: Request) -> HTMLResponse:
        if not settings.missing_credentials():
            return running_page(request, settings, read_app_info(settings))
        if registered:
            return created_page(request, registered, env_file, model_key_set=model_key_set)
        given = request.query_params.get("token", "")
        if not token.admits(given):
            return locked_page(request, settings, wrong_token=bool(given))

        org = (request.query_params.get("org") or "").strip()
        name = (request.query_params.get("name") or "").strip()
        rejected_org = ""
        if org and not _LOGIN.match(org):
            rejected_org, org = org, ""
        name_too_long = len(name) > APP_NAME_MAX
        if name_too_long:
            name = ""
        try:
            template = load_app_manifest(manifest_path)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            log.error("Cannot offer the App registration: %s", exc)
            return error_page(request, "app_yml_missing", 503, reason=str(exc))
        manifest = build_manifest(template, base_url(request), settings.webhook_path, name=name)
        state = states.issue()
        if org:
            action = f"{settings.github_web_url}/organizations/{org}/settings/apps/new"
        else:
            action = f"{settings.github_web_url}/settings/apps/new"
        action += "?" + urlencode({"state": state})
        return register_page(
            request, settings, manifest, action=action, org=org, name=name,
            rejected_org=rejected_org, name_too_long=name_too_long, token=given,
        )

    async def callback(request: Request) -> HTMLResponse:
        if registered or not settings.missing_credentials():
            return error_page(request, "already_registered", 409)
        code = request.query_params.get("code")
        if not states.consume(request.query_params.get("state")):
            return error_page(request, "state_expired", 400)
        if not code:
            return error_page(request, "no_code", 400)
        try:
            app = await exchange_code(settings, code, transport=transport)
        except RegistrationError as exc:
            log.warning("App registration failed: %s", exc)
            return error_page(request, "exchange_failed", 502, reason=str(exc))
        values = {env: str(app[key]) for env, key in ENV_KEYS.items() if app.get(key) is not None}
        try:
            write_env(env_file, values)
        except OSError as exc:
            log.error("Could not write %s: %s", env_file, exc)
            return error_page(
                request, "env_not_written", 500,
                env_file=str(env_file), reason=exc.strerror or type(exc).__name__,
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
        return created_page(request, info, env_file, model_key_set=model_key_set,
                            headers={"Cache-Control": "no-store"})

    return [
        Route("/", home, methods=["GET"], name="registration"),
        Route(CALLBACK_PATH, callback, methods=["GET"], name="registration_callback"),
    ]
