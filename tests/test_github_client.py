"""bot.github's InstallationClient operations against the GitHub simulator, in-process."""

from __future__ import annotations

import httpx
import pytest

from bot.github import GitHubApp, NotFound, ValidationFailed
from bot.markers import marker
from bot.settings import load_settings

REPO = "acme/widgets"


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleep():
    return FakeSleep()


@pytest.fixture
async def app(github_sim, sleep, tmp_path):
    settings = load_settings(**github_sim.settings_overrides(), data_dir=tmp_path)
    gh_app = GitHubApp(settings, transport=github_sim.transport(), sleep=sleep)
    yield gh_app
    await gh_app.aclose()


@pytest.fixture
async def gh(app):
    return await app.installation(42)


async def test_every_call_is_authenticated_and_pins_the_api_version(github_sim, gh):
    repo = await gh.get_repo(REPO)
    assert repo.default_branch == "main"
    assert repo.full_name == REPO and repo.owner == "acme" and repo.private
    assert repo.clone_url == "https://github.com/acme/widgets.git"
    mint, get = github_sim.requests
    assert (mint.method, mint.path, mint.status, mint.auth) == (
        "POST", "/app/installations/42/access_tokens", 201, "app")
    assert (get.path, get.status, get.auth) == ("/repos/acme/widgets", 200, "installation:42")


async def test_api_version_header_is_pinned(github_sim, app):
    import httpx

    seen = []
    inner = github_sim.transport()

    class Spy(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request):
            seen.append(request.headers.get("x-github-api-version"))
            return await inner.handle_async_request(request)

    app.transport.inner = Spy()
    await (await app.installation(42)).get_repo(REPO)
    assert seen == ["2022-11-28", "2022-11-28"]


async def test_default_branch_follows_the_bare_repository(github_sim, gh):
    github_sim.commit(REPO, "trunk", {"x": "1"})
    github_sim.set_default_branch(REPO, "trunk")
    assert await gh.default_branch(REPO) == "trunk"


async def test_repo_outside_the_installation_is_not_found(github_sim, gh):
    github_sim.add_repo("other/secret", installation_id=99)
    with pytest.raises(NotFound):
        await gh.get_repo("other/secret")


@pytest.mark.parametrize("role", ["admin", "maintain", "write", "triage", "read"])
async def test_permission_roles(github_sim, gh, role):
    github_sim.add_user("bob", permission=role, repo=REPO)
    assert await gh.permission(REPO, "bob") == role


async def test_permission_none_and_unknown_user(github_sim, gh):
    github_sim.add_user("stranger")
    assert await gh.permission(REPO, "stranger") == "none"  # private repo, no role
    assert await gh.permission(REPO, "nobody-at-all") == "none"  # 404


async def test_reactions_on_issue_comment_and_review_comment(github_sim, gh):
    n = github_sim.add_issue(REPO, "Do it")
    reaction = await gh.add_reaction(REPO, "issue", n, "eyes")
    assert reaction.content == "eyes" and reaction.user.login == "backend-bot[bot]"
    assert reaction.user.type == "Bot"
    again = await gh.add_reaction(REPO, "issue", n, "eyes")
    assert again.id == reaction.id  # GitHub answers 200 with the existing one
    assert len(github_sim.reactions_on(REPO, "issue", n)) == 1

    comment = github_sim.add_comment(REPO, n, "/backend go")
    r2 = await gh.add_reaction(REPO, "comment", comment["id"], "rocket")
    assert [r["id"] for r in github_sim.reactions_on(REPO, "comment", comment["id"])] == [r2.id]

    pr = github_sim.add_pull(REPO, "feature", files={"a.py": "x = 1\n"})
    review = github_sim.add_review(REPO, pr, comments=[{"path": "a.py", "line": 1}])
    rc = next(iter(github_sim.review_comments))
    r3 = await gh.add_reaction(REPO, "review_comment", rc, "+1")
    assert github_sim.reactions_on(REPO, "review_comment", rc)[0]["id"] == r3.id
    assert review["state"] == "COMMENTED"
    with pytest.raises(ValueError):
        await gh.add_reaction(REPO, "issue", n, "thumbsup")


async def test_status_comment_is_found_by_marker_across_pages_and_edited_in_place(github_sim, gh):
    n = github_sim.add_issue(REPO, "Do it")
    for i in range(130):  # two pages of 100
        github_sim.add_comment(REPO, n, f"chatter {i}")
    mark = marker("status")
    first = await gh.upsert_comment(REPO, n, mark, "Queued", author="backend-bot[bot]")
    assert first.body == f"{mark}\nQueued"
    second = await gh.upsert_comment(REPO, n, mark, "Working", author="backend-bot[bot]")
    assert second.id == first.id and second.body.endswith("Working")
    assert len(github_sim.requests_to("POST", r"/repos/acme/widgets/issues/\d+/comments")) == 1
    assert len(github_sim.requests_to("PATCH", r"/repos/acme/widgets/issues/comments/\d+")) == 1
    lists = github_sim.requests_to("GET", r"/repos/acme/widgets/issues/\d+/comments")
    assert {r.query.get("page") for r in lists} == {None, "2"}


async def test_marker_in_someone_elses_comment_is_ignored(github_sim, gh):
    """Anyone can paste the bot's marker into a comment: only the App's own comments count,
    without the caller having to say whose (the client knows its bot user)."""
    n = github_sim.add_issue(REPO, "Do it")
    mark = marker("status")
    spoof = github_sim.add_comment(REPO, n, f"{mark} spoofed", user="mallory")
    mine = await gh.upsert_comment(REPO, n, mark, "Queued")
    assert mine.id != spoof["id"] and mine.user.login == "backend-bot[bot]"
    again = await gh.upsert_comment(REPO, n, mark, "Working")
    assert again.id == mine.id
    bodies = {c["id"]: c["body"] for c in github_sim.comments_on(REPO, n)}
    assert bodies == {spoof["id"]: f"{mark} spoofed", mine.id: f"{mark}\nWorking"}


async def test_issue_and_its_comments(github_sim, gh):
    n = github_sim.add_issue(REPO, "Add profile", "Please", user="alice", labels=["backend"])
    github_sim.add_comment(REPO, n, "more detail", user="bob")
    issue = await gh.get_issue(REPO, n)
    assert (issue.title, issue.body, issue.labels, issue.user.login) == (
        "Add profile", "Please", ("backend",), "alice")
    assert not issue.is_pull_request
    comments = await gh.list_issue_comments(REPO, n)
    assert [(c.user.login, c.body) for c in comments] == [("bob", "more detail")]
    pr = github_sim.add_pull(REPO, "feature")
    assert (await gh.get_issue(REPO, pr)).is_pull_request


async def test_pull_request_lifecycle(github_sim, gh):
    github_sim.add_user("carol", permission="write", repo=REPO)
    issue = github_sim.add_issue(REPO, "Add profile")
    sha = github_sim.commit(REPO, "backend/issue-1-add-profile", {"p.py": "pass\n"})
    assert await gh.find_pull_by_head(REPO, "backend/issue-1-add-profile") is None
    body = f"Entry\n\nCloses #{issue}\n{marker('pr:issue-1')}"
    pr = await gh.create_pull(REPO, title="Add profile", head="backend/issue-1-add-profile",
                              base="main", body=body, draft=True)
    assert pr.head_sha == sha and pr.base_ref == "main" and pr.draft and pr.state == "open"
    assert pr.user.login == "backend-bot[bot]" and not pr.is_fork

    found = await gh.find_pull_by_head(REPO, "backend/issue-1-add-profile")
    assert found.number == pr.number

    with pytest.raises(ValidationFailed) as dup:
        await gh.create_pull(REPO, title="again", head="backend/issue-1-add-profile", base="main")
    assert "already exists" in dup.value.errors[0]["message"]
    with pytest.raises(ValidationFailed) as missing:
        await gh.create_pull(REPO, title="x", head="no-such-branch", base="main")
    assert missing.value.errors == [{"resource": "PullRequest", "field": "head", "code": "invalid"}]

    new_sha = github_sim.commit(REPO, "backend/issue-1-add-profile", {"p.py": "pass  # 2\n"})
    updated = await gh.update_pull(REPO, pr.number, title="Add profiles", body="Entry 2")
    assert (updated.title, updated.body, updated.head_sha) == ("Add profiles", "Entry 2", new_sha)

    await gh.request_reviewers(REPO, pr.number, ["carol"])
    assert github_sim.pull_json(REPO, pr.number)["requested_reviewers"][0]["login"] == "carol"
    with pytest.raises(ValidationFailed):
        await gh.request_reviewers(REPO, pr.number, ["not-a-collaborator"])
    assert len(github_sim.requests_to("POST", "/repos/acme/widgets/pulls")) == 3
    assert len(github_sim.pulls(REPO)) == 1


async def test_find_pull_by_head_prefers_open_and_sees_closed(github_sim, gh):
    pr = github_sim.add_pull(REPO, "topic")
    await gh.update_pull(REPO, pr, state="closed")
    found = await gh.find_pull_by_head(REPO, "topic")
    assert found.number == pr and found.state == "closed"


async def test_fork_pull_request_is_recognised(github_sim, gh):
    github_sim.add_repo("mallory/widgets", fork_of=REPO)
    pr = github_sim.add_pull(REPO, "evil", head_repo="mallory/widgets", user="mallory")
    got = await gh.get_pull(REPO, pr)
    assert got.is_fork and got.head_repo == "mallory/widgets"


async def test_review_comments_with_file_line_and_hunk_and_replies(github_sim, gh):
    github_sim.commit(REPO, "feature", {"app.py": "a = 1\nb = 2\nc = 3\n"})
    pr = github_sim.add_pull(REPO, "feature")
    review = github_sim.add_review(
        REPO, pr, user="alice", body="Some changes", state="CHANGES_REQUESTED",
        comments=[{"path": "app.py", "line": 2, "body": "rename b"}],
    )
    got = await gh.get_review(REPO, pr, review["id"])
    assert (got.state, got.body, got.user.login) == ("CHANGES_REQUESTED", "Some changes", "alice")
    (comment,) = await gh.list_review_comments(REPO, pr, review["id"])
    assert (comment.path, comment.line, comment.body) == ("app.py", 2, "rename b")
    assert comment.diff_hunk.startswith("@@") and comment.diff_hunk.endswith("+b = 2")
    reply = await gh.reply_to_review_comment(REPO, pr, comment.id, "Renamed to `beta`.")
    assert reply.in_reply_to_id == comment.id and reply.user.login == "backend-bot[bot]"
    with pytest.raises(NotFound):
        await gh.get_review(REPO, pr, 999999)


async def test_check_runs(github_sim, gh):
    sha = github_sim.branches(REPO)["main"]
    run = await gh.create_check_run(REPO, name="backend-bot", head_sha=sha,
                                    title="Working", summary="Started")
    assert (run.status, run.conclusion, run.head_sha) == ("in_progress", None, sha)
    assert run.output["title"] == "Working"
    done = await gh.create_check_run(REPO, name="backend-bot / tests", head_sha=sha, status="completed",
                                     conclusion="success", title="Done", summary="ok", text="log")
    assert (done.status, done.conclusion, done.output["title"]) == ("completed", "success", "Done")
    with pytest.raises(ValidationFailed):
        await gh.create_check_run(REPO, name="x", head_sha="0" * 40)


async def test_check_runs_are_found_by_job_and_updated_within_githubs_limit(github_sim, gh):
    sha = github_sim.branches(REPO)["main"]
    mine = await gh.create_check_run(REPO, name="backend-bot", head_sha=sha, external_id="job-1",
                                     title="Working", summary="Started")
    other = await gh.create_check_run(REPO, name="backend-bot", head_sha=sha, external_id="job-2",
                                      title="Working", summary="Started")
    assert (await gh.find_check_run(REPO, sha, "backend-bot")).id == other.id  # the newest
    assert (await gh.find_check_run(REPO, sha, "backend-bot", "job-1")).id == mine.id
    assert await gh.find_check_run(REPO, sha, "backend-bot", "job-3") is None
    done = await gh.update_check_run(REPO, mine.id, status="completed", conclusion="success",
                                     title="Done", summary="ok", text="x" * 100_000)
    assert (done.status, done.conclusion, done.external_id) == ("completed", "success", "job-1")
    assert len(done.output["text"]) == 65_535 and done.output["text"].endswith("cut to GitHub's limit]")


async def test_read_file_from_a_ref(github_sim, gh):
    github_sim.commit(REPO, "main", {".github/backend.yml": "label: backend\n", "CLAUDE.md": "é\n"})
    github_sim.commit(REPO, "other", {"AGENTS.md": "agents"})
    assert await gh.read_file(REPO, ".github/backend.yml") == "label: backend\n"
    assert await gh.read_file(REPO, "CLAUDE.md", ref="main") == "é\n"
    assert await gh.read_file(REPO, "AGENTS.md") is None
    assert await gh.read_file(REPO, "AGENTS.md", ref="other") == "agents"
    assert await gh.read_file(REPO, ".github") is None  # a directory
    big = "x" * 5000 + "\n"
    github_sim.commit(REPO, "main", {"big.txt": big})
    assert await gh.read_file(REPO, "big.txt") == big


async def test_app_identity(github_sim, app):
    ident = await app.identity()
    bot = github_sim.users["backend-bot[bot]"]
    assert (ident.slug, ident.bot_login, ident.app_id) == ("backend-bot", "backend-bot[bot]", 1)
    assert ident.bot_email == f"{bot['id']}+backend-bot[bot]@users.noreply.github.com"


async def test_text_written_to_github_is_scrubbed_of_credentials(github_sim, gh):
    token = "ghs_" + "Z" * 36
    key = "sk-ant-api03-" + "q" * 30
    n = github_sim.add_issue(REPO, "An issue", user="alice")
    await gh.upsert_comment(REPO, n, "<!-- backend-bot:x -->", f"the agent printed {token}")
    await gh.upsert_comment(REPO, n, "<!-- backend-bot:x -->", f"and then {key}")  # an edit
    github_sim.commit(REPO, "feature", {"a.txt": "a\n"}, from_branch="main")
    pr = await gh.create_pull(REPO, title=f"Title {token}", head="feature", base="main",
                              body=f"Body {key}")
    await gh.update_pull(REPO, pr.number, body=f"New body {token}")
    sent = " ".join(str(r.json) for r in github_sim.requests if r.json)
    assert token not in sent and key not in sent
    assert "[REDACTED]" in sent


async def test_failing_checks_their_annotations_job_logs_statuses_and_commits(github_sim, gh):
    sha = github_sim.branches(REPO)["main"]
    failed = github_sim.add_check_run(
        REPO, sha, "test", title="1 failed", log="line 1\nFAILED test_x\n",
        annotations=[{"path": "app.py", "start_line": 3, "message": "assert 1 == 2"}])
    github_sim.add_check_run(REPO, sha, "lint", conclusion="success")
    other = github_sim.add_check_run(REPO, sha, "scan", app=github_sim.add_app(slug="scanner"))
    runs = {run.name: run for run in await gh.list_check_runs(REPO, "main")}  # a branch: its head
    assert set(runs) == {"test", "lint", "scan"}
    assert runs["test"].conclusion == "failure" and runs["test"].app_slug == "github-actions"
    assert runs["scan"].app_slug == "scanner"
    (annotation,) = await gh.check_run_annotations(REPO, failed)
    assert (annotation.path, annotation.start_line, annotation.message) == ("app.py", 3, "assert 1 == 2")
    # GitHub redirects to a download address; the client follows it.
    assert await gh.job_log(REPO, failed) == "line 1\nFAILED test_x\n"
    assert [r.status for r in github_sim.requests[-2:]] == [302, 200]
    assert await gh.job_log(REPO, other) is None  # not an Actions job: no log
    github_sim.add_status(REPO, sha, "ci/old", "failure", description="3 failed")
    github_sim.add_status(REPO, sha, "ci/old", "success")
    github_sim.add_status(REPO, sha, "ci/deploy", "error", description="timed out")
    statuses = {s.context: s.state for s in await gh.commit_statuses(REPO, sha)}
    assert statuses == {"ci/old": "success", "ci/deploy": "error"}  # the latest of each context
    commit = await gh.get_commit(REPO, sha)
    assert commit.sha == sha and commit.author_email == "sim@example.com"


class BlobStorageElsewhere(httpx.AsyncBaseTransport):
    """GitHub's real answer for a job's log: a redirect to another host (blob storage). The
    requests that reach that host are kept, to see what the client sent there."""

    def __init__(self, github: httpx.AsyncBaseTransport) -> None:
        self.github = github
        self.at_storage: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "pipelines.blob.example":
            self.at_storage.append(request)
            return httpx.Response(200, text="FAILED test_x\n")
        if request.url.path.endswith("/actions/jobs/7/logs"):
            return httpx.Response(302, headers={"Location": "https://pipelines.blob.example/logs/7?sig=abc"})
        return await self.github.handle_async_request(request)


async def test_a_job_logs_download_elsewhere_is_sent_no_token(github_sim, tmp_path):
    transport = BlobStorageElsewhere(github_sim.transport())
    settings = load_settings(**github_sim.settings_overrides(), data_dir=tmp_path)
    gh_app = GitHubApp(settings, transport=transport)
    try:
        client = await gh_app.installation(42)
        assert await client.job_log(REPO, 7) == "FAILED test_x\n"
    finally:
        await gh_app.aclose()
    (download,) = transport.at_storage
    # The installation token opens every repository of the installation: never to another host.
    assert "authorization" not in {name.lower() for name in download.headers}, download.headers
