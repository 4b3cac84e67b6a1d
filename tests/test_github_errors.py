"""The GitHub error tree: what outlasts the transport's own retries is raised as an error that
says whether a durable step may try again (`TransientError`), and every error survives the
pickling DBOS does when it records a failed step."""

from __future__ import annotations

import pickle

import httpx
import pytest
from dbos._error import DBOSMaxStepRetriesExceeded

from bot.engine import is_transient
from bot.errors import BotError, TransientError, WebhookError
from bot.github import (
    GitError,
    GitHubApp,
    GitHubError,
    NetworkError,
    NotConfigured,
    NotFound,
    RateLimited,
    RequestFailed,
    ServerError,
    ValidationFailed,
)
from bot.settings import load_settings

REPO = "acme/widgets"
MINT = r"/app/installations/42/access_tokens"


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
async def make_gh(github_sim, tmp_path):
    """An installation client whose transport retries twice and waits at most a minute."""
    apps = []

    async def make(**kw):
        settings = load_settings(**github_sim.settings_overrides(), data_dir=tmp_path)
        kw = {"sleep": FakeSleep(), "max_retries": 2, "max_total_wait": 60, **kw}
        app = GitHubApp(settings, transport=github_sim.transport(), **kw)
        apps.append(app)
        return await app.installation(42)

    yield make
    for app in apps:
        await app.aclose()


def test_one_root():
    for cls in (GitHubError, NotConfigured, RequestFailed, NotFound, ValidationFailed,
                ServerError, RateLimited, NetworkError, GitError):
        assert issubclass(cls, GitHubError) and issubclass(cls, BotError)
    for cls in (ServerError, RateLimited, NetworkError):
        assert issubclass(cls, TransientError)
    for cls in (NotFound, ValidationFailed, NotConfigured, GitError):
        assert not issubclass(cls, TransientError)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_past_the_transports_retries_is_transient(github_sim, make_gh, status):
    gh = await make_gh()
    github_sim.fail_next(10, path="^/repos/acme/widgets$", status=status)
    with pytest.raises(ServerError) as err:
        await gh.get_repo(REPO)
    assert isinstance(err.value, TransientError) and is_transient(err.value)
    assert isinstance(err.value, RequestFailed) and err.value.status == status
    assert len(github_sim.requests_to("GET", "^/repos/acme/widgets$")) == 3  # the transport tried


@pytest.mark.parametrize("primary", [False, True], ids=["secondary", "primary"])
@pytest.mark.parametrize("status", [403, 429])
async def test_rate_limit_past_the_wait_cap_is_transient(github_sim, make_gh, status, primary):
    gh = await make_gh()
    github_sim.rate_limit_next(path="^/repos/acme/widgets$", retry_after=600, primary=primary,
                               status=status)
    with pytest.raises(RateLimited) as err:
        await gh.get_repo(REPO)
    assert isinstance(err.value, TransientError) and is_transient(err.value)
    assert err.value.status == status and "rate limit" in err.value.message


async def test_dropped_connection_past_the_transports_retries_is_transient(github_sim, make_gh):
    sleep = FakeSleep()
    gh = await make_gh(sleep=sleep)
    github_sim.drop_next(10, path="^/repos/acme/widgets$")
    with pytest.raises(NetworkError) as err:
        await gh.get_repo(REPO)
    assert isinstance(err.value, TransientError) and is_transient(err.value)
    assert isinstance(err.value.__cause__, httpx.TransportError)
    assert "GET /repos/acme/widgets" in str(err.value)
    assert sleep.calls == [1.0, 2.0]


async def test_the_callers_mistakes_are_not_transient(github_sim, make_gh):
    gh = await make_gh()
    with pytest.raises(NotFound) as missing:
        await gh.get_pull(REPO, 999)
    with pytest.raises(ValidationFailed) as invalid:
        await gh.create_pull(REPO, title="x", head="no-such-branch", base="main")
    github_sim.fail_next(path="^/repos/acme/widgets$", status=403)
    with pytest.raises(RequestFailed) as forbidden:
        await gh.get_repo(REPO)
    assert (missing.value.status, invalid.value.status, forbidden.value.status) == (404, 422, 403)
    for error in (missing.value, invalid.value, forbidden.value):
        assert not isinstance(error, TransientError) and not is_transient(error)


async def test_a_token_mint_failing_on_the_way_keeps_its_meaning(github_sim, make_gh):
    gh = await make_gh()
    # A 502 from the mint that the installation's auth flow does first: worth a step's retry.
    github_sim.fail_next(3, path=MINT, status=502)  # all the transport tries
    with pytest.raises(ServerError) as err:
        await gh.get_repo(REPO)
    assert err.value.url == MINT and is_transient(err.value)

    # A 404 from the mint (the App was uninstalled) is not the file's 404: read_file must not
    # answer "no such file" for it.
    github_sim.fail_next(path=MINT, status=404)
    with pytest.raises(GitHubError) as err:
        await gh.read_file(REPO, "README.md")
    assert not isinstance(err.value, (NotFound, TransientError))
    assert "404" in str(err.value)


def test_errors_survive_the_pickling_dbos_does_for_a_failed_step():
    errors = [
        ServerError("GET", "/repos/a/b", 502, "Server Error"),
        RateLimited("POST", "/repos/a/b/pulls", 403, "secondary rate limit", []),
        ValidationFailed("POST", "/repos/a/b/pulls", 422, "Validation Failed",
                         [{"resource": "PullRequest", "code": "invalid"}]),
        NotFound("GET", "/repos/a/b", 404, "Not Found"),
        NetworkError("GET /repos/a/b: ConnectError('reset')"),
        GitError(["push", "origin"], 128, "fatal: unable to access"),
        NotConfigured("GitHub App credentials missing: APP_ID"),
        WebhookError(401, "bad signature"),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
        assert vars(copy) == vars(error)
    # What DBOS records when a step runs out of retries: the errors of every attempt.
    exhausted = pickle.loads(pickle.dumps(DBOSMaxStepRetriesExceeded("publish", 4, errors[:2])))
    assert [type(e) for e in exhausted.errors] == [ServerError, RateLimited]
    assert exhausted.errors[0].status == 502


async def test_a_post_is_not_sent_twice_when_github_may_have_written(github_sim, make_gh):
    """A 502 after a POST may come after the write: the transport hands it up (the step
    looks for what it wrote before writing again); a GET is retried at once."""
    gh = await make_gh()
    number = github_sim.add_issue(REPO, "Do it")
    github_sim.fail_after_next(1, path=r"/issues/\d+/comments$", method="POST")
    with pytest.raises(ServerError):
        await gh.upsert_comment(REPO, number, "<!-- backend-bot:status:job-1 -->", "Queued")
    assert len(github_sim.comments_on(REPO, number)) == 1  # written once, despite the 502
    again = await gh.upsert_comment(REPO, number, "<!-- backend-bot:status:job-1 -->", "Queued")
    assert [c["id"] for c in github_sim.comments_on(REPO, number)] == [again.id]
    github_sim.fail_next(1, path=r"/repos/acme/widgets$", method="GET", status=502)
    assert (await gh.get_repo(REPO)).name == "widgets"
