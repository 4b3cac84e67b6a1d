"""The hidden HTML markers by which the bot finds its own comments and pull requests again.

    <!-- backend-bot:status:job-17 -->            job 17's status comment
    <!-- backend-bot:refused-job-17 -->            ... and its other comments and thread replies
    <!-- backend-bot:pr:issue-42 -->              the pull request for issue 42

GitHub keeps HTML comments in a body but does not show them. The format is part of what the
bot leaves on GitHub: markers written by earlier versions must still be found, so these
strings never change.
"""

from __future__ import annotations

import re

PREFIX = "backend-bot"
STATUS = "status"
PULL_REQUEST = "pr"

_PULL_REQUEST = re.compile(r"<!-- " + re.escape(f"{PREFIX}:{PULL_REQUEST}") + r":([\w.-]+) -->")


def marker(*names: str) -> str:
    """`<!-- backend-bot:a:b -->` for names `a`, `b`."""
    return f"<!-- {PREFIX}:{':'.join(names)} -->"


def status(kind: str) -> str:
    """The marker of a status comment (or another comment a job writes): `status:<kind>`."""
    return marker(STATUS, kind)


def pull_request(kind: str) -> str:
    return marker(PULL_REQUEST, kind)


def pull_request_kind(body: str) -> str | None:
    """The kind in a pull request body's marker; the bot writes its own last, after text the
    agent composed, so the last one is the bot's."""
    matches = _PULL_REQUEST.findall(body or "")
    return matches[-1] if matches else None
