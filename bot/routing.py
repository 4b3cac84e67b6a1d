"""Routing as a plain table: (event, action) → handlers that describe jobs.

A handler receives a `Delivery` and returns a `JobRequest` (or None when the event needs no
work). Handlers decide from the payload alone: no network call happens on the webhook path.
Routers merge like gidgethub's: `Router(issue_label.router, pr_command.router, ...)`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.webhooks import typed_model


@dataclass
class Delivery:
    """One webhook delivery as the handlers see it."""

    event: str
    delivery_id: str
    payload: dict[str, Any]
    # This App's slug once known (from `GET /app` at start-up or settings), for "is this our PR".
    app_slug: str | None = None
    # The repository's trigger label and command word (its `.github/backend.yml`, as last read).
    trigger_label: str = "backend"
    command_word: str = "backend"
    # Where the bot's branches start (`branch_prefix`): only their failing checks are its own.
    branch_prefix: str = "backend/"
    # Whose plain comment on issue or pull request N of this repository answers the agent's
    # question waiting there (bot.questions), as last read; None when nothing waits.
    answer_awaited_from: Callable[[int], str | None] = lambda number: None

    @functools.cached_property
    def typed(self) -> Any:
        """githubkit's typed model of the payload, or None when its strict schema rejects a
        real payload (handlers then read the raw JSON). Built on first use: validating a large
        payload costs more than answering the webhook, so only a handler that asks pays it."""
        return typed_model(self.event, self.payload)

    @property
    def action(self) -> str | None:
        return self.payload.get("action")

    @property
    def repo_full_name(self) -> str:
        return self.payload["repository"]["full_name"]

    @property
    def installation_id(self) -> int | None:
        installation = self.payload.get("installation") or {}
        return installation.get("id")

    @property
    def sender_login(self) -> str:
        return (self.payload.get("sender") or {}).get("login", "")

    @property
    def sent_by_bot(self) -> bool:
        sender = self.payload.get("sender") or {}
        return sender.get("type") == "Bot" or sender.get("login", "").endswith("[bot]")


@dataclass(frozen=True)
class JobRequest:
    """What a handler asks the engine to run: a kind of job for one key."""

    kind: str
    # One job at a time per key: "<owner>/<repo>#<issue or PR number>".
    key: str
    spec: dict[str, Any] = field(default_factory=dict)
    # Say at once on GitHub that the work is queued, even while an earlier job of the key runs.
    acknowledge: bool = False


ACK_KIND = "ack"


def with_acknowledgements(requests: list[JobRequest]) -> list[JobRequest]:
    """Each request that wants it is followed by a small job under a key of its own, which
    puts 👀 and a "queued" status on GitHub right away instead of when the work starts."""
    out = []
    for request in requests:
        out.append(request)
        if request.acknowledge:
            out.append(JobRequest(ACK_KIND, request.key + "/ack",
                                  {**request.spec, "for_kind": request.kind,
                                   "for_key": request.key}))
    return out


_SCALARS = (str, int, float, bool, type(None))


def check_spec(spec: dict[str, Any]) -> None:
    """A job's spec holds plain values taken from the payload. A handler that picked up an
    object or a list where the payload should have had a string (a malformed or hostile body)
    would otherwise store something nested arbitrarily deep: refuse it here."""
    for key, value in spec.items():
        if not isinstance(value, _SCALARS):
            raise ValueError(f"`{key}` is {type(value).__name__}, not a plain value")


Handler = Callable[[Delivery], JobRequest | None]


class Router:
    def __init__(self, *others: Router) -> None:
        self._table: dict[tuple[str, str | None], list[Handler]] = {}
        self._hear_bots: set[Handler] = set()
        for other in others:
            for route, handlers in other._table.items():
                self._table.setdefault(route, []).extend(handlers)
            self._hear_bots |= other._hear_bots

    def register(self, event: str, action: str | None = None, *,
                 from_bots: bool = False) -> Callable[[Handler], Handler]:
        """Route `event` (with `action`, or any action when None) to the decorated handler.

        Deliveries sent by a bot (this one among them) reach only handlers registered
        `from_bots`: one whose jobs can never cause the event that started them, so no bot's
        action loops back into work.
        """

        def decorator(handler: Handler) -> Handler:
            self._table.setdefault((event, action), []).append(handler)
            if from_bots:
                self._hear_bots.add(handler)
            return handler

        return decorator

    def handlers_for(self, event: str, action: str | None) -> list[Handler]:
        return self._table.get((event, action), []) + (
            self._table.get((event, None), []) if action is not None else []
        )

    def routes(self, event: str, action: str | None) -> bool:
        return bool(self.handlers_for(event, action))

    def events(self) -> set[str]:
        return {event for event, _ in self._table}

    def dispatch(self, delivery: Delivery) -> list[JobRequest]:
        """Run every handler for the delivery and collect the jobs they describe."""
        if delivery.installation_id is None and delivery.event != "ping":
            # Not sent to the App (a repository's own webhook, say): no token to act with.
            return []
        jobs = []
        for handler in self.handlers_for(delivery.event, delivery.action):
            if delivery.sent_by_bot and handler not in self._hear_bots:
                continue
            job = handler(delivery)
            if job is not None:
                jobs.append(job)
        return jobs


def job_key(repo_full_name: str, number: int) -> str:
    return f"{repo_full_name}#{number}"
