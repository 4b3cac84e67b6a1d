"""Prometheus metrics: deliveries by event and outcome, webhook latency, jobs by state."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from bot.jobstore import JobStore


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

    def render(self) -> bytes:
        return generate_latest(self.registry)
