"""The App manifest: `app.yml`, filled with this bot's public addresses for GitHub."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

# Where GitHub sends the browser back with the code; the routes serve it, the manifest names it.
CALLBACK_PATH = "/setup/callback"


def find_app_manifest() -> Path:
    """`app.yml` in the working directory, else next to the source tree."""
    for candidate in (Path.cwd() / "app.yml", Path(__file__).resolve().parents[2] / "app.yml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("app.yml not found in the working directory or the source tree")


def load_app_manifest(path: Path | None = None) -> dict[str, Any]:
    """Read `app.yml` as a dict."""
    data = yaml.safe_load((path or find_app_manifest()).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("app.yml must be a mapping")
    return data


def build_manifest(
    template: dict[str, Any], base_url: str, webhook_path: str, *, name: str | None = None
) -> dict[str, Any]:
    """Fill `app.yml`'s addresses with this bot's public base URL."""
    base = base_url.rstrip("/")
    manifest = json.loads(json.dumps(template))  # a deep copy of plain data
    if name:
        manifest["name"] = name
    manifest["url"] = base + "/"
    hook = dict(manifest.get("hook_attributes") or {})
    hook["url"] = base + "/" + webhook_path.lstrip("/")
    hook.setdefault("active", True)
    manifest["hook_attributes"] = hook
    manifest["redirect_url"] = base + CALLBACK_PATH
    return manifest
