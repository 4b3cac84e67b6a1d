"""The secrets that lock the manifest flow: the one-time setup token and the `state` values.

Whoever finishes the manifest flow chooses the App whose private key and webhook secret the
bot adopts. So the page that starts it opens only with the setup token (random, made by `serve`
at start-up, printed on its terminal only, kept in the process, spent by a registration), and
GitHub's redirect back is accepted only with a `state` that page handed out (single use, one
hour).
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

from bot.settings import Settings

STATE_TTL_SECONDS = 3600
SETUP_TOKEN_BYTES = 32  # 256 random bits

# Printed by `serve` at start-up while the App is not configured.
SETUP_NOTICE = (
    "backend-bot has no GitHub App yet. To register one, open this one-time link in a browser "
    "(valid until the bot restarts; keep it private, whoever opens it chooses the bot's App):\n"
    "  {url}"
)


def new_setup_token() -> str:
    """A fresh one-time token for the registration page."""
    return secrets.token_urlsafe(SETUP_TOKEN_BYTES)


def public_base_url(settings: Settings, host: str, port: int) -> str:
    """The bot's address as a browser (or, with BOT_PUBLIC_URL, GitHub) can open it."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    # A wildcard address is where the server listens, not one a browser can open.
    if host in ("0.0.0.0", "::", ""):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def setup_url(settings: Settings, host: str, port: int, token: str) -> str:
    """The registration page's address with its token, as the operator can open it."""
    return f"{public_base_url(settings, host, port)}/?{urlencode({'token': token})}"


class SetupToken:
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


class States:
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
