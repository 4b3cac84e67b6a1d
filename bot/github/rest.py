"""One REST call through githubkit, its failures said in `bot.github.errors` terms.

    response = await send(github, "GET", "/repos/acme/widgets")   # an httpx.Response

githubkit raises its own `RequestFailed` for an error answer and `RequestError` for no answer;
`send` lets neither out, so the rest of the bot catches one tree. By the time githubkit raises,
`RetryTransport` has retried what was worth retrying within its cap. What still fails is
sorted once, here: a 5xx or a rate limit becomes an error that is also a `TransientError`
(a durable step may try again later, when waiting costs nothing), so is a network failure;
other 4xx are the caller's to handle.
"""

from __future__ import annotations

from typing import Any

import httpx
from githubkit import GitHub
from githubkit.exception import RequestError as KitRequestError
from githubkit.exception import RequestFailed as KitRequestFailed

from bot.errors import TransientError
from bot.github.errors import (
    GitHubError,
    NetworkError,
    NotFound,
    RateLimited,
    RequestFailed,
    ServerError,
    ValidationFailed,
)
from bot.github.transport import rate_limit_delay


async def send(
    github: GitHub,
    method: str,
    url: str,
    *,
    params: dict[str, Any] | None = None,
    json: Any = None,
) -> httpx.Response:
    """`github.arequest(...)`'s raw answer; every failure is a `GitHubError`."""
    try:
        response = await github.arequest(method, url, params=params, json=json)
    except KitRequestFailed as exc:
        raise error_for(exc.request.method, exc.request.url.path, exc.response.raw_response) from None
    except KitRequestError as exc:
        cause = exc.exc
        if isinstance(cause, TransientError):
            # The installation's auth flow minted a token on the way and that failed
            # transiently: retrying this call will mint again.
            raise cause from None
        if isinstance(cause, httpx.TransportError):
            raise NetworkError(f"{method} {url}: {cause!r}") from cause
        # Anything else githubkit caught, such as a mint on the way answered 404 (the App
        # was uninstalled): not this call's 404, so not a `NotFound` a caller might excuse.
        raise GitHubError(f"{method} {url}: {cause!r}") from cause
    return response.raw_response


def error_for(method: str, path: str, response: httpx.Response) -> RequestFailed:
    """The error for an error answer, with GitHub's `message` and `errors` when it sent them."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    message = str(body.get("message") or response.reason_phrase or "error")
    args = (method, path, status, message, body.get("errors") or [])
    if status == 404:
        return NotFound(*args)
    if status == 422:
        return ValidationFailed(*args)
    if rate_limit_delay(response, 0.0) is not None:
        return RateLimited(*args)
    if status >= 500:
        return ServerError(*args)
    return RequestFailed(*args)
