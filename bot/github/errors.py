"""The errors `bot.github` raises: the `GitHubError` branch of the tree in `bot.errors`.

    GitHubError(BotError)
     ├── NotConfigured      APP_ID / private key missing
     ├── RequestFailed      GitHub answered with an error status (status, message, errors)
     │    ├── NotFound          404
     │    ├── ValidationFailed  422 (`errors` holds GitHub's list)
     │    ├── ServerError       5xx the transport's retries did not clear       (TransientError)
     │    └── RateLimited       403/429 rate limit longer than the transport's cap (TransientError)
     ├── NetworkError       no answer: connection reset or refused, timeout   (TransientError)
     └── GitError           a git command failed (message and output already redacted)

Which answer becomes which error is decided in `bot.github.rest`. This module imports only
`bot.errors`, which imports nothing: every module can import it and nothing cycles through it.
"""

from __future__ import annotations

from typing import Any

from bot.errors import BotError, TransientError


class GitHubError(BotError):
    """Anything that went wrong talking to GitHub."""


class NotConfigured(GitHubError):
    """The App's credentials are missing."""


class RequestFailed(GitHubError):
    def __init__(
        self,
        method: str,
        url: str,
        status: int,
        message: str,
        errors: list[Any] | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.message = message
        self.errors = errors or []
        detail = f" {self.errors}" if self.errors else ""
        super().__init__(f"{method} {url} -> {status}: {message}{detail}")

    def __reduce__(self):
        return type(self), (self.method, self.url, self.status, self.message, self.errors)


class NotFound(RequestFailed):
    pass


class ValidationFailed(RequestFailed):
    pass


class ServerError(RequestFailed, TransientError):
    """GitHub answered 5xx, and kept answering it while the transport retried."""


class RateLimited(RequestFailed, TransientError):
    """A rate limit that lifts later than the transport is willing to wait in one call."""


class NetworkError(GitHubError, TransientError):
    """GitHub could not be reached, or did not answer in time, after the transport's retries."""


class GitError(GitHubError):
    def __init__(self, args: list[str], returncode: int, output: str) -> None:
        self.git_args = args
        self.returncode = returncode
        self.output = output
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {output.strip()}")

    def __reduce__(self):
        return type(self), (self.git_args, self.returncode, self.output)
