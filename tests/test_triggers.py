"""bot/triggers.py: each repository's words for the webhook path, kept in the database, on
SQLite and PostgreSQL, including a table made before the branch prefix was kept."""

from __future__ import annotations

import pytest

from bot.database import Database
from bot.repo_config import parse_repo_config
from bot.triggers import DEFAULT, TriggerWordStore, Words, words_of

# The table as it was before `branch_prefix`.
OLD_TABLE = """
CREATE TABLE bot_repo_triggers (
    repo TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    command TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
)
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request, tmp_path):
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path}/bot.db")
    else:
        database = Database(request.getfixturevalue("pg_url"))
        database.execute("DROP TABLE IF EXISTS bot_repo_triggers")
    yield database
    database.close()


def test_words_are_remembered_and_replaced(database):
    store = TriggerWordStore(database)
    store.create_table()
    assert store.by_repo() == {}
    config = parse_repo_config("label: ai-help\ncommand: bot\nbranch_prefix: ai/\n")
    store.remember("acme/widgets", words_of(config))
    store.remember("acme/other", DEFAULT)
    assert store.by_repo() == {"acme/widgets": Words("ai-help", "bot", "ai/"), "acme/other": DEFAULT}
    store.remember("acme/widgets", Words("ai-help", "bot", "robot/"))
    assert store.by_repo()["acme/widgets"] == Words("ai-help", "bot", "robot/")


def test_a_table_from_before_the_branch_prefix_gains_it_and_keeps_its_words(database):
    database.execute(OLD_TABLE)
    database.execute("INSERT INTO bot_repo_triggers (repo, label, command, updated_at) VALUES (?, ?, ?, ?)",
                     ("acme/widgets", "ai-help", "bot", 1.0))
    store = TriggerWordStore(database)
    store.create_table()
    store.create_table()  # a second process starting: nothing to add
    assert store.by_repo() == {"acme/widgets": Words("ai-help", "bot", DEFAULT.branch_prefix)}
    store.remember("acme/widgets", Words("ai-help", "bot", "ai/"))
    assert store.by_repo() == {"acme/widgets": Words("ai-help", "bot", "ai/")}
