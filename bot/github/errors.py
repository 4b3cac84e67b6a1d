"""The errors `bot.github` raises, under one root.

    GitHubError
     ├── NotConfigured      APP_ID / private key missing
     ├── RequestFailed      GitHub answered with an error status (status, message, errors)
     │    ├── NotFound          404
     │    ├── ValidationFailed  422 (`errors` holds GitHub's list)
     │    └── RateLimited       403/429 that waiting within the cap could not clear
     └── GitError           a git command failed (message and output already redacted)
"""

from __future__ import annotations

from typing import Any


class GitHubError(Exception):
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


class NotFound(RequestFailed):
    pass


class ValidationFailed(RequestFailed):
    pass


class RateLimited(RequestFailed):
    pass


class GitError(GitHubError):
    def __init__(self, args: list[str], returncode: int, output: str) -> None:
        self.git_args = args
        self.returncode = returncode
        self.output = output
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {output.strip()}")
