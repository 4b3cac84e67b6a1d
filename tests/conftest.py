
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
def stack(github_sim_server, tmp_path):
    """`backend-bot serve` in its own process, wired to the served simulator and a scripted
    model; `alice` may write to acme/widgets, `mallory` may only read."""
    from tests.agent_fakes import FakeAnthropic
    from tests.support.processes import BotProcess
    from tests.support.stack import REPO, Stack, bot_env

    sim, _ = github_sim_server
    sim.add_user("alice", permission="write", repo=REPO)
    sim.add_user("mallory", permission="read", repo=REPO)
    with FakeAnthropic([]) as fake:
        bot = BotProcess(bot_env(sim, fake, tmp_path / "data"), tmp_path / "bot.log",
                         module="bot", args=["serve"])
        bot.start()
        try:
            yield Stack(sim, fake, bot)
        finally:
            bot.stop()
