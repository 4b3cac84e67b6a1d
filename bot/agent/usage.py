"""Token usage, prices per model, and the footer the bot prints under a pull request."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from bot.logs import get_logger
from bot.providers import canonical_model

log = get_logger(__name__)

# USD per million tokens: (input, output). Cache writes cost 1.25x input (5-minute cache),
# cache reads 0.1x input. Keys are model names without a date suffix.
PRICES: dict[str, tuple[float, float]] = {
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-haiku": (0.25, 1.25),
    "claude-3-opus": (15.0, 75.0),
}
CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1
# An unknown model is priced like the most expensive one, so budgets stay conservative.
FALLBACK_PRICE = max(PRICES.values())

_DATE_SUFFIX = re.compile(r"(-\d{8}|-latest|@\d{8})$")


def price_for(model: str) -> tuple[float, float]:
    """(input, output) USD per million tokens for a model name, dated or not."""
    name = _DATE_SUFFIX.sub("", canonical_model(model.strip().lower()))
    name = name.removeprefix("anthropic.").removeprefix("us.anthropic.")
    if name in PRICES:
        return PRICES[name]
    for key in sorted(PRICES, key=len, reverse=True):
        if name.startswith(key):
            return PRICES[key]
    log.warning("no price known for model %r; counting it at %s/%s per MTok", model, *FALLBACK_PRICE)
    return FALLBACK_PRICE


def cost_usd(
    model: str,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> float:
    price_in, price_out = price_for(model)
    return (
        input_tokens * price_in
        + output_tokens * price_out
        + cache_write_tokens * price_in * CACHE_WRITE_FACTOR
        + cache_read_tokens * price_in * CACHE_READ_FACTOR
    ) / 1_000_000


@dataclass
class Usage:
    """What one run consumed. `input_tokens` excludes cache reads and writes (as the API counts)."""

    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    turns: int = 0
    duration_s: float = 0.0

    def add_response(self, usage: object) -> None:
        """Add one response's `usage` (an SDK Usage object or a dict) and recompute the cost."""
        get = usage.get if isinstance(usage, dict) else lambda k: getattr(usage, k, None)
        self.input_tokens += get("input_tokens") or 0
        self.output_tokens += get("output_tokens") or 0
        self.cache_read_tokens += get("cache_read_input_tokens") or 0
        self.cache_write_tokens += get("cache_creation_input_tokens") or 0
        self.cost_usd = cost_usd(
            self.model,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
        )

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def cache_hit_ratio(self) -> float:
        total = self.total_input_tokens
        return self.cache_read_tokens / total if total else 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def render_footer(usage: Usage) -> str:
    """One line for the end of a pull request body or a status comment."""
    return (
        f"Model: `{usage.model}` · turns: {usage.turns} · tokens: "
        f"{_tokens(usage.total_input_tokens)} in ({usage.cache_hit_ratio:.0%} from cache), "
        f"{_tokens(usage.output_tokens)} out · cost: ${usage.cost_usd:.4f} · "
        f"duration: {_duration(usage.duration_s)}"
    )
