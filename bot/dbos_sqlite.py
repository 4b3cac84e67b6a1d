"""DBOS's millisecond clock on a SQLite older than 3.42, where it is NULL.

DBOS decides by Python's version, not SQLite's, how to write "now" in milliseconds: from
Python 3.12 on it writes `unixepoch('subsec') * 1000`, both in the DEFAULTs of its SQLite
system tables and in the UPDATEs it runs. The `subsec` modifier came with SQLite 3.42.0
(2023-05-16); an older SQLite reads it as an unknown modifier and answers NULL. Python links
the system's SQLite, and Debian 12 has 3.40.1, so on 3.12 and 3.13 the first insert into a
NOT NULL timestamp column fails and `DBOS.launch()` with it. DBOS 1.14 to 3.4 all decide so:
no version to pin.

So every SQLite connection SQLAlchemy opens in this process is given a one-argument
`unixepoch` of its own, which SQLite prefers over its built-in. Every, not DBOS's alone:
DBOSClient (the command line's cancel) takes no engine options, only a whole engine of our
making, which would lack the set-up DBOS gives its own connections. `subsec` gives the time
as 3.42 would (whole milliseconds, in seconds); any other argument goes to the built-in, on a
connection of its own. With a SQLite of 3.42 or newer nothing is installed. On Python 3.11
DBOS never asks for `subsec`, but a data directory that 3.12 created has it in its tables'
DEFAULTs, so the shim goes by SQLite's version alone.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import Pool

SUBSEC_SINCE = (3, 42, 0)
_SUBSEC = frozenset({"subsec", "subsecond"})

_builtin: sqlite3.Connection | None = None
_builtin_lock = threading.Lock()
_installed = False


def needed(version: tuple[int, int, int] = sqlite3.sqlite_version_info) -> bool:
    return version < SUBSEC_SINCE


def unixepoch(value: Any) -> Any:
    """SQLite's `unixepoch(value)`, with `subsec` understood."""
    if isinstance(value, str) and value.lower() in _SUBSEC:
        # As SQLite computes it: the time in whole milliseconds, divided into seconds.
        return time.time_ns() // 1_000_000 / 1000.0
    global _builtin
    with _builtin_lock:
        if _builtin is None:
            _builtin = sqlite3.connect(":memory:", check_same_thread=False)
        return _builtin.execute("SELECT unixepoch(?)", (value,)).fetchone()[0]


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function("unixepoch", 1, unixepoch)


def install() -> None:
    """Give every SQLite connection SQLAlchemy opens from now on the `subsec` clock, when this
    SQLite lacks it. Idempotent."""
    global _installed
    if _installed or not needed():
        return
    event.listen(Pool, "connect", _on_connect)
    _installed = True
