"""The GitHub simulator itself: auth, error shapes, webhooks, manifest flow."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
import uuid

import httpx
import jwt
import pytest
from starlette.requests import Request
from starlette.responses import Response

from bot.github import GitHubApp
from bot.settings import load_settings
from tests.payloads import load
from tests.simulator import GitHubSimulator
from tests.simulator.gitrepo import commit_files, git

REPO = "acme/widgets"


def client(sim: GitHubSimulator, base: str = "https://api.github.com") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=sim.transport(), base_url=base)


def app_jwt(sim: GitHubSimulator, *, key: str | None = None, iss=1, exp: int = 540) -> str:
    now = int(time.time())
    return jwt.encode({"iat": now - 60, "exp": now + exp, "iss": str(iss)},
                      key or sim.apps[1].private_key_pem, algorithm="RS256")


async def test_app_endpoints_check_the_jwt(github_sim):
    async with client(github_sim) as c:
        ok = await c.get("/app", headers={"Authorization": f"Bearer {app_jwt(github_sim)}"})
        assert ok.status_code == 200 and ok.json()["slug"] == "backend-bot"

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        wrong_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        bad = await c.get("/app", headers={"Authorization": f"Bearer {app_jwt(github_sim, key=wrong_key)}"})
        assert bad.status_code == 401
        assert set(bad.json()) >= {"message", "documentation_url"}

        expired = jwt.encode({"iat": int(time.time()) - 1300, "exp": int(time.time()) - 700, "iss": "1"},
                             github_sim.apps[1].private_key_pem, algorithm="RS256")
        assert (await c.get("/app", headers={"Authorization": f"Bearer {expired}"})).status_code == 401
        too_long = app_jwt(github_sim, exp=3600)
        assert (await c.get("/app", headers={"Authorization": f"Bearer {too_long}"})).status_code == 401
        wrong_iss = app_jwt(github_sim, iss=999)
        assert (await c.get("/app", headers={"Authorization": f"Bearer {wrong_iss}"})).status_code == 401
        assert (await c.get("/app")).status_code == 401

        h = {"Authorization": f"Bearer {app_jwt(github_sim)}"}
        minted = await c.post("/app/installations/42/access_tokens", headers=h)
        assert minted.status_code == 201 and minted.json()["token"].startswith("ghs_")
        assert (await c.post("/app/installations/5/access_tokens", headers=h)).status_code == 404
        token = minted.json()["token"]
        # an installation token is not an App JWT, and a JWT is not an installation token
        assert (await c.get("/app", headers={"Authorization": f"token {token}"})).status_code == 401
        assert (await c.get(f"/repos/{REPO}", headers=h)).status_code == 403
        repo = await c.get(f"/repos/{REPO}", headers={"Authorization": f"token {token}"})
        assert repo.status_code == 200 and repo.headers["x-ratelimit-remaining"]


async def test_installation_routes_need_a_valid_token_and_answer_under_api_v3(github_sim):
    async with client(github_sim, "https://ghe.example/api/v3") as c:
        anon = await c.get(f"/repos/{REPO}")
        assert anon.status_code == 401 and anon.json()["message"] == "Requires authentication"
        bad = await c.get(f"/repos/{REPO}", headers={"Authorization": "token ghs_nope"})
        assert bad.status_code == 401 and bad.json()["message"] == "Bad credentials"
        token = github_sim.mint_token(42).token
        auth = {"Authorization": f"token {token}"}
        assert (await c.get(f"/repos/{REPO}", headers=auth)).status_code == 200
        missing = await c.get(f"/repos/{REPO}/issues/99", headers=auth)
        assert missing.status_code == 404
        assert missing.json()["message"] == "Not Found" and "documentation_url" in missing.json()
        bad_pr = await c.post(f"/repos/{REPO}/pulls", headers=auth, json={"title": "x", "base": "main"})
        assert bad_pr.status_code == 422
        assert bad_pr.json()["errors"] == [{"resource": "PullRequest", "field": "head", "code": "missing_field"}]
        github_sim.advance(3601)
        assert (await c.get(f"/repos/{REPO}", headers=auth)).status_code == 401
    assert github_sim.requests[0].raw_path == "/api/v3/repos/acme/widgets"
    assert github_sim.requests[0].path == "/repos/acme/widgets"


async def test_unknown_routes_are_recorded(github_sim):
    async with client(github_sim) as c:
        r = await c.get("/repos/acme/widgets/frobnicate")
    assert r.status_code == 404
    assert [u.path for u in github_sim.unmatched] == ["/repos/acme/widgets/frobnicate"]
    github_sim.unmatched.clear()  # the fixture fails tests that leave some


async def test_pagination_links(github_sim):
    n = github_sim.add_issue(REPO, "x")
    for i in range(5):
        github_sim.add_comment(REPO, n, str(i))
    token = github_sim.mint_token(42).token
    async with client(github_sim) as c:
        r = await c.get(f"/repos/{REPO}/issues/{n}/comments", params={"per_page": 2},
                        headers={"Authorization": f"token {token}"})
        assert [x["body"] for x in r.json()] == ["0", "1"]
        assert r.links["next"]["url"].endswith("page=2&per_page=2") or "page=2" in r.links["next"]["url"]
        assert "page=3" in r.links["last"]["url"]


async def test_manifest_conversion_creates_a_working_app(github_sim, tmp_path):
    code = github_sim.add_manifest_code(slug="my-backend-bot")
    async with client(github_sim) as c:
        r = await c.post(f"/app-manifests/{code}/conversions")
        assert r.status_code == 201
        data = r.json()
        assert {"id", "slug", "pem", "webhook_secret", "client_id", "client_secret", "html_url"} <= set(data)
        assert data["slug"] == "my-backend-bot"
        assert (await c.post(f"/app-manifests/{code}/conversions")).status_code == 404  # single use
    settings = load_settings(app_id=data["id"], private_key=data["pem"],
                             webhook_secret=data["webhook_secret"], data_dir=tmp_path)
    async with GitHubApp(settings, transport=github_sim.transport()) as app:
        ident = await app.identity()
    assert ident.bot_login == "my-backend-bot[bot]"


# -- webhooks ------------------------------------------------------------------------------------


def verify(secret: str, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


async def test_issues_labeled_payload_and_signed_delivery_in_process(github_sim):
    github_sim.add_user("alice", permission="write", repo=REPO)
    n = github_sim.add_issue(REPO, "Add profile", "Please", user="alice")
    payload = github_sim.event_issues_labeled(REPO, n, "backend", sender="alice")
    assert payload["action"] == "labeled" and payload["label"]["name"] == "backend"
    issue = payload["issue"]
    assert {"number", "title", "body", "user", "labels", "state", "html_url"} <= set(issue)
    assert "pull_request" not in issue and [lb["name"] for lb in issue["labels"]] == ["backend"]
    assert issue["author_association"] == "COLLABORATOR"
    repo = payload["repository"]
    assert {"id", "name", "full_name", "owner", "default_branch", "private", "clone_url", "html_url"} <= set(repo)
    assert payload["sender"]["login"] == "alice" and payload["sender"]["type"] == "User"
    assert payload["installation"]["id"] == 42 and payload["installation"]["node_id"]

    received = {}

    async def receiver(scope, receive, send):
        request = Request(scope, receive)
        received["headers"] = dict(request.headers)
        received["body"] = await request.body()
        await Response(status_code=202)(scope, receive, send)

    secret = github_sim.apps[1].webhook_secret
    r = await github_sim.adeliver("http://bot/api/github/webhooks", secret, "issues", payload,
                                  transport=httpx.ASGITransport(app=receiver))
    assert r.status_code == 202
    h = received["headers"]
    assert h["x-github-event"] == "issues"
    uuid.UUID(h["x-github-delivery"])
    assert h["user-agent"].startswith("GitHub-Hookshot/")
    assert h["content-type"] == "application/json"
    assert verify(secret, received["body"], h["x-hub-signature-256"])
    assert json.loads(received["body"]) == payload


def test_comment_and_review_payloads_and_delivery_over_http(github_sim):
    pr = github_sim.add_pull(REPO, "feature", files={"a.py": "x = 1\n"}, user="alice")
    payload = github_sim.event_issue_comment_created(REPO, pr, "/backend add tests", sender="bob")
    assert payload["issue"]["pull_request"]["url"].endswith(f"/pulls/{pr}")
    assert payload["comment"]["body"] == "/backend add tests"
    assert payload["comment"]["user"]["login"] == "bob"
    assert len(github_sim.comments_on(REPO, pr)) == 1

    review = github_sim.add_review(REPO, pr, user="alice", state="CHANGES_REQUESTED",
                                   comments=[{"path": "a.py", "line": 1, "body": "x?"}])
    rp = github_sim.event_pull_request_review_submitted(REPO, pr, review["id"])
    assert rp["action"] == "submitted" and rp["review"]["state"] == "changes_requested"
    assert rp["pull_request"]["head"]["sha"] == github_sim.branches(REPO)["feature"]
    assert rp["pull_request"]["head"]["ref"] == "feature"
    assert rp["pull_request"]["base"]["repo"]["full_name"] == REPO

    got = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            got["headers"] = dict(self.headers)
            got["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        r = github_sim.deliver(f"http://127.0.0.1:{server.server_port}/hook", "s3cret",
                               "pull_request_review", rp, delivery_id="d-1")
    finally:
        thread.join(5)
        server.server_close()
    assert r.status_code == 200
    assert got["headers"]["X-GitHub-Delivery"] == "d-1"
    assert verify("s3cret", got["body"], got["headers"]["X-Hub-Signature-256"])


@pytest.mark.parametrize("state", ["APPROVED", "COMMENTED"])
def test_review_states(github_sim, state):
    pr = github_sim.add_pull(REPO, "feature")
    review = github_sim.add_review(REPO, pr, state=state)
    assert review["state"] == state
    assert github_sim.event_pull_request_review_submitted(REPO, pr, review["id"])["review"]["state"] == state.lower()


def test_the_merge_button_and_the_push_that_follows(github_sim):
    pr = github_sim.add_pull(REPO, "feature", files={"a.py": "x = 1\n"}, title="Add a",
                             user="alice")
    before = github_sim.branches(REPO)["main"]
    head = github_sim.branches(REPO)["feature"]
    sha = github_sim.merge_pull(REPO, pr, user="alice")
    bare = github_sim.repo(REPO).bare
    assert git(bare, "rev-list", "--parents", "-n1", sha).split() == [sha, before, head]
    assert github_sim.branches(REPO)["main"] == sha
    assert github_sim.read_file(REPO, "a.py") == "x = 1\n"
    pull = github_sim.pull_json(REPO, pr)
    assert (pull["state"], pull["merged"], pull["merge_commit_sha"]) == ("closed", True, sha)
    assert pull["merged_by"]["login"] == "alice" and pull["merged_at"]

    payload = github_sim.event_push(REPO, "main", before=before, sender="alice")
    assert (payload["ref"], payload["before"], payload["after"]) == ("refs/heads/main", before, sha)
    assert not payload["created"] and not payload["deleted"] and not payload["forced"]
    assert [c["id"] for c in payload["commits"]] == [head, sha]
    assert payload["commits"][0]["added"] == ["a.py"]
    assert payload["head_commit"]["message"].startswith(f"Merge pull request #{pr} from acme/feature")
    assert payload["head_commit"]["committer"]["name"] == "GitHub"
    # The shape of the recorded push fixture, which githubkit's strict models accept.
    recorded = load("push")
    assert set(payload) == set(recorded)
    assert set(payload["commits"][0]) == set(recorded["commits"][0])
    assert set(payload["pusher"]) == set(recorded["pusher"])

    commit_files(bare, "other", {"a.py": "x = 2\n"}, parent=before)
    conflicting = github_sim.add_pull(REPO, "other", user="alice")
    with pytest.raises(ValueError, match="not mergeable"):
        github_sim.merge_pull(REPO, conflicting)
