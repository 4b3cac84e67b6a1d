"""The database DATABASE_URL names, and the few places where SQLite and PostgreSQL differ.

SQLite is the embedded default (one file under BOT_DATA_DIR); PostgreSQL lets several
processes on several machines share one set of tables. The tables' modules write their SQL
once, in SQLite's dialect with `?` placeholders, and run it through a `Database`, which knows:

    the URL          `parse_url`: which database, and what to hand its driver
    connections      one per thread, opened on first use, again after PostgreSQL dropped it
    placeholders     `?` on SQLite, `%s` on PostgreSQL (`sql`)
    transactions     BEGIN IMMEDIATE on SQLite, psycopg's `transaction()` on PostgreSQL
    the clock        an SQL expression for "now", in seconds since the epoch (`now_sql`)
    schemas          created one process at a time (`create_schema`)
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The URL forms of PostgreSQL: libpq's two, and SQLAlchemy's with the psycopg driver (as DBOS
# is also given it).
_POSTGRES_PREFIXES = ("postgresql://", "postgres://")
_SQLALCHEMY_PSYCOPG = "postgresql+psycopg://"
_SQLITE_PREFIX = "sqlite:///"
_POSTGRES_DEFAULT_PORT = 5432
EXPECTED_URL = "sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"

# Any constant will do: it names the one lock that lets a single process at a time create
# tables.
_SCHEMA_LOCK = 0x6261636B656E65


@dataclass(frozen=True)
class DatabaseUrl:
    """What a DATABASE_URL names."""

    url: str
    postgres: bool
    # PostgreSQL: the URL in libpq's form, the only one psycopg takes. SQLite: the file's path.
    target: str

    @property
    def address(self) -> str:
        """Where the database is, for an operator's eyes: never the password."""
        if not self.postgres:
            return self.target
        parts = urllib.parse.urlsplit(self.target)
        host = parts.hostname or "localhost"
        return f"{host}:{parts.port or _POSTGRES_DEFAULT_PORT}{parts.path}"


def parse_url(url: str) -> DatabaseUrl:
    """Interpret a DATABASE_URL; the one place that does.

    A URL of any other form is refused: taking it for a file name would give each machine of
    a scale-out its own database without a word.
    """
    if url.startswith(_SQLALCHEMY_PSYCOPG):
        url_libpq = "postgresql://" + url.removeprefix(_SQLALCHEMY_PSYCOPG)
        return DatabaseUrl(url, True, url_libpq)
    if url.startswith(_POSTGRES_PREFIXES):
        return DatabaseUrl(url, True, url)
    if url.startswith(_SQLITE_PREFIX) and len(url) > len(_SQLITE_PREFIX):
        return DatabaseUrl(url, False, url.removeprefix(_SQLITE_PREFIX))
    scheme = url.partition("://")[0] if "://" in url else None
    what = f"the scheme {scheme!r} is not supported" if scheme else "it is not a database URL"
    raise ValueError(f"{what}; expected {EXPECTED_URL}")


def default_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file in the data directory."""
    return f"{_SQLITE_PREFIX}{(data_dir / 'backend-bot.db').resolve()}"


def companion_url(url: str, suffix: str) -> str:
    """A database for another component: on PostgreSQL the same one; on SQLite a file beside
    this one, its name ending in `suffix`, so that neither component's writes wait for the
    other's (SQLite has one writer per file)."""
    if parse_url(url).postgres or not url.endswith(".db"):
        return url
    return url.removesuffix(".db") + suffix + ".db"


def _psycopg():
    # Imported on first use, not with this module: settings, the command line and every
    # SQLite deployment import this module, and loading psycopg (and libpq) costs them
    # about 150 ms for nothing.
    import psycopg

    return psycopg


def is_transient_error(error: BaseException) -> bool:
    """A database failure that passes: SQLite busy or locked, a PostgreSQL connection lost or
    the server restarting (psycopg's OperationalError), worth retrying."""
    if isinstance(error, sqlite3.OperationalError):
        return "locked" in str(error) or "busy" in str(error)
    psycopg = sys.modules.get("psycopg")  # never loaded here just to ask
    return psycopg is not None and isinstance(error, psycopg.OperationalError)


class Database:
    """Connections to one database, and its dialect."""

    def __init__(self, url: str) -> None:
        self.location = parse_url(url)
        self.url = url
        self.postgres = self.location.postgres
        self._local = threading.local()

    # -- connections ---------------------------------------------------------------------

    def connect(self):
        """A new connection of the caller's own, outside any transaction until it opens one."""
        if self.postgres:
            return _psycopg().connect(self.location.target, autocommit=True)
        path = self.location.target
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        # WAL: readers never wait for the writer, and a commit is an append to the log.
        # synchronous=NORMAL: a commit reaches the operating system, not the disk, so only a
        # power loss (not a crash of this process) can lose the last moments' commits.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    async def connect_async(self):
        """PostgreSQL only: an asyncio connection, for holding a session while awaiting."""
        return await _psycopg().AsyncConnection.connect(self.location.target, autocommit=True)

    def unreachable(self, timeout: float = 5.0) -> str | None:
        """Why this database cannot be used right now, in one line that names where it is;
        None when it answers. Opens a connection of its own, so a shared one that went stale
        does not hide (or fake) the answer."""
        try:
            if self.postgres:
                conn = _psycopg().connect(self.location.target, autocommit=True,
                                          connect_timeout=max(1, round(timeout)))
            else:
                conn = self.connect()
            try:
                conn.execute("SELECT 1")
            finally:
                conn.close()
        except Exception as error:
            lines = str(error).strip().splitlines()
            reason = lines[0] if lines else type(error).__name__
            where = "the database at" if self.postgres else "the database file"
            return f"cannot reach {where} {self.location.address}: {reason}"
        return None

    def dropped(self, conn) -> bool:
        """Whether the server or the network closed this PostgreSQL connection."""
        return self.postgres and conn.closed

    def connection(self):
        """This thread's shared connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self.dropped(conn):
            # Connect again rather than fail forever (a process whose heartbeat kept failing
            # would look dead to the others).
            conn = self._local.conn = self.connect()
        return conn

    def close(self) -> None:
        """Close this thread's shared connection (the next use opens another)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    # -- dialect -------------------------------------------------------------------------

    def sql(self, statement: str) -> str:
        """The statement with its `?` placeholders in this database's style."""
        return statement.replace("?", "%s") if self.postgres else statement

    @property
    def id_column(self) -> str:
        """The type of an id column numbered by the database, in insertion order."""
        return "BIGSERIAL PRIMARY KEY" if self.postgres else "INTEGER PRIMARY KEY AUTOINCREMENT"

    @property
    def now_sql(self) -> str:
        """An SQL expression for the database's clock, in seconds since the epoch: one clock
        for every machine sharing the database, however their own clocks disagree."""
        if self.postgres:
            return "EXTRACT(EPOCH FROM clock_timestamp())"
        return "((julianday('now') - 2440587.5) * 86400.0)"

    # -- statements ----------------------------------------------------------------------

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Run one statement (on this thread's connection, in its own transaction); its rows."""
        cursor = self.connection().execute(self.sql(statement), params)
        try:
            return cursor.fetchall() if cursor.description else []
        finally:
            cursor.close()

    @contextlib.contextmanager
    def transaction(self, conn) -> Iterator[None]:
        """Commit what runs inside, or roll it all back on an exception."""
        if self.postgres:
            with conn.transaction():
                yield
            return
        # IMMEDIATE takes the write lock now, so the transaction cannot fail half-way for
        # want of it.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def create_schema(self, schema: str) -> None:
        """Run the `;`-separated CREATE ... IF NOT EXISTS statements of a table's schema."""
        statements = [s for s in schema.split(";") if s.strip()]
        if not self.postgres:
            for statement in statements:
                self.execute(statement)
            return
        # Processes starting together on a fresh database would race on CREATE ... IF NOT
        # EXISTS (PostgreSQL raises a unique violation on pg_type): one at a time.
        conn = self.connection()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in statements:
                conn.execute(statement)
