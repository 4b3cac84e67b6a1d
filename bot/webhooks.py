"""Reading one webhook delivery: signature first, on the raw body, then the JSON and its shape."""

from __future__ import annotations

import functools
from typing import Any

import githubkit_schemas.latest.webhooks as webhook_models
import orjson
from githubkit.webhooks import verify
from pydantic import TypeAdapter, ValidationError

from bot.errors import WebhookError
from bot.logs import get_logger

log = get_logger(__name__)

MAX_BODY_BYTES = 25 * 1024 * 1024

# The keys an event must have to be the event it claims. Checked for every routed event;
# githubkit's strict models are tried too, but real payloads sometimes miss fields they
# require, so their rejection alone never refuses a delivery.
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "issues": ("action", "issue", "repository", "sender"),
    "issue_comment": ("action", "issue", "comment", "repository", "sender"),
    "pull_request_review": ("action", "review", "pull_request", "repository", "sender"),
    "pull_request_review_comment": ("action", "comment", "pull_request", "repository", "sender"),
    "push": ("ref", "commits", "repository", "sender"),
    "ping": ("zen", "hook_id"),
    "check_run": ("action", "check_run", "repository", "sender"),
    "check_suite": ("action", "check_suite", "repository", "sender"),
    "workflow_run": ("action", "workflow_run", "repository", "sender"),
    "status": ("sha", "state", "repository", "sender"),
}

_NUMBERED = {"issue": "number", "pull_request": "number", "comment": "id", "review": "id"}


def check_signature(secret: str, body: bytes, header: str | None) -> None:
    """Refuse the delivery unless `X-Hub-Signature-256` is GitHub's HMAC of the raw body."""
    if not header:
        raise WebhookError(401, "Missing X-Hub-Signature-256 header.")
    if not header.startswith("sha256=") or len(header) != len("sha256=") + 64:
        raise WebhookError(401, "Malformed X-Hub-Signature-256 header: expected sha256=<hex>.")
    if not verify(secret, body, header):
        raise WebhookError(
            401, "Signature does not match: check that WEBHOOK_SECRET is the App's webhook secret."
        )


def decode(event: str, body: bytes) -> dict[str, Any]:
    """The payload as a dict, or a 400 saying why it is not the event it claims."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise WebhookError(400, f"Body is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise WebhookError(400, "Body is not a JSON object.")
    missing = [key for key in REQUIRED_KEYS.get(event, ()) if key not in payload]
    if missing:
        raise WebhookError(
            400, f"Body is not a `{event}` event: missing {', '.join(missing)}."
        )
    for key, field in _NUMBERED.items():
        if key in REQUIRED_KEYS.get(event, ()):
            value = payload[key]
            if not isinstance(value, dict) or not isinstance(value.get(field), int):
                raise WebhookError(
                    400, f"Body is not a `{event}` event: `{key}.{field}` is not a number."
                )
    if "repository" in REQUIRED_KEYS.get(event, ()):
        repository = payload["repository"]
        if not isinstance(repository, dict) or not isinstance(repository.get("full_name"), str):
            raise WebhookError(400, f"Body is not a `{event}` event: no `repository.full_name`.")
    return payload


# Events whose handlers read the raw JSON only (the checks' events: a large share of the
# traffic, each a few fields deep): no typed model, so none of their validators is built.
RAW_EVENTS = frozenset({"check_run", "check_suite", "workflow_run", "status"})


@functools.cache
def _adapter(event: str) -> TypeAdapter | None:
    # Built once per event: building a validator costs milliseconds, using one microseconds.
    if event in RAW_EVENTS:
        return None
    model = getattr(webhook_models, "".join(p.title() for p in event.split("_")) + "Event", None)
    return TypeAdapter(model) if model is not None else None


def prepare_models(events: set[str]) -> None:
    """Build the validators of the routed events before the first delivery needs them."""
    for event in events:
        _adapter(event)


def typed_model(event: str, payload: dict[str, Any]) -> Any:
    """githubkit's typed model of the event, or None when its strict schema rejects it."""
    adapter = _adapter(event)
    if adapter is None:
        return None
    try:
        return adapter.validate_python(payload)
    except ValidationError as error:
        first = error.errors()[0]
        log.debug("githubkit's %s model rejected %d field(s) (first: %s: %s); using the raw JSON",
                  event, error.error_count(), ".".join(map(str, first["loc"]))[:200],
                  first["msg"])
        return None
    except (ValueError, KeyError, TypeError) as error:
        log.debug("githubkit could not read a %s payload (%s); using the raw JSON", event,
                  str(error)[:200])
        return None
