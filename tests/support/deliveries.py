"""Signing and posting webhook deliveries exactly as GitHub does."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx

HOOKSHOT_AGENT = "GitHub-Hookshot/7e4f1a2"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_headers(event: str, body: bytes, secret: str | None, *,
                   delivery_id: str | None = None) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": HOOKSHOT_AGENT,
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "429211",
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-GitHub-Hook-Installation-Target-ID": "123456",
    }
    if secret is not None:
        headers["X-Hub-Signature-256"] = sign(secret, body)
        headers["X-Hub-Signature"] = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return headers


def deliver(url: str, event: str, payload: dict[str, Any] | bytes, secret: str | None, *,
            delivery_id: str | None = None, timeout: float = 10.0) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = github_headers(event, body, secret, delivery_id=delivery_id)
    return httpx.post(url, content=body, headers=headers, timeout=timeout)
