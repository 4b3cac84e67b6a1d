"""The agent's tools, named and shaped like Claude Code's.

A tool is data (name, description, JSON schema) plus an async function
`(ToolContext, validated input) -> str`. A function signals a failure the model should read
by raising `ToolError`; the loop turns that (and unknown tools, malformed input, unexpected
exceptions) into an `is_error` tool result.

Every path goes through `ToolContext.resolve`: relative to the workspace or absolute inside
it, symlinks resolved, nothing outside the workspace reachable, no `.git` writable. The files
are then opened through `bot.confined` from a worker thread: no link followed after that check,
only regular files (a FIFO would block the bot), sizes capped before reading.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot import confined
from bot.agent.sandbox import Sandbox, cap_text
from bot.logs import get_logger
from bot.sanitize import neutralise, neutralise_line
from bot.worklog import SECTIONS, WorkLogEntry

log = get_logger(__name__)

READ_DEFAULT_LIMIT = 2000
READ_MAX_BYTES = 10 * 1024 * 1024
READ_MAX_LINE = 2000
GLOB_MAX_RESULTS = 250
GREP_MAX_LINES = 400
BASH_DEFAULT_TIMEOUT_MS = 120_000
BASH_MAX_TIMEOUT_MS = 600_000


class ToolError(Exception):
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
    input_schema: dict
    input_model: type[BaseModel]
    func: ToolFunc
    # Ends the run once executed (FinishWork, AskQuestion).
    stops: bool = False

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


class _Input(BaseModel):
    model_config = ConfigDict(extra="ignore")


# ---------------------------------------------------------------------------------------
# Read / Write / Edit


class ReadInput(_Input):
    file_path: str
    offset: int | None = Field(default=None, ge=0)
    limit: int | None = Field(default=None, ge=1)


def _read_text(ctx: ToolContext, path: Path) -> str:
    if path.is_dir():
        raise ToolError(f"{path.name} is a directory; use Glob or `ls` through Bash to list it.")
    try:
        data = confined.read_bytes(ctx.workspace, ctx.relative(path), max_bytes=READ_MAX_BYTES)
    except confined.UnsafePath as error:
        raise ToolError(f"{error}. For a very large file, read parts of it with Bash "
                        "(`head`, `sed -n`).") from None
    if data is None:
        raise ToolError(f"File does not exist: {path.name}.")
    if b"\x00" in data[:8192]:
        raise ToolError(f"{path.name} looks like a binary file ({len(data)} bytes); not shown.")
    return data.decode("utf-8", errors="replace")


def _write_text(ctx: ToolContext, path: Path, text: str) -> None:
    try:
        confined.write_text(ctx.workspace, ctx.relative(path), text, create_parents=True)
    except confined.UnsafePath as error:
        raise ToolError(str(error)) from None


async def read_tool(ctx: ToolContext, args: ReadInput) -> str:
    path = ctx.resolve(args.file_path)
    text = await asyncio.to_thread(_read_text, ctx, path)
    if not text:
        return f"({ctx.display(path)} is empty)"
    lines = text.splitlines()
    start = max((args.offset or 1), 1)
    limit = args.limit or READ_DEFAULT_LIMIT
    chosen = lines[start - 1 : start - 1 + limit]
    if not chosen:
        raise ToolError(f"{ctx.display(path)} has {len(lines)} lines; offset {start} is past the end.")
    out = []
    for number, line in enumerate(chosen, start):
        if len(line) > READ_MAX_LINE:
            line = line[:READ_MAX_LINE] + f"... [line cut, {len(line)} characters]"
        out.append(f"{number:>6}\t{line}")
    end = start + len(chosen) - 1
    if end < len(lines):
        out.append(f"[showing lines {start}-{end} of {len(lines)}; use offset and limit for more]")
    return "\n".join(out)


class WriteInput(_Input):
    file_path: str
    content: str


async def write_tool(ctx: ToolContext, args: WriteInput) -> str:
    path = ctx.resolve(args.file_path, for_write=True)
    if path.is_dir():
        raise ToolError(f"{ctx.display(path)} is a directory.")
    existed = path.exists()
    await asyncio.to_thread(_write_text, ctx, path, args.content)
    verb = "Overwrote" if existed else "Created"
    return f"{verb} {ctx.display(path)} ({len(args.content.splitlines())} lines)."


class EditInput(_Input):
    file_path: str
    old_string: str
    new_string: str
    replace_all: bool = False


async def edit_tool(ctx: ToolContext, args: EditInput) -> str:
    path = ctx.resolve(args.file_path, for_write=True)
    shown = ctx.display(path)
    if args.old_string == args.new_string:
        raise ToolError("old_string and new_string are the same; nothing to change.")
    if not path.exists() and args.old_string == "":
        await asyncio.to_thread(_write_text, ctx, path, args.new_string)
        return f"Created {shown}."
    text = await asyncio.to_thread(_read_text, ctx, path)
    if args.old_string == "":
        raise ToolError(f"old_string is empty but {shown} exists; use Write to replace a whole file.")
    count = text.count(args.old_string)
    if count == 0:
        raise ToolError(
            f"old_string was not found in {shown}. It must match the file exactly, including "
            "whitespace and indentation; Read the file again and copy the text."
        )
    if count > 1 and not args.replace_all:
        raise ToolError(
            f"old_string appears {count} times in {shown}; it must be unique. Include more "
            "surrounding lines to pick one place, or set replace_all to change every occurrence."
        )
    updated = text.replace(args.old_string, args.new_string)
    await asyncio.to_thread(_write_text, ctx, path, updated)
    return f"Edited {shown}: replaced {count if args.replace_all else 1} occurrence(s)."


# ---------------------------------------------------------------------------------------
# Glob / Grep


class GlobInput(_Input):
    pattern: str
    path: str | None = None


def _outside_git(rel: Path) -> bool:
    return ".git" not in rel.parts


async def glob_tool(ctx: ToolContext, args: GlobInput) -> str:
    base = ctx.resolve(args.path or ".")
    if not base.is_dir():
        raise ToolError(f"{ctx.display(base)} is not a directory.")
    pattern = args.pattern.strip()
    if pattern.startswith("/"):
        raise ToolError("Give the pattern relative to `path` (e.g. `**/*.py`), not absolute.")
    if any(part == ".." for part in Path(pattern).parts):
        raise ToolError("The pattern may not contain '..'.")

    def scan() -> list[Path]:
        found = []
        for p in base.glob(pattern):
            rel = p.relative_to(base)
            if not _outside_git(rel):
                continue
            real = p.resolve()
            if real != ctx.workspace and not real.is_relative_to(ctx.workspace):
                continue
            found.append(p)
            if len(found) > 5000:
                break
        return found

    try:
        found = await asyncio.to_thread(scan)
    except (ValueError, NotImplementedError) as exc:
        raise ToolError(f"Invalid pattern {pattern!r}: {exc}.") from None
    if not found:
        return f"No files match {pattern!r} in {ctx.display(base)}."
    shown = sorted(ctx.display(p) + ("/" if p.is_dir() else "") for p in found)
    more = len(shown) - GLOB_MAX_RESULTS
    out = "\n".join(shown[:GLOB_MAX_RESULTS])
    if more > 0:
        out += f"\n[{more} more matches not shown; narrow the pattern]"
    return out


class GrepInput(_Input):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    pattern: str
    path: str | None = None
    glob: str | None = None
    output_mode: Literal["content", "files_with_matches", "count"] = "files_with_matches"
    case_insensitive: bool = Field(default=False, alias="-i")
    context: int | None = Field(default=None, alias="-C", ge=0, le=20)
    head_limit: int | None = Field(default=None, ge=1)


async def grep_tool(ctx: ToolContext, args: GrepInput) -> str:
    base = ctx.resolve(args.path or ".")
    if not (base.is_dir() or confined.is_regular_file(ctx.workspace, ctx.relative(base))):
        raise ToolError(f"{ctx.display(base)} is not a directory or a regular file.")
    try:
        regex = re.compile(args.pattern, re.IGNORECASE if args.case_insensitive else 0)
    except re.error as exc:
        # ripgrep's syntax is close to Python's; refuse what neither understands.
        if shutil.which("rg") is None:
            raise ToolError(f"Invalid regular expression: {exc}.") from None
        regex = None
    rg = shutil.which("rg")
    if rg:
        lines = await _grep_rg(rg, ctx, base, args)
    else:
        if regex is None:
            raise ToolError("Invalid regular expression.")
        lines = await asyncio.to_thread(_grep_python, ctx, base, args, regex)
    if not lines:
        return f"No matches for {args.pattern!r}."
    limit = args.head_limit or GREP_MAX_LINES
    out = "\n".join(lines[:limit])
    if len(lines) > limit:
        out += f"\n[{len(lines) - limit} more lines not shown; narrow the search or use head_limit]"
    return out


async def _grep_rg(rg: str, ctx: ToolContext, base: Path, args: GrepInput) -> list[str]:
    argv = [rg, "--no-config", "--color", "never", "--hidden", "--glob", "!.git", "--no-messages"]
    if args.case_insensitive:
        argv.append("-i")
    if args.glob:
        argv += ["--glob", args.glob]
    if args.output_mode == "files_with_matches":
        argv.append("--files-with-matches")
    elif args.output_mode == "count":
        argv.append("--count-matches")
    else:
        argv += ["--line-number", "--no-heading"]
        if args.context:
            argv += ["-C", str(args.context)]
    rel = os.path.relpath(base, ctx.workspace)
    argv += ["-e", args.pattern, "--", rel]
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=ctx.workspace, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", os.defpath)},
    )  # fmt: skip
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ToolError("The search took longer than 60 seconds; narrow path or glob.") from None
    if proc.returncode not in (0, 1):
        raise ToolError(f"Search failed: {stderr.decode(errors='replace').strip()[:500]}")
    text = stdout.decode("utf-8", errors="replace")
    lines = [line.removeprefix("./") for line in text.splitlines()]
    return sorted(lines) if args.output_mode != "content" else lines


def _grep_python(ctx: ToolContext, base: Path, args: GrepInput, regex: re.Pattern) -> list[str]:
    if base.is_file():
        files = [base]
    else:
        files = []
        for root, dirs, names in os.walk(base):
            dirs[:] = sorted(d for d in dirs if d != ".git")
            for name in sorted(names):
                files.append(Path(root) / name)
    lines: list[str] = []
    for path in files:
        shown = ctx.display(path)
        if args.glob and not (fnmatch.fnmatch(path.name, args.glob) or fnmatch.fnmatch(shown, args.glob)):
            continue
        try:
            data = confined.read_bytes(ctx.workspace, path.relative_to(ctx.workspace),
                                       max_bytes=5_000_000)
        except (OSError, confined.UnsafePath):
            continue
        if data is None:
            continue
        if b"\x00" in data[:8192]:
            continue
        content = data.decode("utf-8", errors="replace").splitlines()
        hits = [i for i, line in enumerate(content) if regex.search(line)]
        if not hits:
            continue
        if args.output_mode == "files_with_matches":
            lines.append(shown)
        elif args.output_mode == "count":
            lines.append(f"{shown}:{len(hits)}")
        else:
            around = args.context or 0
            keep = sorted({j for i in hits for j in range(max(0, i - around), min(len(content), i + around + 1))})
            hit_set = set(hits)
            for j in keep:
                sep = ":" if j in hit_set else "-"
                lines.append(f"{shown}{sep}{j + 1}{sep}{content[j]}")
        if len(lines) > 10_000:
            break
    return lines


# ---------------------------------------------------------------------------------------
# Bash


class BashInput(_Input):
    command: str = Field(min_length=1)
    timeout: int | None = Field(default=None, ge=1, description="milliseconds")
    description: str | None = None


async def bash_tool(ctx: ToolContext, args: BashInput) -> str:
    timeout_ms = min(args.timeout or BASH_DEFAULT_TIMEOUT_MS, BASH_MAX_TIMEOUT_MS)
    timeout = min(timeout_ms / 1000, ctx.command_timeout_cap)
    result = await ctx.sandbox.run(args.command, timeout=timeout)
    output = result.output.rstrip("\n") or "(no output)"
    if result.timed_out:
        raise ToolError(f"{output}\n[exit: killed after {timeout:g} s]")
    if result.exit_code != 0:
        raise ToolError(f"{output}\n[exit code {result.exit_code}]")
    return output


# ---------------------------------------------------------------------------------------
# TodoWrite / AskQuestion / FinishWork


class Todo(_Input):
    content: str = Field(min_length=1)
    status: Literal["pending", "in_progress", "completed"]
    activeForm: str = Field(min_length=1)


class TodoWriteInput(_Input):
    todos: list[Todo]


_TODO_MARK = {"pending": "[ ]", "in_progress": "[~]", "completed": "[x]"}


async def todo_write_tool(ctx: ToolContext, args: TodoWriteInput) -> str:
    # The plan is shown on GitHub, one line per item of the status comment's checklist.
    ctx.todos = [
        {**todo.model_dump(), "content": neutralise_line(todo.content),
         "activeForm": neutralise_line(todo.activeForm)}
        for todo in args.todos
    ]
    if ctx.on_todos is not None:
        try:
            await ctx.on_todos(list(ctx.todos))
        except Exception:  # a progress display must never break the run
            log.exception("on_todos callback failed")
    lines = [f"{_TODO_MARK[t['status']]} {t['content']}" for t in ctx.todos]
    return "Plan updated:\n" + ("\n".join(lines) if lines else "(empty)")


class AskQuestionInput(_Input):
    question: str = Field(min_length=1)


async def ask_question_tool(ctx: ToolContext, args: AskQuestionInput) -> str:
    ctx.question = neutralise(args.question.strip())  # posted on GitHub as it is
    return "Your question was sent to the requester. The run ends here."


class FinishWorkInput(_Input):
    title: str = Field(min_length=1)
    task_summary: str | list[str]
    files_modified: str | list[str]
    key_decisions: str | list[str] = ""
    database_changes: str | list[str] = ""
    api_changes: str | list[str] = ""
    dependencies: str | list[str] = ""
    testing_performed: str | list[str]
    next_steps: str | list[str] = ""
    potential_issues: str | list[str] = ""


async def finish_work_tool(ctx: ToolContext, args: FinishWorkInput) -> str:
    entry = WorkLogEntry(**args.model_dump())
    # Every word of the entry reaches GitHub: the pull request, its title, the commit.
    ctx.finished = entry.model_copy(update={
        "title": neutralise_line(entry.title),
        **{name: neutralise(getattr(entry, name)) for name, _ in SECTIONS},
    })
    return "Work-log entry recorded. The run ends here."


# ---------------------------------------------------------------------------------------
# The tool table


def _section_schema() -> dict:
    props: dict[str, dict] = {
        "title": {
            "type": "string",
            "description": "Short imperative summary, used as the pull request title.",
        }
    }
    hints = {
        "task_summary": "One line: what was implemented.",
        "files_modified": "Every file created or modified, each with a short description of the change.",
        "key_decisions": "Technologies, patterns and approaches chosen, with the reasons; corrections made.",
        "database_changes": "Schema changes, migrations, indexes. 'None.' if none.",
        "api_changes": "New or modified endpoints; breaking changes stated plainly. 'None.' if none.",
        "dependencies": "Packages added or updated, with versions. 'None.' if none.",
        "testing_performed": "What was tested and how, with results.",
        "next_steps": "What should happen next; what this unblocks or needs from others.",
        "potential_issues": "Concerns, technical debt, risks, follow-up work.",
    }
    for name, heading in SECTIONS:
        props[name] = {"type": "string", "description": f"{heading}: {hints[name]} Markdown."}
    return {
        "type": "object",
        "properties": props,
        "required": ["title", "task_summary", "files_modified", "testing_performed"],
    }


def default_tools() -> list[Tool]:
    """The tools offered to the agent, in a fixed order (the order is part of the cache prefix)."""
    return [
        Tool(
            "Read",
            "Read a file from the workspace. Returns its lines numbered like `cat -n` "
            "(number, tab, line). By default up to 2000 lines from the start; give `offset` "
            "(1-based line to start at) and `limit` for long files. Paths are relative to the "
            "workspace or absolute inside it.",
            {
                "type": "object",
                "properties": {
                    "file_path": {"type": "string", "description": "The file to read."},
                    "offset": {"type": "integer", "description": "Line number to start at (1-based)."},
                    "limit": {"type": "integer", "description": "Number of lines to read."},
                },
                "required": ["file_path"],
            },
            ReadInput,
            read_tool,
        ),
        Tool(
            "Write",
            "Write a file in the workspace, replacing it if it exists and creating parent "
            "directories. Prefer Edit for changes to existing files.",
            {
                "type": "object",
                "properties": {
                    "file_path": {"type": "string", "description": "The file to write."},
                    "content": {"type": "string", "description": "The whole new content."},
                },
                "required": ["file_path", "content"],
            },
            WriteInput,
            write_tool,
        ),
        Tool(
            "Edit",
            "Replace an exact string in a file. `old_string` must match the file exactly "
            "(whitespace and indentation included) and be unique in it, unless `replace_all` "
            "is true; include enough surrounding lines to make it unique. Read the file first.",
            {
                "type": "object",
                "properties": {
                    "file_path": {"type": "string", "description": "The file to modify."},
                    "old_string": {"type": "string", "description": "The exact text to replace."},
                    "new_string": {"type": "string", "description": "The replacement text."},
                    "replace_all": {
                        "type": "boolean",
                        "description": "Replace every occurrence (default false).",
                    },
                },
                "required": ["file_path", "old_string", "new_string"],
            },
            EditInput,
            edit_tool,
        ),
        Tool(
            "Glob",
            "Find files by name with a glob pattern such as `**/*.py` or `src/**/test_*.py`. "
            "Returns matching paths relative to the workspace, sorted.",
            {
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "The glob pattern."},
                    "path": {"type": "string", "description": "Directory to search in (default: workspace)."},
                },
                "required": ["pattern"],
            },
            GlobInput,
            glob_tool,
        ),
        Tool(
            "Grep",
            "Search file contents with a regular expression (ripgrep syntax). `output_mode`: "
            "`files_with_matches` (default) lists files, `content` shows matching lines with "
            "line numbers (`-C` adds context lines), `count` counts matches per file. Filter "
            "files with `glob` (e.g. `*.py`).",
            {
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "The regular expression."},
                    "path": {"type": "string", "description": "File or directory to search (default: workspace)."},
                    "glob": {"type": "string", "description": "Only files matching this glob."},
                    "output_mode": {
                        "type": "string",
                        "enum": ["content", "files_with_matches", "count"],
                    },
                    "-i": {"type": "boolean", "description": "Case-insensitive search."},
                    "-C": {"type": "integer", "description": "Context lines around each match (content mode)."},
                    "head_limit": {"type": "integer", "description": "Show only the first N lines of output."},
                },
                "required": ["pattern"],
            },
            GrepInput,
            grep_tool,
        ),
        Tool(
            "Bash",
            "Run a shell command (bash) in the workspace, inside a sandbox: the workspace is "
            "writable, the rest of the system read-only, /tmp private, no network, no secrets "
            "in the environment. Output (stdout and stderr) is capped. Default time limit 2 "
            "minutes, `timeout` in milliseconds up to 600000. Use it to run tests, linters, "
            "builds and git status/diff; do not commit or push (the bot does).",
            {
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The command to run."},
                    "timeout": {"type": "integer", "description": "Time limit in milliseconds."},
                    "description": {"type": "string", "description": "What the command does, in 5-10 words."},
                },
                "required": ["command"],
            },
            BashInput,
            bash_tool,
        ),
        Tool(
            "TodoWrite",
            "Write your plan as a todo list (replacing the previous one). The requester sees it "
            "as a checklist. Keep exactly one item `in_progress` while working; mark items "
            "`completed` as soon as they are done.",
            {
                "type": "object",
                "properties": {
                    "todos": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "content": {"type": "string", "description": "Imperative: 'Add tests'."},
                                "status": {
                                    "type": "string",
                                    "enum": ["pending", "in_progress", "completed"],
                                },
                                "activeForm": {
                                    "type": "string",
                                    "description": "Present continuous: 'Adding tests'.",
                                },
                            },
                            "required": ["content", "status", "activeForm"],
                        },
                    }
                },
                "required": ["todos"],
            },
            TodoWriteInput,
            todo_write_tool,
        ),
        Tool(
            "AskQuestion",
            "Stop and ask the requester one question, when the task is genuinely ambiguous or "
            "needs a decision between approaches with significant trade-offs. State the options "
            "and your recommendation. This ends the run; the requester answers and triggers you again.",
            {
                "type": "object",
                "properties": {"question": {"type": "string", "description": "The question, in Markdown."}},
                "required": ["question"],
            },
            AskQuestionInput,
            ask_question_tool,
            stops=True,
        ),
        Tool(
            "FinishWork",
            "Finish the run with the work-log entry (the nine sections of BACKEND_WORK_LOG.md). "
            "Call it once, when the work is done and tested; the bot then commits your changes "
            "and uses the entry as the pull request description. Write 'None.' for sections "
            "that do not apply.",
            _section_schema(),
            FinishWorkInput,
            finish_work_tool,
            stops=True,
        ),
    ]


async def execute(tools: dict[str, Tool], ctx: ToolContext, name: str, raw_input: object, output_limit: int) -> tuple[str, bool]:
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
