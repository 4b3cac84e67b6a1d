"""Prometheus metrics: deliveries by event and outcome, webhook latency, jobs by state; and, read
from the database at each scrape, model tokens and dollars by repository and model, finished
jobs by kind and outcome, and the time jobs waited in the queue.

The figures read from the database are the whole deployment's, the same from every process
sharing it (jobs run on other machines included, restarts forgotten nothing): scrape one
process for them, or take `max` over processes, never `sum`. The webhook's own figures
(deliveries, latency) are each process's, as usual.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from bot import budgets
from bot.agent.usage import PRICES
from bot.jobstore import FINAL_STATES, JobStore
from bot.logs import get_logger

log = get_logger(__name__)

# Seconds from a job's arrival to its start: controls take well under a second, work waits for
# earlier work on its issue or for a free worker, up to hours under load.
QUEUE_WAIT_BUCKETS = (0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)


class _JobsByState:
    def __init__(self, store: JobStore) -> None:
        self.store = store

    def collect(self):
        family = GaugeMetricFamily("backend_bot_jobs", "Jobs by state", labels=["state"])
        try:
            counts = self.store.counts_by_state()
        except Exception:
            counts = {}
        for state, count in counts.items():
            family.add_metric([state], count)
        yield family


class _FromDatabase:
    """What the jobs and spend tables say, read at each scrape."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def collect(self):
        try:
            spend = budgets.ledger(self.store.database).by_repo_model()
            finished = self.store.database.execute(
                "SELECT kind, state, COUNT(*) FROM bot_jobs WHERE state IN (?, ?, ?) GROUP BY kind, state",
                tuple(sorted(FINAL_STATES)))
            waits = self._waits()
        except Exception as error:  # a scrape while the database is away shows the rest
            log.warning("metrics: could not read the database: %s", error)
            return
        tokens = CounterMetricFamily("backend_bot_model_tokens", "Model tokens by repository, model and type "
                                     "(input excludes cached; cached: read from the prompt cache)",
                                     labels=["repo", "model", "type"])
        cost = CounterMetricFamily("backend_bot_model_cost_usd", "Model cost in US dollars by repository and model",
                                   labels=["repo", "model"])
        runs = CounterMetricFamily("backend_bot_agent_runs", "Agent runs by repository and model",
                                   labels=["repo", "model"])
        for (repo, model), figures in _by_known_model(spend).items():
            for kind, value in zip(("input", "cached", "cache_write", "output"), figures[:4], strict=True):
                tokens.add_metric([repo, model, kind], value)
            cost.add_metric([repo, model], figures[4])
            runs.add_metric([repo, model], figures[5])
        jobs = CounterMetricFamily("backend_bot_jobs_finished", "Finished jobs by kind and outcome",
                                   labels=["kind", "outcome"])
        for kind, state, count in finished:
            jobs.add_metric([kind, state], count)
        wait = HistogramMetricFamily("backend_bot_job_queue_wait_seconds",
                                     "Time from a job's arrival to its (latest) start, by kind", labels=["kind"])
        for kind, buckets, total in waits:
            wait.add_metric([kind], buckets, sum_value=total)
        yield from (tokens, cost, runs, jobs, wait)

    def _waits(self) -> list[tuple[str, list[tuple[str, float]], float]]:
        under = ", ".join(f"SUM(CASE WHEN started_at - created_at <= {le!r} THEN 1 ELSE 0 END)"
                          for le in QUEUE_WAIT_BUCKETS)
        rows = self.store.database.execute(
            f"SELECT kind, COUNT(*), SUM(started_at - created_at), {under} FROM bot_jobs "
            "WHERE started_at IS NOT NULL GROUP BY kind ORDER BY kind")
        found = []
        for kind, count, total, *cumulative in rows:
            buckets = [(repr(le), float(n)) for le, n in zip(QUEUE_WAIT_BUCKETS, cumulative, strict=True)]
            found.append((kind, [*buckets, ("+Inf", float(count))], float(total or 0.0)))
        return found


def _by_known_model(spend: list[budgets.SpendRow]) -> dict[tuple[str, str], list[float]]:
    """Figures by repository and model, a model the bot has no price for counted as `other`: a
    repository's config names its model, and each new name must not grow /metrics for good."""
    figures: dict[tuple[str, str], list[float]] = {}
    for row in spend:
        model = row.model if row.model in PRICES else "other"
        sums = figures.setdefault((row.repo, model), [0.0] * 6)
        for index, value in enumerate((row.input_tokens, row.cached_tokens, row.cache_write_tokens,
                                       row.output_tokens, row.usd, row.runs)):
            sums[index] += value
    return figures


class Metrics:
    def __init__(self, store: JobStore | None = None) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "backend_bot_webhook_deliveries",
            "Webhook deliveries by event and outcome",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "backend_bot_webhook_seconds",
            "Time to answer a webhook delivery",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        if store is not None:
            self.registry.register(_JobsByState(store))
            self.registry.register(_FromDatabase(store))

    def render(self) -> bytes:
        return generate_latest(self.registry)
