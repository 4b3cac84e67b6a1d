"""`app.yml` asks for exactly the events the handlers route, and the least permissions."""

from __future__ import annotations

from pathlib import Path

import yaml

APP_YML = Path(__file__).resolve().parents[1] / "app.yml"


def manifest() -> dict:
    return yaml.safe_load(APP_YML.read_text())


def test_app_yml_events_are_the_events_the_handlers_route():
    from handlers import router

    assert set(manifest()["default_events"]) == router.events()


def test_app_yml_lists_each_event_once():
    events = manifest()["default_events"]
    assert len(events) == len(set(events))


def test_app_yml_asks_for_the_least_permissions():
    assert manifest()["default_permissions"] == {
        "contents": "write",
        "issues": "write",
        "pull_requests": "write",
        "checks": "write",
        "actions": "read",
        "statuses": "read",
        "metadata": "read",
    }


def test_app_yml_is_a_complete_manifest():
    data = manifest()
    for key in ("name", "url", "hook_attributes", "redirect_url", "description", "public"):
        assert key in data, key
    assert data["hook_attributes"]["active"] is True
    assert data["public"] is False
    assert len(data["name"]) <= 34  # GitHub's limit on an App's name
