"""The job functions behind each kind of trigger, registered on the engine in one place."""

from __future__ import annotations

from bot.engine import Engine
from bot.flows import issue
from bot.flows.common import Services

KINDS = {
    "issue": issue.run,
}


def register_flows(engine: Engine, services: Services) -> None:
    engine.services["flows"] = services
    for kind, function in KINDS.items():
        engine.register(kind, function)
