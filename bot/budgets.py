"""What the model cost, run by run, and the operator's budgets that bound it.

Every agent run's tokens and dollars are written to `bot_spend` when the run ends, however it
ended (finished, asked, stopped at a bound, failed): one row per run, in the database the jobs
are in, so every process sharing a PostgreSQL database sees every other's spend. `/metrics`
and `backend-bot usage` read the same rows.

The operator's caps come from the environment: per run (BOT_MAX_COST_PER_RUN_USD), per
repository and UTC day (BOT_BUDGET_REPO_DAILY_USD), per installation and UTC calendar month
(BOT_BUDGET_INSTALLATION_MONTHLY_USD). A repository's `.github/backend.yml` may lower the
first two (`max_cost_usd`, `daily_budget_usd`) and never raise them: a higher value is ignored,
and the run's status says so. Before a run, `allowance` gives what it may spend: the least of
the per-run cap and what is left of the day's and the month's budgets; nothing left refuses the
run before any model call (`OverBudget`, said on GitHub: which budget, and when it resets). The
allowance is the run's cost limit, so a run that reaches a budget midway stops as it stops at
any limit. Runs of one repository at the same time each get what was left when they started,
so together they may pass a budget by up to one allowance each.

`now()` is the one clock here, so tests move it.
"""

from __future__ import annotations

import datetime as dt
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.agent.usage import Usage
from bot.database import Database
from bot.errors import UserFacingError
from bot.providers import canonical_model

if TYPE_CHECKING:
    from bot.repo_config import RepoConfig
    from bot.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bot_spend (
    id {id_column},
    job_id BIGINT NOT NULL,
    installation_id BIGINT NOT NULL,
    repo TEXT NOT NULL,
    model TEXT NOT NULL,
    day TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    usd DOUBLE PRECISION NOT NULL,
    recorded_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS bot_spend_repo_day ON bot_spend (repo, day);
CREATE INDEX IF NOT EXISTS bot_spend_installation_day ON bot_spend (installation_id, day)
"""


# Sums of float dollars: a budget spent to the last billionth of a dollar is spent.
_ROUNDING = 1e-9


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class SpendRow:
    """One repository's spend on one UTC day with one model."""

    repo: str
    day: str
    model: str
    runs: int
    input_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    output_tokens: int
    usd: float


class SpendLedger:
    """The `bot_spend` table of one database."""

    def __init__(self, database: Database) -> None:
        self.database = database
        database.create_schema(_SCHEMA.format(id_column=database.id_column))

    def record(self, *, job_id: int, installation_id: int | None, repo: str, usage: Usage,
               at: dt.datetime | None = None) -> None:
        at = at or now()
        self.database.execute(
            "INSERT INTO bot_spend (job_id, installation_id, repo, model, day, input_tokens, "
            "cached_tokens, cache_write_tokens, output_tokens, usd, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, installation_id or 0, repo, canonical_model(usage.model), at.date().isoformat(),
             usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
             usage.output_tokens, usage.cost_usd, at.timestamp()),
        )

    def repo_day(self, repo: str, day: dt.date) -> float:
        rows = self.database.execute(
            "SELECT COALESCE(SUM(usd), 0) FROM bot_spend WHERE repo = ? AND day = ?",
            (repo, day.isoformat()))
        return float(rows[0][0])

    def installation_month(self, installation_id: int, day: dt.date) -> float:
        first, next_first = _month_bounds(day)
        rows = self.database.execute(
            "SELECT COALESCE(SUM(usd), 0) FROM bot_spend WHERE installation_id = ? "
            "AND day >= ? AND day < ?", (installation_id, first.isoformat(), next_first.isoformat()))
        return float(rows[0][0])

    def by_repo_day(self, *, since: dt.date | None = None, repo: str | None = None) -> list[SpendRow]:
        clauses, params = [], []
        if since is not None:
            clauses.append("day >= ?")
            params.append(since.isoformat())
        if repo is not None:
            clauses.append("repo = ?")
            params.append(repo)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.database.execute(
            "SELECT repo, day, model, COUNT(*), SUM(input_tokens), SUM(cached_tokens), "
            f"SUM(cache_write_tokens), SUM(output_tokens), SUM(usd) FROM bot_spend {where} "
            "GROUP BY repo, day, model ORDER BY day, repo, model", tuple(params))
        return [SpendRow(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5]), int(r[6]), int(r[7]), float(r[8]))
                for r in rows]

    def by_repo_model(self) -> list[SpendRow]:
        """Everything ever spent, by repository and model (`day` empty): /metrics' counters."""
        rows = self.database.execute(
            "SELECT repo, model, COUNT(*), SUM(input_tokens), SUM(cached_tokens), "
            "SUM(cache_write_tokens), SUM(output_tokens), SUM(usd) FROM bot_spend "
            "GROUP BY repo, model ORDER BY repo, model")
        return [SpendRow(r[0], "", r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]), float(r[7]))
                for r in rows]


_ledgers: weakref.WeakKeyDictionary[Database, SpendLedger] = weakref.WeakKeyDictionary()


def ledger(database: Database) -> SpendLedger:
    """The ledger of `database`, its table created on first use."""
    found = _ledgers.get(database)
    if found is None:
        found = _ledgers[database] = SpendLedger(database)
    return found


class OverBudget(UserFacingError):
    """A budget is spent: no run until it resets. The message says which, and when."""


@dataclass(frozen=True)
class Allowance:
    """What one run may spend, which cap set it, and the repository's values that were ignored."""

    max_cost_usd: float
    limited_by: str  # "run", "daily" or "monthly"
    notes: list[str] = field(default_factory=list)

    def explain_bound(self, reason: str | None, spent_usd: float) -> str | None:
        """The loop's "cost limit reached" said as the budget it was, when a budget set it."""
        if not reason or not reason.startswith("cost limit") or self.limited_by == "run":
            return reason
        which = "daily budget" if self.limited_by == "daily" else "monthly budget"
        return (f"the {_BUDGET_OWNER[self.limited_by]}'s {which} for the model ran out midway: the run "
                f"was given the {usd(self.max_cost_usd)} left of it, and spent {usd(spent_usd)}")


_BUDGET_OWNER = {"daily": "repository", "monthly": "installation"}


def operator_notes(settings: Settings, config: RepoConfig) -> list[str]:
    """One sentence for each cap that `.github/backend.yml` tried to raise (and could not)."""
    notes = []
    cap = settings.max_cost_per_run_usd
    if cap is not None and "max_cost_usd" in config.model_fields_set and config.max_cost_usd > cap:
        notes.append(f"`max_cost_usd: {config.max_cost_usd:g}` in `.github/backend.yml` is above the "
                     f"bot operator's cap of ${cap:.2f} per run, so ${cap:.2f} applies.")
    daily = settings.budget_repo_daily_usd
    if daily is not None and config.daily_budget_usd is not None and config.daily_budget_usd > daily:
        notes.append(f"`daily_budget_usd: {config.daily_budget_usd:g}` in `.github/backend.yml` is above "
                     f"the bot operator's daily budget of ${daily:.2f}, so ${daily:.2f} applies.")
    return notes


def allowance(settings: Settings, config: RepoConfig, spent: SpendLedger, *, installation_id: int,
              repo: str, at: dt.datetime | None = None) -> Allowance:
    """What the next run of `repo` may spend; raises OverBudget when a budget has nothing left."""
    at = at or now()
    caps: list[tuple[float, str]] = [(min(config.max_cost_usd, settings.max_cost_per_run_usd or float("inf")),
                                      "run")]
    daily = _lowest(config.daily_budget_usd, settings.budget_repo_daily_usd)
    if daily is not None:
        used = spent.repo_day(repo, at.date())
        if used + _ROUNDING >= daily:
            raise OverBudget(
                f"this repository has spent its daily budget for the model ({usd(used)} of {usd(daily)} "
                f"today, UTC), so the bot will not start the agent. The budget resets at "
                f"{_reset_text(_next_midnight(at), at)}")
        caps.append((daily - used, "daily"))
    monthly = settings.budget_installation_monthly_usd
    if monthly is not None:
        used = spent.installation_month(installation_id, at.date())
        if used + _ROUNDING >= monthly:
            _, next_first = _month_bounds(at.date())
            reset = dt.datetime.combine(next_first, dt.time(), dt.UTC)
            raise OverBudget(
                f"this installation of the bot (every repository it serves here) has spent its monthly "
                f"budget for the model ({usd(used)} of {usd(monthly)} this month, UTC), so the bot will "
                f"not start the agent. The budget resets at {_reset_text(reset, at)}")
        caps.append((monthly - used, "monthly"))
    limit, limited_by = min(caps)
    return Allowance(limit, limited_by, operator_notes(settings, config))


def usd(amount: float) -> str:
    """Dollars as people read them; cents hide small amounts, so those get four places."""
    return f"${amount:,.2f}" if amount >= 1 or amount == 0 else f"${amount:.4f}"


def _lowest(repo_value: float | None, operator_cap: float | None) -> float | None:
    values = [v for v in (repo_value, operator_cap) if v is not None]
    return min(values) if values else None


def _month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    first = day.replace(day=1)
    next_first = (first + dt.timedelta(days=32)).replace(day=1)
    return first, next_first


def _next_midnight(at: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(at.date() + dt.timedelta(days=1), dt.time(), dt.UTC)


def _reset_text(reset: dt.datetime, at: dt.datetime) -> str:
    minutes = max(1, round((reset - at).total_seconds() / 60))
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours) + [f"{minutes} min"] * bool(minutes)
    return f"{reset:%Y-%m-%d %H:%M} UTC (in {' '.join(parts)})"
