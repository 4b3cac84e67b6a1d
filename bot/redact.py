"""Scrub anything that looks like a credential out of text bound for logs, comments or PRs."""

from __future__ import annotations

import re

REDACTED = "[REDACTED]"

# GitHub tokens (ghs_/ghp_/gho_/ghu_/ghr_/github_pat_), Anthropic keys, JWTs, PEM blocks,
# and credentials embedded in URLs or Authorization headers.
_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"\bgh[opusr]_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{10,}"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(authorization:\s*(?:bearer|token|basic)\s+)[^\s\"']+"),
    re.compile(r"(?i)(x-access-token:)[^@\s\"']+"),
    re.compile(r"(https?://)[^/@\s:]+:[^/@\s]+@"),
]

_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember an exact secret (a minted token, the webhook secret) so it is always scrubbed."""
    if value and len(value) >= 8:
        _known_secrets.add(value)


def redact(text: str) -> str:
    if not text:
        return text
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text
