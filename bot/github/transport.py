"""An httpx transport that pins the API version, logs each request, and retries politely.

Retries network errors and 5xx with exponential backoff; honours secondary rate limits
(`Retry-After`) and primary ones (`x-ratelimit-remaining: 0` + `x-ratelimit-reset`) by
waiting, but never waits more than `max_total_wait` seconds in all for one request: past
that the error response is handed back unchanged. `sleep` and `clock` are injectable.

A POST is not idempotent, and a 5xx or a broken connection after it was sent does not say
whether GitHub wrote: sending it again could make a second comment or a second pull request.
So a POST is retried here only when GitHub surely did not act on it (a rate limit, or a
connection that never opened); otherwise the failure goes up, and the step that wrote
retries, looking first for what it may have written (by marker, by head branch).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable

import httpx

from bot.logs import get_logger

API_VERSION = "2022-11-28"
RETRY_STATUSES = frozenset({500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
# POSTs that are safe to send twice: a second token, an existing reaction or reviewer
# request answered as it stands.
REPEATABLE_POSTS = re.compile(
    r"/app/installations/\d+/access_tokens$|/reactions$|/requested_reviewers$")

log = get_logger("bot.github.http")


def rate_limit_delay(response: httpx.Response, now: float) -> float | None:
    """Seconds GitHub asks us to wait before retrying, or None if this is not a rate limit."""
    if response.status_code not in (403, 429):
        return None
    retry_after = response.headers.get("retry-after")
    if retry_after is not None:
        try:
            return max(float(retry_after), 0.0)
        except ValueError:
            return 60.0
    if response.headers.get("x-ratelimit-remaining") == "0":
        try:
            reset = float(response.headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return 60.0
        return max(reset - now, 0.0) + 1.0
    if response.status_code == 429:
        return 60.0
    return None


class RetryTransport(httpx.AsyncBaseTransport):
    """Wrap another transport; `aclose()` is a no-op so many clients can share one."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        max_retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_total_wait: float = 300.0,
    ) -> None:
        self.inner = inner
        self.sleep = sleep
        self.clock = clock
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_total_wait = max_total_wait

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff * (2**attempt), self.max_backoff)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers["X-GitHub-Api-Version"] = API_VERSION
        await request.aread()  # so the body can be sent again
        waited = 0.0
        attempt = 0
        target = f"{request.method} {request.url.path}"
        while True:
            started = time.monotonic()
            idempotent = request.method in IDEMPOTENT_METHODS or (
                request.method == "POST" and REPEATABLE_POSTS.search(request.url.path) is not None)
            try:
                response = await self.inner.handle_async_request(request)
            except httpx.TransportError as exc:
                backoff = self._backoff(attempt)
                never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                if not (idempotent or never_sent) or attempt >= self.max_retries or (
                        waited + backoff > self.max_total_wait):
                    log.warning("github %s failed: %r (giving up)", target, exc)
                    raise
                log.warning("github %s failed: %r; retry in %.1fs", target, exc, backoff)
                await self.sleep(backoff)
                waited += backoff
                attempt += 1
                continue
            elapsed = (time.monotonic() - started) * 1000
            status = response.status_code
            delay = rate_limit_delay(response, self.clock())
            if delay is None and status in RETRY_STATUSES and idempotent:
                delay = self._backoff(attempt)
            if delay is None:
                log.info("github %s -> %d (%.0f ms)", target, status, elapsed)
                return response
            if attempt >= self.max_retries or waited + delay > self.max_total_wait:
                log.warning(
                    "github %s -> %d (%.0f ms); not retrying (waited %.1fs, next wait %.1fs)",
                    target, status, elapsed, waited, delay,
                )
                return response
            log.warning(
                "github %s -> %d (%.0f ms); retry %d in %.1fs",
                target, status, elapsed, attempt + 1, delay,
            )
            await response.aclose()
            await self.sleep(delay)
            waited += delay
            attempt += 1

    async def aclose(self) -> None:
        """Shared: closed by its owner through `close_inner()`."""

    async def close_inner(self) -> None:
        await self.inner.aclose()
