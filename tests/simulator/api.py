"""The simulator's HTTP face: GitHub's REST routes (at `/` and `/api/v3`) and git smart HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.simulator import gitrepo
from tests.simulator.core import REACTION_CONTENTS, RecordedRequest
from tests.simulator.githttp import basic_password, run_http_backend

if TYPE_CHECKING:
    from tests.simulator.core import GitHubSimulator, SimApp, SimRepo, SimToken

DOCS = "https://docs.github.com/rest"
GIT_RE = re.compile(
    r"^/(?P<owner>[^/]+)/(?P<name>[^/]+?)(?:\.git)?/(?P<rest>info/refs|git-upload-pack|git-receive-pack)$"
)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list | None = None,
        headers: dict[str, str] | None = None,
        doc: str = DOCS,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "documentation_url": doc}
        if errors is not None:
            self.body["errors"] = errors
        self.body["status"] = str(status)
        self.headers = headers or {}


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


def validation(errors: list, message: str = "Validation Failed") -> ApiError:
    return ApiError(422, message, errors=errors)


@dataclass
class Ctx:
    sim: GitHubSimulator
    request: Request
    method: str
    path: str
    query: dict[str, str]
    body: Any
    app: SimApp | None = None
    token: SimToken | None = None

    @property
    def actor(self) -> str:
        """Who acts: the bot user of the token's App."""
        inst = self.sim.installations[self.token.installation_id]
        return self.sim.apps[inst.app_id].bot_login

    def repo(self, owner: str, name: str) -> SimRepo:
        full = f"{owner}/{name}"
        if full not in self.sim.repos or not self.sim.installation_covers(self.token.installation_id, full):
            raise not_found()
        return self.sim.repos[full]

    def issue(self, owner: str, name: str, n: str) -> tuple[str, dict]:
        repo = self.repo(owner, name)
        issue = repo.issues.get(int(n))
        if issue is None:
            raise not_found()
        return repo.full_name, issue

    def pull(self, owner: str, name: str, n: str) -> tuple[str, dict]:
        full, issue = self.issue(owner, name, n)
        if not issue["pull"]:
            raise not_found()
        return full, issue

    def field(self, name: str, kind: type | tuple = str, *, required: bool = True, resource: str = "") -> Any:
        body = self.body if isinstance(self.body, dict) else {}
        if name not in body or body[name] is None:
            if required:
                raise validation([{"resource": resource, "field": name, "code": "missing_field"}])
            return None
        if not isinstance(body[name], kind):
            raise ApiError(
                422,
                f'Invalid request.\n\nFor \'properties/{name}\', {json.dumps(body[name])} is not a {getattr(kind, "__name__", "valid value")}.',
            )
        return body[name]

    def page(self, items: list) -> tuple[int, list, dict[str, str]]:
        try:
            per_page = max(1, min(int(self.query.get("per_page", 30)), 100))
            page = max(1, int(self.query.get("page", 1)))
        except ValueError:
            raise ApiError(400, "Invalid pagination parameters") from None
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []

        def url(n: int) -> str:
            return str(self.request.url.include_query_params(page=n, per_page=per_page))

        if page > 1:
            links += [f'<{url(page - 1)}>; rel="prev"', f'<{url(1)}>; rel="first"']
        if page < last:
            links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
        return 200, chunk, ({"Link": ", ".join(links)} if links else {})


Handler = Callable[..., tuple]
ROUTES: list[tuple[str, re.Pattern, str, Handler]] = []


def route(method: str, pattern: str, auth: str = "installation"):
    """Register a handler; `auth` is "app" (JWT), "installation" (token), "public" or "none"."""
    regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

    def register(fn: Handler) -> Handler:
        ROUTES.append((method, regex, auth, fn))
        return fn

    return register


# -- App endpoints -------------------------------------------------------------------------


@route("GET", "/app", auth="app")
def get_app(ctx: Ctx):
    return 200, ctx.sim.app_json(ctx.app)


@route("GET", "/app/installations", auth="app")
def list_installations(ctx: Ctx):
    return ctx.page([ctx.sim.installation_json(i) for i, inst in ctx.sim.installations.items() if inst.app_id == ctx.app.id])


@route("GET", "/app/installations/{iid}", auth="app")
def get_installation(ctx: Ctx, iid: str):
    inst = ctx.sim.installations.get(int(iid))
    if inst is None or inst.app_id != ctx.app.id:
        raise not_found()
    return 200, ctx.sim.installation_json(inst.id)


@route("POST", "/app/installations/{iid}/access_tokens", auth="app")
def create_token(ctx: Ctx, iid: str):
    inst = ctx.sim.installations.get(int(iid))
    if inst is None or inst.app_id != ctx.app.id:
        raise not_found()
    tok = ctx.sim.mint_token(inst.id)
    return 201, {
        "token": tok.token,
        "expires_at": ctx.sim.iso(tok.expires_at),
        "permissions": ctx.sim.installation_json(inst.id)["permissions"],
        "repository_selection": "all" if inst.repositories is None else "selected",
    }


@route("GET", "/repos/{owner}/{name}/installation", auth="app")
def get_repo_installation(ctx: Ctx, owner: str, name: str):
    repo = ctx.sim.repos.get(f"{owner}/{name}")
    if repo is None or repo.installation_id is None:
        raise not_found()
    inst = ctx.sim.installations[repo.installation_id]
    if inst.app_id != ctx.app.id:
        raise not_found()
    return 200, ctx.sim.installation_json(inst.id)


@route("POST", "/app-manifests/{code}/conversions", auth="none")
def convert_manifest(ctx: Ctx, code: str):
    spec = ctx.sim.manifest_codes.pop(code, None)
    if spec is None:
        raise not_found()
    app = ctx.sim.add_app(slug=spec["slug"], name=spec["name"], owner=spec["owner"],
                          webhook_secret=uuid.uuid4().hex)
    data = ctx.sim.app_json(app)
    data.update(
        client_id=app.client_id,
        client_secret=app.client_secret,
        webhook_secret=app.webhook_secret,
        pem=app.private_key_pem,
    )
    return 201, data


# -- users and repositories ------------------------------------------------------------------


@route("GET", "/users/{login}", auth="public")
def get_user(ctx: Ctx, login: str):
    if login not in ctx.sim.users:
        raise not_found()
    return 200, ctx.sim.user_json(login)


@route("GET", "/repos/{owner}/{name}")
def get_repo(ctx: Ctx, owner: str, name: str):
    return 200, ctx.sim.repo_json(ctx.repo(owner, name).full_name)


@route("GET", "/repos/{owner}/{name}/branches/{branch}")
def get_branch(ctx: Ctx, owner: str, name: str, branch: str):
    repo = ctx.repo(owner, name)
    sha = repo.sha(branch)
    if sha is None:
        raise ApiError(404, "Branch not found")
    return 200, {
        "name": branch,
        "commit": {"sha": sha, "url": f"{ctx.sim.api_url}/repos/{repo.full_name}/commits/{sha}"},
        "protected": False,
    }


@route("GET", "/repos/{owner}/{name}/collaborators/{login}/permission")
def get_permission(ctx: Ctx, owner: str, name: str, login: str):
    repo = ctx.repo(owner, name)
    if login not in ctx.sim.users:
        raise not_found()
    role = repo.permissions.get(login)
    if role is None:
        role = "admin" if login == repo.owner else ("none" if repo.private else "read")
    legacy = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read", "none": "none"}[role]
    user = ctx.sim.user_json(login)
    user["permissions"] = {
        "admin": role == "admin",
        "maintain": role in ("admin", "maintain"),
        "push": role in ("admin", "maintain", "write"),
        "triage": role in ("admin", "maintain", "write", "triage"),
        "pull": role != "none",
    }
    user["role_name"] = role
    return 200, {"permission": legacy, "role_name": role, "user": user}


@route("GET", r"/repos/{owner}/{name}/contents(?:/(?P<path>.*))?")
def get_contents(ctx: Ctx, owner: str, name: str, path: str | None):
    repo = ctx.repo(owner, name)
    path = (path or "").strip("/")
    ref = ctx.query.get("ref") or repo.default_branch
    if gitrepo.rev_parse(repo.bare, ref) is None:
        raise ApiError(404, f"No commit found for the ref {ref}")
    spec = f"{ref}:{path}"
    kind = gitrepo.object_type(repo.bare, spec)
    api = f"{ctx.sim.api_url}/repos/{repo.full_name}/contents"
    if kind == "blob":
        raw = gitrepo.read_blob(repo.bare, spec)
        encoded = base64.b64encode(raw).decode()
        sha = gitrepo.blob_sha(repo.bare, spec)
        return 200, {
            "type": "file",
            "encoding": "base64",
            "size": len(raw),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60)) + "\n",
            "sha": sha,
            "url": f"{api}/{path}?ref={ref}",
            "git_url": f"{ctx.sim.api_url}/repos/{repo.full_name}/git/blobs/{sha}",
            "html_url": f"{ctx.sim.web_url}/{repo.full_name}/blob/{ref}/{path}",
            "download_url": f"https://raw.githubusercontent.com/{repo.full_name}/{ref}/{path}",
        }
    if kind == "tree":
        entries = []
        for _mode, otype, sha, entry in gitrepo.ls_tree(repo.bare, spec):
            full = f"{path}/{entry}" if path else entry
            entries.append({
                "type": "dir" if otype == "tree" else "file",
                "name": entry,
                "path": full,
                "sha": sha,
                "size": 0,
                "url": f"{api}/{full}?ref={ref}",
            })
        return 200, entries
    raise not_found()


# -- issues and comments -----------------------------------------------------------------------


@route("GET", r"/repos/{owner}/{name}/issues/(?P<n>\d+)")
def get_issue(ctx: Ctx, owner: str, name: str, n: str):
    full, _ = ctx.issue(owner, name, n)
    return 200, ctx.sim.issue_json(full, int(n))


@route("GET", r"/repos/{owner}/{name}/issues/(?P<n>\d+)/comments")
def list_comments(ctx: Ctx, owner: str, name: str, n: str):
    full, _ = ctx.issue(owner, name, n)
    return ctx.page(ctx.sim.comments_on(full, int(n)))


@route("POST", r"/repos/{owner}/{name}/issues/(?P<n>\d+)/comments")
def create_comment(ctx: Ctx, owner: str, name: str, n: str):
    full, issue = ctx.issue(owner, name, n)
    body = ctx.field("body", resource="IssueComment")
    issue["updated_at"] = ctx.sim.iso()
    return 201, ctx.sim.add_comment(full, int(n), body, user=ctx.actor)


def _comment(ctx: Ctx, owner: str, name: str, cid: str) -> dict:
    repo = ctx.repo(owner, name)
    comment = ctx.sim.comments.get(int(cid))
    if comment is None or comment["repo"] != repo.full_name:
        raise not_found()
    return comment


@route("GET", r"/repos/{owner}/{name}/issues/comments/(?P<cid>\d+)")
def get_comment(ctx: Ctx, owner: str, name: str, cid: str):
    _comment(ctx, owner, name, cid)
    return 200, ctx.sim.comment_json(int(cid))


@route("PATCH", r"/repos/{owner}/{name}/issues/comments/(?P<cid>\d+)")
def update_comment(ctx: Ctx, owner: str, name: str, cid: str):
    comment = _comment(ctx, owner, name, cid)
    comment["body"] = ctx.field("body", resource="IssueComment")
    comment["updated_at"] = ctx.sim.iso()
    return 200, ctx.sim.comment_json(int(cid))


@route("POST", r"/repos/{owner}/{name}/issues/(?P<n>\d+)/labels")
def add_labels(ctx: Ctx, owner: str, name: str, n: str):
    full, issue = ctx.issue(owner, name, n)
    labels = ctx.body.get("labels", []) if isinstance(ctx.body, dict) else ctx.body
    for label in labels:
        if label not in issue["labels"]:
            issue["labels"].append(label)
    return 200, [ctx.sim.label_json(full, label) for label in issue["labels"]]


@route("DELETE", r"/repos/{owner}/{name}/issues/(?P<n>\d+)/labels/(?P<label>[^/]+)")
def remove_label(ctx: Ctx, owner: str, name: str, n: str, label: str):
    full, issue = ctx.issue(owner, name, n)
    if label not in issue["labels"]:
        raise ApiError(404, "Label does not exist")
    issue["labels"].remove(label)
    return 200, [ctx.sim.label_json(full, lb) for lb in issue["labels"]]


# -- reactions -------------------------------------------------------------------------------

_TARGETS = {"issues": "issue", "issues/comments": "comment", "pulls/comments": "review_comment"}


def _reaction_target(ctx: Ctx, owner: str, name: str, kind: str, tid: str) -> tuple[str, str, int]:
    target = _TARGETS[kind]
    repo = ctx.repo(owner, name)
    tid_int = int(tid)
    exists = {
        "issue": lambda: tid_int in repo.issues,
        "comment": lambda: ctx.sim.comments.get(tid_int, {}).get("repo") == repo.full_name,
        "review_comment": lambda: ctx.sim.review_comments.get(tid_int, {}).get("repo") == repo.full_name,
    }[target]()
    if not exists:
        raise not_found()
    return (repo.full_name, target, tid_int)


_REACT = r"/repos/{owner}/{name}/(?P<kind>issues|issues/comments|pulls/comments)/(?P<tid>\d+)/reactions"


@route("POST", _REACT)
def create_reaction(ctx: Ctx, owner: str, name: str, kind: str, tid: str):
    target = _reaction_target(ctx, owner, name, kind, tid)
    content = ctx.field("content", resource="Reaction")
    if content not in REACTION_CONTENTS:
        raise validation([{"resource": "Reaction", "field": "content", "code": "invalid"}])
    for rid, r in ctx.sim.reactions.items():
        if r["target"] == target and r["user"] == ctx.actor and r["content"] == content:
            return 200, ctx.sim.reaction_json(rid)
    rid = ctx.sim.next_id()
    ctx.sim.reactions[rid] = {"target": target, "user": ctx.actor, "content": content, "created_at": ctx.sim.iso()}
    return 201, ctx.sim.reaction_json(rid)


@route("GET", _REACT)
def list_reactions(ctx: Ctx, owner: str, name: str, kind: str, tid: str):
    target = _reaction_target(ctx, owner, name, kind, tid)
    content = ctx.query.get("content")
    items = [
        ctx.sim.reaction_json(rid)
        for rid, r in ctx.sim.reactions.items()
        if r["target"] == target and (content is None or r["content"] == content)
    ]
    return ctx.page(items)


@route("DELETE", _REACT + r"/(?P<rid>\d+)")
def delete_reaction(ctx: Ctx, owner: str, name: str, kind: str, tid: str, rid: str):
    target = _reaction_target(ctx, owner, name, kind, tid)
    reaction = ctx.sim.reactions.get(int(rid))
    if reaction is None or reaction["target"] != target:
        raise not_found()
    del ctx.sim.reactions[int(rid)]
    return 204, None


# -- pull requests -------------------------------------------------------------------------------


def _split_head(ctx: Ctx, repo: SimRepo, head: str) -> tuple[str, str]:
    """"owner:branch" or "branch" -> (head repo full name, branch)."""
    if ":" in head:
        owner, branch = head.split(":", 1)
        if owner == repo.owner:
            return repo.full_name, branch
        for full, r in ctx.sim.repos.items():
            if r.owner == owner and r.fork_of == repo.full_name:
                return full, branch
        return f"{owner}/{repo.name}", branch
    return repo.full_name, head


@route("GET", "/repos/{owner}/{name}/pulls")
def list_pulls(ctx: Ctx, owner: str, name: str):
    repo = ctx.repo(owner, name)
    state = ctx.query.get("state", "open")
    head = ctx.query.get("head")
    base = ctx.query.get("base")
    head_filter = _split_head(ctx, repo, head) if head and ":" in head else None
    items = []
    for n in sorted(repo.issues, reverse=True):
        i = repo.issues[n]
        p = i["pull"]
        if not p or (state != "all" and i["state"] != state):
            continue
        if head_filter and (p["head_repo"], p["head"]) != head_filter:
            continue
        if base and p["base"] != base:
            continue
        items.append(ctx.sim.pull_json(repo.full_name, n))
    return ctx.page(items)


@route("POST", "/repos/{owner}/{name}/pulls")
def create_pull(ctx: Ctx, owner: str, name: str):
    repo = ctx.repo(owner, name)
    title = ctx.field("title", resource="PullRequest")
    head = ctx.field("head", resource="PullRequest")
    base = ctx.field("base", resource="PullRequest")
    body = ctx.field("body", required=False) or ""
    draft = bool(ctx.field("draft", bool, required=False))
    head_repo, branch = _split_head(ctx, repo, head)
    hr = ctx.sim.repos.get(head_repo)
    errors = []
    if hr is None or hr.sha(branch) is None:
        errors.append({"resource": "PullRequest", "field": "head", "code": "invalid"})
    if repo.sha(base) is None:
        errors.append({"resource": "PullRequest", "field": "base", "code": "invalid"})
    if errors:
        raise validation(errors)
    for _number, i in repo.issues.items():
        p = i["pull"]
        if p and i["state"] == "open" and (p["head_repo"], p["head"], p["base"]) == (head_repo, branch, base):
            raise validation([{
                "resource": "PullRequest",
                "code": "custom",
                "message": f"A pull request already exists for {hr.owner}:{branch}.",
            }])
    if head_repo == repo.full_name and gitrepo.count_commits(repo.bare, repo.sha(base), hr.sha(branch)) == 0:
        raise validation([{
            "resource": "PullRequest",
            "code": "custom",
            "message": f"No commits between {base} and {branch}",
        }])
    pull = {
        "head": branch,
        "head_repo": head_repo,
        "head_sha": hr.sha(branch),
        "base": base,
        "draft": draft,
        "merged": False,
        "requested_reviewers": [],
    }
    issue = ctx.sim._new_issue(repo.full_name, title=title, body=body, user=ctx.actor, labels=(), pull=pull)
    return 201, ctx.sim.pull_json(repo.full_name, issue["number"])


@route("GET", r"/repos/{owner}/{name}/pulls/(?P<n>\d+)")
def get_pull(ctx: Ctx, owner: str, name: str, n: str):
    full, _ = ctx.pull(owner, name, n)
    return 200, ctx.sim.pull_json(full, int(n))


@route("PATCH", r"/repos/{owner}/{name}/pulls/(?P<n>\d+)")
def update_pull(ctx: Ctx, owner: str, name: str, n: str):
    full, issue = ctx.pull(owner, name, n)
    repo = ctx.sim.repos[full]
    if (title := ctx.field("title", required=False)) is not None:
        issue["title"] = title
    if (body := ctx.field("body", required=False)) is not None:
        issue["body"] = body
    if (state := ctx.field("state", required=False)) is not None:
        if state not in ("open", "closed"):
            raise validation([{"resource": "PullRequest", "field": "state", "code": "invalid"}])
        issue["state"] = state
        issue["closed_at"] = None if state == "open" else ctx.sim.iso()
    if (base := ctx.field("base", required=False)) is not None:
        if repo.sha(base) is None:
            raise validation([{"resource": "PullRequest", "field": "base", "code": "invalid"}])
        issue["pull"]["base"] = base
    issue["updated_at"] = ctx.sim.iso()
    return 200, ctx.sim.pull_json(full, int(n))


@route("POST", r"/repos/{owner}/{name}/pulls/(?P<n>\d+)/requested_reviewers")
def request_reviewers(ctx: Ctx, owner: str, name: str, n: str):
    full, issue = ctx.pull(owner, name, n)
    repo = ctx.sim.repos[full]
    reviewers = ctx.field("reviewers", list, required=False) or []
    for login in reviewers:
        if login == issue["user"]:
            raise validation([], "Review cannot be requested from pull request author.")
        if repo.permissions.get(login, "none") in ("none",) and login != repo.owner:
            raise validation(
                [],
                "Reviews may only be requested from collaborators. One or more of the users or "
                f"teams you specified is not a collaborator of the {full} repository.",
            )
    for login in reviewers:
        if login not in issue["pull"]["requested_reviewers"]:
            issue["pull"]["requested_reviewers"].append(login)
    return 201, ctx.sim.pull_json(full, int(n))


@route("GET", r"/repos/{owner}/{name}/pulls/(?P<n>\d+)/reviews")
def list_reviews(ctx: Ctx, owner: str, name: str, n: str):
    full, _ = ctx.pull(owner, name, n)
    return ctx.page([
        ctx.sim.review_json(rid)
        for rid, rv in ctx.sim.reviews.items()
        if rv["repo"] == full and rv["number"] == int(n)
    ])


def _review(ctx: Ctx, owner: str, name: str, n: str, rid: str) -> tuple[str, dict]:
    full, _ = ctx.pull(owner, name, n)
    review = ctx.sim.reviews.get(int(rid))
    if review is None or review["repo"] != full or review["number"] != int(n):
        raise not_found()
    return full, review


@route("GET", r"/repos/{owner}/{name}/pulls/(?P<n>\d+)/reviews/(?P<rid>\d+)")
def get_review(ctx: Ctx, owner: str, name: str, n: str, rid: str):
    _review(ctx, owner, name, n, rid)
    return 200, ctx.sim.review_json(int(rid))


@route("GET", r"/repos/{owner}/{name}/pulls/(?P<n>\d+)/reviews/(?P<rid>\d+)/comments")
def list_review_comments_of_review(ctx: Ctx, owner: str, name: str, n: str, rid: str):
    _review(ctx, owner, name, n, rid)
    return ctx.page([
        ctx.sim.review_comment_json(cid)
        for cid, c in ctx.sim.review_comments.items()
        if c["review_id"] == int(rid)
    ])


@route("GET", r"/repos/{owner}/{name}/pulls/(?P<n>\d+)/comments")
def list_pull_review_comments(ctx: Ctx, owner: str, name: str, n: str):
    full, _ = ctx.pull(owner, name, n)
    return ctx.page([
        ctx.sim.review_comment_json(cid)
        for cid, c in ctx.sim.review_comments.items()
        if c["repo"] == full and c["number"] == int(n)
    ])


@route("POST", r"/repos/{owner}/{name}/pulls/(?P<n>\d+)/comments/(?P<cid>\d+)/replies")
def reply_to_review_comment(ctx: Ctx, owner: str, name: str, n: str, cid: str):
    full, _ = ctx.pull(owner, name, n)
    parent = ctx.sim.review_comments.get(int(cid))
    if parent is None or parent["repo"] != full or parent["number"] != int(n):
        raise not_found()
    body = ctx.field("body", resource="PullRequestReviewComment")
    root = parent["in_reply_to_id"] or parent["id"]
    reply_review = ctx.sim.next_id()  # GitHub wraps each reply in its own COMMENTED review
    ctx.sim.reviews[reply_review] = {
        "id": reply_review, "repo": full, "number": int(n), "user": ctx.actor, "body": "",
        "state": "COMMENTED", "commit_id": parent["commit_id"], "submitted_at": ctx.sim.iso(),
    }
    comment = ctx.sim._new_review_comment(
        full, int(n), review_id=reply_review, user=ctx.actor, body=body, path=parent["path"],
        line=parent["line"], start_line=parent["start_line"], side=parent["side"],
        diff_hunk=parent["diff_hunk"], commit_id=parent["commit_id"], in_reply_to=root,
    )
    return 201, ctx.sim.review_comment_json(comment["id"])


# -- check runs -----------------------------------------------------------------------------------

_CHECK_STATUSES = ("queued", "in_progress", "completed", "waiting", "requested", "pending")
_CONCLUSIONS = ("action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out")


def _apply_check(ctx: Ctx, run: dict) -> None:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    for key in ("name", "details_url", "external_id", "started_at", "completed_at"):
        if key in body:
            run[key] = body[key]
    if "output" in body:
        output = body["output"] or {}
        if "title" not in output or "summary" not in output:
            raise validation([{"resource": "CheckRun", "field": "output", "code": "missing_field"}])
        run["output"] = {**run.get("output", {}), **output}
    if "status" in body:
        if body["status"] not in _CHECK_STATUSES:
            raise validation([{"resource": "CheckRun", "field": "status", "code": "invalid"}])
        run["status"] = body["status"]
    if "conclusion" in body and body["conclusion"] is not None:
        if body["conclusion"] not in _CONCLUSIONS:
            raise validation([{"resource": "CheckRun", "field": "conclusion", "code": "invalid"}])
        run["conclusion"] = body["conclusion"]
        run["status"] = "completed"
    if run["status"] == "completed":
        if not run.get("conclusion"):
            raise ApiError(422, "Invalid request.\n\n\"conclusion\" wasn't supplied.")
        run.setdefault("completed_at", ctx.sim.iso())


def _check_json(ctx: Ctx, rid: int) -> dict:
    return ctx.sim.check_run_json(rid)


@route("POST", "/repos/{owner}/{name}/check-runs")
def create_check_run(ctx: Ctx, owner: str, name: str):
    repo = ctx.repo(owner, name)
    ctx.field("name", resource="CheckRun")
    head_sha = ctx.field("head_sha", resource="CheckRun")
    if gitrepo.object_type(repo.bare, head_sha) != "commit":
        raise validation([{"resource": "CheckRun", "field": "head_sha", "code": "invalid"}], "No commit found for SHA: " + head_sha)
    rid = ctx.sim.next_id()
    inst = ctx.sim.installations[ctx.token.installation_id]
    run = {"repo": repo.full_name, "head_sha": head_sha, "status": "queued", "app": ctx.sim.apps[inst.app_id],
           "started_at": ctx.sim.iso()}
    _apply_check(ctx, run)
    ctx.sim.check_runs[rid] = run
    return 201, _check_json(ctx, rid)


def _check_run(ctx: Ctx, owner: str, name: str, rid: str) -> dict:
    repo = ctx.repo(owner, name)
    run = ctx.sim.check_runs.get(int(rid))
    if run is None or run["repo"] != repo.full_name:
        raise not_found()
    return run


@route("GET", r"/repos/{owner}/{name}/check-runs/(?P<rid>\d+)")
def get_check_run(ctx: Ctx, owner: str, name: str, rid: str):
    _check_run(ctx, owner, name, rid)
    return 200, _check_json(ctx, int(rid))


@route("GET", r"/repos/{owner}/{name}/commits/(?P<ref>[^/]+)/check-runs")
def list_check_runs_for_ref(ctx: Ctx, owner: str, name: str, ref: str):
    """GitHub's `GET /repos/{owner}/{repo}/commits/{ref}/check-runs` (`check_name`, a SHA ref)."""
    repo = ctx.repo(owner, name)
    wanted = ctx.query.get("check_name")
    sha = repo.sha(ref) or ref  # a branch name means its head
    ids = [rid for rid, run in ctx.sim.check_runs.items()
           if run["repo"] == repo.full_name and run["head_sha"] == sha
           and (wanted is None or run["name"] == wanted)]
    runs = [_check_json(ctx, rid) for rid in sorted(ids, reverse=True)]
    return 200, {"total_count": len(runs), "check_runs": runs}


@route("PATCH", r"/repos/{owner}/{name}/check-runs/(?P<rid>\d+)")
def update_check_run(ctx: Ctx, owner: str, name: str, rid: str):
    run = _check_run(ctx, owner, name, rid)
    updated = dict(run)
    _apply_check(ctx, updated)
    run.update(updated)
    return 200, _check_json(ctx, int(rid))


# -- CI: annotations, Actions job logs, commit statuses, commits ------------------------------


@route("GET", r"/repos/{owner}/{name}/check-runs/(?P<rid>\d+)/annotations")
def list_annotations(ctx: Ctx, owner: str, name: str, rid: str):
    run = _check_run(ctx, owner, name, rid)
    return ctx.page([ctx.sim.annotation_json(int(rid), i) for i in range(len(run.get("annotations") or []))])


@route("GET", r"/repos/{owner}/{name}/actions/jobs/(?P<jid>\d+)/logs")
def download_job_log(ctx: Ctx, owner: str, name: str, jid: str):
    """GitHub answers 302 to a short-lived blob address; the same address here."""
    run = _check_run(ctx, owner, name, jid)
    if run.get("log") is None or run["app"].slug != ctx.sim.ACTIONS_SLUG:
        raise not_found()
    location = str(ctx.request.url.replace(query="")).replace(
        f"/repos/{owner}/{name}/actions/jobs/{jid}/logs", f"/_blob/job-logs/{owner}/{name}/{jid}")
    return 302, None, {"Location": location}


@route("GET", r"/_blob/job-logs/{owner}/{name}/(?P<jid>\d+)", auth="none")
def job_log_blob(ctx: Ctx, owner: str, name: str, jid: str):
    run = ctx.sim.check_runs.get(int(jid))
    if run is None or run["repo"] != f"{owner}/{name}" or run.get("log") is None:
        raise not_found()
    return 200, Response(run["log"].encode(), media_type="text/plain")


@route("GET", r"/repos/{owner}/{name}/commits/(?P<ref>[^/]+)/status")
def combined_status(ctx: Ctx, owner: str, name: str, ref: str):
    repo = ctx.repo(owner, name)
    statuses = [ctx.sim.status_json(s["id"]) for s in ctx.sim.statuses_on(repo.full_name, ref)]
    states = {s["state"] for s in statuses}
    state = ("failure" if states & {"failure", "error"} else
             "pending" if "pending" in states or not states else "success")
    return 200, {"state": state, "sha": repo.sha(ref) or ref, "total_count": len(statuses),
                 "statuses": statuses, "repository": ctx.sim.repo_json(repo.full_name)}


@route("GET", r"/repos/{owner}/{name}/commits/(?P<ref>[^/]+)")
def get_commit(ctx: Ctx, owner: str, name: str, ref: str):
    repo = ctx.repo(owner, name)
    sha = repo.sha(ref) or (ref if gitrepo.object_type(repo.bare, ref) == "commit" else None)
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {ref}")
    meta = gitrepo.git(repo.bare, "show", "-s", "--format=%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B",
                       sha).split("\0")
    by_email = next((login for login, user in ctx.sim.users.items()
                     if meta[1] == f"{user['id']}+{login}@users.noreply.github.com"), None)
    return 200, {
        "sha": sha, "node_id": f"C_{sha[:12]}",
        "url": f"{ctx.sim.api_url}/repos/{repo.full_name}/commits/{sha}",
        "html_url": f"{ctx.sim.web_url}/{repo.full_name}/commit/{sha}",
        "commit": {"author": {"name": meta[0], "email": meta[1], "date": meta[2]},
                   "committer": {"name": meta[3], "email": meta[4], "date": meta[5]},
                   "message": meta[6].rstrip("\n")},
        "author": ctx.sim.user_json(by_email) if by_email else None,
        "committer": None, "parents": [],
    }


# -- the ASGI application -----------------------------------------------------------------------


def _authenticate(sim: GitHubSimulator, header: str | None) -> tuple[str, Any]:
    """("none"|"app"|"installation", SimApp|SimToken|None); raises 401 on bad credentials."""
    if not header:
        return "none", None
    scheme, _, cred = header.partition(" ")
    cred = cred.strip()
    if scheme.lower() not in ("token", "bearer") or not cred:
        raise ApiError(401, "Bad credentials")
    if cred.startswith("eyJ") and cred.count(".") == 2:
        try:
            claims = jwt.decode(cred, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise ApiError(401, "A JSON web token could not be decoded") from None
        app = next((a for a in sim.apps.values() if str(a.id) == str(claims.get("iss"))
                    or a.client_id == claims.get("iss")), None)
        if app is None:
            raise ApiError(401, "Integration not found")
        try:
            claims = jwt.decode(cred, app.public_key_pem, algorithms=["RS256"],
                                options={"require": ["iat", "exp", "iss"]}, leeway=60)
        except jwt.ExpiredSignatureError:
            raise ApiError(401, "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires") from None
        except jwt.PyJWTError:
            raise ApiError(401, "A JSON web token could not be decoded") from None
        if claims["exp"] - claims["iat"] > 660:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
        return "app", app
    tok = sim.valid_token(cred)
    if tok is None:
        raise ApiError(401, "Bad credentials")
    return "installation", tok


def _rate_headers(sim: GitHubSimulator) -> dict[str, str]:
    return {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "4999",
        "x-ratelimit-reset": str(int(sim.now()) + 3600),
        "x-ratelimit-used": "1",
        "x-ratelimit-resource": "core",
        "x-github-media-type": "github.v3; format=json",
        "x-github-request-id": uuid.uuid4().hex[:16].upper(),
    }


def _fault_response(sim: GitHubSimulator, fault) -> ApiError:
    if fault.kind in ("error", "late"):
        return ApiError(fault.status, "Server Error" if fault.status >= 500 else "Simulated error")
    if fault.kind == "secondary":
        return ApiError(
            fault.status,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            headers={"retry-after": str(int(fault.seconds))},
            doc="https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        )
    reset = int(sim.now() + fault.seconds)
    return ApiError(
        fault.status,
        "API rate limit exceeded for installation.",
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset), "x-ratelimit-used": "5000"},
        doc="https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
    )


def build_app(sim: GitHubSimulator):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await _handle(sim, request)
        await response(scope, receive, send)

    return app


async def _handle(sim: GitHubSimulator, request: Request) -> Response:
    path = request.url.path
    if path == "/api/v3" or path.startswith("/api/v3/"):
        path = path[len("/api/v3"):] or "/"
    method = request.method
    git = GIT_RE.match(path)
    if git:
        return await _handle_git(sim, request, path, **git.groupdict())

    raw = await request.body()
    query = dict(request.query_params)
    body: Any = None
    auth_label = "none"
    status = 500
    try:
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                raise ApiError(400, "Problems parsing JSON") from None
        fault = sim.take_fault(method, path)
        if fault is not None and fault.kind != "late":
            if fault.kind == "slow":
                await asyncio.sleep(fault.seconds)
            else:
                raise _fault_response(sim, fault)
        for r_method, regex, auth, handler in ROUTES:  # noqa: B007 (used after the break)
            m = regex.match(path)
            if m and r_method == method:
                break
        else:
            status = 404
            sim.unmatched.append(RecordedRequest(method, path, query, body, 404, "?", request.url.path))
            raise not_found()
        kind, who = _authenticate(sim, request.headers.get("authorization"))
        auth_label = kind if kind != "installation" else f"installation:{who.installation_id}"
        if auth == "app" and kind != "app":
            raise ApiError(401, "A JSON web token could not be decoded" if kind != "none" else "Requires authentication")
        if auth == "installation":
            if kind == "none":
                raise ApiError(401, "Requires authentication")
            if kind == "app":
                raise ApiError(403, "Resource not accessible by integration")
        ctx = Ctx(sim, request, method, path, query, body,
                  app=who if kind == "app" else None, token=who if kind == "installation" else None)
        with sim.lock:
            result = handler(ctx, **m.groupdict())
        if fault is not None and fault.kind == "late":
            raise _fault_response(sim, fault)  # written, but the client hears only a 502
        status, payload = result[0], result[1]
        headers = {**_rate_headers(sim), **(result[2] if len(result) > 2 else {})}
        if isinstance(payload, Response):  # a download, not JSON
            payload.headers.update(headers)
            response: Response = payload
        elif status in (204, 302):
            response = Response(status_code=status, headers=headers)
        else:
            response = JSONResponse(payload, status_code=status, headers=headers)
    except ApiError as err:
        status = err.status
        headers = {**_rate_headers(sim), **err.headers}
        if status == 401:
            headers.pop("x-ratelimit-remaining", None)
        response = JSONResponse(err.body, status_code=status, headers=headers)
    sim.requests.append(RecordedRequest(method, path, query, body, status, auth_label, request.url.path))
    return response


async def _handle_git(sim: GitHubSimulator, request: Request, path: str, owner: str, name: str, rest: str) -> Response:
    full = f"{owner}/{name}"
    is_push = rest == "git-receive-pack" or request.query_params.get("service") == "git-receive-pack"
    password = basic_password(request.headers.get("authorization"))
    tok = sim.valid_token(password) if password else None
    repo = sim.repos.get(full)
    status: int
    if (password is not None and tok is None) or (tok is None and (is_push or repo is None or repo.private)):
        status = 401
        response: Response = Response(
            b"Invalid username or token. Password authentication is not supported for Git operations.\n",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="GitHub"'},
        )
    elif repo is None or (tok is not None and not sim.installation_covers(tok.installation_id, full)):
        status = 404
        response = Response(b"Repository not found.\n", status_code=404)
    else:
        response = await run_http_backend(request, str(sim.git_root), f"/{owner}/{name}.git/{rest}",
                                          "x-access-token" if tok else None)
        status = response.status_code
    label = f"installation:{tok.installation_id}" if tok else ("invalid" if password else "none")
    sim.requests.append(
        RecordedRequest(request.method, path, dict(request.query_params), None, status, label, request.url.path)
    )
    return response
