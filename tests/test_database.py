"""The database layer: what each DATABASE_URL names, placeholders, transactions, the clock,
and, on a real PostgreSQL, the same plus a dropped connection replaced."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from bot.database import Database, parse_url
from bot.settings import load_settings
from tests.support.processes import ROOT

# ---- what a DATABASE_URL names ---------------------------------------------------------------


def test_a_sqlite_url_names_the_file_after_its_three_slashes():
    parsed = parse_url("sqlite:////var/lib/bot/backend-bot.db")
    assert not parsed.postgres
    assert parsed.target == "/var/lib/bot/backend-bot.db"


@pytest.mark.parametrize("url", [
    "postgresql://bot:secret@db.example:5432/bot",
    "postgres://bot:secret@db.example:5432/bot",
])
def test_libpq_urls_are_postgres_and_given_to_psycopg_as_they_are(url):
    parsed = parse_url(url)
    assert parsed.postgres
    assert parsed.target == url


def test_sqlalchemys_psycopg_form_is_postgres_in_libpqs_form():
    parsed = parse_url("postgresql+psycopg://bot:secret@db.example:5432/bot")
    assert parsed.postgres
    assert parsed.target == "postgresql://bot:secret@db.example:5432/bot"


@pytest.mark.parametrize("url", ["mysql://db.example/bot", "postgress://db.example/bot",
                                 "postgresql+asyncpg://db.example/bot", "nonsense", "sqlite:///", ""])
def test_any_other_url_is_refused_rather_than_taken_for_a_file(url):
    with pytest.raises(ValueError, match="expected sqlite:///PATH or postgresql://"):
        parse_url(url)


def test_the_address_shown_to_an_operator_never_holds_the_password():
    assert parse_url("postgresql://bot:s3cret@db.example:6543/bot").address == "db.example:6543/bot"
    assert parse_url("postgres://bot:s3cret@db.example/bot").address == "db.example:5432/bot"
    assert parse_url("sqlite:////var/lib/bot/backend-bot.db").address == "/var/lib/bot/backend-bot.db"


def test_the_default_is_a_sqlite_file_in_the_data_directory(tmp_path):
    settings = load_settings(_env_file=None, BOT_DATA_DIR=str(tmp_path / "data"),
                             DATABASE_URL=None)
    expected = (tmp_path / "data").resolve() / "backend-bot.db"
    assert settings.database_url == f"sqlite:///{expected}"
    assert parse_url(settings.database_url).target == str(expected)
    # DBOS's state lives in a file beside it, so its writes never wait for the webhook's.
    assert settings.engine_database_url == f"sqlite:///{expected.with_name('backend-bot-engine.db')}"


def test_database_url_wins_over_the_data_directory(tmp_path):
    url = "postgresql://bot@db.example/bot"
    settings = load_settings(_env_file=None, BOT_DATA_DIR=str(tmp_path), DATABASE_URL=url)
    assert settings.database_url == url
    assert settings.engine_database_url == url  # DBOS shares the PostgreSQL database


# ---- dialect ---------------------------------------------------------------------------------


def test_placeholders_are_question_marks_on_sqlite_and_percent_s_on_postgres(tmp_path):
    statement = "SELECT id FROM bot_jobs WHERE key = ? AND id < ?"
    assert Database(f"sqlite:///{tmp_path}/x.db").sql(statement) == statement
    assert (Database("postgresql://db.example/bot").sql(statement)
            == "SELECT id FROM bot_jobs WHERE key = %s AND id < %s")


# ---- SQLite ----------------------------------------------------------------------------------


@pytest.fixture
def sqlite_db(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/nested/dir/test.db")
    yield db
    db.close()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS things (id {id_column}, name TEXT NOT NULL UNIQUE);
CREATE INDEX IF NOT EXISTS things_name ON things (name);
"""


def test_sqlite_connections_are_in_wal_mode_with_normal_sync(sqlite_db, tmp_path):
    conn = sqlite_db.connection()
    assert (tmp_path / "nested" / "dir" / "test.db").is_file()  # its directory was created
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000


def test_each_thread_has_its_own_connection_until_it_closes_it(sqlite_db):
    mine = sqlite_db.connection()
    assert sqlite_db.connection() is mine
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(sqlite_db.connection()))
    thread.start()
    thread.join()
    assert theirs[0] is not mine
    sqlite_db.close()
    assert sqlite_db.connection() is not mine


def test_creating_a_schema_twice_is_harmless_and_ids_count_up(sqlite_db):
    schema = _SCHEMA.format(id_column=sqlite_db.id_column)
    sqlite_db.create_schema(schema)
    sqlite_db.create_schema(schema)
    sqlite_db.execute("INSERT INTO things (name) VALUES (?)", ("a",))
    sqlite_db.execute("INSERT INTO things (name) VALUES (?)", ("b",))
    assert sqlite_db.execute("SELECT id, name FROM things ORDER BY id") == [(1, "a"), (2, "b")]


def test_a_transaction_is_rolled_back_on_an_error_and_committed_otherwise(sqlite_db):
    sqlite_db.create_schema(_SCHEMA.format(id_column=sqlite_db.id_column))
    conn = sqlite_db.connect()
    try:
        with pytest.raises(sqlite3.IntegrityError), sqlite_db.transaction(conn):
            conn.execute("INSERT INTO things (name) VALUES ('kept only if all succeed')")
            conn.execute("INSERT INTO things (name) VALUES ('twice')")
            conn.execute("INSERT INTO things (name) VALUES ('twice')")
        assert not conn.in_transaction
        assert sqlite_db.execute("SELECT name FROM things") == []
        with sqlite_db.transaction(conn):
            conn.execute("INSERT INTO things (name) VALUES ('committed')")
    finally:
        conn.close()
    # Seen from another connection: committed, not merely written.
    assert sqlite_db.execute("SELECT name FROM things") == [("committed",)]


def test_the_sqlite_clock_is_the_epoch_in_seconds(sqlite_db):
    (now,), = sqlite_db.execute(f"SELECT {sqlite_db.now_sql}")
    assert abs(now - time.time()) < 1.0


# ---- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def pg_db(pg_url):
    db = Database(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    db.execute("DROP TABLE IF EXISTS things")
    yield db
    db.close()


@pytest.mark.postgres
def test_postgres_statements_transactions_and_schema(pg_db):
    pg_db.create_schema(_SCHEMA.format(id_column=pg_db.id_column))
    pg_db.create_schema(_SCHEMA.format(id_column=pg_db.id_column))
    conn = pg_db.connect()
    try:
        insert = pg_db.sql("INSERT INTO things (name) VALUES (?)")
        with pytest.raises(psycopg.errors.UniqueViolation), pg_db.transaction(conn):
            conn.execute(insert, ("twice",))
            conn.execute(insert, ("twice",))
        with pg_db.transaction(conn):
            conn.execute(insert, ("committed",))
    finally:
        conn.close()
    assert pg_db.execute("SELECT name FROM things WHERE name = ?", ("committed",)) == [
        ("committed",)]
    assert pg_db.execute("SELECT COUNT(*) FROM things") == [(1,)]


@pytest.mark.postgres
def test_the_postgres_clock_is_the_epoch_in_seconds(pg_db):
    (now,), = pg_db.execute(f"SELECT {pg_db.now_sql}")
    assert abs(float(now) - time.time()) < 1.0


@pytest.mark.postgres
def test_a_dropped_postgres_connection_is_replaced_after_the_failure_it_causes(pg_db, pg_url):
    (pid,), = pg_db.execute("SELECT pg_backend_pid()")
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(psycopg.OperationalError):
        pg_db.execute("SELECT 1")
    assert pg_db.execute("SELECT 1") == [(1,)]
    (new_pid,), = pg_db.execute("SELECT pg_backend_pid()")
    assert new_pid != pid


@pytest.mark.postgres
async def test_an_async_postgres_connection_is_in_autocommit(pg_db):
    conn = await pg_db.connect_async()
    try:
        assert conn.autocommit
        cursor = await conn.execute(pg_db.sql("SELECT ?::int + 1"), (41,))
        assert await cursor.fetchone() == (42,)
    finally:
        await conn.close()


def test_reading_the_settings_and_the_jobs_table_loads_no_postgres_driver():
    # Settings and the command line import the database module: loading psycopg there would
    # cost every SQLite deployment's commands about 150 ms for nothing.
    probe = "import sys, bot.settings, bot.jobstore; print('psycopg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "False"
