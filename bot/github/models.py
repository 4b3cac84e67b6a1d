"""What `InstallationClient`'s operations return: small frozen views of GitHub's JSON.

Each keeps only the fields the bot reads, and `from_json` tolerates what GitHub leaves out
(a deleted user, a PR whose fork is gone) rather than failing a job on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class User:
    login: str
    id: int
    type: str = "User"

    @classmethod
    def from_json(cls, d: dict | None) -> User:
        d = d or {}
        return cls(login=d.get("login", ""), id=int(d.get("id") or 0), type=d.get("type", "User"))


@dataclass(frozen=True)
class Repo:
    id: int
    full_name: str
    owner: str
    name: str
    default_branch: str
    private: bool
    clone_url: str
    html_url: str
    fork: bool = False

    @classmethod
    def from_json(cls, d: dict) -> Repo:
        return cls(
            id=int(d["id"]),
            full_name=d["full_name"],
            owner=d["owner"]["login"],
            name=d["name"],
            default_branch=d.get("default_branch") or "main",
            private=bool(d.get("private")),
            clone_url=d.get("clone_url", ""),
            html_url=d.get("html_url", ""),
            fork=bool(d.get("fork")),
        )


@dataclass(frozen=True)
class Issue:
    number: int
    title: str
    body: str
    state: str
    user: User
    labels: tuple[str, ...]
    html_url: str
    is_pull_request: bool

    @classmethod
    def from_json(cls, d: dict) -> Issue:
        return cls(
            number=int(d["number"]),
            title=d.get("title") or "",
            body=d.get("body") or "",
            state=d.get("state", "open"),
            user=User.from_json(d.get("user")),
            labels=tuple(
                label["name"] if isinstance(label, dict) else str(label)
                for label in d.get("labels") or []
            ),
            html_url=d.get("html_url", ""),
            is_pull_request="pull_request" in d,
        )


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    user: User
    html_url: str
    created_at: str = ""

    @classmethod
    def from_json(cls, d: dict) -> Comment:
        return cls(
            id=int(d["id"]),
            body=d.get("body") or "",
            user=User.from_json(d.get("user")),
            html_url=d.get("html_url", ""),
            created_at=d.get("created_at", ""),
        )


@dataclass(frozen=True)
class Reaction:
    id: int
    content: str
    user: User

    @classmethod
    def from_json(cls, d: dict) -> Reaction:
        return cls(id=int(d["id"]), content=d["content"], user=User.from_json(d.get("user")))


@dataclass(frozen=True)
class PullRequest:
    number: int
    title: str
    body: str
    state: str
    draft: bool
    merged: bool
    html_url: str
    user: User
    head_ref: str
    head_sha: str
    head_repo: str | None  # full name; None when the fork was deleted
    base_ref: str
    base_sha: str
    base_repo: str

    @property
    def is_fork(self) -> bool:
        return self.head_repo != self.base_repo

    @classmethod
    def from_json(cls, d: dict) -> PullRequest:
        head, base = d["head"], d["base"]
        return cls(
            number=int(d["number"]),
            title=d.get("title") or "",
            body=d.get("body") or "",
            state=d.get("state", "open"),
            draft=bool(d.get("draft")),
            merged=bool(d.get("merged") or d.get("merged_at")),
            html_url=d.get("html_url", ""),
            user=User.from_json(d.get("user")),
            head_ref=head["ref"],
            head_sha=head["sha"],
            head_repo=(head.get("repo") or {}).get("full_name"),
            base_ref=base["ref"],
            base_sha=base["sha"],
            base_repo=(base.get("repo") or {}).get("full_name", ""),
        )


@dataclass(frozen=True)
class Review:
    id: int
    body: str
    state: str
    user: User
    commit_id: str
    html_url: str

    @classmethod
    def from_json(cls, d: dict) -> Review:
        return cls(
            id=int(d["id"]),
            body=d.get("body") or "",
            state=d.get("state", ""),
            user=User.from_json(d.get("user")),
            commit_id=d.get("commit_id") or "",
            html_url=d.get("html_url", ""),
        )


@dataclass(frozen=True)
class ReviewComment:
    id: int
    body: str
    path: str
    line: int | None
    start_line: int | None
    side: str | None
    diff_hunk: str
    user: User
    commit_id: str
    html_url: str
    review_id: int | None
    in_reply_to_id: int | None = None
    original_line: int | None = None

    @classmethod
    def from_json(cls, d: dict) -> ReviewComment:
        return cls(
            id=int(d["id"]),
            body=d.get("body") or "",
            path=d.get("path", ""),
            line=d.get("line"),
            start_line=d.get("start_line"),
            side=d.get("side"),
            diff_hunk=d.get("diff_hunk") or "",
            user=User.from_json(d.get("user")),
            commit_id=d.get("commit_id") or "",
            html_url=d.get("html_url", ""),
            review_id=d.get("pull_request_review_id"),
            in_reply_to_id=d.get("in_reply_to_id"),
            original_line=d.get("original_line"),
        )


@dataclass(frozen=True)
class CheckRun:
    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    html_url: str
    details_url: str | None = None
    output: dict = field(default_factory=dict)
    external_id: str | None = None

    @classmethod
    def from_json(cls, d: dict) -> CheckRun:
        return cls(
            id=int(d["id"]),
            name=d["name"],
            head_sha=d["head_sha"],
            status=d.get("status", ""),
            conclusion=d.get("conclusion"),
            html_url=d.get("html_url", ""),
            details_url=d.get("details_url"),
            output=d.get("output") or {},
            external_id=d.get("external_id"),
        )

