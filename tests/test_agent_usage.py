"""Prices, usage accounting, the footer, and the caching benchmark's figure."""

import asyncio
import importlib.util
from pathlib import Path

import pytest

from bot.agent.loop import with_cache_breakpoints
from bot.agent.usage import Usage, cost_usd, price_for, render_footer


def test_prices_per_model():
    assert price_for("claude-haiku-4-5") == (1.0, 5.0)
    assert price_for("claude-haiku-4-5-20251001") == (1.0, 5.0)
    assert price_for("claude-sonnet-4-5") == (3.0, 15.0)
    assert price_for("claude-opus-4-1-20250805") == (15.0, 75.0)
    assert price_for("some-future-model") == (15.0, 75.0)  # unknown: priced conservatively


def test_cost_counts_cache_writes_and_reads():
    # 1M in, 1M out, 1M cache write, 1M cache read on haiku: 1 + 5 + 1.25 + 0.1
    assert cost_usd("claude-haiku-4-5", input_tokens=10**6, output_tokens=10**6,
                    cache_write_tokens=10**6, cache_read_tokens=10**6) == pytest.approx(7.35)  # fmt: skip


def test_usage_accumulates_responses_and_renders_a_footer():
    usage = Usage(model="claude-sonnet-4-5")
    usage.add_response({"input_tokens": 1000, "output_tokens": 500, "cache_creation_input_tokens": 4000})
    usage.add_response({"input_tokens": 200, "output_tokens": 300, "cache_read_input_tokens": 4000})
    usage.turns, usage.duration_s = 2, 125
    assert usage.total_input_tokens == 9200 and usage.cache_read_tokens == 4000
    assert usage.cost_usd == pytest.approx((1200 * 3 + 800 * 15 + 4000 * 3.75 + 4000 * 0.3) / 1e6)
    footer = render_footer(usage)
    assert "`claude-sonnet-4-5`" in footer and "turns: 2" in footer and "43% from cache" in footer
    assert "2m 05s" in footer and "$0.03" in footer


def test_at_most_four_breakpoints_and_stored_messages_untouched():
    tools = [{"name": "A"}, {"name": "B"}]
    messages = [
        {"role": "user", "content": "task"},
        {"role": "assistant", "content": [{"type": "text", "text": "x"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "1", "content": "r"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "y"}]},
        {"role": "user", "content": [{"type": "text", "text": "z"}]},
    ]
    before = repr(messages)
    t, s, m = with_cache_breakpoints(tools, "system", messages)
    assert repr(messages) == before and "cache_control" not in tools[-1]
    marks = [b for msg in m if isinstance(msg["content"], list) for b in msg["content"] if "cache_control" in b]
    assert "cache_control" in t[-1] and "cache_control" in s[0] and len(marks) == 2
    assert m[0]["content"] == "task"  # only the last two user messages are marked


def _token_bench():
    path = Path(__file__).resolve().parents[1] / "bench" / "tokens.py"
    spec = importlib.util.spec_from_file_location("bench_tokens", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_token_benchmark_meets_the_cache_target(capsys):
    bench = _token_bench()
    assert asyncio.run(bench.main(20, False, 0)) == 0
    out = capsys.readouterr().out
    assert "target >= 90% (cold start): met" in out


def test_a_long_run_sends_far_fewer_input_tokens_with_old_output_trimmed(capsys):
    bench = _token_bench()
    asyncio.run(bench.long_runs(60))
    figures = {}
    for line in capsys.readouterr().out.splitlines():
        label, _, rest = line.partition(": ")
        figures[label.removeprefix("60 turns ")] = int(rest.split(" input tokens")[0].replace(",", ""))
    assert figures["with trimming"] < figures["without trimming"] / 2, figures
