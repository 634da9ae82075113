"""DuckDB connections: short-lived, retried while another process holds the file, schema applied before writing."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from pipeline.config import DEFAULT_LOCK_TIMEOUT
from pipeline.logs import first_line
from pipeline.migrations import Executor, duckdb_schema, is_current, upgrade

log = logging.getLogger(__name__)

_LOCK_MESSAGE = re.compile(r"Could not set lock on file|Conflicting lock", re.IGNORECASE)


class ArrowStream:
    """A frame (Polars) offered to DuckDB only through the Arrow C stream interface: zero-copy, no pyarrow needed.

    DuckDB reads a Polars frame handed to it as it is through pyarrow; an object that offers only
    `__arrow_c_stream__` it reads directly.
    """

    def __init__(self, frame: Any) -> None:
        self.frame = frame

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The frame's Arrow stream capsule."""
        return self.frame.__arrow_c_stream__(requested_schema)


class DatabaseLockedError(Exception):
    """Another process kept the database file past the wait; the message says which and what to do."""


class DatabaseUnusableError(Exception):
    """REBATES_DB is not a DuckDB database this version can open (another file, a directory, a newer format)."""


def executor(connection: duckdb.DuckDBPyConnection) -> Executor:
    """The connection as the schema upgrade runs statements."""

    def run(statement: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = connection.execute(statement, list(parameters))
        return cursor.fetchall() if cursor.description else []

    return run


TABLES_NOW_VIEWS = ("rebate_orders",)
"""Tables that became views of the same name. DuckDB's DDL cannot drop an object only when it is a table, and the
object files (which make the view) run before the migrations, so apply_schema renames such a table
`<name>_retired` first; a migration carries its rows over and drops it
(sql/migrations/duckdb/0001_rebate_orders_view.sql)."""


def apply_schema(connection: duckdb.DuckDBPyConnection) -> None:
    """Bring the schema up to date (`pipeline/migrations.py`) in one transaction: DuckDB lets one process write."""
    schema = duckdb_schema()
    if is_current(executor(connection), schema):
        return
    with transaction(connection):
        _retire_tables_now_views(connection)
        upgrade(executor(connection), schema)


def _retire_tables_now_views(connection: duckdb.DuckDBPyConnection) -> None:
    """Rename each table of TABLES_NOW_VIEWS still a table, so its view can take the name."""
    retired = connection.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND list_contains(?, table_name)",
        [list(TABLES_NOW_VIEWS)],
    ).fetchall()
    for (name,) in retired:
        connection.execute(f'ALTER TABLE "{name}" RENAME TO "{name}_retired"')


@contextmanager
def transaction(db: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN … COMMIT, or ROLLBACK on any exception (then re-raised)."""
    db.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def duckdb_threads(db: duckdb.DuckDBPyConnection) -> int:
    """The threads this connection's DuckDB may use (REBATES_DB_THREADS while loading)."""
    row = db.execute("SELECT current_setting('threads')").fetchone()
    return max(1, int(row[0])) if row else 1


def _holder(message: str) -> str:
    match = re.search(r"PID (\d+)", message)
    return f"process {match.group(1)}" if match else "another process"


@contextmanager
def connect(
    path: Path, *, read_only: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database for as short a time as the `with` block, waiting while another process holds it.

    DuckDB lets one process write and no other process open the file meanwhile, so every caller keeps its
    connection only for the statements it needs. A write connection applies the schema first.
    """
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout
    delay = 0.05
    warned = False
    while True:
        try:
            connection = duckdb.connect(str(path), read_only=read_only)
            break
        except (duckdb.IOException, duckdb.SerializationException, duckdb.InvalidInputException) as exc:
            if not _LOCK_MESSAGE.search(str(exc)):
                raise DatabaseUnusableError(
                    f"REBATES_DB={path} cannot be opened as a DuckDB database ({first_line(exc)}): point "
                    "REBATES_DB at the pipeline's database file, or at a new path to start one"
                ) from None
            holder = _holder(str(exc))
            if time.monotonic() >= deadline:
                raise DatabaseLockedError(
                    f"{path} is held by {holder} for more than {lock_timeout:.0f} s; close that session "
                    "(an analyst's duckdb shell?); analysts query the lake instead, even while the pipeline runs: "
                    "`rebates sql`"
                ) from None
            if not warned:
                log.warning("%s is held by %s; waiting up to %.0f s for it", path, holder, lock_timeout)
                warned = True
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        connection.execute("SET TimeZone = 'UTC'")
        if not read_only:
            apply_schema(connection)
        yield connection
    finally:
        connection.close()
