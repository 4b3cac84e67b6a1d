"""The job functions behind each kind of trigger, registered on the engine in one place."""

from __future__ import annotations

from bot.engine import Engine
from bot.flows import ack, config, control, issue, pull_request, review
from bot.flows.common import Services

KINDS = {
    "issue": issue.run,
    "pr_command": pull_request.run,
    "review": review.run,
    "control": control.run,
    "config": config.run,
    "ack": ack.run,
}


def register_flows(engine: Engine, services: Services) -> None:
    engine.services["flows"] = services
    for kind, function in KINDS.items():
        engine.register(kind, function)
