"""Glob and Grep: finding files by name and by content (ripgrep, or Python without it)."""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
import shutil
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field

from bot import confined
from bot.agent.tools.base import Tool, ToolContext, ToolError, ToolInput

GLOB_MAX_RESULTS = 250
GREP_MAX_LINES = 400


class GlobInput(ToolInput):
    pattern: str = Field(description="The glob pattern.")
    path: str | None = Field(default=None, description="Directory to search in (default: workspace).")


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


class GrepInput(ToolInput):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    pattern: str = Field(description="The regular expression.")
    path: str | None = Field(default=None, description="File or directory to search (default: workspace).")
    glob: str | None = Field(default=None, description="Only files matching this glob.")
    output_mode: Literal["content", "files_with_matches", "count"] = "files_with_matches"
    # ripgrep's flags, as Claude Code names them; the schema shows the aliases.
    case_insensitive: bool = Field(default=False, alias="-i", description="Case-insensitive search.")
    context: int | None = Field(default=None, alias="-C", ge=0, le=20,
                                description="Context lines around each match (content mode).")
    head_limit: int | None = Field(default=None, ge=1, description="Show only the first N lines of output.")


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
        async with asyncio.timeout(60):  # not wait_for, which can lose a cancellation on 3.11
            stdout, stderr = await proc.communicate()
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


GLOB = Tool(
    "Glob",
    "Find files by name with a glob pattern such as `**/*.py` or `src/**/test_*.py`. "
    "Returns matching paths relative to the workspace, sorted.",
    GlobInput,
    glob_tool,
)


GREP = Tool(
    "Grep",
    "Search file contents with a regular expression (ripgrep syntax). `output_mode`: "
    "`files_with_matches` (default) lists files, `content` shows matching lines with "
    "line numbers (`-C` adds context lines), `count` counts matches per file. Filter "
    "files with `glob` (e.g. `*.py`).",
    GrepInput,
    grep_tool,
)
