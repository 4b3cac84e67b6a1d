"""Host-side access to files in a tree an attacker controls (a job's workspace).

The bot's own process reads and writes a few files of the workspace itself: the repository's
CLAUDE.md / AGENTS.md, BACKEND_WORK_LOG.md, the files that tell its test command, and the
agent's file tools. Every one of those files may be a symbolic link to a file of the host (the
bot's `.env`, a `.pth` file of its virtual environment), a FIFO that blocks whoever opens it,
or a sparse file of terabytes. So nothing here goes through `Path.read_text`:

- a path is walked one component at a time from the root, each opened with `O_NOFOLLOW`, so no
  link is ever followed, not even one swapped in between two calls;
- only regular files are read or written (`fstat` on the opened descriptor; a FIFO is opened
  non-blocking and refused before anything waits on it);
- reads are capped before they start, writes refuse a file with other hard links;
- the functions are synchronous: callers on the event loop run them in a thread.

A link inside the workspace that the agent's own tools may follow (an `src -> lib/src` layout)
is resolved by the caller first (`bot.agent.tools.ToolContext.resolve`); the resolved path is
then opened here without following anything.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from bot.errors import UserFacingError

DEFAULT_MAX_BYTES = 5 * 1024 * 1024

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


class UnsafePath(UserFacingError):
    """A workspace path the bot refuses to touch: a link, not a regular file, or too large.

    User-facing: when the agent left a link where the bot writes its log, the run says so.
    """


def _parts(relative: str | os.PathLike[str]) -> list[str]:
    path = PurePosixPath(os.fspath(relative))
    if path.is_absolute():
        raise UnsafePath(f"{relative} is not a path relative to the workspace")
    parts = [part for part in path.parts if part not in ("", ".")]
    if not parts or ".." in parts:
        raise UnsafePath(f"{relative} is not a path inside the workspace")
    return parts


def _open_parent(root: Path, parts: list[str], *, create: bool) -> int:
    """A descriptor of the directory holding `parts[-1]`, reached without following links."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            try:
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePath(f"{'/'.join(parts)}: {part} is a link or not a directory") from None
                raise
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open(root: Path, relative: str | os.PathLike[str], flags: int, *, create_parents: bool = False) -> int:
    parts = _parts(relative)
    parent = _open_parent(Path(root), parts, create=create_parents)
    try:
        return os.open(parts[-1], flags | _FILE_FLAGS, 0o644, dir_fd=parent)
    except OSError as error:
        # ELOOP: the last component is a link. ENXIO: a FIFO opened for writing with no reader.
        if error.errno in (errno.ELOOP, errno.ENXIO):
            raise UnsafePath(f"{relative} is a link or a special file; the bot does not follow it") from None
        raise
    finally:
        os.close(parent)


def _require_regular(fd: int, relative: str | os.PathLike[str]) -> os.stat_result:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafePath(f"{relative} is not a regular file")
    return info


def read_bytes(root: Path, relative: str | os.PathLike[str], *,
               max_bytes: int = DEFAULT_MAX_BYTES) -> bytes | None:
    """The file's bytes; None when it does not exist. UnsafePath for a link, a special file or
    a file over `max_bytes` (checked on its size before anything is read)."""
    try:
        fd = _open(root, relative, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        info = _require_regular(fd, relative)
        if info.st_size > max_bytes:
            raise UnsafePath(f"{relative} has {info.st_size} bytes, over the limit of {max_bytes}")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            # A file that grows while being read stops at the cap all the same.
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise UnsafePath(f"{relative} grew over the limit of {max_bytes} bytes while read")
        return data
    finally:
        os.close(fd)


def read_text(root: Path, relative: str | os.PathLike[str], *,
              max_bytes: int = DEFAULT_MAX_BYTES) -> str | None:
    data = read_bytes(root, relative, max_bytes=max_bytes)
    return None if data is None else data.decode("utf-8", errors="replace")


def write_text(root: Path, relative: str | os.PathLike[str], text: str, *,
               create_parents: bool = False) -> None:
    """Replace the file's content (creating it), never through a link or into a special file."""
    fd = _open(root, relative, os.O_WRONLY | os.O_CREAT, create_parents=create_parents)
    try:
        info = _require_regular(fd, relative)
        if info.st_nlink > 1:
            # Another name for the same file may sit anywhere the agent could link from.
            raise UnsafePath(f"{relative} has other hard links; the bot does not write it")
        os.ftruncate(fd, 0)
        data = text.encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def is_regular_file(root: Path, relative: str | os.PathLike[str]) -> bool:
    """True for a regular file reached without following any link."""
    try:
        parts = _parts(relative)
        parent = _open_parent(Path(root), parts, create=False)
    except (OSError, UnsafePath):
        return False
    try:
        info = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
    except OSError:
        return False
    finally:
        os.close(parent)
    return stat.S_ISREG(info.st_mode)


def walk(root: Path, *, limit: int = 100_000,
         skip: frozenset[str] = frozenset({".git"})) -> Iterator[tuple[str, os.DirEntry]]:
    """(relative path, entry) of everything under `root`, links not followed, at most `limit`
    entries; directories named in `skip` at any depth are not entered."""
    seen = 0
    stack = [""]
    while stack:
        relative_dir = stack.pop()
        try:
            with os.scandir(Path(root) / relative_dir) as entries:
                for entry in entries:
                    seen += 1
                    if seen > limit:
                        return
                    relative = f"{relative_dir}/{entry.name}" if relative_dir else entry.name
                    yield relative, entry
                    if entry.is_dir(follow_symlinks=False) and entry.name not in skip:
                        stack.append(relative)
        except OSError:
            continue
