"""The operator's budgets: spend recorded per run, a trigger refused (with which budget and when
it resets, and no model call) once a budget is spent, accepted when it resets (the budgets'
clock moved), `.github/backend.yml` unable to raise a cap, a run stopped midway by a budget."""

from __future__ import annotations

import datetime as dt

import pytest

from bot import budgets
from bot.agent.usage import Usage
from bot.database import Database
from bot.repo_config import parse_repo_config
from bot.settings import load_settings
from tests.agent_fakes import FakeAnthropic, finish, tool_use
from tests.support.in_process import InProcessBot
from tests.support.stack import REPO, Stack, bot_settings

# The scripted model answers 100 input and 20 output tokens a turn: on claude-haiku-4-5
# (1 and 5 USD per million) that is $0.0002 a turn.
TURN_USD = 0.0002
DAY_ONE = dt.datetime(2026, 11, 30, 21, 15, tzinfo=dt.UTC)


@pytest.fixture
def clock(monkeypatch):
    """The budgets' clock, set by the test."""
    moment = {"now": DAY_ONE}
    monkeypatch.setattr(budgets, "now", lambda: moment["now"])
    return moment


@pytest.fixture
def make_stack(github_sim_server, people, tmp_path, capfd):
    """A bot in this process with these settings overrides (the operator's caps)."""
    sim, _ = github_sim_server
    running = []

    def make(**overrides) -> Stack:
        fake = FakeAnthropic([]).start()
        bot = InProcessBot(bot_settings(sim, fake, tmp_path / "data", **overrides), tmp_path / "bot.log",
                           transport=sim.transport(), console=capfd)
        running.append((bot, fake))
        bot.start()
        return Stack(sim, fake, bot, tmp_path / "data")

    yield make
    for bot, fake in running:
        bot.stop()
        fake.stop()


def one_file(name: str) -> list:
    return [tool_use("Write", file_path=name, content="x\n"), finish(title=f"Add {name}")]


def trigger(stack: Stack, title: str) -> int:
    number = stack.sim.add_issue(REPO, title, "Please.", user="alice")
    assert stack.deliver("issues", stack.sim.event_issues_labeled(REPO, number, "backend")).status_code == 202
    return number


def texts_on(stack: Stack, number: int) -> str:
    return "\n".join(c["body"] for c in stack.sim.comments_on(REPO, number))


def test_refused_over_the_daily_budget_and_accepted_the_next_day(make_stack, clock):
    stack = make_stack(budget_repo_daily_usd=2.5 * TURN_USD)
    stack.fake.add(*one_file("a.txt"))
    trigger(stack, "Add a.txt")
    assert stack.wait_jobs(1)[0].state == "succeeded"
    assert len(stack.fake.requests) == 2  # $0.0004 of $0.0005: the day's budget is not spent

    stack.fake.add(tool_use("Bash", command="true"), *one_file("b.txt"))
    trigger(stack, "Add b.txt")
    assert stack.wait_jobs(2)[1].state in ("succeeded", "failed")  # stopped by the budget midway
    assert len(stack.fake.requests) == 3  # one turn, and the $0.0001 left was spent
    assert stack.fake.remaining == 2
    stack.fake.script.clear()
    spent = budgets.ledger(Database(stack.bot.settings.database_url)).repo_day(REPO, DAY_ONE.date())
    assert spent == pytest.approx(3 * TURN_USD)

    requests_before = len(stack.fake.requests)
    refused = trigger(stack, "Add c.txt")
    job = stack.wait_jobs(3)[2]
    assert job.state == "failed"
    assert len(stack.fake.requests) == requests_before  # no model call
    said = texts_on(stack, refused)
    assert "spent its daily budget for the model ($0.0006 of $0.0005 today, UTC)" in said
    assert "resets at 2026-12-01 00:00 UTC (in 2 h 45 min)" in said

    clock["now"] = DAY_ONE + dt.timedelta(hours=3)  # the next UTC day
    stack.fake.add(*one_file("d.txt"))
    trigger(stack, "Add d.txt")
    assert stack.wait_jobs(4)[3].state == "succeeded"
    assert stack.fake.remaining == 0


def test_a_run_stopped_by_the_budget_says_it_was_the_budget(make_stack, clock):
    stack = make_stack(budget_repo_daily_usd=1.5 * TURN_USD)
    stack.fake.add(*[tool_use("Bash", command="true") for _ in range(5)])
    number = trigger(stack, "Loop")
    stack.wait_jobs(1)
    assert len(stack.fake.requests) == 2
    said = texts_on(stack, number) + "".join(p["body"] or "" for p in stack.sim.pulls(REPO))
    assert ("the repository's daily budget for the model ran out midway: the run was given the $0.0003 "
            "left of it, and spent $0.0004") in said


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def spent(request, tmp_path):
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path}/db.db")
    else:
        database = Database(request.getfixturevalue("pg_url"))
        database.execute("DROP TABLE IF EXISTS bot_spend")
    yield budgets.ledger(database)
    database.close()


def test_monthly_budget_of_the_installation(spent, clock):
    settings = load_settings(_env_file=None, budget_installation_monthly_usd=1.0)
    config = parse_repo_config(None)
    usage = Usage(model="claude-haiku-4-5", cost_usd=0.75)
    spent.record(job_id=1, installation_id=42, repo="acme/a", usage=usage, at=DAY_ONE - dt.timedelta(days=3))
    spent.record(job_id=2, installation_id=7, repo="other/b", usage=usage, at=DAY_ONE)  # another installation
    spent.record(job_id=3, installation_id=42, repo="acme/b", usage=usage, at=dt.datetime(2026, 10, 31, tzinfo=dt.UTC))
    allowed = budgets.allowance(settings, config, spent, installation_id=42, repo="acme/b")
    assert (allowed.max_cost_usd, allowed.limited_by) == (pytest.approx(0.25), "monthly")

    spent.record(job_id=4, installation_id=42, repo="acme/b", usage=usage, at=DAY_ONE)
    with pytest.raises(budgets.OverBudget, match=r"monthly budget .*\$1.50 of \$1.00 this month.*"
                                                 r"resets at 2026-12-01 00:00 UTC \(in 2 h 45 min\)"):
        budgets.allowance(settings, config, spent, installation_id=42, repo="acme/b")
    clock["now"] = dt.datetime(2026, 12, 1, 0, 1, tzinfo=dt.UTC)
    assert budgets.allowance(settings, config, spent, installation_id=42, repo="acme/b").max_cost_usd == 1.0


def test_a_repository_lowers_the_operators_caps_and_cannot_raise_them(spent, clock):
    settings = load_settings(_env_file=None, max_cost_per_run_usd=2.0, budget_repo_daily_usd=10.0)

    raising = parse_repo_config("max_cost_usd: 50\ndaily_budget_usd: 500\n")
    allowed = budgets.allowance(settings, raising, spent, installation_id=42, repo=REPO)
    assert (allowed.max_cost_usd, allowed.limited_by) == (2.0, "run")
    assert allowed.notes == [
        "`max_cost_usd: 50` in `.github/backend.yml` is above the bot operator's cap of $2.00 per run, "
        "so $2.00 applies.",
        "`daily_budget_usd: 500` in `.github/backend.yml` is above the bot operator's daily budget of "
        "$10.00, so $10.00 applies.",
    ]
    spent.record(job_id=1, installation_id=42, repo=REPO, usage=Usage(model="m", cost_usd=9.5), at=DAY_ONE)
    assert budgets.allowance(settings, raising, spent, installation_id=42, repo=REPO).max_cost_usd == pytest.approx(0.5)

    lowering = parse_repo_config("max_cost_usd: 0.5\ndaily_budget_usd: 9\n")
    with pytest.raises(budgets.OverBudget, match=r"\$9.50 of \$9.00 today"):
        budgets.allowance(settings, lowering, spent, installation_id=42, repo=REPO)
    assert budgets.operator_notes(settings, lowering) == []
    # Without the operator's caps the repository's own values stand.
    free = load_settings(_env_file=None)
    assert budgets.allowance(free, raising, spent, installation_id=42, repo=REPO).max_cost_usd == 50


def test_a_raise_is_said_in_the_working_status(make_stack, clock, github_sim):
    github_sim.commit(REPO, "main", {".github/backend.yml": "max_cost_usd: 50\n"}, message="More")
    stack = make_stack(max_cost_per_run_usd=1.0)
    stack.fake.add(*one_file("a.txt"))
    number = trigger(stack, "Add a.txt")
    assert stack.wait_jobs(1)[0].state == "succeeded"
    edits = [r.json["body"] for r in stack.sim.requests
             if isinstance(r.json, dict) and "Working on it" in r.json.get("body", "")]
    note = ("ℹ️ `max_cost_usd: 50` in `.github/backend.yml` is above the bot operator's cap of $1.00 per run, "
            "so $1.00 applies.")
    # From the moment the run's allowance is known to the run's end.
    later = [body for body in edits if "making a plan" in body or "committing" in body]
    assert len(later) >= 2 and all(note in body for body in later)
    assert number
