"""The simulator's state and its Python API (see the package docstring)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import random
import re
import secrets
import socket
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.simulator import gitrepo

ROLES = ("admin", "maintain", "write", "triage", "read", "none")
LEGACY_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}
REACTION_CONTENTS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")

_KEY_CACHE: list[str] = []


def generate_private_key() -> str:
    """An RSA private key in PEM (one per process, reused: generating one is slow)."""
    if not _KEY_CACHE:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _KEY_CACHE.append(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ).decode()
        )
    return _KEY_CACHE[0]


def public_key_of(pem: str) -> str:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _random(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def sign(secret: str, body: bytes) -> str:
    """GitHub's `X-Hub-Signature-256` value for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class SimApp:
    id: int
    slug: str
    name: str
    owner: str
    private_key_pem: str
    public_key_pem: str
    webhook_secret: str
    client_id: str
    client_secret: str
    bot_login: str
    bot_id: int


@dataclass
class SimInstallation:
    id: int
    app_id: int
    account: str
    repositories: set[str] | None = None  # None: all of the account's repositories


@dataclass
class SimToken:
    token: str
    installation_id: int
    expires_at: float
    revoked: bool = False


@dataclass
class SimRepo:
    id: int
    owner: str
    name: str
    bare: Path
    private: bool
    installation_id: int | None
    fork_of: str | None = None
    description: str = ""
    permissions: dict[str, str] = field(default_factory=dict)
    labels: dict[str, dict] = field(default_factory=dict)
    issues: dict[int, dict] = field(default_factory=dict)
    created_at: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def default_branch(self) -> str:
        return gitrepo.head_branch(self.bare)

    def branches(self) -> dict[str, str]:
        return gitrepo.branches(self.bare)

    def sha(self, branch: str) -> str | None:
        return gitrepo.rev_parse(self.bare, f"refs/heads/{branch}")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the /api/v3 prefix
    query: dict[str, str]
    json: Any
    status: int
    auth: str  # "app", "installation:<id>", "none", or "invalid"
    raw_path: str = ""  # as requested, e.g. with /api/v3


@dataclass
class Fault:
    kind: str  # "error", "late" (applied, then an error), "secondary", "primary", "slow", "network"
    path: re.Pattern
    method: str | None
    remaining: int
    status: int = 502
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method == method)
            and bool(self.path.search(path))
        )


class GitHubSimulator:
    """A stateful fake GitHub: REST API, App auth, git over smart HTTP, webhooks, faults."""

    def __init__(self, root: Path | str, *, web_url: str = "https://github.com") -> None:
        self.root = Path(root)
        self.git_root = self.root / "git"
        self.git_root.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._ids = itertools.count(1001)
        self.apps: dict[int, SimApp] = {}
        self.installations: dict[int, SimInstallation] = {}
        self.users: dict[str, dict] = {}
        self.repos: dict[str, SimRepo] = {}
        self.tokens: dict[str, SimToken] = {}
        self.comments: dict[int, dict] = {}
        self.review_comments: dict[int, dict] = {}
        self.reviews: dict[int, dict] = {}
        self.reactions: dict[int, dict] = {}
        self.check_runs: dict[int, dict] = {}
        # CI: check suites, Actions workflow runs (one suite each) and commit statuses.
        self.check_suites: dict[int, dict] = {}
        self.workflow_runs: dict[int, dict] = {}
        self.statuses: dict[int, dict] = {}
        self.manifest_codes: dict[str, dict] = {}
        self.requests: list[RecordedRequest] = []
        self.unmatched: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.chaos_rate = 0.0
        self.chaos_random = random.Random(0)
        self.chaos_path = re.compile(r"^/repos/")
        self.chaos_faults = 0
        self.token_ttl = 3600.0
        self.clock_offset = 0.0
        self._web_url = web_url.rstrip("/")
        self._served_url: str | None = None
        from tests.simulator.api import build_app

        self.app = build_app(self)

    # -- clock and ids -------------------------------------------------------

    def now(self) -> float:
        """The simulator's clock (wall clock plus `advance()`s), used for token expiry."""
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock forward (tokens expire by it)."""
        self.clock_offset += seconds

    def iso(self, ts: float | None = None) -> str:
        ts = self.now() if ts is None else ts
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def next_id(self) -> int:
        return next(self._ids)

    @property
    def web_url(self) -> str:
        return self._served_url or self._web_url

    @property
    def api_url(self) -> str:
        if self._served_url:
            return self._served_url + "/api/v3"
        return "https://api.github.com" if self._web_url == "https://github.com" else self._web_url + "/api/v3"

    # -- setting the scene ---------------------------------------------------

    def add_user(
        self,
        login: str,
        *,
        permission: str | None = None,
        repo: str | None = None,
        type: str = "User",
    ) -> dict:
        """A user (created once); with `repo`, their role there (admin/maintain/write/triage/read/none)."""
        if permission is not None and repo is None:
            raise ValueError("a permission is given on a repository: pass repo=")
        with self.lock:
            user = self.users.get(login)
            if user is None:
                user = {"login": login, "id": self.next_id(), "type": type}
                self.users[login] = user
            if repo is not None:
                role = permission or "write"
                if role not in ROLES:
                    raise ValueError(f"unknown role {role!r}")
                self.repos[repo].permissions[login] = role
            return user

    def set_permission(self, repo: str, login: str, permission: str) -> None:
        self.add_user(login, permission=permission, repo=repo)

    def add_app(
        self,
        *,
        app_id: int | None = None,
        slug: str = "backend-bot",
        name: str | None = None,
        owner: str = "acme",
        private_key_pem: str | None = None,
        webhook_secret: str = "sim-webhook-secret",
    ) -> SimApp:
        """Register a GitHub App (and its `<slug>[bot]` user)."""
        with self.lock:
            pem = private_key_pem or generate_private_key()
            app_id = app_id or self.next_id()
            self.add_user(owner, type="Organization")
            bot = self.add_user(f"{slug}[bot]", type="Bot")
            app = SimApp(
                id=app_id,
                slug=slug,
                name=name or slug,
                owner=owner,
                private_key_pem=pem,
                public_key_pem=public_key_of(pem),
                webhook_secret=webhook_secret,
                client_id=f"Iv1.{_random(16).lower()}",
                client_secret=_random(40).lower(),
                bot_login=bot["login"],
                bot_id=bot["id"],
            )
            self.apps[app_id] = app
            return app

    @property
    def default_app(self) -> SimApp:
        if not self.apps:
            self.add_app()
        return next(iter(self.apps.values()))

    def add_installation(
        self, installation_id: int | None = None, *, account: str, app_id: int | None = None
    ) -> SimInstallation:
        with self.lock:
            app_id = app_id or self.default_app.id
            installation_id = installation_id or self.next_id()
            if installation_id not in self.installations:
                self.add_user(account, type="Organization" if account not in self.users else self.users[account]["type"])
                self.installations[installation_id] = SimInstallation(installation_id, app_id, account)
            return self.installations[installation_id]

    def add_repo(
        self,
        full_name: str,
        *,
        files: dict[str, str | bytes | gitrepo.Symlink | gitrepo.Gitlink] | None = None,
        installation_id: int | None = None,
        default_branch: str = "main",
        private: bool = True,
        fork_of: str | None = None,
        owner_type: str = "Organization",
        description: str = "",
    ) -> SimRepo:
        """A repository backed by a real bare repo with one commit of `files` on `default_branch`.

        With `installation_id`, the App is installed on it (the installation is created if new).
        With `fork_of`, the repository is a fork of another sim repo and starts from its history.
        """
        with self.lock:
            owner, name = full_name.split("/", 1)
            if owner not in self.users:
                self.add_user(owner, type=owner_type)
            bare = self.git_root / owner / f"{name}.git"
            gitrepo.init_bare(bare, default_branch)
            repo = SimRepo(
                id=self.next_id(),
                owner=owner,
                name=name,
                bare=bare,
                private=private,
                installation_id=installation_id,
                fork_of=fork_of,
                description=description,
                created_at=self.iso(),
            )
            self.repos[full_name] = repo
            if fork_of:
                parent = self.repos[fork_of]
                gitrepo.git(bare, "fetch", "--quiet", str(parent.bare), "+refs/heads/*:refs/heads/*")
                gitrepo.set_head(bare, parent.default_branch)
            else:
                gitrepo.commit_files(
                    bare, default_branch, files or {"README.md": f"# {name}\n"}, message="Initial commit"
                )
            if installation_id is not None:
                inst = self.add_installation(installation_id, account=owner)
                if inst.repositories is not None:
                    inst.repositories.add(full_name)
            return repo

    def repo(self, full_name: str) -> SimRepo:
        return self.repos[full_name]

    def commit(
        self,
        repo: str,
        branch: str,
        files: dict[str, str | bytes | gitrepo.Symlink | gitrepo.Gitlink | None],
        *,
        message: str = "Update files",
        from_branch: str | None = None,
    ) -> str:
        """Commit files to `branch` (created from `from_branch` or the default branch if new)."""
        with self.lock:
            r = self.repos[repo]
            parent = r.sha(branch) or r.sha(from_branch or r.default_branch)
            return gitrepo.commit_files(r.bare, branch, files, message=message, parent=parent)

    def branches(self, repo: str) -> dict[str, str]:
        return self.repos[repo].branches()

    def read_file(self, repo: str, path: str, ref: str | None = None) -> str | None:
        r = self.repos[repo]
        spec = f"{ref or r.default_branch}:{path}"
        if gitrepo.object_type(r.bare, spec) != "blob":
            return None
        return gitrepo.read_blob(r.bare, spec).decode()

    def set_default_branch(self, repo: str, branch: str) -> None:
        gitrepo.set_head(self.repos[repo].bare, branch)

    def add_label(self, repo: str, name: str, *, color: str = "ededed", description: str = "") -> dict:
        with self.lock:
            labels = self.repos[repo].labels
            if name not in labels:
                lid = self.next_id()
                labels[name] = {
                    "id": lid,
                    "node_id": f"LA_{lid}",
                    "url": f"{self.api_url}/repos/{repo}/labels/{name}",
                    "name": name,
                    "color": color,
                    "default": False,
                    "description": description or None,
                }
            return labels[name]

    def _new_issue(self, repo: str, *, title: str, body: str, user: str, labels, pull=None) -> dict:
        r = self.repos[repo]
        self.add_user(user)
        number = max(r.issues, default=0) + 1
        for label in labels:
            self.add_label(repo, label)
        now = self.iso()
        issue = {
            "number": number,
            "id": self.next_id(),
            "title": title,
            "body": body,
            "user": user,
            "state": "open",
            "labels": list(labels),
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
            "pull": pull,
        }
        r.issues[number] = issue
        return issue

    def add_issue(
        self,
        repo: str,
        title: str = "An issue",
        body: str = "",
        *,
        user: str = "alice",
        labels: list[str] | tuple[str, ...] = (),
    ) -> int:
        """An issue; returns its number."""
        with self.lock:
            return self._new_issue(repo, title=title, body=body, user=user, labels=labels)["number"]

    def add_pull(
        self,
        repo: str,
        head: str,
        *,
        base: str | None = None,
        title: str = "A pull request",
        body: str = "",
        user: str = "alice",
        files: dict[str, str | bytes | None] | None = None,
        head_repo: str | None = None,
        draft: bool = False,
        labels: list[str] | tuple[str, ...] = (),
    ) -> int:
        """A PR from `head` (in `head_repo`, default `repo`) into `base` (default branch).

        If the head branch does not exist it is created from base with one commit of
        `files` (a file named after the branch by default). Returns the PR number.
        """
        with self.lock:
            r = self.repos[repo]
            base = base or r.default_branch
            hr_name = head_repo or repo
            hr = self.repos[hr_name]
            if hr.sha(head) is None or files:
                parent = hr.sha(head) or hr.sha(base)
                gitrepo.commit_files(
                    hr.bare,
                    head,
                    files or {f"{head.replace('/', '-')}.txt": f"work on {head}\n"},
                    message=title,
                    parent=parent,
                )
            pull = {
                "head": head,
                "head_repo": hr_name,
                "head_sha": hr.sha(head),
                "base": base,
                "draft": draft,
                "merged": False,
                "requested_reviewers": [],
            }
            return self._new_issue(repo, title=title, body=body, user=user, labels=labels, pull=pull)["number"]

    def merge_pull(self, repo: str, number: int, *, user: str = "alice") -> str:
        """Merge the PR as GitHub's merge button does by default (a merge commit, authored by
        `user`, committed by GitHub) and close it as merged; the merge commit's sha.

        Raises ValueError when head and base conflict (GitHub: 405 "Pull Request is not
        mergeable"). The `push` webhook that follows is `event_push`'s to build.
        """
        with self.lock:
            r = self.repos[repo]
            issue = r.issues[number]
            pull = issue["pull"]
            if issue["state"] != "open":
                raise ValueError(f"pull request #{number} is not open")
            head_repo = self.repos[pull["head_repo"]]
            head = self._head_sha(repo, number)
            if head_repo is not r:
                gitrepo.git(r.bare, "fetch", "--quiet", str(head_repo.bare), head)
            self.add_user(user)
            message = (f"Merge pull request #{number} from {head_repo.owner}/{pull['head']}\n\n"
                       f"{issue['title']}")
            sha = gitrepo.merge(r.bare, pull["base"], head, message=message,
                                author=(user, f"{self.users[user]['id']}+{user}@users.noreply.github.com"))
            if sha is None:
                raise ValueError(f"pull request #{number} is not mergeable")
            now = self.iso()
            pull.update(merged=True, merged_at=now, merged_by=user, merge_commit_sha=sha)
            issue.update(state="closed", closed_at=now, updated_at=now)
            return sha

    def add_comment(self, repo: str, number: int, body: str, *, user: str = "alice") -> dict:
        """An issue/PR conversation comment; returns its REST JSON."""
        with self.lock:
            self.add_user(user)
            cid = self.next_id()
            now = self.iso()
            self.comments[cid] = {
                "id": cid,
                "repo": repo,
                "number": number,
                "body": body,
                "user": user,
                "created_at": now,
                "updated_at": now,
            }
            return self.comment_json(cid)

    def add_review(
        self,
        repo: str,
        number: int,
        *,
        user: str = "alice",
        body: str = "",
        state: str = "COMMENTED",
        comments: list[dict] | tuple[dict, ...] = (),
    ) -> dict:
        """A submitted review; `comments` are dicts with path, line (and optional body, side,
        start_line, diff_hunk). The diff hunk is computed from the real diff by default.
        Returns the review's REST JSON."""
        with self.lock:
            self.add_user(user)
            r = self.repos[repo]
            pull = r.issues[number]["pull"]
            commit_id = self._head_sha(repo, number)
            rid = self.next_id()
            now = self.iso()
            self.reviews[rid] = {
                "id": rid,
                "repo": repo,
                "number": number,
                "user": user,
                "body": body,
                "state": state.upper(),
                "commit_id": commit_id,
                "submitted_at": now,
            }
            base_sha = r.sha(pull["base"]) or ""
            hr = self.repos[pull["head_repo"]]
            for c in comments:
                hunk = c.get("diff_hunk")
                if hunk is None:
                    hunk = gitrepo.diff_hunk(hr.bare, base_sha, commit_id, c["path"], c.get("line")) if hr is r else ""
                self._new_review_comment(
                    repo,
                    number,
                    review_id=rid,
                    user=user,
                    body=c.get("body", "Please change this."),
                    path=c["path"],
                    line=c.get("line"),
                    start_line=c.get("start_line"),
                    side=c.get("side", "RIGHT"),
                    diff_hunk=hunk,
                    commit_id=commit_id,
                )
            return self.review_json(rid)

    def _new_review_comment(self, repo, number, *, review_id, user, body, path, line, start_line,
                            side, diff_hunk, commit_id, in_reply_to=None) -> dict:
        cid = self.next_id()
        now = self.iso()
        self.review_comments[cid] = {
            "id": cid,
            "repo": repo,
            "number": number,
            "review_id": review_id,
            "user": user,
            "body": body,
            "path": path,
            "line": line,
            "start_line": start_line,
            "side": side,
            "diff_hunk": diff_hunk,
            "commit_id": commit_id,
            "in_reply_to_id": in_reply_to,
            "created_at": now,
            "updated_at": now,
        }
        return self.review_comments[cid]

    def add_manifest_code(
        self, code: str | None = None, *, slug: str = "backend-bot", name: str | None = None,
        owner: str = "acme",
    ) -> str:
        """A one-time code for `POST /app-manifests/{code}/conversions`."""
        code = code or _random(20).lower()
        self.manifest_codes[code] = {"slug": slug, "name": name or slug, "owner": owner}
        return code

    # -- faults ----------------------------------------------------------------

    def fail_next(
        self, n: int = 1, *, path: str = "", method: str | None = None, status: int = 502
    ) -> None:
        """The next `n` requests whose path matches the regex `path` answer `status`."""
        self.faults.append(Fault("error", re.compile(path), method, n, status=status))

    def fail_after_next(
        self, n: int = 1, *, path: str = "", method: str | None = None, status: int = 502
    ) -> None:
        """The next `n` matching requests take effect, then answer `status` anyway: the
        answer a client gets when GitHub times out after it has written."""
        self.faults.append(Fault("late", re.compile(path), method, n, status=status))

    def chaos(self, rate: float, *, seed: int, path: str = r"^/repos/") -> None:
        """From now on, answer about `rate` of matching REST requests with a fault drawn at
        random (seeded): a 502 before the effect, a 502 after it, or a secondary rate limit."""
        self.chaos_rate = rate
        self.chaos_random = random.Random(seed)
        self.chaos_path = re.compile(path)

    def drop_next(self, n: int = 1, *, path: str = "", method: str | None = None) -> None:
        """The next `n` matching requests fail at the network level (connection reset)."""
        self.faults.append(Fault("network", re.compile(path), method, n))

    def rate_limit_next(
        self,
        n: int = 1,
        *,
        path: str = "",
        method: str | None = None,
        retry_after: float = 1,
        primary: bool = False,
        status: int = 403,
    ) -> None:
        """Secondary rate limit (`Retry-After`) or, with `primary=True`, an exhausted quota
        (`x-ratelimit-remaining: 0`, reset `retry_after` seconds from now)."""
        kind = "primary" if primary else "secondary"
        self.faults.append(Fault(kind, re.compile(path), method, n, status=status, seconds=retry_after))

    def slow_next(self, n: int = 1, *, path: str = "", method: str | None = None, seconds: float = 1.0) -> None:
        """The next `n` matching requests are answered after `seconds`."""
        self.faults.append(Fault("slow", re.compile(path), method, n, seconds=seconds))

    def expire_tokens(self, installation_id: int | None = None) -> None:
        """Every installation token minted so far stops working (401 Bad credentials)."""
        with self.lock:
            for tok in self.tokens.values():
                if installation_id is None or tok.installation_id == installation_id:
                    tok.revoked = True

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.kind != "network" and fault.matches(method, path):
                    fault.remaining -= 1
                    return fault
            if self.chaos_rate and self.chaos_path.search(path) \
                    and self.chaos_random.random() < self.chaos_rate:
                kind = self.chaos_random.choice(["error", "late", "secondary"])
                if kind == "late" and method == "GET":
                    kind = "error"
                status = 403 if kind == "secondary" else 502
                self.chaos_faults += 1
                return Fault(kind, self.chaos_path, None, 1, status=status, seconds=1)
            return None

    def take_network_fault(self, method: str, path: str) -> bool:
        with self.lock:
            for fault in self.faults:
                if fault.kind == "network" and fault.matches(method, path):
                    fault.remaining -= 1
                    self.requests.append(RecordedRequest(method, path, {}, None, 0, "network-error", path))
                    return True
            return False

    # -- tokens ----------------------------------------------------------------

    def mint_token(self, installation_id: int) -> SimToken:
        with self.lock:
            tok = SimToken(
                token="ghs_" + _random(36),
                installation_id=installation_id,
                expires_at=self.now() + self.token_ttl,
            )
            self.tokens[tok.token] = tok
            return tok

    def valid_token(self, token: str | None) -> SimToken | None:
        tok = self.tokens.get(token or "")
        if tok is None or tok.revoked or tok.expires_at <= self.now():
            return None
        return tok

    def installation_covers(self, installation_id: int, repo: str) -> bool:
        inst = self.installations.get(installation_id)
        r = self.repos.get(repo)
        if inst is None or r is None:
            return False
        if r.installation_id == installation_id:
            return True
        if inst.repositories is None:
            return inst.account == r.owner and r.installation_id is None
        return repo in inst.repositories

    # -- JSON shapes (GitHub's REST field names) ----------------------------------

    def user_json(self, login: str) -> dict:
        u = self.users.get(login) or self.add_user(login)
        html = f"{self.web_url}/{login}" if u["type"] != "Bot" else f"{self.web_url}/apps/{login[:-5]}"
        api = f"{self.api_url}/users/{login}"
        return {
            "login": login,
            "id": u["id"],
            "node_id": f"{'BOT' if u['type'] == 'Bot' else 'U'}_{u['id']}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{u['id']}?v=4",
            "gravatar_id": "",
            "url": api,
            "html_url": html,
            "followers_url": f"{api}/followers",
            "repos_url": f"{api}/repos",
            "type": u["type"],
            "user_view_type": "public",
            "site_admin": False,
        }

    def repo_json(self, full_name: str) -> dict:
        r = self.repos[full_name]
        api = f"{self.api_url}/repos/{full_name}"
        html = f"{self.web_url}/{full_name}"
        data = {
            "id": r.id,
            "node_id": f"R_{r.id}",
            "name": r.name,
            "full_name": full_name,
            "private": r.private,
            "owner": self.user_json(r.owner),
            "html_url": html,
            "description": r.description or None,
            "fork": r.fork_of is not None,
            "url": api,
            "issues_url": api + "/issues{/number}",
            "pulls_url": api + "/pulls{/number}",
            "git_url": f"git://{self.web_url.split('://', 1)[1]}/{full_name}.git",
            "ssh_url": f"git@{self.web_url.split('://', 1)[1].split(':')[0]}:{full_name}.git",
            "clone_url": f"{html}.git",
            "created_at": r.created_at,
            "updated_at": r.created_at,
            "pushed_at": self.iso(),
            "default_branch": r.default_branch,
            "visibility": "private" if r.private else "public",
            "archived": False,
            "disabled": False,
            "has_issues": True,
            "topics": [],
            "open_issues_count": sum(1 for i in r.issues.values() if i["state"] == "open"),
        }
        if r.fork_of:
            data["parent"] = {"full_name": r.fork_of, "id": self.repos[r.fork_of].id}
        return data

    def author_association(self, repo: str, login: str) -> str:
        r = self.repos[repo]
        if login == r.owner:
            return "OWNER"
        role = r.permissions.get(login)
        if role in ("admin", "maintain"):
            return "MEMBER"
        if role and role != "none":
            return "COLLABORATOR"
        return "NONE"

    def label_json(self, repo: str, name: str) -> dict:
        return dict(self.add_label(repo, name))

    def issue_json(self, repo: str, number: int) -> dict:
        i = self.repos[repo].issues[number]
        api = f"{self.api_url}/repos/{repo}/issues/{number}"
        kind = "pull" if i["pull"] else "issues"
        data = {
            "url": api,
            "repository_url": f"{self.api_url}/repos/{repo}",
            "labels_url": api + "/labels{/name}",
            "comments_url": api + "/comments",
            "events_url": api + "/events",
            "html_url": f"{self.web_url}/{repo}/{kind}/{number}",
            "id": i["id"],
            "node_id": f"I_{i['id']}",
            "number": number,
            "title": i["title"],
            "user": self.user_json(i["user"]),
            "labels": [self.label_json(repo, name) for name in i["labels"]],
            "state": i["state"],
            "state_reason": None if i["state"] == "open" else "completed",
            "locked": False,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": sum(1 for c in self.comments.values() if c["repo"] == repo and c["number"] == number),
            "created_at": i["created_at"],
            "updated_at": i["updated_at"],
            "closed_at": i["closed_at"],
            "author_association": self.author_association(repo, i["user"]),
            "active_lock_reason": None,
            "body": i["body"] or None,
            "reactions": self._reaction_rollup("issue", number, repo),
            "timeline_url": api + "/timeline",
            "performed_via_github_app": None,
        }
        if i["pull"]:
            p = f"{self.api_url}/repos/{repo}/pulls/{number}"
            html = f"{self.web_url}/{repo}/pull/{number}"
            data["pull_request"] = {
                "url": p,
                "html_url": html,
                "diff_url": html + ".diff",
                "patch_url": html + ".patch",
                "merged_at": None,
            }
            data["draft"] = i["pull"]["draft"]
        return data

    def _head_sha(self, repo: str, number: int) -> str:
        pull = self.repos[repo].issues[number]["pull"]
        sha = self.repos[pull["head_repo"]].sha(pull["head"])
        if sha:
            pull["head_sha"] = sha  # remember it, in case the branch is deleted
        return pull["head_sha"]

    def _mergeability(self, repo: str, number: int) -> dict:
        """`mergeable` and `mergeable_state` as GitHub computes them for an open pull request:
        a trial merge of its head into its base (`git merge-tree`); closed ones are not."""
        r = self.repos[repo]
        p = r.issues[number]["pull"]
        base_sha = r.sha(p["base"])
        if r.issues[number]["state"] != "open" or not base_sha or p["head_repo"] != repo:
            return {"mergeable": None, "mergeable_state": "unknown"}
        clean = gitrepo.merges_cleanly(r.bare, base_sha, self._head_sha(repo, number))
        return {"mergeable": clean, "mergeable_state": "clean" if clean else "dirty"}

    def _branch_json(self, repo: str, ref: str, sha: str) -> dict:
        owner = repo.split("/")[0]
        return {
            "label": f"{owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": self.user_json(owner),
            "repo": self.repo_json(repo) if repo in self.repos else None,
        }

    def pull_json(self, repo: str, number: int) -> dict:
        r = self.repos[repo]
        i = r.issues[number]
        p = i["pull"]
        api = f"{self.api_url}/repos/{repo}/pulls/{number}"
        html = f"{self.web_url}/{repo}/pull/{number}"
        head_sha = self._head_sha(repo, number)
        base_sha = r.sha(p["base"]) or ""
        return {
            "url": api,
            "id": i["id"] + 500000,
            "node_id": f"PR_{i['id']}",
            "html_url": html,
            "diff_url": html + ".diff",
            "patch_url": html + ".patch",
            "issue_url": f"{self.api_url}/repos/{repo}/issues/{number}",
            "number": number,
            "state": i["state"],
            "locked": False,
            "title": i["title"],
            "user": self.user_json(i["user"]),
            "body": i["body"] or None,
            "labels": [self.label_json(repo, name) for name in i["labels"]],
            "milestone": None,
            "created_at": i["created_at"],
            "updated_at": i["updated_at"],
            "closed_at": i["closed_at"],
            "merged_at": p.get("merged_at"),
            "merge_commit_sha": p.get("merge_commit_sha"),
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [self.user_json(u) for u in p["requested_reviewers"]],
            "requested_teams": [],
            "head": self._branch_json(p["head_repo"], p["head"], head_sha),
            "base": self._branch_json(repo, p["base"], base_sha),
            "author_association": self.author_association(repo, i["user"]),
            "auto_merge": None,
            "active_lock_reason": None,
            "draft": p["draft"],
            "merged": p["merged"],
            **self._mergeability(repo, number),
            "rebaseable": None,
            "merged_by": self.user_json(p["merged_by"]) if p.get("merged_by") else None,
            "comments": sum(1 for c in self.comments.values() if c["repo"] == repo and c["number"] == number),
            "review_comments": sum(1 for c in self.review_comments.values() if c["repo"] == repo and c["number"] == number),
            "maintainer_can_modify": False,
            "commits": gitrepo.count_commits(r.bare, base_sha, head_sha) if p["head_repo"] == repo and base_sha else 1,
            "additions": 0,
            "deletions": 0,
            "changed_files": 0,
        }

    def comment_json(self, cid: int) -> dict:
        c = self.comments[cid]
        return {
            "url": f"{self.api_url}/repos/{c['repo']}/issues/comments/{cid}",
            "html_url": f"{self.web_url}/{c['repo']}/issues/{c['number']}#issuecomment-{cid}",
            "issue_url": f"{self.api_url}/repos/{c['repo']}/issues/{c['number']}",
            "id": cid,
            "node_id": f"IC_{cid}",
            "user": self.user_json(c["user"]),
            "created_at": c["created_at"],
            "updated_at": c["updated_at"],
            "author_association": self.author_association(c["repo"], c["user"]),
            "body": c["body"],
            "reactions": self._reaction_rollup("comment", cid, c["repo"]),
            "performed_via_github_app": None,
        }

    def review_json(self, rid: int, *, webhook: bool = False) -> dict:
        rv = self.reviews[rid]
        repo, number = rv["repo"], rv["number"]
        html = f"{self.web_url}/{repo}/pull/{number}#pullrequestreview-{rid}"
        pr_url = f"{self.api_url}/repos/{repo}/pulls/{number}"
        return {
            "id": rid,
            "node_id": f"PRR_{rid}",
            "user": self.user_json(rv["user"]),
            "body": rv["body"] or None,
            "state": rv["state"].lower() if webhook else rv["state"],
            "html_url": html,
            "pull_request_url": pr_url,
            "author_association": self.author_association(repo, rv["user"]),
            "_links": {"html": {"href": html}, "pull_request": {"href": pr_url}},
            "submitted_at": rv["submitted_at"],
            "commit_id": rv["commit_id"],
        }

    def review_comment_json(self, cid: int) -> dict:
        c = self.review_comments[cid]
        repo, number = c["repo"], c["number"]
        api = f"{self.api_url}/repos/{repo}/pulls/comments/{cid}"
        html = f"{self.web_url}/{repo}/pull/{number}#discussion_r{cid}"
        pr_url = f"{self.api_url}/repos/{repo}/pulls/{number}"
        data = {
            "url": api,
            "pull_request_review_id": c["review_id"],
            "id": cid,
            "node_id": f"PRRC_{cid}",
            "diff_hunk": c["diff_hunk"],
            "path": c["path"],
            "position": c["line"],
            "original_position": c["line"],
            "commit_id": c["commit_id"],
            "original_commit_id": c["commit_id"],
            "user": self.user_json(c["user"]),
            "body": c["body"],
            "created_at": c["created_at"],
            "updated_at": c["updated_at"],
            "html_url": html,
            "pull_request_url": pr_url,
            "author_association": self.author_association(repo, c["user"]),
            "_links": {"self": {"href": api}, "html": {"href": html}, "pull_request": {"href": pr_url}},
            "reactions": self._reaction_rollup("review_comment", cid, repo),
            "start_line": c["start_line"],
            "original_start_line": c["start_line"],
            "start_side": c["side"] if c["start_line"] else None,
            "line": c["line"],
            "original_line": c["line"],
            "side": c["side"],
            "subject_type": "line" if c["line"] else "file",
        }
        if c["in_reply_to_id"]:
            data["in_reply_to_id"] = c["in_reply_to_id"]
        return data

    def reaction_json(self, rid: int) -> dict:
        r = self.reactions[rid]
        return {
            "id": rid,
            "node_id": f"REA_{rid}",
            "user": self.user_json(r["user"]),
            "content": r["content"],
            "created_at": r["created_at"],
        }

    def _reaction_rollup(self, kind: str, target: int, repo: str) -> dict:
        counts = {c: 0 for c in REACTION_CONTENTS}
        for r in self.reactions.values():
            if r["target"] == (repo, kind, target):
                counts[r["content"]] += 1
        return {"total_count": sum(counts.values()), **counts}

    def reactions_on(self, repo: str, kind: str, target: int) -> list[dict]:
        """Reactions on an issue (`issue`, number), `comment` or `review_comment` (ids)."""
        return [
            self.reaction_json(rid)
            for rid, r in self.reactions.items()
            if r["target"] == (repo, kind, target)
        ]

    def comments_on(self, repo: str, number: int) -> list[dict]:
        return [
            self.comment_json(cid)
            for cid, c in self.comments.items()
            if c["repo"] == repo and c["number"] == number
        ]

    def pulls(self, repo: str) -> list[dict]:
        return [self.pull_json(repo, n) for n, i in self.repos[repo].issues.items() if i["pull"]]

    def installation_json(self, installation_id: int) -> dict:
        inst = self.installations[installation_id]
        app = self.apps[inst.app_id]
        account = self.users[inst.account]
        return {
            "id": installation_id,
            "account": self.user_json(inst.account),
            "repository_selection": "all" if inst.repositories is None else "selected",
            "access_tokens_url": f"{self.api_url}/app/installations/{installation_id}/access_tokens",
            "repositories_url": f"{self.api_url}/installation/repositories",
            "html_url": f"{self.web_url}/organizations/{inst.account}/settings/installations/{installation_id}",
            "app_id": app.id,
            "app_slug": app.slug,
            "client_id": app.client_id,
            "target_id": account["id"],
            "target_type": account["type"],
            "permissions": {"contents": "write", "issues": "write", "pull_requests": "write",
                            "checks": "write", "metadata": "read"},
            "events": ["issues", "issue_comment", "pull_request", "pull_request_review"],
            "created_at": self.iso(),
            "updated_at": self.iso(),
            "single_file_name": None,
            "suspended_at": None,
            "suspended_by": None,
        }

    def app_json(self, app: SimApp) -> dict:
        return {
            "id": app.id,
            "slug": app.slug,
            "node_id": f"A_{app.id}",
            "client_id": app.client_id,
            "owner": self.user_json(app.owner),
            "name": app.name,
            "description": "",
            "external_url": f"{self.web_url}/apps/{app.slug}",
            "html_url": f"{self.web_url}/apps/{app.slug}",
            "created_at": self.iso(),
            "updated_at": self.iso(),
            "permissions": {"contents": "write", "issues": "write", "pull_requests": "write",
                            "checks": "write", "metadata": "read"},
            "events": ["issues", "issue_comment", "pull_request", "pull_request_review"],
            "installations_count": sum(1 for i in self.installations.values() if i.app_id == app.id),
        }

    # -- webhook payloads built from the simulator's state ----------------------------

    def _envelope(self, repo: str, sender: str, action: str) -> dict:
        r = self.repos[repo]
        payload: dict[str, Any] = {"action": action}
        payload["repository"] = self.repo_json(repo)
        payload["organization" if self.users[r.owner]["type"] == "Organization" else "owner"] = self.user_json(r.owner)
        payload["sender"] = self.user_json(sender)
        if r.installation_id is not None:
            payload["installation"] = {"id": r.installation_id, "node_id": f"MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{r.installation_id}"}
        return payload

    def event_issues_labeled(self, repo: str, number: int, label: str, *, sender: str = "alice") -> dict:
        """`issues` / `labeled` (the label is added to the issue first)."""
        with self.lock:
            issue = self.repos[repo].issues[number]
            if label not in issue["labels"]:
                issue["labels"].append(label)
            self.add_user(sender)
            payload = self._envelope(repo, sender, "labeled")
            payload["issue"] = self.issue_json(repo, number)
            payload["label"] = self.label_json(repo, label)
            return _ordered(payload, "action", "issue", "label")

    def event_issues_opened(self, repo: str, number: int) -> dict:
        with self.lock:
            issue = self.repos[repo].issues[number]
            payload = self._envelope(repo, issue["user"], "opened")
            payload["issue"] = self.issue_json(repo, number)
            return _ordered(payload, "action", "issue")

    def event_issue_comment_created(
        self, repo: str, number: int, body: str, *, sender: str = "alice"
    ) -> dict:
        """`issue_comment` / `created`: the comment is added to the issue/PR, then described."""
        with self.lock:
            comment = self.add_comment(repo, number, body, user=sender)
            payload = self._envelope(repo, sender, "created")
            payload["issue"] = self.issue_json(repo, number)
            payload["comment"] = comment
            return _ordered(payload, "action", "issue", "comment")

    def event_pull_request(self, repo: str, number: int, action: str = "opened", *, sender: str | None = None) -> dict:
        with self.lock:
            i = self.repos[repo].issues[number]
            payload = self._envelope(repo, sender or i["user"], action)
            payload["number"] = number
            payload["pull_request"] = self.pull_json(repo, number)
            return _ordered(payload, "action", "number", "pull_request")

    def event_pull_request_review_submitted(self, repo: str, number: int, review_id: int) -> dict:
        """`pull_request_review` / `submitted` for a review made with `add_review`."""
        with self.lock:
            rv = self.reviews[review_id]
            payload = self._envelope(repo, rv["user"], "submitted")
            payload["review"] = self.review_json(review_id, webhook=True)
            payload["pull_request"] = self.pull_json(repo, number)
            return _ordered(payload, "action", "review", "pull_request")

    def event_push(self, repo: str, branch: str, *, before: str, sender: str = "alice") -> dict:
        """`push` of `branch` from `before` to where it is now, as GitHub describes it (at most
        20 commits listed, oldest first; `before` all zeros for a new branch)."""
        with self.lock:
            r = self.repos[repo]
            after = r.sha(branch) or "0" * 40
            created, deleted = set(before) == {"0"}, set(after) == {"0"}
            self.add_user(sender)
            commits = [] if deleted else gitrepo.commits_between(
                r.bare, r.default_branch if created else before, after)
            listed = [self._push_commit_json(repo, c) for c in commits[-20:]]
            payload = self._envelope(repo, sender, "")
            del payload["action"]
            user = self.users[sender]
            payload.update({
                "ref": f"refs/heads/{branch}",
                "before": before,
                "after": after,
                "pusher": {"name": sender, "email": f"{user['id']}+{sender}@users.noreply.github.com"},
                "created": created,
                "deleted": deleted,
                "forced": not created and not deleted and not gitrepo.is_ancestor(r.bare, before, after),
                "base_ref": None,
                "compare": f"{self.web_url}/{repo}/compare/{before[:12]}...{after[:12]}",
                "commits": listed,
                "head_commit": listed[-1] if listed else None,
            })
            return _ordered(payload, "ref", "before", "after", "repository", "pusher")

    def _push_commit_json(self, repo: str, commit: dict) -> dict:
        def person(name_email: tuple[str, str]) -> dict:
            name, email = name_email
            return {"name": name, "email": email,
                    **({"username": name} if name in self.users else {})}

        return {
            "id": commit["id"],
            "tree_id": commit["tree_id"],
            "distinct": True,
            "message": commit["message"],
            "timestamp": commit["timestamp"],
            "url": f"{self.web_url}/{repo}/commit/{commit['id']}",
            "author": person(commit["author"]),
            "committer": person(commit["committer"]),
            "added": commit["added"],
            "removed": commit["removed"],
            "modified": commit["modified"],
        }

    # -- delivering webhooks ---------------------------------------------------------

    def webhook_request(
        self, secret: str, event: str, payload: dict, *, delivery_id: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body exactly as GitHub sends a webhook."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        app = self.default_app if self.apps else None
        headers = {
            "Accept": "*/*",
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/abc1234",
            "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
            "X-GitHub-Event": event,
            "X-GitHub-Hook-ID": "123456789",
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-GitHub-Hook-Installation-Target-ID": str(app.id if app else 1),
            "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256": sign(secret, body),
        }
        return headers, body

    def deliver(
        self,
        url: str,
        secret: str,
        event: str,
        payload: dict,
        *,
        delivery_id: str | None = None,
        timeout: float = 10.0,
    ) -> httpx.Response:
        """POST a signed webhook to a real URL (e.g. the bot's server on 127.0.0.1)."""
        headers, body = self.webhook_request(secret, event, payload, delivery_id=delivery_id)
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            return client.post(url, content=body, headers=headers)

    async def adeliver(
        self,
        url: str,
        secret: str,
        event: str,
        payload: dict,
        *,
        delivery_id: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> httpx.Response:
        """Async `deliver`; with `transport=httpx.ASGITransport(app=bot_app)` it stays in-process."""
        headers, body = self.webhook_request(secret, event, payload, delivery_id=delivery_id)
        async with httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False) as client:
            return await client.post(url, content=body, headers=headers)

    # -- wiring the bot to the simulator ---------------------------------------------

    def transport(self) -> httpx.AsyncBaseTransport:
        """An in-process transport to this simulator (for GitHubApp(transport=...))."""
        return _SimTransport(self)

    def settings_overrides(self, app: SimApp | None = None) -> dict:
        """Settings fields pointing the bot at this App (and, while served, at this server)."""
        app = app or self.default_app
        values: dict[str, Any] = {
            "app_id": app.id,
            "private_key": app.private_key_pem,
            "webhook_secret": app.webhook_secret,
        }
        if self._served_url:
            proto, host = self._served_url.split("://", 1)
            values.update(ghe_host=host, ghe_protocol=proto)
        return values

    @contextlib.contextmanager
    def serve(self, wrap: Callable | None = None) -> Iterator[str]:
        """Run the simulator on 127.0.0.1 (free port) in a thread; yields its base URL.

        The REST API answers at the base URL and at `<base>/api/v3`; git at `<base>/<owner>/<repo>.git`.
        `wrap(app) -> app` puts ASGI middleware around the simulator (benchmarks time requests).
        """
        import uvicorn

        # IPPROTO_TCP spelled out: the event loop sets TCP_NODELAY on accepted connections only
        # when the listening socket says it is TCP; otherwise answers can wait ~40 ms (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        app = wrap(self.app) if wrap else self.app
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("simulator server did not start")
            time.sleep(0.01)
        self._served_url = f"http://127.0.0.1:{port}"
        try:
            yield self._served_url
        finally:
            self._served_url = None
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()

    # -- assertions helpers ------------------------------------------------------------

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        """Recorded requests with this method whose path matches the regex (anchored at both ends)."""
        pattern = re.compile(path)
        return [r for r in self.requests if r.method == method and pattern.fullmatch(r.path)]

    # -- CI: check suites and runs, Actions workflow runs and job logs, commit statuses ------

    ACTIONS_SLUG = "github-actions"

    def actions_app(self) -> SimApp:
        """GitHub Actions, an App like any other as far as checks go (made on first use)."""
        with self.lock:
            found = next((a for a in self.apps.values() if a.slug == self.ACTIONS_SLUG), None)
            return found or self.add_app(slug=self.ACTIONS_SLUG, name="GitHub Actions", owner="github")

    def add_check_run(
        self,
        repo: str,
        sha: str,
        name: str,
        *,
        conclusion: str = "failure",
        title: str | None = None,
        summary: str | None = None,
        text: str | None = None,
        annotations: list[dict] | tuple[dict, ...] = (),
        log: str | None = None,
        workflow: str = "CI",
        app: SimApp | None = None,
    ) -> int:
        """A completed check run on `sha`; returns its id.

        Without `app` it is a job of the Actions workflow `workflow`, whose run and check suite
        are made with its first job; `log` is the job's log (`GET /actions/jobs/{id}/logs`,
        the job's id being its check run's, as on GitHub). With `app`, the run is in that App's
        suite on the commit. `annotations` take GitHub's fields (path, start_line, message,
        annotation_level, title)."""
        with self.lock:
            app = app or self.actions_app()
            workflow_name = workflow if app.slug == self.ACTIONS_SLUG else None
            suite_id = next((sid for sid, suite in self.check_suites.items()
                             if suite["repo"] == repo and suite["head_sha"] == sha
                             and suite["app"] is app and suite["workflow"] == workflow_name), None)
            if suite_id is None:
                suite_id = self.next_id()
                branch = next((b for b, at in self.branches(repo).items() if at == sha), None)
                self.check_suites[suite_id] = {"repo": repo, "head_sha": sha, "head_branch": branch,
                                               "app": app, "workflow": workflow_name,
                                               "created_at": self.iso()}
                if workflow_name is not None:
                    self.workflow_runs[self.next_id()] = {"repo": repo, "suite_id": suite_id,
                                                          "name": workflow_name}
            rid = self.next_id()
            self.check_runs[rid] = {
                "repo": repo, "head_sha": sha, "name": name, "status": "completed",
                "conclusion": conclusion, "app": app, "started_at": self.iso(),
                "completed_at": self.iso(), "suite_id": suite_id,
                "output": {"title": title, "summary": summary, "text": text},
                "annotations": [dict(a) for a in annotations], "log": log,
            }
            return rid

    def add_status(self, repo: str, sha: str, context: str, state: str = "failure", *,
                   description: str = "", target_url: str | None = None,
                   creator: str = "alice") -> int:
        """A commit status (`POST /repos/{o}/{r}/statuses/{sha}`, as an outside CI posts it)."""
        with self.lock:
            self.add_user(creator)
            sid = self.next_id()
            self.statuses[sid] = {"id": sid, "repo": repo, "sha": sha, "context": context,
                                  "state": state, "description": description,
                                  "target_url": target_url, "creator": creator,
                                  "created_at": self.iso()}
            return sid

    def _ci_sha(self, repo: str, ref: str) -> str:
        return self.repos[repo].sha(ref) or ref

    def suite_of_workflow_run(self, run_id: int) -> int:
        return self.workflow_runs[run_id]["suite_id"]

    def workflow_run_of_suite(self, suite_id: int) -> int:
        return next(rid for rid, run in self.workflow_runs.items() if run["suite_id"] == suite_id)

    def suite_conclusion(self, suite_id: int) -> str:
        found = {run["conclusion"] for run in self.check_runs.values() if run.get("suite_id") == suite_id}
        for conclusion in ("failure", "timed_out", "cancelled", "action_required"):
            if conclusion in found:
                return conclusion
        return "success"

    def statuses_on(self, repo: str, ref: str) -> list[dict]:
        """The latest status of each context on the commit, newest first (GitHub's combined view)."""
        sha = self._ci_sha(repo, ref)
        latest: dict[str, dict] = {}
        for status in sorted(self.statuses.values(), key=lambda s: s["id"]):
            if status["repo"] == repo and status["sha"] == sha:
                latest[status["context"]] = status
        return sorted(latest.values(), key=lambda s: -s["id"])

    def status_json(self, sid: int) -> dict:
        s = self.statuses[sid]
        return {
            "url": f"{self.api_url}/repos/{s['repo']}/statuses/{s['sha']}",
            "avatar_url": None, "id": sid, "node_id": f"SC_{sid}", "state": s["state"],
            "description": s["description"] or None, "target_url": s["target_url"],
            "context": s["context"], "created_at": s["created_at"], "updated_at": s["created_at"],
            "creator": self.user_json(s["creator"]),
        }

    def _ci_pulls(self, repo: str, sha: str) -> list[dict]:
        """The `pull_requests` of a check or workflow payload: open pull requests of this
        repository whose head is the commit (GitHub lists none from forks)."""
        found = []
        for number, issue in sorted(self.repos[repo].issues.items()):
            pull = issue["pull"]
            if not pull or issue["state"] != "open" or pull["head_repo"] != repo:
                continue
            if self._head_sha(repo, number) != sha:
                continue
            repo_ref = {"id": self.repos[repo].id, "url": f"{self.api_url}/repos/{repo}",
                        "name": self.repos[repo].name}
            found.append({
                "url": f"{self.api_url}/repos/{repo}/pulls/{number}", "id": issue["id"] + 500000,
                "number": number,
                "head": {"ref": pull["head"], "sha": sha, "repo": repo_ref},
                "base": {"ref": pull["base"], "sha": self.repos[repo].sha(pull["base"]) or "",
                         "repo": repo_ref},
            })
        return found

    def check_suite_json(self, suite_id: int) -> dict:
        suite = self.check_suites[suite_id]
        runs = [run for run in self.check_runs.values() if run.get("suite_id") == suite_id]
        done = all(run["status"] == "completed" for run in runs)
        return {
            "id": suite_id, "node_id": f"CS_{suite_id}", "head_branch": suite["head_branch"],
            "head_sha": suite["head_sha"], "status": "completed" if done else "in_progress",
            "conclusion": self.suite_conclusion(suite_id) if done else None,
            "url": f"{self.api_url}/repos/{suite['repo']}/check-suites/{suite_id}",
            "before": None, "after": suite["head_sha"],
            "pull_requests": self._ci_pulls(suite["repo"], suite["head_sha"]),
            "app": self.app_json(suite["app"]), "created_at": suite["created_at"],
            "updated_at": self.iso(), "rerequestable": True, "runs_rerequestable": True,
            "latest_check_runs_count": len(runs),
            "check_runs_url": f"{self.api_url}/repos/{suite['repo']}/check-suites/{suite_id}/check-runs",
        }

    def check_run_json(self, rid: int) -> dict:
        run = self.check_runs[rid]
        api = f"{self.api_url}/repos/{run['repo']}/check-runs/{rid}"
        output = run.get("output", {})
        suite_id = run.get("suite_id")
        return {
            "id": rid,
            "node_id": f"CR_{rid}",
            "head_sha": run["head_sha"],
            "external_id": run.get("external_id", ""),
            "url": api,
            "html_url": f"{self.web_url}/{run['repo']}/runs/{rid}",
            "details_url": run.get("details_url"),
            "status": run["status"],
            "conclusion": run.get("conclusion"),
            "started_at": run.get("started_at"),
            "completed_at": run.get("completed_at"),
            "output": {
                "title": output.get("title"),
                "summary": output.get("summary"),
                "text": output.get("text"),
                "annotations_count": len(run.get("annotations") or []),
                "annotations_url": api + "/annotations",
            },
            "name": run["name"],
            # The bot's own runs (made through the API) have no suite of their own here.
            "check_suite": self.check_suite_json(suite_id) if suite_id else {"id": rid + 1},
            "app": self.app_json(run["app"]),
            "pull_requests": self._ci_pulls(run["repo"], run["head_sha"]),
        }

    def annotation_json(self, rid: int, index: int) -> dict:
        run = self.check_runs[rid]
        a = run["annotations"][index]
        return {
            "path": a.get("path", "README.md"), "blob_href": f"{self.web_url}/{run['repo']}/blob/{run['head_sha']}/{a.get('path', '')}",
            "start_line": a.get("start_line", 1), "end_line": a.get("end_line", a.get("start_line", 1)),
            "start_column": None, "end_column": None,
            "annotation_level": a.get("annotation_level", "failure"), "title": a.get("title"),
            "message": a.get("message", ""), "raw_details": a.get("raw_details"),
        }

    def workflow_run_json(self, run_id: int) -> dict:
        wr = self.workflow_runs[run_id]
        suite = self.check_suites[wr["suite_id"]]
        repo = wr["repo"]
        api = f"{self.api_url}/repos/{repo}/actions/runs/{run_id}"
        suite_json = self.check_suite_json(wr["suite_id"])
        return {
            "id": run_id, "name": wr["name"], "node_id": f"WFR_{run_id}",
            "head_branch": suite["head_branch"], "head_sha": suite["head_sha"],
            "path": ".github/workflows/ci.yml", "display_title": wr["name"], "run_number": run_id,
            "event": "push", "status": suite_json["status"], "conclusion": suite_json["conclusion"],
            "workflow_id": 1, "check_suite_id": wr["suite_id"], "check_suite_node_id": f"CS_{wr['suite_id']}",
            "url": api, "html_url": f"{self.web_url}/{repo}/actions/runs/{run_id}",
            "pull_requests": suite_json["pull_requests"], "created_at": suite["created_at"],
            "updated_at": self.iso(), "run_attempt": 1, "run_started_at": suite["created_at"],
            "jobs_url": api + "/jobs", "logs_url": api + "/logs",
            "check_suite_url": suite_json["url"],
            "head_commit": {"id": suite["head_sha"]},
            "repository": self.repo_json(repo), "head_repository": self.repo_json(repo),
        }

    def _ci_sender(self, app: SimApp, sender: str | None) -> str:
        # GitHub names who caused the run (who pushed); by default here, the checks' own App.
        return sender or app.bot_login

    def event_check_run(self, repo: str, rid: int, *, action: str = "completed",
                        sender: str | None = None) -> dict:
        """`check_run` for a run made with `add_check_run` (or by the bot through the API)."""
        with self.lock:
            payload = self._envelope(repo, self._ci_sender(self.check_runs[rid]["app"], sender), action)
            payload["check_run"] = self.check_run_json(rid)
            return _ordered(payload, "action", "check_run")

    def event_check_suite(self, repo: str, suite_id: int, *, action: str = "completed",
                          sender: str | None = None) -> dict:
        with self.lock:
            payload = self._envelope(repo, self._ci_sender(self.check_suites[suite_id]["app"], sender), action)
            payload["check_suite"] = self.check_suite_json(suite_id)
            return _ordered(payload, "action", "check_suite")

    def event_workflow_run(self, repo: str, run_id: int, *, action: str = "completed",
                           sender: str | None = None) -> dict:
        with self.lock:
            suite = self.check_suites[self.workflow_runs[run_id]["suite_id"]]
            payload = self._envelope(repo, self._ci_sender(suite["app"], sender), action)
            payload["workflow_run"] = self.workflow_run_json(run_id)
            payload["workflow"] = {"id": 1, "name": self.workflow_runs[run_id]["name"],
                                   "path": ".github/workflows/ci.yml", "state": "active"}
            return _ordered(payload, "action", "workflow_run", "workflow")

    def event_status(self, repo: str, sid: int) -> dict:
        """`status` (no action): the commit, and the branches whose head it is."""
        with self.lock:
            s = self.statuses[sid]
            payload = self._envelope(repo, s["creator"], "")
            del payload["action"]
            payload.update({
                "id": sid, "sha": s["sha"], "name": repo, "target_url": s["target_url"],
                "context": s["context"], "description": s["description"] or None,
                "state": s["state"], "commit": {"sha": s["sha"]},
                "branches": [{"name": b, "commit": {"sha": at}, "protected": False}
                             for b, at in self.branches(repo).items() if at == s["sha"]],
                "created_at": s["created_at"], "updated_at": s["created_at"],
            })
            return _ordered(payload, "id", "sha", "name")


def _ordered(payload: dict, *first: str) -> dict:
    return {**{k: payload[k] for k in first}, **{k: v for k, v in payload.items() if k not in first}}


class _SimTransport(httpx.AsyncBaseTransport):
    """ASGI in-process, plus the `network` fault (raised as a connection error)."""

    def __init__(self, sim: GitHubSimulator) -> None:
        self.sim = sim
        self.asgi = httpx.ASGITransport(app=sim.app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/api/v3/"):
            path = path[len("/api/v3"):]
        fault = self.sim.take_network_fault(request.method, path)
        if fault:
            raise httpx.ConnectError("simulated connection reset", request=request)
        return await self.asgi.handle_async_request(request)
