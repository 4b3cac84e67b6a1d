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

    manifest    `app.yml`, filled with the bot's public addresses
    tokens      the setup token and the `state` values
    exchange    the code traded for the App at GitHub; what of the answer is kept
    env_file    the credentials written to `.env`
    pages       what each page shows, rendered from templates/ (Jinja, autoescaped)
    routes      the two routes, tying the rest together
"""

from bot.registration.env_file import write_env
from bot.registration.exchange import (
    APP_INFO_FILE,
    ENV_KEYS,
    RegistrationError,
    exchange_code,
)
from bot.registration.manifest import CALLBACK_PATH, build_manifest, find_app_manifest, load_app_manifest
from bot.registration.routes import OnRegistered, registration_routes
from bot.registration.tokens import (
    SETUP_NOTICE,
    SETUP_TOKEN_BYTES,
    STATE_TTL_SECONDS,
    new_setup_token,
    public_base_url,
    setup_url,
)

__all__ = [
    "APP_INFO_FILE",
    "CALLBACK_PATH",
    "ENV_KEYS",
    "SETUP_NOTICE",
    "SETUP_TOKEN_BYTES",
    "STATE_TTL_SECONDS",
    "OnRegistered",
    "RegistrationError",
    "build_manifest",
    "exchange_code",
    "find_app_manifest",
    "load_app_manifest",
    "new_setup_token",
    "public_base_url",
    "registration_routes",
    "setup_url",
    "write_env",
]
