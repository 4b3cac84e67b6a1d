"""The GitHub App: its JWT-authenticated client, its identity, and installation tokens.

    app = GitHubApp(settings)                 # or transport=sim.transport() in tests
    gh = await app.installation(installation_id)
    repo = await gh.get_repo("acme/widgets")
    token = await app.installation_token(installation_id)   # for git

Installation tokens are cached per installation and re-minted once less than
`min_token_validity` (10 minutes by default) remains, so a long job never holds a token
that dies mid-way. A 401 on an installation call drops the cached token and retries once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
from githubkit import AppAuthStrategy, GitHub, UnauthAuthStrategy
from githubkit.auth.base import BaseAuthStrategy
from githubkit.cache import MemCacheStrategy

from bot.github.client import InstallationClient
from bot.github.errors import NotConfigured
from bot.github.rest import send
from bot.github.transport import RetryTransport
from bot.logs import get_logger
from bot.redact import register_secret
from bot.settings import Settings

log = get_logger("bot.github.app")

USER_AGENT = "backend-bot"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class InstallationToken:
    installation_id: int
    token: str
    expires_at: datetime

    def __repr__(self) -> str:  # never print the token
        return f"InstallationToken(installation_id={self.installation_id}, expires_at={self.expires_at.isoformat()})"


@dataclass(frozen=True)
class AppIdentity:
    app_id: int
    slug: str
    name: str
    html_url: str
    bot_login: str  # "<slug>[bot]"
    bot_user_id: int
    bot_email: str  # "<id>+<slug>[bot]@users.noreply.github.com"


class _InstallationAuth(httpx.Auth):
    """Put a fresh installation token on each request; on 401 re-mint once and resend."""

    def __init__(self, app: GitHubApp, installation_id: int) -> None:
        self.app = app
        self.installation_id = installation_id

    def sync_auth_flow(self, request):  # pragma: no cover - the bot is async only
        raise RuntimeError("backend-bot's GitHub client is async only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.app.installation_token(self.installation_id)
        request.headers["Authorization"] = f"token {token}"
        response = yield request
        if response.status_code == 401:
            log.warning("installation %s token refused; minting a new one", self.installation_id)
            self.app.forget_token(self.installation_id)
            token = await self.app.installation_token(self.installation_id)
            request.headers["Authorization"] = f"token {token}"
            yield request


@dataclass
class _InstallationAuthStrategy(BaseAuthStrategy):
    app: GitHubApp
    installation_id: int

    def get_auth_flow(self, github) -> httpx.Auth:
        return _InstallationAuth(self.app, self.installation_id)


class GitHubApp:
    """The App: owns the App-level githubkit client, the HTTP transport and a token cache."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], datetime] = utcnow,
        min_token_validity: timedelta = timedelta(minutes=10),
        max_retries: int = 5,
        max_total_wait: float = 300.0,
        timeout: float = 30.0,
    ) -> None:
        pem = settings.private_key_pem()
        if settings.app_id is None or pem is None:
            raise NotConfigured(
                "GitHub App credentials missing: " + ", ".join(settings.missing_credentials())
            )
        self.app_id = settings.app_id
        self.base_url = settings.github_api_url
        self.web_url = settings.github_web_url
        self.clock = clock
        self.min_token_validity = min_token_validity
        self.transport = RetryTransport(
            transport or httpx.AsyncHTTPTransport(),
            sleep=sleep,
            clock=lambda: clock().timestamp(),
            max_retries=max_retries,
            max_total_wait=max_total_wait,
        )
        self._timeout = timeout
        # Our own JWT cache: githubkit's default one is process-global, keyed by app id only.
        self._cache = MemCacheStrategy()
        self.github = self._client(AppAuthStrategy(str(self.app_id), pem))
        self._tokens: dict[int, InstallationToken] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._identity: AppIdentity | None = None

    def _client(self, auth: BaseAuthStrategy) -> GitHub:
        return GitHub(
            auth,
            base_url=self.base_url,
            async_transport=self.transport,
            user_agent=USER_AGENT,
            timeout=self._timeout,
            http_cache=False,
            cache_strategy=self._cache,
            auto_retry=False,  # RetryTransport does it, with an injectable sleep
            trust_env=False,  # proxies would bypass the transport
        )

    async def aclose(self) -> None:
        await self.transport.close_inner()

    async def __aenter__(self) -> GitHubApp:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    # -- tokens -------------------------------------------------------------

    def forget_token(self, installation_id: int) -> None:
        self._tokens.pop(installation_id, None)

    async def installation_token(
        self, installation_id: int, *, min_validity: timedelta | None = None
    ) -> str:
        """A token for this installation valid for at least `min_validity` more."""
        min_validity = self.min_token_validity if min_validity is None else min_validity
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(installation_id)
            if cached is not None and cached.expires_at - self.clock() > min_validity:
                return cached.token
            minted = await self._mint(installation_id)
            self._tokens[installation_id] = minted
            return minted.token

    async def _mint(self, installation_id: int) -> InstallationToken:
        response = await send(
            self.github, "POST", f"/app/installations/{installation_id}/access_tokens", json={}
        )
        data = response.json()
        token = data["token"]
        register_secret(token)
        expires_at = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))
        log.info(
            "minted a token for installation %s, valid until %s",
            installation_id,
            expires_at.isoformat(),
        )
        return InstallationToken(installation_id, token, expires_at)

    # -- clients ------------------------------------------------------------

    async def installation(self, installation_id: int) -> InstallationClient:
        """GitHub as this installation: each request carries a token from the cache."""
        return InstallationClient(
            self._client(_InstallationAuthStrategy(self, installation_id)),
            partial(self.installation_token, installation_id),
            own_login=self._bot_login,
        )

    async def _bot_login(self) -> str:
        return (await self.identity()).bot_login

    async def identity(self) -> AppIdentity:
        """Who the App is: its slug, and the login, id and noreply email of its bot user."""
        if self._identity is not None:
            return self._identity
        app = (await send(self.github, "GET", "/app")).json()
        slug = app["slug"]
        bot_login = f"{slug}[bot]"
        user = (await send(self._client(UnauthAuthStrategy()), "GET", f"/users/{bot_login}")).json()
        self._identity = AppIdentity(
            app_id=int(app["id"]),
            slug=slug,
            name=app.get("name") or slug,
            html_url=app.get("html_url", ""),
            bot_login=bot_login,
            bot_user_id=int(user["id"]),
            bot_email=f"{user['id']}+{bot_login}@users.noreply.github.com",
        )
        return self._identity
