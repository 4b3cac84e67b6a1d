"""Read, Write and Edit: files in the workspace, opened through `bot.confined`.

A path is first checked by `ToolContext.resolve`; the file is then opened through
`bot.confined` from a worker thread: no link followed after that check, only regular files (a
FIFO would block the bot), sizes capped before reading.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import Field

from bot import confined
from bot.agent.tools.base import Tool, ToolContext, ToolError, ToolInput

READ_DEFAULT_LIMIT = 2000
READ_MAX_BYTES = 10 * 1024 * 1024
READ_MAX_LINE = 2000


class ReadInput(ToolInput):
    file_path: str = Field(description="The file to read.")
    offset: int | None = Field(default=None, ge=0, description="Line number to start at (1-based).")
    limit: int | None = Field(default=None, ge=1, description="Number of lines to read.")


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


class WriteInput(ToolInput):
    file_path: str = Field(description="The file to write.")
    content: str = Field(description="The whole new content.")


async def write_tool(ctx: ToolContext, args: WriteInput) -> str:
    path = ctx.resolve(args.file_path, for_write=True)
    if path.is_dir():
        raise ToolError(f"{ctx.display(path)} is a directory.")
    existed = path.exists()
    await asyncio.to_thread(_write_text, ctx, path, args.content)
    verb = "Overwrote" if existed else "Created"
    return f"{verb} {ctx.display(path)} ({len(args.content.splitlines())} lines)."


class EditInput(ToolInput):
    file_path: str = Field(description="The file to modify.")
    old_string: str = Field(description="The exact text to replace.")
    new_string: str = Field(description="The replacement text.")
    replace_all: bool = Field(default=False, description="Replace every occurrence (default false).")


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


READ = Tool(
    "Read",
    "Read a file from the workspace. Returns its lines numbered like `cat -n` "
    "(number, tab, line). By default up to 2000 lines from the start; give `offset` "
    "(1-based line to start at) and `limit` for long files. Paths are relative to the "
    "workspace or absolute inside it.",
    ReadInput,
    read_tool,
)


WRITE = Tool(
    "Write",
    "Write a file in the workspace, replacing it if it exists and creating parent "
    "directories. Prefer Edit for changes to existing files.",
    WriteInput,
    write_tool,
)


EDIT = Tool(
    "Edit",
    "Replace an exact string in a file. `old_string` must match the file exactly "
    "(whitespace and indentation included) and be unique in it, unless `replace_all` "
    "is true; include enough surrounding lines to make it unique. Read the file first.",
    EditInput,
    edit_tool,
)
