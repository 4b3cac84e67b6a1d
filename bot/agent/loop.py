"""The agent loop: Claude and the tools, bounded by turns, cost and time.

One turn is one Messages API call. After each response the loop runs the requested tools
(in order), sends their results back in one user message, and stops when the model calls
FinishWork or AskQuestion, when a bound is hit, or on an error it cannot retry.

Prompt caching: every request carries `cache_control: ephemeral` on the last tool, on the
system prompt, and on the last content block of the last two user messages (the previous
turn's tail and the new tail): four breakpoints, the API's maximum. Each turn therefore reads
everything up to the previous turn's end from the cache and writes only what is new.

Context editing (like the API's `clear_tool_uses`, done here): once the tool output not yet
cleared passes `Limits.trim_trigger_chars`, the results of all but the last
`Limits.trim_keep_turns` turns are replaced by a short placeholder in the requests sent. The
boundary only moves in such jumps, so between two jumps every request's prefix is
byte-identical to the previous one's and read from the cache; a jump costs one cache write.
Without it a long run re-sends every old output on every turn: input grows with the square of
the turns. The conversation returned (for the transcript) keeps every result as the tool gave it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import anthropic
from anthropic.types import MessageParam, TextBlockParam, ToolUnionParam

import prompts
from bot.agent.context import build_first_message
from bot.agent.context import system_prompt as default_system_prompt
from bot.agent.sandbox import Sandbox
from bot.agent.tools import TodosCallback, Tool, ToolContext, default_tools, execute
from bot.agent.usage import Usage
from bot.logs import get_logger
from bot.worklog import WorkLogEntry, now_utc

if TYPE_CHECKING:
    from bot.repo_config import RepoConfig

log = get_logger(__name__)

EPHEMERAL = {"type": "ephemeral"}
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504, 529}
MAX_NUDGES = 2
PLAN_TOOL = "TodoWrite"

Outcome = Literal["finished", "question", "bound", "error"]
# The bounds of a run, as AgentResult.limit names them.
LimitName = Literal["turns", "cost", "time"]


@dataclass(frozen=True)
class Limits:
    """The bounds of one run, and the knobs tests turn down."""

    max_turns: int = 60
    max_cost_usd: float = 3.0
    max_seconds: float = 45 * 60
    max_tokens: int = 16_000  # per response
    tool_output_chars: int = 30_000
    command_timeout: float = 600.0  # cap on one Bash command, seconds
    retries: int = 6  # per model call, for 429 / 5xx / 529 / timeouts
    backoff_base: float = 2.0  # seconds; doubled per attempt, jittered
    backoff_max: float = 60.0
    request_timeout: float = 600.0  # one model call, seconds
    # A per-call timeout given as one number would also bound the connection by it: a host that
    # drops packets would hold each attempt for `request_timeout`. The SDK's own default.
    connect_timeout: float = 5.0
    warn_turns_left: int = 3  # tell the model to wrap up this many turns before the end
    warn_cost_share: float = 0.85  # ... or once this share of the budget is spent
    warn_time_share: float = 0.85  # ... or once this share of the time is spent
    # Context editing (see the module docstring): about 30k tokens of uncleared tool output
    # at most, and the last few turns' output always intact.
    trim_trigger_chars: int = 120_000
    trim_keep_turns: int = 4

    def retry_window(self) -> float:
        """The longest, in seconds, that the loop keeps trying an unreachable model service
        after its first failed call: every backoff at its cap, every later attempt waiting out
        its connection timeout."""
        sleeps = sum(min(self.backoff_max, self.backoff_base * 2**attempt)
                     for attempt in range(self.retries))
        return sleeps + self.retries * self.connect_timeout


def limits_for(config: RepoConfig, base: Limits = Limits()) -> Limits:
    """`base` bounded as a repository's `.github/backend.yml` says."""
    return replace(base, max_turns=config.max_turns, max_cost_usd=config.max_cost_usd,
                   max_seconds=config.max_minutes * 60)


@dataclass
class AgentResult:
    """How a run ended. `entry` is set when finished, `question` when the agent asked one,
    `reason` says why a bound or error stopped it (in words a user can read)."""

    outcome: Outcome
    usage: Usage
    entry: WorkLogEntry | None = None
    question: str | None = None
    reason: str | None = None
    # The model service kept failing in a way that passes (overload, 5xx, the network):
    # worth running again later, unlike a refusal or a bound.
    transient: bool = False
    todos: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)  # the conversation, for the transcript
    # Each turn's tokens and cost, in the order of the assistant messages.
    turn_usage: list[dict] = field(default_factory=list)
    # The limit whose reserve the run entered (it was told to wrap up), or that stopped it.
    limit: LimitName | None = None


ToolCallCallback = Callable[[str, dict], None]

TRIMMED = "[output trimmed to save context: {chars:,} characters; run the tool again if you need it]"


def _tool_result_chars(message: dict) -> int:
    if message["role"] != "user" or isinstance(message["content"], str):
        return 0
    return sum(len(_result_text(b)) for b in message["content"] if b.get("type") == "tool_result")


def _result_text(block: dict) -> str:
    content = block.get("content", "")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def trim_boundary(messages: list[dict], boundary: int, limits: Limits) -> int:
    """Where old tool output stops being cleared: `boundary` (an index into `messages`) as it
    was, or moved forward in one jump once the output after it passes the trigger."""
    with_results = [i for i, m in enumerate(messages) if i >= boundary and _tool_result_chars(m)]
    if sum(_tool_result_chars(messages[i]) for i in with_results) <= limits.trim_trigger_chars:
        return boundary
    kept = with_results[-limits.trim_keep_turns:] if limits.trim_keep_turns > 0 else []
    return kept[0] if kept else len(messages)


def with_old_results_trimmed(messages: list[dict], boundary: int) -> list[dict]:
    """A copy of `messages` where each tool result before `boundary` is a placeholder saying
    how long it was. Every block stays (each tool_use keeps its tool_result); a result cleared
    once reads the same in every later request."""
    out = list(messages)
    for i in range(min(boundary, len(out))):
        if not _tool_result_chars(out[i]):
            continue
        content = []
        for block in out[i]["content"]:
            if block.get("type") == "tool_result":
                block = {**block, "content": TRIMMED.format(chars=len(_result_text(block)))}
            content.append(block)
        out[i] = {**out[i], "content": content}
    return out


class _Bound(Exception):
    def __init__(self, message: str, limit: LimitName) -> None:
        super().__init__(message)
        self.limit = limit


class _ModelFailure(Exception):
    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def with_cache_breakpoints(
    tools: list[dict], system: str, messages: list[dict]
) -> tuple[list[dict], list[dict], list[dict]]:
    """Copies of tools, system and messages with the four cache breakpoints placed.

    The stored conversation stays free of cache_control, so breakpoints never pile up.
    """
    tool_params = [dict(t) for t in tools]
    if tool_params:
        tool_params[-1]["cache_control"] = EPHEMERAL
    system_blocks = [{"type": "text", "text": system, "cache_control": EPHEMERAL}]
    out = list(messages)
    user_indexes = [i for i, m in enumerate(out) if m["role"] == "user"][-2:]
    for i in user_indexes:
        message = dict(out[i])
        content = message["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        content = [dict(b) for b in content]
        content[-1]["cache_control"] = EPHEMERAL
        message["content"] = content
        out[i] = message
    return tool_params, system_blocks, out


def _assistant_content(response: Any) -> list[dict]:
    blocks: list[dict] = []
    for block in response.content:
        kind = getattr(block, "type", None)
        if kind == "text":
            if block.text.strip():
                blocks.append({"type": "text", "text": block.text})
        elif kind == "tool_use":
            blocks.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input})
        else:
            blocks.append(block.model_dump(exclude_none=True))
    return blocks or [{"type": "text", "text": "(no response)"}]


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _describe(exc: Exception) -> str:
    if isinstance(exc, anthropic.APIStatusError):
        return f"HTTP {exc.status_code}: {getattr(exc, 'message', exc)}"
    return f"{type(exc).__name__}: {exc}"


async def run_agent(
    *,
    client: anthropic.AsyncAnthropic,
    model: str,
    workspace: Path,
    task_prompt: str,
    sandbox: Sandbox,
    limits: Limits = Limits(),
    on_todos: TodosCallback | None = None,
    trigger: str | None = None,
    worklog_entries: int = 3,
    system_prompt: str | None = None,
    tools: list[Tool] | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    on_retry: Callable[[Exception], None] | None = None,
    on_tool_call: ToolCallCallback | None = None,
    resume_messages: list[dict] | None = None,
) -> AgentResult:
    """Run the backend-engineer agent on `workspace` until it finishes, asks, or hits a bound.

    The caller owns the workspace (checked out on the right branch) and everything after the
    run: committing, pushing, the pull request. `task_prompt` is one of the task builders in
    `bot.agent.context` (issue_task, pull_request_task, review_task, local_task).
    Raises SandboxUnavailable before any model call when the shell cannot be sandboxed.
    `on_retry` hears each failed model call that is about to be tried again; `on_tool_call`
    each tool call (name, input) as it starts, to show the run's progress.
    `resume_messages` goes on with a stored conversation (see `answered`) instead of starting
    from the task; turns, cost and time count afresh.
    """
    workspace = Path(workspace).resolve()
    sandbox.check()
    tools = tools if tools is not None else default_tools()
    tool_table = {t.name: t for t in tools}
    tool_params = [t.param() for t in tools]
    system = system_prompt if system_prompt is not None else default_system_prompt()
    ctx = ToolContext(
        workspace=workspace, sandbox=sandbox, on_todos=on_todos, command_timeout_cap=limits.command_timeout
    )
    usage = Usage(model=model)
    # Reads the workspace (files and a git listing): off the event loop.
    messages: list[dict]
    if resume_messages is not None:
        messages = list(resume_messages)
        plan = _last_plan(messages)
        if plan is not None and PLAN_TOOL in tool_table:
            # The plan the agent kept before it asked: shown again, and what a limit's entry
            # lists as left to do.
            await execute(tool_table, ctx, PLAN_TOOL, plan, limits.tool_output_chars)
    else:
        first_message = await asyncio.to_thread(
            build_first_message, workspace, task_prompt, worklog_count=worklog_entries)
        messages = [{"role": "user", "content": [{"type": "text", "text": first_message}]}]
    turn_usage: list[dict] = []
    api = client.with_options(max_retries=0) if hasattr(client, "with_options") else client
    started = time.monotonic()
    deadline = started + limits.max_seconds
    nudges = 0
    trimmed_before = 0  # messages before this index are sent with their tool output cleared
    reserve: LimitName | None = None  # the first limit whose reserve the run entered

    def result(outcome: Outcome, **kwargs: Any) -> AgentResult:
        usage.duration_s = time.monotonic() - started
        kwargs.setdefault("limit", reserve)
        return AgentResult(outcome=outcome, usage=usage, todos=list(ctx.todos), messages=messages,
                           turn_usage=turn_usage, **kwargs)

    async def call_model() -> Any:
        nonlocal trimmed_before
        boundary = trim_boundary(messages, trimmed_before, limits)
        if boundary != trimmed_before:
            log.info("clearing old tool output before message %d of %d", boundary, len(messages))
            trimmed_before = boundary
        tools_req, system_req, messages_req = with_cache_breakpoints(
            tool_params, system, with_old_results_trimmed(messages, trimmed_before))
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Bound(f"time limit reached ({limits.max_seconds:g} s)", "time")
            try:
                # Plain dicts (the conversation is returned and stored as such) in the shapes
                # of the SDK's TypedDicts; mypy cannot match a dict[str, Any] to those.
                return await api.messages.create(
                    model=model,
                    max_tokens=limits.max_tokens,
                    system=cast("list[TextBlockParam]", system_req),
                    tools=cast("list[ToolUnionParam]", tools_req),
                    messages=cast("list[MessageParam]", messages_req),
                    timeout=anthropic.Timeout(min(limits.request_timeout, remaining),
                                              connect=min(limits.connect_timeout, remaining)),
                )
            except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:
                status = getattr(exc, "status_code", None)
                retryable = status is None or status in RETRYABLE_STATUS or status >= 500
                if not retryable:
                    raise _ModelFailure(f"the model service refused the request ({_describe(exc)})",
                                        transient=False) from exc
                if attempt >= limits.retries:
                    raise _ModelFailure(
                        f"the model service kept failing ({_describe(exc)}) after {attempt + 1} attempts",
                        transient=True,
                    ) from exc
                delay = _retry_after(exc)
                if delay is None:
                    delay = min(limits.backoff_max, limits.backoff_base * 2**attempt)
                    delay *= random.uniform(0.5, 1.0)
                delay = min(delay, limits.backoff_max, max(0.0, deadline - time.monotonic()))
                attempt += 1
                # A caller that hears the retries tells its user; the log keeps the detail.
                level = logging.WARNING if on_retry is None else logging.DEBUG
                log.log(level, "model call failed (%s); retry %d in %.1fs", _describe(exc), attempt, delay)
                if on_retry is not None:
                    on_retry(exc)
                await sleep(delay)

    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            while True:
                if usage.turns >= limits.max_turns:
                    return result("bound", reason=f"turn limit reached ({limits.max_turns} turns)",
                                  limit="turns")
                if usage.cost_usd >= limits.max_cost_usd:
                    return result(
                        "bound",
                        reason=f"cost limit reached (${usage.cost_usd:.4f} of ${limits.max_cost_usd:.2f})",
                        limit="cost",
                    )
                response = await call_model()
                before = usage.cost_usd
                usage.turns += 1
                usage.add_response(response.usage)
                turn_usage.append(_turn_usage(response.usage, usage.cost_usd - before))
                messages.append({"role": "assistant", "content": _assistant_content(response)})
                calls = [b for b in response.content if getattr(b, "type", None) == "tool_use"]
                log.info(
                    "turn %d: %s (stop=%s, cost $%.4f)",
                    usage.turns,
                    ", ".join(c.name for c in calls) or "no tool calls",
                    response.stop_reason,
                    usage.cost_usd,
                )
                if not calls:
                    if response.stop_reason == "refusal":
                        return result("error", reason="the model refused to continue")
                    nudges += 1
                    if nudges > MAX_NUDGES:
                        return result("error", reason="the model stopped without calling FinishWork or AskQuestion")
                    if response.stop_reason == "max_tokens":
                        text = "Your reply hit the output limit. Continue, in smaller steps."
                    else:
                        text = prompts.load("nudge-finish").strip()
                    messages.append({"role": "user", "content": [{"type": "text", "text": text}]})
                    continue

                results: list[dict] = []
                stopped = False
                for call in calls:
                    if stopped:
                        text, is_error = "Not run: the run already ended with an earlier tool call.", True
                    else:
                        if on_tool_call is not None:
                            _tell(on_tool_call, call.name, call.input)
                        text, is_error = await execute(
                            tool_table, ctx, call.name, call.input, limits.tool_output_chars
                        )
                        tool = tool_table.get(call.name)
                        stopped = bool(tool and tool.stops and not is_error)
                    block = {"type": "tool_result", "tool_use_id": call.id, "content": text}
                    if is_error:
                        block["is_error"] = True
                    results.append(block)
                if response.stop_reason == "max_tokens":
                    results.append({
                        "type": "text",
                        "text": "Your reply hit the output limit, so the last tool call may be cut "
                        "short. Write large files in smaller pieces.",
                    })  # fmt: skip
                warning = _budget_warning(usage, limits, time.monotonic() - started)
                if warning:
                    reserve = reserve or warning[0]
                    results.append({"type": "text", "text": warning[1]})
                messages.append({"role": "user", "content": results})

                if ctx.finished is not None:
                    entry = ctx.finished.model_copy(update={"timestamp": now_utc(), "trigger": trigger})
                    return result("finished", entry=entry)
                if ctx.question is not None:
                    return result("question", question=ctx.question)
    except _Bound as exc:
        return result("bound", reason=str(exc), limit=exc.limit)
    except TimeoutError:
        return result("bound", reason=f"time limit reached ({limits.max_seconds:g} s)", limit="time")
    except _ModelFailure as exc:
        return result("error", reason=str(exc), transient=exc.transient)


def _last_plan(messages: list[dict]) -> dict | None:
    """The input of the conversation's latest TodoWrite call, if it made one."""
    for message in reversed(messages):
        if message.get("role") != "assistant" or isinstance(message.get("content"), str):
            continue
        for block in reversed(message["content"]):
            if block.get("type") == "tool_use" and block.get("name") == PLAN_TOOL:
                return block.get("input") if isinstance(block.get("input"), dict) else None
    return None


def _tell(on_tool_call: ToolCallCallback, name: str, tool_input: object) -> None:
    try:
        on_tool_call(name, tool_input if isinstance(tool_input, dict) else {})
    except Exception:  # a progress display must never break the run
        log.exception("on_tool_call callback failed")


def _turn_usage(usage: object, cost_usd: float) -> dict[str, Any]:
    get = usage.get if isinstance(usage, dict) else lambda k: getattr(usage, k, None)
    return {"input": get("input_tokens") or 0, "cached": get("cache_read_input_tokens") or 0,
            "cache write": get("cache_creation_input_tokens") or 0,
            "output": get("output_tokens") or 0, "cost": round(cost_usd, 6)}


def _budget_warning(usage: Usage, limits: Limits, elapsed: float) -> tuple[LimitName, str] | None:
    """In a limit's reserve: which limit, and the notice that asks the model to wrap up."""
    turns_left = limits.max_turns - usage.turns
    cost_share = usage.cost_usd / limits.max_cost_usd if limits.max_cost_usd > 0 else 0.0
    time_share = elapsed / limits.max_seconds if limits.max_seconds > 0 else 0.0
    limit: LimitName
    if turns_left <= limits.warn_turns_left:
        limit, remaining = "turns", f"{turns_left} turn{'s' if turns_left != 1 else ''}"
    elif cost_share >= limits.warn_cost_share:
        limit = "cost"
        remaining = f"${limits.max_cost_usd - usage.cost_usd:.2f} of the ${limits.max_cost_usd:.2f} budget"
    elif time_share >= limits.warn_time_share:
        limit, remaining = "time", f"{max(0, round((limits.max_seconds - elapsed) / 60))} minute(s)"
    else:
        return None
    return limit, prompts.render("budget-warning", remaining=remaining).strip()


def answered(messages: list[dict], answer: str) -> list[dict] | None:
    """A conversation that ended on AskQuestion, with `answer` as that call's result: the
    messages to resume it with. None when it did not end on a question."""
    if len(messages) < 2 or messages[-1].get("role") != "user" or messages[-2].get("role") != "assistant":
        return None
    asked = [block.get("id") for block in messages[-2].get("content") or []
             if isinstance(block, dict) and block.get("type") == "tool_use"
             and block.get("name") == "AskQuestion"]
    last = messages[-1].get("content")
    if not asked or not isinstance(last, list):
        return None
    content = [{**block, "content": answer} if block.get("type") == "tool_result"
               and block.get("tool_use_id") == asked[-1] else block for block in last]
    if content == last:
        return None
    return [*messages[:-1], {"role": "user", "content": content}]


__all__ = ["AgentResult", "Limits", "ToolCallCallback", "answered", "limits_for", "run_agent",
           "trim_boundary", "with_cache_breakpoints", "with_old_results_trimmed"]
