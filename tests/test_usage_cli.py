"""Spend where the operator looks: `backend-bot usage` and `/metrics`, checked against the runs
the scripted model answered (its usage figures), after real jobs on two repositories."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.agent.usage import Usage, cost_usd
from bot.budgets import ledger
from bot.database import Database
from tests.agent_fakes import finish, tool_use
from tests.support.stack import REPO
from tests.test_cli_settings import backend_bot

OTHER = "acme/gadgets"
MODEL = "claude-haiku-4-5"
CACHED_TURN = {"input_tokens": 1000, "cache_read_input_tokens": 3000, "cache_creation_input_tokens": 500,
               "output_tokens": 200}


def samples(text: str, name: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_usage_and_metrics_match_the_runs(stack, tmp_path):
    sim = stack.sim
    sim.add_repo(OTHER, files={"README.md": "# gadgets\n"}, installation_id=42)
    sim.add_user("alice", permission="write", repo=OTHER)
    stack.fake.add(tool_use("Write", file_path="a.txt", content="a\n", usage=CACHED_TURN), finish(title="Add a"))
    widgets = sim.add_issue(REPO, "Add a", "Please.", user="alice")
    assert stack.deliver("issues", sim.event_issues_labeled(REPO, widgets, "backend")).status_code == 202
    stack.wait_jobs(1)
    stack.fake.add(finish(title="Nothing"))
    gadgets = sim.add_issue(OTHER, "Look", "Please.", user="alice")
    assert stack.deliver("issues", sim.event_issues_labeled(OTHER, gadgets, "backend")).status_code == 202
    jobs = stack.wait_jobs(2)
    assert [job.state for job in jobs] == ["succeeded", "succeeded"], [job.error for job in jobs]
    today = dt.datetime.now(dt.UTC).date().isoformat()

    expected = {
        REPO: {"runs": 1, "input_tokens": 1100, "cached_tokens": 3000, "cache_write_tokens": 500,
               "output_tokens": 220},
        OTHER: {"runs": 1, "input_tokens": 100, "cached_tokens": 0, "cache_write_tokens": 0, "output_tokens": 20},
    }
    for figures in expected.values():
        figures["usd"] = round(cost_usd(MODEL, input_tokens=figures["input_tokens"],
                                        output_tokens=figures["output_tokens"],
                                        cache_read_tokens=figures["cached_tokens"],
                                        cache_write_tokens=figures["cache_write_tokens"]), 6)

    result = backend_bot(tmp_path, "usage", "--json", BOT_DATA_DIR=str(stack.data_dir))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    figures = {row["repo"]: {k: v for k, v in row.items() if k not in ("repo", "day", "model")} for row in rows}
    assert figures == expected
    assert {(row["day"], row["model"]) for row in rows} == {(today, MODEL)}

    text = backend_bot(tmp_path, "usage", "--repo", OTHER, "--since", today, BOT_DATA_DIR=str(stack.data_dir))
    lines = text.stdout.splitlines()
    assert len(lines) == 3 and lines[1].startswith(today) and lines[1].endswith(f"{OTHER} / {MODEL}")
    assert lines[2].split()[:5] == ["total", "1", "100", "0", "20"]
    later = (dt.date.fromisoformat(today) + dt.timedelta(days=1)).isoformat()
    none = backend_bot(tmp_path, "usage", "--since", later, BOT_DATA_DIR=str(stack.data_dir))
    assert none.stdout == "no model spend recorded for this selection\n"
    bad = backend_bot(tmp_path, "usage", "--since", "yesterday", BOT_DATA_DIR=str(stack.data_dir))
    assert bad.returncode == 2 and "'yesterday' is not a date such as 2026-11-30" in bad.stderr

    metrics = stack.bot.client.get("/metrics").text
    tokens = samples(metrics, "backend_bot_model_tokens_total")
    for repo, figures in expected.items():
        for kind, key in (("input", "input_tokens"), ("cached", "cached_tokens"),
                          ("cache_write", "cache_write_tokens"), ("output", "output_tokens")):
            assert tokens[(("model", MODEL), ("repo", repo), ("type", kind))] == figures[key]
        cost = samples(metrics, "backend_bot_model_cost_usd_total")[(("model", MODEL), ("repo", repo))]
        assert round(cost, 6) == figures["usd"]
    finished = samples(metrics, "backend_bot_jobs_finished_total")
    assert finished[(("kind", "issue"), ("outcome", "succeeded"))] == 2
    waits = samples(metrics, "backend_bot_job_queue_wait_seconds_count")
    assert waits[(("kind", "issue"),)] == 2
    buckets = samples(metrics, "backend_bot_job_queue_wait_seconds_bucket")
    assert buckets[(("kind", "issue"), ("le", "+Inf"))] == 2
    assert buckets[(("kind", "issue"), ("le", "60.0"))] == 2  # nothing waited here


def test_usage_prints_nothing_a_terminal_would_act_on(tmp_path):
    data = tmp_path / "data"
    spent = ledger(Database(f"sqlite:///{data}/backend-bot.db"))
    hostile = "claude\x1b]0;pwned\x07\x1b[2J"  # a model name from a repository's config
    spent.record(job_id=1, installation_id=42, repo=REPO, usage=Usage(model=hostile, cost_usd=0.5))
    result = backend_bot(tmp_path, "usage")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "$0.5000" in result.stdout


def test_usage_where_no_bot_ran_says_so(tmp_path):
    result = backend_bot(tmp_path, "usage")
    assert result.returncode == 1 and "no database at" in result.stderr
    assert not (tmp_path / "data").exists()


def test_a_model_name_from_a_config_does_not_grow_metrics(tmp_path):
    from bot.jobstore import JobStore
    from bot.metrics import Metrics

    store = JobStore(f"sqlite:///{tmp_path}/backend-bot.db")
    store.open()
    spent = ledger(store.database)
    for index in range(5):
        spent.record(job_id=index, installation_id=42, repo=REPO, usage=Usage(model=f"made-up-{index}", cost_usd=0.1))
    spent.record(job_id=9, installation_id=42, repo=REPO, usage=Usage(model="claude-sonnet-4-5-20250929", cost_usd=1))
    text = Metrics(store).render().decode()
    store.close()
    assert "made-up" not in text
    cost = samples(text, "backend_bot_model_cost_usd_total")
    assert cost == {(("model", "other"), ("repo", REPO)): pytest.approx(0.5),
                    (("model", "claude-sonnet-4-5"), ("repo", REPO)): 1.0}
