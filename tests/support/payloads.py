"""Small webhook payloads in GitHub's shape, built per test (the full-size fixtures live in
tests/payloads/)."""

from __future__ import annotations

from typing import Any


def user(login: str, *, user_id: int = 1001, bot: bool = False) -> dict[str, Any]:
    return {
        "login": login,
        "id": user_id,
        "node_id": f"MDQ6VXNlcj{user_id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "html_url": f"https://github.com/{login}",
        "url": f"https://api.github.com/users/{login}",
        "type": "Bot" if bot else "User",
        "site_admin": False,
    }


def repository(full_name: str = "acme/widgets") -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": 5550001,
        "node_id": "R_kgDOB0000001",
        "name": name,
        "full_name": full_name,
        "private": False,
        "owner": user(owner, user_id=9001),
        "html_url": f"https://github.com/{full_name}",
        "url": f"https://api.github.com/repos/{full_name}",
        "clone_url": f"https://github.com/{full_name}.git",
        "default_branch": "main",
    }


def issue(number: int, title: str, *, author: str = "octocat", pull: bool = False,
          state: str = "open") -> dict[str, Any]:
    data = {
        "id": 700000 + number,
        "node_id": f"I_kwDOB{number}",
        "number": number,
        "title": title,
        "body": f"Body of #{number}.",
        "user": user(author),
        "labels": [],
        "state": state,
        "locked": False,
        "comments": 0,
        "html_url": f"https://github.com/acme/widgets/issues/{number}",
        "created_at": "2026-11-26T10:00:00Z",
        "updated_at": "2026-11-26T10:00:00Z",
    }
    if pull:
        data["pull_request"] = {"url": f"https://api.github.com/repos/acme/widgets/pulls/{number}"}
    return data


def issues_labeled(number: int = 42, title: str = "Add profile endpoints", *,
                   label: str = "backend", sender: str = "octocat", bot: bool = False,
                   repo: str = "acme/widgets") -> dict[str, Any]:
    return {
        "action": "labeled",
        "issue": issue(number, title),
        "label": {"id": 1, "name": label, "color": "0e8a16", "default": False},
        "repository": repository(repo),
        "sender": user(sender, bot=bot),
        "installation": {"id": 123456, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMTIzNDU2"},
    }


def pr_comment(number: int, body: str, *, sender: str = "octocat") -> dict[str, Any]:
    return {
        "action": "created",
        "issue": issue(number, "A pull request", pull=True),
        "comment": {"id": 880000 + number, "body": body, "user": user(sender),
                    "html_url": f"https://github.com/acme/widgets/pull/{number}#issuecomment-1"},
        "repository": repository(),
        "sender": user(sender),
        "installation": {"id": 123456},
    }
