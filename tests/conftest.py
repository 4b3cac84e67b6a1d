
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
