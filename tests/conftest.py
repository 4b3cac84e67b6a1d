
# -- GitHub simulator fixtures (tests/simulator) --------------------------------------------

import pytest as _pytest_github_sim


@_pytest_github_sim.fixture
def github_sim(tmp_path):
    """A fresh GitHubSimulator with an App (`backend-bot`, id 1) and `acme/widgets` installed (id 42).

    Fails the test if the code under test called a route the simulator does not know.
    """
    from tests.simulator import GitHubSimulator

    sim = GitHubSimulator(tmp_path / "github")
    sim.add_app(app_id=1, slug="backend-bot")
    sim.add_repo("acme/widgets", files={"README.md": "# widgets\n"}, installation_id=42)
    yield sim
    assert not sim.unmatched, f"calls to unknown GitHub routes: {sim.unmatched}"


@_pytest_github_sim.fixture
def github_sim_server(github_sim):
    """`github_sim` served on 127.0.0.1; yields (sim, base_url)."""
    with github_sim.serve() as base_url:
        yield github_sim, base_url


# -- the whole bot against the simulator (tests/support/stack.py) ----------------------------


@_pytest_github_sim.fixture
def people(github_sim):
    """`alice` may write to acme/widgets, `mallory` may only read."""
    from tests.support.stack import REPO

    github_sim.add_user("alice", permission="write", repo=REPO)
    github_sim.add_user("mallory", permission="read", repo=REPO)


@_pytest_github_sim.fixture
def stack(github_sim_server, people, tmp_path, capfd):
    """The bot (`bot.app.build_app`, its engine, database and sandbox) in this process, wired
    to the served simulator (REST in-process, git over HTTP) and a scripted model."""
    from tests.agent_fakes import FakeAnthropic
    from tests.support.in_process import InProcessBot
    from tests.support.stack import Stack, bot_settings

    sim, _ = github_sim_server
    with FakeAnthropic([]) as fake:
        bot = InProcessBot(bot_settings(sim, fake, tmp_path / "data"), tmp_path / "bot.log",
                           transport=sim.transport(), console=capfd)
        try:
            bot.start()
            yield Stack(sim, fake, bot, tmp_path / "data")
        finally:
            bot.stop()


@_pytest_github_sim.fixture
def process_stack(github_sim_server, people, tmp_path):
    """`backend-bot serve` in its own process, wired to the served simulator and a scripted
    model: for tests that kill it, or that need what only a process of its own has."""
    from tests.agent_fakes import FakeAnthropic
    from tests.support.processes import BotProcess
    from tests.support.stack import Stack, bot_env

    sim, _ = github_sim_server
    with FakeAnthropic([]) as fake:
        bot = BotProcess(bot_env(sim, fake, tmp_path / "data"), tmp_path / "bot.log",
                         module="bot", args=["serve"])
        try:
            bot.start()  # inside: a process that never became healthy is stopped too
            yield Stack(sim, fake, bot, tmp_path / "data")
        finally:
            bot.stop()


# -- a throwaway PostgreSQL (tests/support/postgres.py) -------------------------------------


@_pytest_github_sim.fixture(scope="module")
def pg_url():
    """The URL of a PostgreSQL server of this test module's own; skips where none can run."""
    from tests.support.postgres import ThrowawayPostgres, skip_reason

    reason = skip_reason()
    if reason is not None:
        _pytest_github_sim.skip(f"no PostgreSQL: {reason}")
    server = ThrowawayPostgres()
    yield server.start()
    server.stop()
