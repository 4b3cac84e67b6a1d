"""GitHubApp: installation tokens, retries and rate limits, logging, GitHub Enterprise Server."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot import redact
from bot.github import GitHubApp, InstallationToken, NotConfigured, RateLimited, RequestFailed
from bot.logs import _ContextFilter, bound
from bot.settings import load_settings

REPO = "acme/widgets"
MINT = r"/app/installations/42/access_tokens"


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


def make_app(sim, tmp_path, **kw) -> GitHubApp:
    settings = load_settings(**sim.settings_overrides(), data_dir=tmp_path)
    kw.setdefault("sleep", FakeSleep())
    return GitHubApp(settings, transport=sim.transport(), **kw)


def mints(sim) -> int:
    return len(sim.requests_to("POST", MINT))


# -- tokens ---------------------------------------------------------------------------------


async def test_token_is_cached_then_reminted_before_it_expires(github_sim, tmp_path):
    clock = FakeClock()
    app = make_app(github_sim, tmp_path, clock=clock)
    first = await app.installation_token(42)
    assert first.startswith("ghs_") and mints(github_sim) == 1
    assert await app.installation_token(42) == first and mints(github_sim) == 1

    clock.advance(minutes=49)  # 11 minutes left: still good
    github_sim.advance(49 * 60)
    assert await app.installation_token(42) == first and mints(github_sim) == 1

    clock.advance(minutes=2)  # 9 minutes left: below the 10-minute floor
    github_sim.advance(2 * 60)
    second = await app.installation_token(42)
    assert second != first and mints(github_sim) == 2

    # a job that outlives the first token keeps working: each request gets a fresh one
    gh = await app.installation(42)
    clock.advance(minutes=61)
    github_sim.advance(61 * 60)
    assert github_sim.valid_token(second) is None  # GitHub would refuse it now
    await gh.get_repo(REPO)
    assert mints(github_sim) == 3
    assert all(r.status < 400 for r in github_sim.requests)
    await app.aclose()


async def test_min_validity_is_configurable(github_sim, tmp_path):
    clock = FakeClock()
    app = make_app(github_sim, tmp_path, clock=clock, min_token_validity=timedelta(minutes=45))
    token = await app.installation_token(42)
    clock.advance(minutes=10)
    assert await app.installation_token(42) == token
    clock.advance(minutes=6)  # 44 minutes left
    assert await app.installation_token(42) != token
    # and per call
    assert await app.installation_token(42, min_validity=timedelta(minutes=59, seconds=59)) != token
    assert mints(github_sim) == 3


async def test_tokens_are_per_installation(github_sim, tmp_path):
    github_sim.add_repo("globex/gadgets", installation_id=77)
    app = make_app(github_sim, tmp_path)
    a, b = await app.installation_token(42), await app.installation_token(77)
    assert a != b
    gh77 = await app.installation(77)
    assert (await gh77.get_repo("globex/gadgets")).full_name == "globex/gadgets"


async def test_revoked_token_is_reminted_once_on_401(github_sim, tmp_path):
    app = make_app(github_sim, tmp_path)
    gh = await app.installation(42)
    await gh.get_repo(REPO)
    github_sim.expire_tokens()
    await gh.get_repo(REPO)
    statuses = [(r.path, r.status) for r in github_sim.requests]
    assert statuses == [
        (MINT, 201), ("/repos/acme/widgets", 200),
        ("/repos/acme/widgets", 401), (MINT, 201), ("/repos/acme/widgets", 200),
    ]


async def test_minted_tokens_are_registered_as_secrets_and_never_logged(github_sim, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app(github_sim, tmp_path)
    gh = await app.installation(42)
    await gh.get_repo(REPO)
    token = await app.installation_token(42)
    assert redact.redact(token.encode().hex()) == "[REDACTED]"  # registered, not just token-shaped
    assert token not in caplog.text
    assert redact.redact(f"x {token} y") == "x [REDACTED] y"
    assert token not in repr(InstallationToken(42, token, datetime.now(UTC)))


async def test_every_request_is_logged_with_the_delivery_id(github_sim, tmp_path):
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Collect()
    handler.addFilter(_ContextFilter())
    logger = logging.getLogger("bot.github")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        app = make_app(github_sim, tmp_path)
        gh = await app.installation(42)
        with bound(delivery_id="delivery-123"):
            await gh.get_repo(REPO)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    lines = [(r.delivery_id, r.getMessage()) for r in records if r.name == "bot.github.http"]
    assert [m for d, m in lines if d == "delivery-123" and "GET /repos/acme/widgets -> 200" in m]
    assert len(lines) == 2 and all(d == "delivery-123" for d, _ in lines)


def test_missing_credentials_are_named(tmp_path):
    with pytest.raises(NotConfigured, match="APP_ID"):
        GitHubApp(load_settings(app_id=None, private_key=None, data_dir=tmp_path))


# -- retries and rate limits -------------------------------------------------------------------


async def test_5xx_are_retried_with_backoff(github_sim, tmp_path):
    sleep = FakeSleep()
    app = make_app(github_sim, tmp_path, sleep=sleep)
    gh = await app.installation(42)
    github_sim.fail_next(3, path="^/repos/acme/widgets$", status=502)
    assert (await gh.get_repo(REPO)).name == "widgets"
    assert sleep.calls == [1.0, 2.0, 4.0]
    assert [r.status for r in github_sim.requests_to("GET", "/repos/acme/widgets")] == [502, 502, 502, 200]


async def test_5xx_give_up_after_max_retries(github_sim, tmp_path):
    sleep = FakeSleep()
    app = make_app(github_sim, tmp_path, sleep=sleep, max_retries=3)
    gh = await app.installation(42)
    github_sim.fail_next(10, path="^/repos/acme/widgets$", status=503)
    with pytest.raises(RequestFailed) as err:
        await gh.get_repo(REPO)
    assert err.value.status == 503
    assert sleep.calls == [1.0, 2.0, 4.0]
    assert len(github_sim.requests_to("GET", "/repos/acme/widgets")) == 4


async def test_mint_itself_is_retried(github_sim, tmp_path):
    sleep = FakeSleep()
    app = make_app(github_sim, tmp_path, sleep=sleep)
    github_sim.fail_next(1, path=MINT, status=500)
    assert await app.installation_token(42)
    assert sleep.calls == [1.0]


async def test_network_errors_are_retried(github_sim, tmp_path):
    sleep = FakeSleep()
    app = make_app(github_sim, tmp_path, sleep=sleep)
    gh = await app.installation(42)
    github_sim.drop_next(2, path="^/repos/acme/widgets$")
    assert (await gh.get_repo(REPO)).name == "widgets"
    assert sleep.calls == [1.0, 2.0]


async def test_secondary_rate_limit_waits_retry_after(github_sim, tmp_path):
    sleep = FakeSleep()
    app = make_app(github_sim, tmp_path, sleep=sleep)
    gh = await app.installation(42)
    n = github_sim.add_issue(REPO, "x")
    github_sim.rate_limit_next(path="/comments$", method="POST", retry_after=7)
    await gh.upsert_comment(REPO, n, "<!-- backend-bot:status -->", "hello")
    assert sleep.calls == [7.0]
    assert [r.status for r in github_sim.requests_to("POST", r".*/comments")] == [403, 201]
    assert len(github_sim.comments_on(REPO, n)) == 1


async def test_primary_rate_limit_waits_until_reset(github_sim, tmp_path):
    sleep = FakeSleep()
    app = make_app(github_sim, tmp_path, sleep=sleep)
    gh = await app.installation(42)
    github_sim.rate_limit_next(path="^/repos/acme/widgets$", retry_after=30, primary=True)
    await gh.get_repo(REPO)
    (waited,) = sleep.calls
    assert 29 <= waited <= 32


async def test_rate_limit_longer_than_the_cap_is_not_waited_for(github_sim, tmp_path):
    sleep = FakeSleep()
    app = make_app(github_sim, tmp_path, sleep=sleep, max_total_wait=60)
    gh = await app.installation(42)
    github_sim.rate_limit_next(path="^/repos/acme/widgets$", retry_after=600)
    with pytest.raises(RateLimited) as err:
        await gh.get_repo(REPO)
    assert err.value.status == 403 and "secondary rate limit" in err.value.message
    assert sleep.calls == []
    assert len(github_sim.requests_to("GET", "/repos/acme/widgets")) == 1


async def test_total_wait_is_capped_across_retries(github_sim, tmp_path):
    sleep = FakeSleep()
    app = make_app(github_sim, tmp_path, sleep=sleep, max_total_wait=25, max_retries=10)
    gh = await app.installation(42)
    github_sim.rate_limit_next(5, path="^/repos/acme/widgets$", retry_after=10)
    with pytest.raises(RateLimited):
        await gh.get_repo(REPO)
    assert sleep.calls == [10.0, 10.0]


# -- over real HTTP: GitHub Enterprise Server base URL, slow answers -------------------------------


async def test_ghes_base_url_and_slow_answers_over_http(github_sim_server, tmp_path):
    sim, base_url = github_sim_server
    settings = load_settings(**sim.settings_overrides(), data_dir=tmp_path)
    assert settings.github_api_url == f"{base_url}/api/v3"
    sleep = FakeSleep()
    app = GitHubApp(settings, sleep=sleep, timeout=0.3)
    gh = await app.installation(42)
    repo = await gh.get_repo(REPO)
    assert repo.clone_url == f"{base_url}/acme/widgets.git"
    assert [r.raw_path for r in sim.requests] == [
        "/api/v3/app/installations/42/access_tokens", "/api/v3/repos/acme/widgets"]

    sim.slow_next(path="^/repos/acme/widgets$", seconds=1)
    assert (await gh.get_repo(REPO)).name == "widgets"  # timed out once, then retried
    assert sleep.calls == [1.0]
    ident = await app.identity()
    assert ident.bot_login == "backend-bot[bot]"
    await app.aclose()


async def test_transport_is_shared_and_closed_once(github_sim, tmp_path):
    closed = []
    inner = github_sim.transport()

    class Track(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request):
            return await inner.handle_async_request(request)

        async def aclose(self):
            closed.append(True)

    settings = load_settings(**github_sim.settings_overrides(), data_dir=tmp_path)
    async with GitHubApp(settings, transport=Track()) as app:
        gh = await app.installation(42)
        await gh.get_repo(REPO)
        await gh.get_repo(REPO)
        assert closed == []
    assert closed == [True]
