"""Schema upgrades: a migration runs once per database, a new database takes the latest shape, both backends alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from pipeline.db import connect, executor, transaction
from pipeline.ledger import WINDOW_COLUMNS
from pipeline.migrations import Executor, Migration, Schema, duckdb_schema, is_current, postgres_schema, upgrade
from pipeline.pg import apply_schema, open_connection
from pipeline.pg import executor as pg_executor
from pipeline.sqlfiles import sql_text

OBJECTS = {
    "objects/010_accounts.sql": "CREATE TABLE IF NOT EXISTS accounts (name VARCHAR PRIMARY KEY, note VARCHAR);",
}
"""A table as its file describes it today: `note` came with migration 1."""

MIGRATIONS = {
    "migrations/test/0001_accounts_note.sql": "ALTER TABLE accounts ADD COLUMN note VARCHAR;",
}
SCHEMA = Schema(tuple(OBJECTS), ("test",), "accounts")


def reader(files: dict[str, str]) -> tuple[Callable[[str], list[str]], Callable[[str], str]]:
    """`folder` and `text` over an in-memory set of SQL files."""

    def folder(relative: str) -> list[str]:
        return sorted(name for name in files if name.rsplit("/", 1)[0] == relative)

    return folder, files.__getitem__


@contextmanager
def duckdb_run(path: Path) -> Iterator[Executor]:
    import duckdb

    connection = duckdb.connect(str(path))
    try:
        yield executor(connection)
    finally:
        connection.close()


def columns(run: Executor, table: str) -> list[str]:
    rows = run(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position", [table]
    )
    return [row[0] for row in rows]


def test_a_new_database_takes_the_latest_shape_and_records_each_migration_without_running_it(tmp_path: Path) -> None:
    folder, text = reader({**OBJECTS, **MIGRATIONS})
    with duckdb_run(tmp_path / "new.duckdb") as run:
        assert upgrade(run, SCHEMA, folder=folder, text=text) == []
        assert columns(run, "accounts") == ["name", "note"]
        assert run("SELECT scope, version, name, ran FROM schema_migrations") == [("test", 1, "accounts_note", False)]


def test_an_existing_database_runs_each_pending_migration_once(tmp_path: Path) -> None:
    before = {"objects/010_accounts.sql": "CREATE TABLE IF NOT EXISTS accounts (name VARCHAR PRIMARY KEY);"}
    with duckdb_run(tmp_path / "old.duckdb") as run:
        upgrade(run, Schema(tuple(before), ("test",), "accounts"), folder=reader(before)[0], text=before.__getitem__)
        run("INSERT INTO accounts VALUES ('eu')")
        folder, text = reader({**OBJECTS, **MIGRATIONS})
        ran = upgrade(run, SCHEMA, folder=folder, text=text)
        assert ran == [Migration("test", 1, "accounts_note", "migrations/test/0001_accounts_note.sql")]
        assert run("SELECT name, note FROM accounts") == [("eu", None)]
        assert upgrade(run, SCHEMA, folder=folder, text=text) == [], "recorded: never twice"
        run("DELETE FROM schema_fingerprint")  # the files changed since: looked at again, still not run twice
        assert upgrade(run, SCHEMA, folder=folder, text=text) == []
        assert run("SELECT version, ran FROM schema_migrations") == [(1, True)]


def test_two_migrations_with_one_version_are_refused() -> None:
    folder, _ = reader({**MIGRATIONS, "migrations/test/0001_again.sql": "SELECT 1;"})
    with pytest.raises(ValueError, match="two migrations with the same version"):
        SCHEMA.migrations(folder)


def test_a_badly_named_migration_is_refused() -> None:
    with pytest.raises(ValueError, match=r"NNNN_what_it_does\.sql"):
        Migration.read("test", "migrations/test/add_note.sql")


def test_the_duckdb_schema_is_applied_once_and_then_current(tmp_path: Path) -> None:
    with connect(tmp_path / "r.duckdb") as db:
        run = executor(db)
        assert is_current(run, duckdb_schema())
        with transaction(db):
            assert upgrade(run, duckdb_schema()) == []


def test_a_lake_from_before_migration_2_gains_its_publish_columns_and_keeps_its_pending_orders(tmp_path: Path) -> None:
    path = tmp_path / "r.duckdb"
    with connect(path):
        pass
    with duckdb_run(path) as run:  # the lake's tables as they were before migration 2, with orders left pending
        run("ALTER TABLE lake_publishes DROP COLUMN ledger_digest")
        run("ALTER TABLE lake_publishes DROP COLUMN layout")
        run("CREATE TABLE lake_pending_orders (ord_id VARCHAR NOT NULL, broker_code VARCHAR NOT NULL)")
        run("INSERT INTO lake_pending_orders VALUES ('300', 'b'), ('100', 'a'), ('200', 'a')")
        run("DELETE FROM schema_migrations WHERE scope = 'duckdb' AND version = 2")
        run("DELETE FROM schema_fingerprint")
    with connect(path) as db:
        run = executor(db)
        assert columns(run, "lake_publishes")[-2:] == ["layout", "ledger_digest"]
        assert run("SELECT * FROM lake_pending_ranges") == [("100", "300")]
        assert not run("SELECT 1 FROM information_schema.tables WHERE table_name = 'lake_pending_orders'")
        assert run("SELECT ran FROM schema_migrations WHERE scope = 'duckdb' AND version = 2") == [(True,)]


def test_a_state_database_from_before_migrations_loses_its_old_fingerprint_table(state_url: str) -> None:
    with psycopg.connect(state_url, autocommit=True) as old:  # the state as the fingerprint era left it
        old.execute("CREATE TABLE rebates_schema (fingerprint TEXT NOT NULL)")
        for relative in postgres_schema().object_files:
            old.execute(sql_text(relative).encode())
    connection = open_connection(state_url, apply=False)
    try:
        apply_schema(connection)
        run = pg_executor(connection)
        assert run("SELECT to_regclass('rebates_schema') IS NULL") == [(True,)]
        assert ("postgres", 1, "drop_rebates_schema", True) in run(
            "SELECT scope, version, name, ran FROM schema_migrations"
        )
        assert is_current(run, postgres_schema())
    finally:
        connection.close()


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_rebate_windows_holds_the_columns_window_record_names_in_both_backends(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend == "duckdb":
        with connect(tmp_path / "r.duckdb") as db:
            found = columns(executor(db), "rebate_windows")
    else:
        connection = open_connection(request.getfixturevalue("state_url"))
        try:
            found = columns(pg_executor(connection), "rebate_windows")
        finally:
            connection.close()
    assert tuple(found) == WINDOW_COLUMNS
