"""The agent loop against the scripted fake model, with real tools on a real git repository."""

import json
import shutil

import pytest

from bot.agent import Limits, Sandbox, answered, local_task, run_agent
from bot.worklog import WorkLogEntry, append_entry
from tests.agent_fakes import FakeAnthropic, ask, finish, http_error, make_repo, say, tool_use, tool_uses

MODEL = "claude-haiku-4-5"
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")


@pytest.fixture
def repo(tmp_path):
    return make_repo(
        tmp_path / "repo",
        {
            "app.py": "def add(a, b):\n    return a + b\n",
            "test_app.py": "from app import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
            "dup.py": "x = 1\ny = 2\nx = 1\n",
            "CLAUDE.md": "Use tabs nowhere. Run `python -m pytest` for tests.\n",
        },
    )


async def run(fake, repo, limits=None, **kwargs):
    kwargs.setdefault("sleep", _no_sleep)
    return await run_agent(
        client=fake.client(),
        model=MODEL,
        workspace=repo,
        task_prompt=local_task("Add a subtract function."),
        sandbox=Sandbox(repo, allow_unsandboxed=shutil.which("bwrap") is None),
        limits=limits or Limits(retries=2),
        **kwargs,
    )


async def _no_sleep(_seconds):
    return None


def result_for(fake, request_index, tool_index=0):
    return fake.tool_results(request_index)[tool_index]


async def test_full_run_ends_with_finish_work(repo):
    plans = []

    async def on_todos(todos):
        plans.append(todos)

    todos = [
        {"content": "Add subtract", "status": "in_progress", "activeForm": "Adding subtract"},
        {"content": "Test it", "status": "pending", "activeForm": "Testing it"},
    ]
    edit = {
        "file_path": "app.py",
        "old_string": "    return a + b\n",
        "new_string": "    return a + b\n\n\ndef subtract(a, b):\n    return a - b\n",
    }
    test_file = "from app import subtract\n\n\ndef test_subtract():\n    assert subtract(3, 1) == 2\n"
    script = [
        tool_use("TodoWrite", todos=todos),
        tool_uses(("Read", {"file_path": "app.py"}), ("Grep", {"pattern": "def add", "output_mode": "content"})),
        tool_uses(("Edit", edit), ("Write", {"file_path": str(repo / "tests/test_subtract.py"), "content": test_file})),
        tool_use("Bash", command="python3 -c 'import app; print(app.subtract(5, 2))'", description="check"),
        finish("Add subtract", files_modified=["`app.py`: subtract()", "`tests/test_subtract.py`: test"]),
    ]
    with FakeAnthropic(script) as fake:
        result = await run(fake, repo, on_todos=on_todos, trigger="#7")

    assert result.outcome == "finished", result.reason
    assert result.entry.title == "Add subtract"
    assert result.entry.trigger == "#7" and result.entry.timestamp is not None
    assert "- `app.py`: subtract()" in result.entry.files_modified
    assert "def subtract(a, b)" in (repo / "app.py").read_text()
    assert (repo / "tests/test_subtract.py").read_text() == test_file
    assert plans == [todos] and result.todos == todos
    assert result.usage.turns == 5
    assert result.usage.input_tokens == 500 and result.usage.output_tokens == 100
    assert result.usage.cost_usd == pytest.approx((500 * 1 + 100 * 5) / 1e6)
    assert fake.unscripted == 0 and fake.remaining == 0

    read, grep = fake.tool_results(2)
    assert read["content"].splitlines()[0] == "     1\tdef add(a, b):"
    assert "is_error" not in read
    assert "app.py:1:def add(a, b):" in grep["content"]
    assert fake.tool_results(4)[0]["content"] == "3"
    # The first message carries the repository's context and the task.
    first = fake.requests[0]["messages"][0]["content"]
    first = first if isinstance(first, str) else first[0]["text"]
    assert "Run `python -m pytest` for tests." in first
    assert "test_app.py" in first and "Add a subtract function." in first
    assert fake.requests[0]["model"] == MODEL


async def test_edit_that_is_not_unique_is_an_error_the_model_reads(repo):
    script = [
        tool_use("Edit", file_path="dup.py", old_string="x = 1", new_string="x = 2"),
        tool_use("Edit", file_path="dup.py", old_string="x = 1", new_string="x = 2", replace_all=True),
        tool_use("Edit", file_path="dup.py", old_string="nothing like this", new_string="z"),
        finish(),
    ]
    with FakeAnthropic(script) as fake:
        result = await run(fake, repo)
    assert result.outcome == "finished"
    not_unique = fake.tool_results(1)[0]
    assert not_unique["is_error"] is True and "appears 2 times" in not_unique["content"]
    assert "is_error" not in fake.tool_results(2)[0]
    missing = fake.tool_results(3)[0]
    assert missing["is_error"] is True and "not found" in missing["content"]
    assert (repo / "dup.py").read_text() == "x = 2\ny = 2\nx = 2\n"


async def test_unknown_tool_and_malformed_input_are_tool_errors(repo):
    script = [
        tool_uses(
            ("WebFetch", {"url": "https://example.com"}),
            ("Read", {"path": "app.py"}),  # wrong field name
            ("Edit", {"file_path": "app.py", "old_string": "a"}),  # missing new_string
            ("TodoWrite", {"todos": [{"content": "x", "status": "doing", "activeForm": "X"}]}),
            ("Bash", "ls"),  # not an object
            ("Read", {"file_path": "/etc/passwd"}),
        ),
        finish(),
    ]
    with FakeAnthropic(script) as fake:
        result = await run(fake, repo)
    assert result.outcome == "finished"
    results = fake.tool_results(1)
    assert len(results) == 6 and all(r["is_error"] for r in results)
    unknown, no_path, no_new, bad_status, not_object, outside = (r["content"] for r in results)
    assert "Unknown tool 'WebFetch'" in unknown and "Read" in unknown
    assert "file_path" in no_path and "Field required" in no_path
    assert "new_string" in no_new
    assert "status" in bad_status
    assert "JSON object" in not_object
    assert "outside the workspace" in outside
    # Each tool_use got its result, in order.
    calls = [b["id"] for b in fake.requests[1]["messages"][-2]["content"] if b["type"] == "tool_use"]
    assert [r["tool_use_id"] for r in results] == calls


async def test_turn_limit_ends_the_run(repo):
    script = [tool_use("Read", file_path="app.py") for _ in range(5)]
    with FakeAnthropic(script) as fake:
        result = await run(fake, repo, Limits(max_turns=3))
    assert result.outcome == "bound"
    assert "turn limit" in result.reason
    assert len(fake.requests) == 3 and result.usage.turns == 3
    # The model was warned before the end.
    last = fake.requests[-1]["messages"][-1]["content"]
    assert any(b["type"] == "text" and "Budget notice" in b["text"] for b in last)


async def test_cost_limit_ends_the_run(repo):
    expensive = {"input_tokens": 200_000, "output_tokens": 10_000}  # $0.25 per turn on haiku
    script = [tool_use("Read", file_path="app.py", usage=expensive) for _ in range(5)]
    with FakeAnthropic(script) as fake:
        result = await run(fake, repo, Limits(max_cost_usd=0.6))
    assert result.outcome == "bound"
    assert "cost limit" in result.reason
    assert len(fake.requests) == 3
    assert result.usage.cost_usd == pytest.approx(0.75)


async def test_overloaded_then_success_is_retried_with_backoff(repo):
    sleeps = []

    async def sleep(seconds):
        sleeps.append(seconds)

    with FakeAnthropic([http_error(529), http_error(429, retry_after=0.25), finish()]) as fake:
        result = await run(fake, repo, Limits(retries=3, backoff_base=0.5), sleep=sleep)
    assert result.outcome == "finished"
    assert len(fake.requests) == 3
    assert len(sleeps) == 2 and 0 < sleeps[0] <= 0.5 and sleeps[1] == 0.25
    assert result.usage.turns == 1


async def test_model_errors_end_the_run_when_retries_run_out_or_are_pointless(repo):
    with FakeAnthropic([http_error(529)] * 3) as fake:
        result = await run(fake, repo, Limits(retries=2))
    assert result.outcome == "error" and "529" in result.reason and "3 attempts" in result.reason
    with FakeAnthropic([http_error(400, "bad request body"), finish()]) as fake:
        result = await run(fake, repo)
    assert result.outcome == "error" and "400" in result.reason
    assert len(fake.requests) == 1


async def test_question_ends_the_run(repo):
    with FakeAnthropic([tool_use("Read", file_path="app.py"), ask("Should subtract accept floats?")]) as fake:
        result = await run(fake, repo)
    assert result.outcome == "question"
    assert result.question == "Should subtract accept floats?"
    assert result.entry is None


async def test_an_answered_question_resumes_the_same_conversation(repo):
    with FakeAnthropic([tool_use("Read", file_path="app.py"), ask("Floats too?")]) as fake:
        asked = await run(fake, repo)
    ask_id = asked.messages[-2]["content"][0]["id"]
    with FakeAnthropic([finish(title="Add subtract")]) as fake:
        result = await run(fake, repo, resume_messages=answered(asked.messages, "Yes, floats too."))
    assert result.outcome == "finished" and result.entry.title == "Add subtract"
    (request,) = fake.requests
    # The whole earlier conversation, then the answer as the result of that very call.
    assert _strip(request["messages"][:-1]) == _strip(asked.messages[:-1])
    assert _strip([{"content": fake.tool_results(0)}]) == [{"content": [
        {"type": "tool_result", "tool_use_id": ask_id, "content": "Yes, floats too."}]}]
    assert result.usage.turns == 1  # the resumed run counts its own turns


async def test_a_resumed_run_shows_the_plan_it_kept_before_the_question(repo):
    plan = [{"content": "Add subtract", "status": "completed", "activeForm": "Adding subtract"},
            {"content": "Test @floats", "status": "pending", "activeForm": "Testing floats"}]
    with FakeAnthropic([tool_use("TodoWrite", todos=plan), ask("Floats too?")]) as fake:
        asked = await run(fake, repo)
    shown: list[list[dict]] = []

    async def on_todos(todos: list[dict]) -> None:
        shown.append(todos)

    with FakeAnthropic([tool_use("Read", file_path="app.py") for _ in range(3)]) as fake:
        result = await run(fake, repo, Limits(max_turns=2), on_todos=on_todos,
                           resume_messages=answered(asked.messages, "Yes."))
    # Shown at once, neutralised as any plan is; and what a limit's entry lists as left to do.
    assert [t["content"] for t in shown[0]] == ["Add subtract", "Test `@floats`"]
    assert result.outcome == "bound" and [t["status"] for t in result.todos] == ["completed", "pending"]
    assert len(fake.requests) == 2  # no model call for it


def test_only_a_conversation_that_ended_on_a_question_can_be_answered():
    question = {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "AskQuestion",
                                                  "input": {"question": "?"}}]}
    results = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sent"}]}
    task = {"role": "user", "content": [{"type": "text", "text": "task"}]}
    assert answered([task, question, results], "yes")[-1]["content"][0]["content"] == "yes"
    finished = {**question, "content": [{**question["content"][0], "name": "FinishWork"}]}
    assert answered([task, finished, results], "yes") is None
    assert answered([task, question], "yes") is None
    assert answered([task], "yes") is None


async def test_the_reserve_before_each_limit_asks_for_finish_work_and_names_the_limit(repo):
    script = [tool_use("Read", file_path="app.py") for _ in range(3)] + [finish(next_steps="Floats.")]
    with FakeAnthropic(script) as fake:
        result = await run(fake, repo, Limits(max_turns=5, warn_turns_left=2))
    assert result.outcome == "finished" and result.limit == "turns"
    notices = [[b for b in r["messages"][-1]["content"] if b["type"] == "text" and "FinishWork" in b["text"]]
               for r in fake.requests[1:]]
    assert [bool(n) for n in notices] == [False, False, True]  # from the third turn on: 2 left
    with FakeAnthropic([tool_use("Read", file_path="app.py"), finish()]) as fake:
        result = await run(fake, repo, Limits(max_seconds=60, warn_time_share=0.0))
    assert result.limit == "time"
    assert "minute(s) left" in fake.requests[1]["messages"][-1]["content"][-1]["text"]
    with FakeAnthropic([tool_use("Read", file_path="app.py"), finish()]) as fake:
        result = await run(fake, repo)
    assert result.limit is None


async def test_a_run_stopped_by_a_limit_says_which(repo):
    with FakeAnthropic([tool_use("Read", file_path="app.py") for _ in range(5)]) as fake:
        result = await run(fake, repo, Limits(max_turns=2))
    assert result.outcome == "bound" and result.limit == "turns"
    expensive = {"input_tokens": 200_000, "output_tokens": 10_000}
    with FakeAnthropic([tool_use("Read", file_path="app.py", usage=expensive)] * 3) as fake:
        result = await run(fake, repo, Limits(max_cost_usd=0.3))
    assert result.outcome == "bound" and result.limit == "cost"


async def test_text_only_reply_is_nudged_then_gives_up(repo):
    with FakeAnthropic([say("I think I'm done."), finish()]) as fake:
        result = await run(fake, repo)
    assert result.outcome == "finished"
    nudge = fake.requests[1]["messages"][-1]["content"][0]["text"]
    assert "FinishWork" in nudge
    with FakeAnthropic([say("Done.")] * 3) as fake:
        result = await run(fake, repo)
    assert result.outcome == "error" and "without calling FinishWork" in result.reason


@needs_bwrap
async def test_wall_clock_limit_ends_the_run(repo):
    with FakeAnthropic([tool_use("Bash", command="sleep 20")]) as fake:
        result = await run(fake, repo, Limits(max_seconds=1.0))
    assert result.outcome == "bound" and "time limit" in result.reason
    assert result.usage.duration_s < 5


async def test_tool_output_is_capped(repo):
    (repo / "big.txt").write_text("".join(f"line {i}\n" for i in range(5000)))
    with FakeAnthropic([tool_use("Read", file_path="big.txt"), finish()]) as fake:
        await run(fake, repo, Limits(tool_output_chars=2000))
    content = fake.tool_results(1)[0]["content"]
    assert len(content) < 2200 and "cut" in content
    assert content.startswith("     1\tline 0") and "line 1999" in content  # head and tail kept


async def test_requests_carry_cache_breakpoints_on_tools_system_and_moving_tail(repo):
    script = [tool_use("Read", file_path="app.py"), tool_use("Glob", pattern="*.py"),
              tool_use("Read", file_path="dup.py"), finish()]
    with FakeAnthropic(script) as fake:
        await run(fake, repo)
    assert len(fake.requests) == 4

    def marked(blocks):
        return [i for i, b in enumerate(blocks) if isinstance(b, dict) and "cache_control" in b]

    for n, request in enumerate(fake.requests):
        assert marked(request["tools"]) == [len(request["tools"]) - 1]
        assert request["tools"][-1]["cache_control"] == {"type": "ephemeral"}
        assert marked(request["system"]) == [0]
        message_marks = [
            (i, j)
            for i, m in enumerate(request["messages"])
            if isinstance(m["content"], list)
            for j in marked(m["content"])
        ]
        assert 1 + 1 + len(message_marks) <= 4
        last = request["messages"][-1]
        assert (len(request["messages"]) - 1, len(last["content"]) - 1) in message_marks
        if n > 0:
            # The previous request's whole conversation is an unchanged prefix of this one,
            # breakpoint included, so the cache entry written last turn is read this turn.
            # (Breakpoint markers are not part of the cached content; the previous tail keeps
            # its marker, so the lookup finds last turn's entry exactly.)
            previous = fake.requests[n - 1]["messages"]
            assert _strip(request["messages"][: len(previous)]) == _strip(previous)
            assert "cache_control" in request["messages"][len(previous) - 1]["content"][-1]
    # Breakpoints do not pile up: two in the conversation, whatever its length.
    assert len([1 for m in fake.requests[-1]["messages"] for b in m["content"] if "cache_control" in b]) == 2


def _strip(messages):
    text = json.dumps(messages)
    return json.loads(text.replace(', "cache_control": {"type": "ephemeral"}', ""))


async def test_recent_work_log_is_given_to_the_agent(repo):
    append_entry(repo, WorkLogEntry(title="Earlier change", task_summary="Did an earlier thing."))
    with FakeAnthropic([finish()]) as fake:
        await run(fake, repo)
    first = fake.requests[0]["messages"][0]["content"]
    first = first if isinstance(first, str) else first[0]["text"]
    assert "Earlier change" in first and "Did an earlier thing." in first


async def test_request_timeout_is_retried(repo):
    import time as _time

    def slow(_body):
        _time.sleep(0.8)
        return finish("too late")

    with FakeAnthropic([slow, finish("on time")]) as fake:
        result = await run(fake, repo, Limits(retries=2, request_timeout=0.3))
    assert result.outcome == "finished" and result.entry.title == "on time"
    assert len(fake.requests) == 2


async def test_on_retry_hears_each_failed_call_that_is_tried_again(repo):
    heard = []
    with FakeAnthropic([http_error(529), http_error(500), finish()]) as fake:
        result = await run(fake, repo, Limits(retries=3), on_retry=heard.append)
    assert result.outcome == "finished"
    assert [error.status_code for error in heard] == [529, 500]


def test_retry_window_counts_every_backoff_at_its_cap_and_every_later_connection_timing_out():
    limits = Limits(retries=4, backoff_base=1.0, backoff_max=5.0, connect_timeout=4.0)
    assert limits.retry_window() == (1 + 2 + 4 + 5) + 4 * 4.0
    assert Limits(retries=0).retry_window() == 0


async def test_on_tool_call_hears_each_call_before_it_runs(repo):
    heard = []
    script = [tool_uses(("Read", {"file_path": "app.py"}), ("Glob", {"pattern": "*.py"})), finish()]
    with FakeAnthropic(script) as fake:
        result = await run(fake, repo, on_tool_call=lambda name, args: heard.append((name, args)))
    assert result.outcome == "finished"
    assert [name for name, _ in heard] == ["Read", "Glob", "FinishWork"]
    assert heard[0][1] == {"file_path": "app.py"}


def _results_of(message):
    content = message["content"]
    return [] if isinstance(content, str) else [b for b in content if b.get("type") == "tool_result"]


async def test_old_tool_output_is_trimmed_in_jumps_keeping_the_cached_prefix_stable(repo):
    (repo / "big.txt").write_text("".join(f"{i:04d} " + "x" * 50 + "\n" for i in range(90)))
    turns = 30
    limits = Limits(retries=2, trim_trigger_chars=40_000, trim_keep_turns=2)
    keep = limits.trim_keep_turns
    script = [tool_use("Read", file_path="big.txt") for _ in range(turns)] + [finish()]
    with FakeAnthropic(script) as fake:
        result = await run(fake, repo, limits)
    assert result.outcome == "finished", result.reason
    one_output = len(_results_of(result.messages[2])[0]["content"])
    assert 5_000 < one_output < 6_000

    jumps = 0
    for n, request in enumerate(fake.requests):
        messages = request["messages"]
        with_results = [m for m in messages if _results_of(m)]
        kept = [b for m in with_results for b in _results_of(m) if not b["content"].startswith("[output trimmed")]
        # The last turns' output is always there, whole; every call still has its result.
        assert [b["content"] for m in with_results[-keep:] for b in _results_of(m)] == [
            b["content"] for b in kept[-len(with_results[-keep:]):]]
        assert all(len(b["content"]) == one_output for b in kept)
        for i, message in enumerate(messages):
            calls = [b["id"] for b in message["content"] if message["role"] == "assistant" and b["type"] == "tool_use"]
            if calls and i + 1 < len(messages):
                assert calls == [b["tool_use_id"] for b in _results_of(messages[i + 1])]
        # Uncleared output stays under the trigger plus the turn that passed it: bounded.
        assert sum(len(b["content"]) for b in kept) <= limits.trim_trigger_chars + one_output
        if n > 0:
            previous = fake.requests[n - 1]["messages"]
            if _strip(messages[: len(previous)]) != _strip(previous):
                jumps += 1
    # The prefix changed only when the boundary jumped: a few times in 30 turns, not every turn.
    assert 2 <= jumps <= turns * one_output // (limits.trim_trigger_chars - keep * one_output) + 1
    first_output = _results_of(fake.requests[-1]["messages"][2])[0]["content"]
    assert first_output.startswith("[output trimmed") and f"{one_output:,} characters" in first_output
    # The conversation kept for the transcript has every output as the tool gave it.
    assert all(len(b["content"]) == one_output for m in result.messages for b in _results_of(m)[:1]
               if m is not result.messages[-1])


async def test_without_trimming_every_output_is_resent(repo):
    (repo / "big.txt").write_text("y" * 5_000 + "\n")
    limits = Limits(retries=2, trim_trigger_chars=10**9)
    with FakeAnthropic([tool_use("Read", file_path="big.txt") for _ in range(8)] + [finish()]) as fake:
        await run(fake, repo, limits)
    last = fake.requests[-1]["messages"]
    assert not any(b["content"].startswith("[output trimmed") for m in last for b in _results_of(m))
