"""Bring a database's schema up to date: its tables as their files describe them, then each pending migration once.

A database's schema is two things. The object files (`sql/ledger/schema/`, and `sql/schema/` and `sql/views/` in
DuckDB) create what is missing and replace the views; each is idempotent. The migrations
(`sql/migrations/<scope>/NNNN_what.sql`) change what exists: a column added, a table rebuilt, a constraint moved.
Each runs once per database, in order, recorded in `schema_migrations` in the same transaction as its change.

A new database gets its tables from the object files, already in their latest shape, so every migration is recorded
as applied without running. The work is skipped whole while the database records the same fingerprint of every file
as this version's: an unchanged schema costs one query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from pipeline.sqlfiles import sql_folder, sql_text

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    scope       VARCHAR NOT NULL,
    version     INTEGER NOT NULL,
    name        VARCHAR NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    ran         BOOLEAN NOT NULL,
    PRIMARY KEY (scope, version)
)
"""
"""The record of every migration a database took (`ran` false: a new database got that shape from the files)."""

FINGERPRINT_TABLE = "CREATE TABLE IF NOT EXISTS schema_fingerprint (fingerprint VARCHAR NOT NULL)"
"""The fingerprint of the files the schema was last brought up to date with."""


class Executor(Protocol):
    """What the upgrade needs of a connection: run a statement (with positional `?` parameters) and read rows."""

    def __call__(self, statement: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


@dataclass(frozen=True)
class Migration:
    """One file of `sql/migrations/<scope>/`: `0002_rebate_windows_note.sql` is version 2."""

    scope: str
    version: int
    name: str
    relative: str

    @classmethod
    def read(cls, scope: str, relative: str) -> Migration:
        """The migration a file holds (its name must start with its version number and an underscore)."""
        stem = relative.rsplit("/", 1)[-1].removesuffix(".sql")
        number, _, name = stem.partition("_")
        if not number.isdigit() or not name:
            raise ValueError(f"sql/{relative}: a migration's name is NNNN_what_it_does.sql")
        return cls(scope, int(number), name, relative)


@dataclass(frozen=True)
class Schema:
    """What one kind of database holds: its object files in order, and its migration scopes."""

    object_files: tuple[str, ...]
    scopes: tuple[str, ...]
    marker_table: str
    """A table every database of this kind has once its schema was ever applied: its absence means a new database."""

    def migrations(self, folder: Callable[[str], list[str]] = sql_folder) -> list[Migration]:
        """Every migration of every scope, in order of scope, then version (duplicate versions refused)."""
        found: list[Migration] = []
        for scope in self.scopes:
            mine = [Migration.read(scope, relative) for relative in folder(f"migrations/{scope}")]
            versions = [migration.version for migration in mine]
            if len(set(versions)) != len(versions):
                raise ValueError(f"sql/migrations/{scope} has two migrations with the same version number")
            found += sorted(mine, key=lambda migration: migration.version)
        return found

    def fingerprint(self, migrations: list[Migration], text: Callable[[str], str] = sql_text) -> str:
        """A hash of every object file and migration: equal means nothing to do."""
        digest = hashlib.sha256()
        for relative in [*self.object_files, *(migration.relative for migration in migrations)]:
            digest.update(relative.encode() + b"\0" + text(relative).encode() + b"\0")
        return digest.hexdigest()


def upgrade(
    run: Executor,
    schema: Schema,
    *,
    folder: Callable[[str], list[str]] = sql_folder,
    text: Callable[[str], str] = sql_text,
) -> list[Migration]:
    """Bring the schema up to date, inside the caller's transaction (and lock); the migrations that ran.

    `folder` and `text` read the package's SQL; tests hand in their own.
    """
    migrations = schema.migrations(folder)
    fingerprint = schema.fingerprint(migrations, text)
    run(FINGERPRINT_TABLE)
    recorded = run("SELECT max(fingerprint) FROM schema_fingerprint")
    if recorded and recorded[0][0] == fingerprint:
        return []
    new_database = not run("SELECT 1 FROM information_schema.tables WHERE table_name = ?", [schema.marker_table])
    run(MIGRATIONS_TABLE)
    taken = {(row[0], row[1]) for row in run("SELECT scope, version FROM schema_migrations")}
    for relative in schema.object_files:
        run(text(relative))
    ran = []
    for migration in migrations:
        if (migration.scope, migration.version) in taken:
            continue
        if not new_database:
            run(text(migration.relative))
            ran.append(migration)
        run(
            "INSERT INTO schema_migrations (scope, version, name, ran) VALUES (?, ?, ?, ?)",
            [migration.scope, migration.version, migration.name, not new_database],
        )
    run("DELETE FROM schema_fingerprint")
    run("INSERT INTO schema_fingerprint VALUES (?)", [fingerprint])
    return ran


def is_current(run: Executor, schema: Schema) -> bool:
    """Whether the database records this version's schema (what `rebates doctor` checks, and every connection)."""
    exists = run("SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_fingerprint'")
    if not exists:
        return False
    recorded = run("SELECT max(fingerprint) FROM schema_fingerprint")
    return bool(recorded) and recorded[0][0] == _shipped_fingerprint(schema)


@cache
def _shipped_fingerprint(schema: Schema) -> str:
    """The fingerprint of the package's own files: they do not change while a process runs."""
    return schema.fingerprint(schema.migrations())


LEDGER_SCOPE = "ledger"
"""Migrations of the ledger's tables, the same in both backends."""


@cache
def duckdb_schema() -> Schema:
    """The DuckDB database: the ledger's tables, the rebate tables and their macros, then the views."""
    files = [*sql_folder("ledger/schema"), *sql_folder("schema"), *sql_folder("views")]
    return Schema(tuple(files), (LEDGER_SCOPE, "duckdb"), "rebate_windows")


@cache
def postgres_schema() -> Schema:
    """The PostgreSQL state: the ledger's tables, then what only PostgreSQL has (the limiters' slots, indexes)."""
    files = [*sql_folder("ledger/schema"), *sql_folder("ledger/schema/postgres")]
    return Schema(tuple(files), (LEDGER_SCOPE, "postgres"), "rebate_windows")
