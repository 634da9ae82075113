"""DuckDB connections: short-lived, retried while another process holds the file, schema applied before writing."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path

import duckdb

from pipeline.config import DEFAULT_LOCK_TIMEOUT

log = logging.getLogger(__name__)

_LOCK_MESSAGE = re.compile(r"Could not set lock on file|Conflicting lock", re.IGNORECASE)


class DatabaseLockedError(Exception):
    """Another process kept the database file past the wait; the message says which and what to do."""


class DatabaseUnusableError(Exception):
    """REBATES_DB is not a DuckDB database this version can open (another file, a directory, a newer format)."""


def sql_text(relative: str) -> str:
    """A SQL file shipped in the package, e.g. `schema/010_rebate_windows.sql`."""
    return files("sql").joinpath(relative).read_text(encoding="utf-8")


def schema_files() -> list[str]:
    """The DDL in the order it applies: sql/schema (tables; names start with a number), then sql/views."""
    ordered: list[str] = []
    for folder in ("schema", "views"):
        entries = files("sql").joinpath(folder).iterdir()
        ordered += sorted(f"{folder}/{entry.name}" for entry in entries if entry.name.endswith(".sql"))
    return ordered


def schema_fingerprint() -> str:
    """A hash of every DDL file: the database records it, so the schema is re-applied only when it changed."""
    digest = hashlib.sha256()
    for relative in schema_files():
        digest.update(relative.encode() + b"\0" + sql_text(relative).encode())
    return digest.hexdigest()


TABLES_NOW_VIEWS = ("rebate_orders",)
"""Tables that became views of the same name. DuckDB's DDL cannot drop an object only when it is a table, so
apply_schema renames such a table `<name>_retired` first; the DDL carries its rows over and drops it, then makes the
view (sql/schema/060 and 062 for rebate_orders)."""


def apply_schema(connection: duckdb.DuckDBPyConnection) -> None:
    """Bring the schema up to date: every DDL file is idempotent, so applying all of them is always safe."""
    fingerprint = schema_fingerprint()
    connection.execute("CREATE TABLE IF NOT EXISTS schema_fingerprint (fingerprint VARCHAR NOT NULL)")
    current = connection.execute("SELECT max(fingerprint) FROM schema_fingerprint").fetchone()
    if current is not None and current[0] == fingerprint:
        return
    with transaction(connection):
        retired = connection.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND list_contains(?, table_name)",
            [list(TABLES_NOW_VIEWS)],
        ).fetchall()
        for (name,) in retired:
            connection.execute(f'ALTER TABLE "{name}" RENAME TO "{name}_retired"')
        for relative in schema_files():
            connection.execute(sql_text(relative))
        connection.execute("DELETE FROM schema_fingerprint")
        connection.execute("INSERT INTO schema_fingerprint VALUES (?)", [fingerprint])


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


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


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
                    f"REBATES_DB={path} cannot be opened as a DuckDB database ({_first_line(exc)}): point "
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
