"""What every tool shares: the context it runs in, its definition, and how a call is executed.

A tool is data (name, description, input model) plus an async function
`(ToolContext, validated input) -> str`. The JSON schema the model sees is generated from the
input model (`schema_for`), so what the schema promises and what the tool accepts cannot drift
apart: types, constraints, aliases (Grep's `-i`) and the `Field(description=...)` texts.

A function signals a failure the model should read by raising `ToolError`; `execute` turns
that (and unknown tools, malformed input, unexpected exceptions) into an `is_error` result.

Every path goes through `ToolContext.resolve`: relative to the workspace or absolute inside
it, symlinks resolved, nothing outside the workspace reachable, no `.git` writable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.agent.sandbox import Sandbox, cap_text
from bot.errors import BotError
from bot.logs import get_logger
from bot.worklog import WorkLogEntry

log = get_logger(__name__)

# Bash's longest time limit, and the context's command cap unless the run sets a lower one.
BASH_MAX_TIMEOUT_MS = 600_000


class ToolError(BotError):
    """A failure reported back to the model as an is_error tool result."""


TodosCallback = Callable[[list[dict]], Awaitable[None]]


@dataclass
class ToolContext:
    """What tools may touch during one run, and what they report back to the loop."""

    workspace: Path
    sandbox: Sandbox
    on_todos: TodosCallback | None = None
    command_timeout_cap: float = BASH_MAX_TIMEOUT_MS / 1000
    todos: list[dict] = field(default_factory=list)
    finished: WorkLogEntry | None = None
    question: str | None = None

    def __post_init__(self) -> None:
        self.workspace = Path(self.workspace).resolve()

    def resolve(self, file_path: str, *, for_write: bool = False) -> Path:
        """The real path for a tool's path argument, refusing anything outside the workspace."""
        if not isinstance(file_path, str) or not file_path.strip():
            raise ToolError("The path is empty.")
        raw = Path(file_path.strip())
        candidate = raw if raw.is_absolute() else self.workspace / raw
        resolved = candidate.resolve()  # follows symlinks, folds '..'
        if resolved != self.workspace and not resolved.is_relative_to(self.workspace):
            raise ToolError(
                f"{file_path} is outside the workspace ({self.workspace}); "
                "only files inside the workspace can be used."
            )
        if for_write and ".git" in resolved.relative_to(self.workspace).parts:
            raise ToolError("A .git directory cannot be written: the bot manages the repository "
                            "(and does not commit repositories nested in it).")
        return resolved

    def relative(self, path: Path) -> Path:
        """A resolved path relative to the workspace, for `bot.confined`."""
        relative = path.relative_to(self.workspace)
        if not relative.parts:
            raise ToolError("That is the workspace itself, not a file.")
        return relative

    def display(self, path: Path) -> str:
        """A path as shown to the model: relative to the workspace."""
        try:
            rel = path.relative_to(self.workspace)
        except ValueError:
            return str(path)
        return str(rel) if rel.parts else "."


ToolFunc = Callable[[ToolContext, Any], Awaitable[str]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_model: type[BaseModel]
    func: ToolFunc
    # Ends the run once executed (FinishWork, AskQuestion).
    stops: bool = False

    @property
    def input_schema(self) -> dict:
        """The input model's JSON schema; a new dict each time, so no caller can alter the table."""
        return schema_for(self.input_model)

    def param(self) -> dict:
        """The tool as the Messages API takes it."""
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}

    def parse(self, raw: object) -> BaseModel:
        if not isinstance(raw, dict):
            raise ToolError(f"{self.name} expects a JSON object as input, got {type(raw).__name__}.")
        try:
            return self.input_model.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}" for err in exc.errors()
            )
            raise ToolError(f"Invalid input for {self.name}: {problems}.") from None


class ToolInput(BaseModel):
    """A tool's input: extra keys the model adds are ignored, not refused."""

    model_config = ConfigDict(extra="ignore")


# The keywords whose values are schemas (the rest, such as `enum` or `default`, are values and
# are copied as they are, even when a value happens to contain a "title" key).
_SUBSCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SUBSCHEMAS = ("items", "additionalProperties", "not")


def schema_for(model: type[BaseModel]) -> dict:
    """A tool's `input_schema` for the Messages API, generated from its input model.

    pydantic's validation schema with property names by alias, cleaned: the top level is only
    `type`, `properties`, `required`; no `title` (it only repeats the name, and costs tokens in
    every request); `$ref`s replaced by their `$defs` entry (TodoWrite's items), so each
    property reads on its own. Generation is deterministic: the same model gives the same
    JSON, in field order, every call, which the prompt cache relies on.
    """
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.get("$defs", {})
    cleaned = {"type": "object", "properties": _clean(schema, defs)["properties"]}
    if schema.get("required"):
        cleaned["required"] = list(schema["required"])
    return cleaned


def _clean(node: dict, defs: dict) -> dict:
    if "$ref" in node:
        target = defs[node["$ref"].removeprefix("#/$defs/")]
        node = {**target, **{key: value for key, value in node.items() if key != "$ref"}}
    out: dict = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "properties":
            out[key] = {name: _clean(sub, defs) for name, sub in value.items()}
        elif key in _SUBSCHEMA_LISTS:
            out[key] = [_clean(sub, defs) for sub in value]
        elif key in _SUBSCHEMAS and isinstance(value, dict):
            out[key] = _clean(value, defs)
        else:
            out[key] = value
    return out


async def execute(
    tools: dict[str, Tool], ctx: ToolContext, name: str, raw_input: object, output_limit: int
) -> tuple[str, bool]:
    """Run one tool call; (text for the model, is_error). Never raises for tool failures."""
    tool = tools.get(name)
    if tool is None:
        return f"Unknown tool {name!r}. Available tools: {', '.join(tools)}.", True
    try:
        args = tool.parse(raw_input)
        text, is_error = await tool.func(ctx, args), False
    except ToolError as exc:
        text, is_error = str(exc), True
    except (OSError, UnicodeError) as exc:
        text, is_error = f"{name} failed: {exc}", True
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a bug in a tool must not end the run; the model can go on
        log.exception("tool %s crashed", name)
        text, is_error = f"{name} failed unexpectedly: {type(exc).__name__}: {exc}", True
    return cap_text(text or "(no output)", output_limit), is_error
