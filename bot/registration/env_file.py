"""Writing the new App's credentials into the dotenv file Settings reads."""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path


def write_env(path: Path, values: dict[str, str]) -> None:
    """Set `values` in the dotenv file at `path`, keeping its other lines; the file ends mode 600.

    A symlink is followed (the container image links `/app/.env` to the data volume). The
    file is replaced atomically when its folder is writable, else rewritten in place.
    """
    path = Path(path).resolve()
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept: list[str] = []
    skipping_quote: str | None = None
    for line in lines:
        if skipping_quote is not None:
            # Inside a multi-line quoted value of a key being replaced.
            if _closes_quote(line, skipping_quote):
                skipping_quote = None
            continue
        match = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$", line)
        if match and match.group(1) in values:
            rest = match.group(2)
            if rest[:1] in ("'", '"') and not _closes_quote(rest[1:], rest[0]):
                skipping_quote = rest[0]
            continue
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    if kept:
        kept.append("")
    kept.append("# Written by backend-bot's App registration (GET /setup/callback).")
    kept.extend(f"{key}={_dotenv_value(value)}" for key, value in values.items())
    text = "\n".join(kept) + "\n"

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".env.", dir=path.parent)
    except PermissionError:
        if not path.exists():
            raise
        _write_in_place(path, text)
        return
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno not in (errno.EBUSY, errno.EXDEV, errno.EPERM):  # e.g. a bind-mounted file
            raise
        _write_in_place(path, text)
        return
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


def _write_in_place(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.truncate(0)
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _closes_quote(text: str, quote_char: str) -> bool:
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == quote_char:
            return True
    return False


def _dotenv_value(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.:/+=@-]*", value):
        return value
    # Double quotes: python-dotenv and Compose both turn \n back into a newline (and
    # Settings also accepts a literal \n in PRIVATE_KEY).
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
