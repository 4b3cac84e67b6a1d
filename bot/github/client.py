"""What the bot does on GitHub as one installation: small typed async operations.

Each method takes `repo` as "owner/name" and returns a small frozen dataclass from
`bot.github.models` (or a plain value). Every text the bot writes to GitHub (comments,
replies, PR titles and bodies, check runs) goes through `redact` here, whoever composed it.
Errors are `bot.github.errors` exceptions; "not there" answers that flows expect (a missing
file, a user with no access, no status comment yet) are `None`/"none" instead.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal, get_args

import httpx
from githubkit import GitHub

from bot.github.errors import GitHubError, NotFound
from bot.github.models import (
    CheckRun,
    Comment,
    Issue,
    PullRequest,
    Reaction,
    Repo,
    Review,
    ReviewComment,
    User,
)
from bot.github.rest import send
from bot.redact import redact

PER_PAGE = 100
MAX_PAGES = 50
CHECK_OUTPUT_CHARS = 65_535

Permission = Literal["admin", "maintain", "write", "triage", "read", "none"]
PERMISSIONS: tuple[Permission, ...] = get_args(Permission)
ReactionTarget = Literal["issue", "comment", "review_comment"]
REACTIONS = frozenset({"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"})


# -- the client ---------------------------------------------------------------------


_REACTION_PATHS = {
    "issue": "issues/{id}/reactions",
    "comment": "issues/comments/{id}/reactions",
    "review_comment": "pulls/comments/{id}/reactions",
}


class InstallationClient:
    """GitHub as seen by one installation of the App."""

    def __init__(self, github: GitHub, token: Callable[[], Awaitable[str]], *,
                 own_login: Callable[[], Awaitable[str]] | None = None) -> None:
        """`github` is authenticated as the installation; `token` gives its current token;
        `own_login` gives the App's bot user, whose comments alone the bot edits as its own."""
        self.github = github
        self._token = token
        self._own_login = own_login

    async def own_login(self) -> str | None:
        """The App's bot user (`slug[bot]`), or None when the client was made without it."""
        return await self._own_login() if self._own_login is not None else None

    async def token(self) -> str:
        """A fresh installation token (for git)."""
        return await self._token()

    # -- plumbing --

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """One REST call; the JSON answer, or None for 204."""
        response = await self._send(method, url, params=params, json=json)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def _send(
        self, method: str, url: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> httpx.Response:
        return await send(self.github, method, url, params=params, json=json)

    async def paginate(self, url: str, *, params: dict[str, Any] | None = None) -> AsyncIterator[dict]:
        """Every item of a list endpoint, following `Link: rel="next"`."""
        params = {"per_page": PER_PAGE, **(params or {})}
        next_url: str | None = url
        for _ in range(MAX_PAGES):
            if next_url is None:
                return
            response = await self._send("GET", next_url, params=params)
            for item in response.json():
                yield item
            link = response.links.get("next")
            next_url = link["url"] if link else None
            params = None  # the next link carries them

    # -- repositories and people --

    async def get_repo(self, repo: str) -> Repo:
        return Repo.from_json(await self.request("GET", f"/repos/{repo}"))

    async def default_branch(self, repo: str) -> str:
        return (await self.get_repo(repo)).default_branch

    async def get_user(self, login: str) -> User:
        return User.from_json(await self.request("GET", f"/users/{login}"))

    async def permission(self, repo: str, username: str) -> Permission:
        """The user's role on the repository: admin/maintain/write/triage/read/none."""
        try:
            data = await self.request("GET", f"/repos/{repo}/collaborators/{username}/permission")
        except NotFound:
            return "none"
        role = data.get("role_name") or data.get("permission")
        if role not in PERMISSIONS:
            # custom repository roles inherit from one of the base roles
            role = data.get("permission")
        return role if role in PERMISSIONS else "none"

    # -- reactions --

    async def add_reaction(
        self, repo: str, target: ReactionTarget, target_id: int, content: str
    ) -> Reaction:
        """React to an issue/PR (`issue`, its number), an issue comment or a PR review comment."""
        if content not in REACTIONS:
            raise ValueError(f"unknown reaction {content!r}")
        path = _REACTION_PATHS[target].format(id=target_id)
        return Reaction.from_json(
            await self.request("POST", f"/repos/{repo}/{path}", json={"content": content})
        )

    # -- issues and comments --

    async def get_issue(self, repo: str, number: int) -> Issue:
        return Issue.from_json(await self.request("GET", f"/repos/{repo}/issues/{number}"))

    async def list_issue_comments(self, repo: str, number: int) -> list[Comment]:
        return [
            Comment.from_json(c)
            async for c in self.paginate(f"/repos/{repo}/issues/{number}/comments")
        ]

    async def upsert_comment(
        self, repo: str, number: int, marker_text: str, body: str, *, author: str | None = None
    ) -> Comment:
        """Edit the comment carrying the marker in place, or create it (the marker is added).

        Only the bot's own comment counts (`author`, by default the App's bot user): anyone can
        paste a marker into a comment of theirs.
        """
        body = redact(body)
        if marker_text not in body:
            body = f"{marker_text}\n{body}"
        existing = await self._find_comment(repo, number, marker_text,
                                            author or await self.own_login())
        if existing is None:
            return Comment.from_json(await self.request(
                "POST", f"/repos/{repo}/issues/{number}/comments", json={"body": body}))
        if existing.body == body:
            return existing
        return Comment.from_json(await self.request(
            "PATCH", f"/repos/{repo}/issues/comments/{existing.id}", json={"body": body}))

    async def _find_comment(
        self, repo: str, number: int, marker_text: str, author: str | None
    ) -> Comment | None:
        """The first comment on the issue/PR holding the marker (by `author`, if given)."""
        async for c in self.paginate(f"/repos/{repo}/issues/{number}/comments"):
            if marker_text in (c.get("body") or "") and (
                author is None or (c.get("user") or {}).get("login") == author
            ):
                return Comment.from_json(c)
        return None

    # -- pull requests --

    async def get_pull(self, repo: str, number: int) -> PullRequest:
        return PullRequest.from_json(await self.request("GET", f"/repos/{repo}/pulls/{number}"))

    async def list_pulls(self, repo: str, *, state: str = "open",
                         base: str | None = None) -> list[PullRequest]:
        """The repository's pull requests in `state` (into `base`, if given), newest first."""
        params = {"state": state, **({"base": base} if base else {})}
        return [PullRequest.from_json(p)
                async for p in self.paginate(f"/repos/{repo}/pulls", params=params)]

    async def find_pull_by_head(
        self, repo: str, branch: str, *, head_owner: str | None = None
    ) -> PullRequest | None:
        """The PR from `head_owner:branch` (the repo's owner by default); open ones first."""
        owner = head_owner or repo.split("/", 1)[0]
        found = [
            PullRequest.from_json(p)
            async for p in self.paginate(
                f"/repos/{repo}/pulls", params={"head": f"{owner}:{branch}", "state": "all"}
            )
        ]
        found.sort(key=lambda p: (p.state != "open", -p.number))
        return found[0] if found else None

    async def create_pull(
        self, repo: str, *, title: str, head: str, base: str, body: str = "", draft: bool = False
    ) -> PullRequest:
        payload = {"title": redact(title), "head": head, "base": base, "body": redact(body),
                   "draft": draft}
        return PullRequest.from_json(await self.request("POST", f"/repos/{repo}/pulls", json=payload))

    async def update_pull(
        self,
        repo: str,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        state: str | None = None,
        base: str | None = None,
    ) -> PullRequest:
        payload = {
            k: v
            for k, v in {"title": title and redact(title), "body": body and redact(body),
                         "state": state, "base": base}.items()
            if v is not None
        }
        return PullRequest.from_json(
            await self.request("PATCH", f"/repos/{repo}/pulls/{number}", json=payload)
        )

    async def request_reviewers(
        self, repo: str, number: int, reviewers: list[str], team_reviewers: list[str] | None = None
    ) -> PullRequest:
        payload: dict[str, Any] = {"reviewers": list(reviewers)}
        if team_reviewers:
            payload["team_reviewers"] = list(team_reviewers)
        return PullRequest.from_json(
            await self.request("POST", f"/repos/{repo}/pulls/{number}/requested_reviewers", json=payload)
        )

    # -- reviews --

    async def get_review(self, repo: str, number: int, review_id: int) -> Review:
        return Review.from_json(
            await self.request("GET", f"/repos/{repo}/pulls/{number}/reviews/{review_id}")
        )

    async def list_review_comments(self, repo: str, number: int, review_id: int) -> list[ReviewComment]:
        """The comments of one review, each with its file, line and diff hunk."""
        return [
            ReviewComment.from_json(c)
            async for c in self.paginate(f"/repos/{repo}/pulls/{number}/reviews/{review_id}/comments")
        ]

    async def list_pull_comments(self, repo: str, number: int) -> list[ReviewComment]:
        """Every review comment on the pull request, replies included."""
        return [
            ReviewComment.from_json(c)
            async for c in self.paginate(f"/repos/{repo}/pulls/{number}/comments")
        ]

    async def reply_to_review_comment(
        self, repo: str, number: int, comment_id: int, body: str
    ) -> ReviewComment:
        return ReviewComment.from_json(
            await self.request(
                "POST", f"/repos/{repo}/pulls/{number}/comments/{comment_id}/replies",
                json={"body": redact(body)}
            )
        )

    # -- check runs --

    async def create_check_run(
        self,
        repo: str,
        *,
        name: str,
        head_sha: str,
        status: str = "in_progress",
        conclusion: str | None = None,
        details_url: str | None = None,
        external_id: str | None = None,
        title: str | None = None,
        summary: str | None = None,
        text: str | None = None,
    ) -> CheckRun:
        payload: dict[str, Any] = {"name": name, "head_sha": head_sha, "status": status}
        payload.update(_check_fields(conclusion, details_url, external_id, title, summary, text))
        return CheckRun.from_json(await self.request("POST", f"/repos/{repo}/check-runs", json=payload))

    async def update_check_run(
        self,
        repo: str,
        check_run_id: int,
        *,
        status: str | None = None,
        conclusion: str | None = None,
        title: str | None = None,
        summary: str | None = None,
        text: str | None = None,
    ) -> CheckRun:
        payload: dict[str, Any] = {"status": status} if status is not None else {}
        payload.update(_check_fields(conclusion, None, None, title, summary, text))
        return CheckRun.from_json(
            await self.request("PATCH", f"/repos/{repo}/check-runs/{check_run_id}", json=payload))

    async def find_check_run(self, repo: str, head_sha: str, name: str,
                             external_id: str | None = None) -> CheckRun | None:
        """The newest check run named `name` on the commit (with this `external_id`, when
        given: several jobs may put a check of one name on one commit), if there is one."""
        data = await self.request("GET", f"/repos/{repo}/commits/{head_sha}/check-runs",
                                  params={"check_name": name, "per_page": 1 if external_id is None else 100})
        runs = [CheckRun.from_json(run) for run in (data or {}).get("check_runs") or []]
        if external_id is not None:
            runs = [run for run in runs if run.external_id == external_id]
        return runs[0] if runs else None

    # -- contents --

    async def read_file(self, repo: str, path: str, ref: str | None = None) -> str | None:
        """The text of a file at `ref` (default branch if None); None if there is no such file."""
        params = {"ref": ref} if ref else None
        try:
            data = await self.request("GET", f"/repos/{repo}/contents/{path.lstrip('/')}", params=params)
        except NotFound:
            return None
        if not isinstance(data, dict) or data.get("type") != "file":
            return None
        if data.get("encoding") == "base64":
            try:
                raw = base64.b64decode(data.get("content") or "")
            except binascii.Error as exc:
                raise GitHubError(f"undecodable contents of {repo}:{path}") from exc
            return raw.decode("utf-8", errors="replace")
        if data.get("content"):
            return data["content"]
        # larger than 1 MB: GitHub sends encoding "none" and a download_url
        return await self._download(data.get("download_url"))

    async def _download(self, url: str | None) -> str | None:
        if not url:
            return None
        response = await self._send("GET", url)
        return response.text


def _output_field(text: str) -> str:
    """Redacted, and within GitHub's limit on a check run's output fields (longer is refused)."""
    text = redact(text)
    if len(text) <= CHECK_OUTPUT_CHARS:
        return text
    note = "\n\n[… cut to GitHub's limit]"
    return text[: CHECK_OUTPUT_CHARS - len(note)] + note


def _check_fields(conclusion, details_url, external_id, title, summary, text) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if conclusion is not None:
        fields["conclusion"] = conclusion
    if details_url is not None:
        fields["details_url"] = details_url
    if external_id is not None:
        fields["external_id"] = external_id
    if title is not None or summary is not None:
        output = {"title": _output_field(title or ""), "summary": _output_field(summary or "")}
        if text is not None:
            output["text"] = _output_field(text)
        fields["output"] = output
    return fields
