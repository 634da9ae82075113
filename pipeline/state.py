"""Shared state in PostgreSQL around DuckDB: one DuckDB writer across machines, the ledger copy, and migration."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from pipeline.config import Settings
from pipeline.db import ArrowStream, connect, transaction
from pipeline.ledger import WINDOW_COLUMNS
from pipeline.pg import DUCKDB_WRITE_LOCK, describe_url, lock_in_transaction, session_lock
from pipeline.pg import connect as connect_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LedgerTable:
    """A ledger table as both backends hold it: its key and its columns, in order."""

    name: str
    key: str
    columns: tuple[str, ...]
    sequence: str | None = None
    """The sequence that numbers the key, where the database numbers it (sql/ledger/schema/)."""


WINDOWS = LedgerTable("rebate_windows", "window_id", WINDOW_COLUMNS)
FILES = LedgerTable(
    "rebate_files",
    "file_id",
    ("file_id", "window_id", "path", "bytes", "sha256", "format", "source_host", "first_downloaded_at",
     "last_downloaded_at", "downloads"),
)  # fmt: skip
ATTEMPTS = LedgerTable(
    "create_attempts",
    "attempt_id",
    ("attempt_id", "window_id", "attempted_at", "outcome", "server_ts", "budget_until", "detail", "account"),
    "create_attempt_ids",
)
EVENTS = LedgerTable(
    "window_events",
    "event_id",
    ("event_id", "window_id", "event_at", "from_state", "to_state", "detail"),
    "window_event_ids",
)

MIGRATED = (WINDOWS, FILES, ATTEMPTS, EVENTS)
"""What `rebates state migrate` copies into PostgreSQL."""

COPIED_TO_DUCKDB = (WINDOWS, FILES)
"""What every publish copies from PostgreSQL into DuckDB: the lake and the reports read these there."""


def state_url(settings: Settings) -> str | None:
    """REBATES_STATE_URL's value (a secret: never log it; `describe_state` shows where it points)."""
    return settings.rebates_state_url.get_secret_value() if settings.rebates_state_url else None


def describe_state(settings: Settings) -> str:
    """Where the ledger and limiters live, in words and without the password."""
    url = state_url(settings)
    if url is None:
        return (
            f"embedded: the ledger in REBATES_DB={settings.rebates_db}, the limiters in {settings.layout.state} "
            "(one machine)"
        )
    return (
        f"PostgreSQL at {describe_url(url)} (REBATES_STATE_URL): the ledger and the limiters, shared by every "
        f"worker; loads go to REBATES_DB={settings.rebates_db}, whose rebate_windows and rebate_files are a copy"
    )


@contextmanager
def duckdb_writes(settings: Settings) -> Iterator[None]:
    """Hold the one-writer lock of the shared DuckDB file across machines for the block (nothing without the URL).

    A session-level advisory lock on a connection of its own: PostgreSQL releases it if the worker dies.
    """
    url = state_url(settings)
    if url is None:
        with nullcontext():
            yield
        return
    started = time.monotonic()
    with session_lock(url, DUCKDB_WRITE_LOCK):
        log.debug("held the DuckDB write lock after %.3f s", time.monotonic() - started)
        yield


def copy_ledger_to_duckdb(settings: Settings, db: duckdb.DuckDBPyConnection) -> int:
    """Replace DuckDB's rebate_windows and rebate_files with PostgreSQL's (every account), in one transaction.

    With REBATES_STATE_URL these DuckDB tables are a copy the lake and the reports read; call it holding
    `duckdb_writes`, just before a publish. Returns the rows copied (0 without the URL: DuckDB is the ledger; 0 when
    DuckDB already holds exactly these rows, and then nothing is written: an idle pass writes nothing).
    """
    url = state_url(settings)
    if url is None:
        return 0
    with connect_state(url) as source:
        tables = {table: _pg_rows(source, table) for table in COPIED_TO_DUCKDB}
    if all(_duckdb_rows(db, table) == rows for table, rows in tables.items()):
        return 0
    import polars as pl  # here: only a publish in PostgreSQL mode needs it

    with transaction(db):
        for table, rows in tables.items():
            db.execute(f"DELETE FROM {table.name}")  # noqa: S608 (a fixed table name)
            if not rows:
                continue
            schema = {column: _polars_type(pl, column) for column in table.columns}
            db.register("ledger_copy", ArrowStream(pl.DataFrame(rows, schema=schema, orient="row")))
            columns = ", ".join(table.columns)
            db.execute(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM ledger_copy")  # noqa: S608
            db.unregister("ledger_copy")
    return sum(len(rows) for rows in tables.values())


def _polars_type(pl: Any, column: str) -> Any:
    """The Polars type of a ledger column, from its name (the tables name their columns consistently)."""
    if column in {"begin_date", "end_date"}:
        return pl.Date
    if column.endswith("_at") or column in {"server_ts"}:
        return pl.Datetime("us", "UTC")
    if column in {"rows_loaded", "attempts", "bytes", "downloads", "attempt_id", "event_id"}:
        return pl.Int64
    return pl.String


def _duckdb_rows(db: duckdb.DuckDBPyConnection, table: LedgerTable) -> list[tuple[Any, ...]]:
    """A ledger table's rows in DuckDB, ordered and typed as `_pg_rows` gives PostgreSQL's (they compare equal)."""
    query = f"SELECT {', '.join(table.columns)} FROM {table.name} ORDER BY {table.key}"  # noqa: S608 (fixed names)
    return [tuple(row) for row in db.execute(query).fetchall()]


def _pg_rows(connection: Any, table: LedgerTable) -> list[tuple[Any, ...]]:
    from psycopg import sql  # here: the embedded default never loads psycopg

    query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
        sql.SQL(", ").join(map(sql.Identifier, table.columns)), sql.Identifier(table.name), sql.Identifier(table.key)
    )
    return [tuple(row) for row in connection.execute(query).fetchall()]


class MigrationConflictError(Exception):
    """PostgreSQL already holds a row with the same key but other values; nothing was copied."""


@dataclass(frozen=True)
class MigratedTable:
    """What migrate did to one table."""

    name: str
    copied: int
    already_there: int


def migrate(settings: Settings, db_path: Path | None = None) -> list[MigratedTable]:
    """Copy the single-machine ledger in DuckDB into PostgreSQL: every table whole, or nothing.

    Rows PostgreSQL already holds identically are left alone (running it twice changes nothing); a row whose key is
    there with other values stops it with `MigrationConflictError` before anything is written. The id sequences move
    past the copied ids so new events and creates never reuse one.
    """
    from psycopg import sql

    url = state_url(settings)
    if url is None:
        raise MigrationConflictError("REBATES_STATE_URL is not set: set it to the PostgreSQL database to copy into")
    source_path = db_path or settings.rebates_db
    if not source_path.exists():
        raise MigrationConflictError(f"no DuckDB ledger at REBATES_DB={source_path}: nothing to migrate")
    with connect(source_path, read_only=True) as db:
        incoming = {table: _duckdb_rows(db, table) for table in MIGRATED}
    results = []
    with connect_state(url) as target, target.transaction():
        lock_in_transaction(target, "rebates:migrate")
        plans = {table: _plan_copy(target, table, rows) for table, rows in incoming.items()}
        for table, (missing, present) in plans.items():
            if missing:
                insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    sql.Identifier(table.name),
                    sql.SQL(", ").join(map(sql.Identifier, table.columns)),
                    sql.SQL(", ").join(sql.Placeholder() for _ in table.columns),
                )
                with target.cursor() as cursor:
                    cursor.executemany(insert, missing)
            if table.sequence is not None:
                # A state database made before the ledger's DDL was shared numbers the key by identity instead.
                target.execute(
                    sql.SQL(
                        "SELECT setval(coalesce(pg_get_serial_sequence({table}, {key}), {sequence}), "
                        "greatest((SELECT max({column}) FROM {ident}), 1))"
                    ).format(
                        table=sql.Literal(table.name),
                        key=sql.Literal(table.key),
                        sequence=sql.Literal(table.sequence),
                        column=sql.Identifier(table.key),
                        ident=sql.Identifier(table.name),
                    )
                )
            results.append(MigratedTable(table.name, len(missing), present))
    return results


def _plan_copy(target: Any, table: LedgerTable, rows: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], int]:
    """The rows PostgreSQL lacks and how many it holds identically; a conflicting row raises."""
    from psycopg import sql

    existing = {row[0]: tuple(row) for row in target.execute(
        sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, table.columns)), sql.Identifier(table.name)
        )
    ).fetchall()}  # fmt: skip
    missing, present, conflicts = [], 0, []
    for row in rows:
        held = existing.get(row[0])
        if held is None:
            missing.append(row)
        elif held == row:
            present += 1
        else:
            conflicts.append(str(row[0]))
    if conflicts:
        shown = ", ".join(conflicts[:5]) + (f" and {len(conflicts) - 5} more" if len(conflicts) > 5 else "")
        raise MigrationConflictError(
            f"PostgreSQL already holds {table.name} rows with the same {table.key} but other values ({shown}): "
            "nothing was copied; migrate into an empty state database (or the one this ledger was copied to before)"
        )
    return missing, present
