"""The job functions behind each kind of trigger, registered on the engine in one place."""

from __future__ import annotations

from bot.engine import Engine
from bot.flows import (
    abandoned,
    ack,
    answer,
    ci_fix,
    config,
    control,
    issue,
    log_merge,
    pr_command,
    rate_limited,
    review,
    update,
)
from bot.flows.services import Services

KINDS = {
    "issue": issue.run,
    "pr_command": pr_command.run,
    "review": review.run,
    "control": control.run,
    "config": config.run,
    "log_merge": log_merge.run,
    "update": update.run,
    "ack": ack.run,
    "abandoned": abandoned.run,
    "answer": answer.run,
    "wait_ended": answer.ended,
    "rate_limited": rate_limited.run,
    "ci_fix": ci_fix.run,
}
# A few GitHub calls each, answering a person who is waiting: never behind an agent run.
CONTROL_KINDS = frozenset({"control", "config", "ack", "abandoned", "answer", "wait_ended", "rate_limited"})


def register_flows(engine: Engine, services: Services) -> None:
    engine.services["flows"] = services
    engine.on_abandoned = abandoned.report
    for kind, function in KINDS.items():
        engine.register(kind, function, control=kind in CONTROL_KINDS)
    engine.sweeps.append(answer.expiry_sweep(engine))
