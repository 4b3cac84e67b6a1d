"""The bot's pull request: title from the entry, body = the entry, `Closes #N`, footer, marker."""

from __future__ import annotations

import re

from bot import markers
from bot.redact import redact

TITLE_MAX = 120
EARLIER_HEADING = "### Earlier work on this pull request"


_CLOSES = re.compile(r"^Closes #(\d+)\s*$", re.M)


def closes_of(body: str) -> int | None:
    """The issue an existing PR body closes (kept when the body is rewritten).

    The bot writes its own line after the agent's entry, whose code may hold anything: the
    last match is the bot's."""
    matches = _CLOSES.findall(body or "")
    return int(matches[-1]) if matches else None


def title_for(entry_title: str) -> str:
    title = " ".join(entry_title.split())
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1] + "…"


def render_body(
    *,
    entry_body: str,
    footer: str,
    marker_kind: str,
    closes: int | None = None,
    earlier: list[str] | None = None,
) -> str:
    """The PR description: the latest entry, what it closes, earlier entries, footer, marker."""
    parts = [entry_body.strip()]
    if closes is not None:
        parts.append(f"Closes #{closes}")
    if earlier:
        parts.append(EARLIER_HEADING + "\n\n" + "\n".join(f"- {line}" for line in earlier))
    parts.append("---\n" + footer.strip())
    parts.append(markers.pull_request(marker_kind))
    return redact("\n\n".join(parts) + "\n")
