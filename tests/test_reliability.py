"""The reliability campaign at the size of the suite (bench/reliability.py runs it in full):
a fault soak, and a kill loop with kills aimed at the moments that matter. Seeded."""

from __future__ import annotations

import random

import pytest

from tests.agent_fakes import FakeAnthropic
from tests.support.campaign import Fleet

SEED = 20261130


@pytest.fixture
def fleet_of(github_sim_server, tmp_path):
    sim, _ = github_sim_server
    fleets = []

    def make(count: int) -> Fleet:
        fake = FakeAnthropic([]).start()
        fleet = Fleet(sim, fake, tmp_path, count, workers=2)
        fleets.append((fleet, fake))
        fleet.start()
        return fleet

    yield make
    for fleet, fake in fleets:
        fleet.bot.stop()
        fake.stop()


def test_every_issue_one_pr_under_faults_before_and_after_writes(fleet_of, github_sim_server):
    sim, _ = github_sim_server
    fleet = fleet_of(3)
    sim.chaos(0.2, seed=SEED)
    fleet.label_all()
    assert fleet.wait_done(timeout=240), fleet.bot.log()[-3000:]
    sim.chaos(0.0, seed=SEED)
    outcome = fleet.outcome()
    assert sim.chaos_faults > 0
    assert outcome.perfect, outcome


@pytest.mark.parametrize("moments", [("write", "push", "checkout")])
def test_kills_at_the_moments_that_matter_lose_nothing_and_double_nothing(fleet_of, moments):
    rng = random.Random(SEED)
    fleet = fleet_of(2)
    fleet.label_all()
    for moment in moments:
        fleet.kill_at(moment, rng)
    assert fleet.wait_done(timeout=240), fleet.bot.log()[-3000:]
    outcome = fleet.outcome()
    assert fleet.kills >= 1
    assert outcome.perfect, outcome
