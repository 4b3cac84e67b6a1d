"""DBOS's millisecond clock, `unixepoch('subsec') * 1000`, on any SQLite (bot/dbos_sqlite.py).

Python 3.11 never makes DBOS write that expression, so these tests ask for it directly:
`scripts/check_pythons` is what starts DBOS itself on 3.12 and 3.13."""

from __future__ import annotations

import time

import sqlalchemy as sa

from bot import dbos_sqlite

# What DBOS writes, on Python 3.12 and newer, into its tables' DEFAULTs and its UPDATEs.
DBOS_NOW_MS = "(unixepoch('subsec') * 1000)"


def test_sqlite_before_3_42_needs_the_shim_and_3_42_does_not():
    assert dbos_sqlite.needed((3, 40, 1))
    assert not dbos_sqlite.needed((3, 42, 0))
    assert not dbos_sqlite.needed((3, 46, 1))


def test_subsec_is_now_in_whole_milliseconds():
    before = time.time()
    value = dbos_sqlite.unixepoch("subsec")
    assert before - 0.001 <= value <= time.time()
    assert value == round(value, 3)
    assert abs(dbos_sqlite.unixepoch("SUBSECOND") - time.time()) < 1


def test_any_other_argument_gets_sqlites_own_answer():
    assert dbos_sqlite.unixepoch("2020-01-01 00:00:00") == 1577836800
    assert dbos_sqlite.unixepoch("not a time") is None


def test_a_dbos_timestamp_column_is_filled_on_this_sqlite(tmp_path):
    dbos_sqlite.install()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'engine.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                f"CREATE TABLE t (id INTEGER, at INTEGER NOT NULL DEFAULT {DBOS_NOW_MS})"))
            before = int(time.time() * 1000) - 1
            conn.execute(sa.text("INSERT INTO t (id) VALUES (1)"))
            conn.execute(sa.text("INSERT INTO t (id, at) VALUES (2, 0)"))
            # As DBOS's UPDATEs write it: the modifier a bound parameter.
            conn.execute(sa.update(sa.table("t", sa.column("at"), sa.column("id")))
                         .where(sa.column("id") == 2)
                         .values(at=sa.cast(sa.func.unixepoch("subsec") * 1000, sa.BigInteger)))
            rows = conn.execute(sa.text("SELECT at, typeof(at) FROM t ORDER BY id")).all()
        after = int(time.time() * 1000) + 1
        for at, kind in rows:
            assert kind == "integer"
            assert before <= at <= after
    finally:
        engine.dispose()
