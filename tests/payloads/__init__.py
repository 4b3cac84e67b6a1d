"""Webhook payload fixtures in GitHub's real webhook shape (our own data, acme/widgets).

Each file is named `<event>[.<action>][.<variant>].json`; the event name (the
`X-GitHub-Event` header) is the part before the first dot.

    from tests.payloads import load, names, event_of
    payload = load("issues.labeled")          # a fresh dict on every call
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent


def names() -> list[str]:
    """Every fixture's name (file name without `.json`), sorted."""
    return sorted(path.name.removesuffix(".json") for path in DIRECTORY.glob("*.json"))


def path(name: str) -> Path:
    return DIRECTORY / f"{name.removesuffix('.json')}.json"


@cache
def raw(name: str) -> bytes:
    """The fixture's bytes, as stored (what a test would post as a body)."""
    return path(name).read_bytes()


def load(name: str) -> dict:
    """The fixture as a new dict (safe to mutate)."""
    return json.loads(raw(name))


def event_of(name: str) -> str:
    """The `X-GitHub-Event` a fixture is delivered under: `issues.labeled.by-bot` → `issues`."""
    return name.removesuffix(".json").split(".", 1)[0]
