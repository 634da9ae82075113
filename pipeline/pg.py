"""PostgreSQL shared state (REBATES_STATE_URL): connections, the schema, advisory locks, and a URL never shown whole."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_SECONDS = 10
"""How long a worker waits for PostgreSQL to answer before the pass fails with a clear error."""

SCHEMA_LOCK = "rebates:schema"
"""The advisory lock two workers starting at once take to apply the schema one after the other."""

DUCKDB_WRITE_LOCK = "rebates:duckdb-writes"
"""The advisory lock every DuckDB write (load, refresh, publish) holds: one writer of the shared DuckDB file."""

_applied: set[str] = set()
"""Hashes of the URLs whose schema this process already brought up to date (one check per process)."""


class StateUnavailableError(Exception):
    """PostgreSQL (REBATES_STATE_URL) could not be reached or refused us; the message never holds the password."""


def pg_sql(relative: str) -> str:
    """A PostgreSQL SQL file shipped in the package, e.g. `ledger/windows.sql` (under sql/pg/)."""
    return files("sql").joinpath("pg", *relative.split("/")).read_text(encoding="utf-8")


def schema_files() -> list[str]:
    """The PostgreSQL DDL in the order it applies (names start with a number; every file is idempotent)."""
    entries = files("sql").joinpath("pg", "schema").iterdir()
    return sorted(f"schema/{entry.name}" for entry in entries if entry.name.endswith(".sql"))


def schema_fingerprint() -> str:
    """A hash of every PostgreSQL DDL file: the database records it, so the DDL runs again only when it changed."""
    digest = hashlib.sha256()
    for relative in schema_files():
        digest.update(relative.encode() + b"\0" + pg_sql(relative).encode())
    return digest.hexdigest()


def describe_url(url: str) -> str:
    """Where the state is, without the password: `postgresql://rebates@db.internal:5432/rebates`."""
    parts = urlsplit(url)
    user = f"{unquote(parts.username)}@" if parts.username else ""
    where = parts.netloc.rsplit("@", 1)[-1] or "localhost"  # host[:port] as written: a bad port must not raise here
    return f"{parts.scheme}://{user}{where}{parts.path or '/'}"


def redact(text: str, url: str) -> str:
    """`text` with the URL's password (raw and decoded) and any `password=…` replaced by `***`."""
    password = urlsplit(url).password
    for secret in {password, unquote(password or "")} - {None, ""}:
        assert secret is not None
        text = text.replace(secret, "***")
    text = text.replace(url, describe_url(url))
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text, flags=re.IGNORECASE)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def apply_schema(connection: psycopg.Connection[Any]) -> None:
    """Bring the state schema up to date, under an advisory lock so two workers starting at once do not race."""
    fingerprint = schema_fingerprint()
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [SCHEMA_LOCK])
        connection.execute("CREATE TABLE IF NOT EXISTS rebates_schema (fingerprint TEXT NOT NULL)")
        row = connection.execute("SELECT max(fingerprint) FROM rebates_schema").fetchone()
        if row is None or row[0] != fingerprint:
            for relative in schema_files():
                connection.execute(pg_sql(relative).encode())
            connection.execute("DELETE FROM rebates_schema")
            connection.execute("INSERT INTO rebates_schema VALUES (%s)", [fingerprint])


def schema_is_current(connection: psycopg.Connection[Any]) -> bool:
    """Whether the state database holds this version's schema (what `rebates doctor` checks)."""
    with connection.transaction():
        exists = connection.execute("SELECT to_regclass('rebates_schema') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return False
        row = connection.execute("SELECT max(fingerprint) FROM rebates_schema").fetchone()
    return row is not None and row[0] == schema_fingerprint()


def open_connection(url: str, *, apply: bool = True) -> psycopg.Connection[Any]:
    """A connection to the state database in UTC (the schema applied first unless `apply` is False).

    Errors are `StateUnavailableError` whose message names host and database but never the password. psycopg is
    imported here, not at the top: the embedded default never loads it.
    """
    import psycopg

    try:
        connection = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True)
    except psycopg.Error as exc:
        raise StateUnavailableError(
            f"PostgreSQL at {describe_url(url)} (REBATES_STATE_URL) is not reachable: {redact(_first_line(exc), url)}; "
            "check the server is up, the host, port, user and password, and pg_hba.conf"
        ) from None
    except (ValueError, TypeError) as exc:
        raise StateUnavailableError(
            f"REBATES_STATE_URL ({describe_url(url)}) is not a usable PostgreSQL URL: {redact(_first_line(exc), url)}"
        ) from None
    try:
        connection.execute("SET TimeZone = 'UTC'")
        url_hash = hashlib.sha256(url.encode()).hexdigest()
        if apply and url_hash not in _applied:
            apply_schema(connection)
            _applied.add(url_hash)
    except psycopg.Error as exc:
        connection.close()
        raise StateUnavailableError(
            f"PostgreSQL at {describe_url(url)} refused the state schema: {redact(_first_line(exc), url)}; the user "
            "needs CREATE on the database's public schema"
        ) from None
    return connection


@contextmanager
def connect(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A short-lived state connection for the `with` block (autocommit: use `connection.transaction()`)."""
    connection = open_connection(url)
    try:
        yield connection
    finally:
        connection.close()


def lock_in_transaction(connection: psycopg.Connection[Any], key: str) -> None:
    """Hold the advisory lock `key` until the current transaction ends, waiting while another holds it."""
    connection.execute(pg_sql("ledger/lock.sql"), {"key": key})


@contextmanager
def session_lock(url: str, key: str) -> Iterator[None]:
    """Hold the advisory lock `key` for the `with` block, on a connection of its own (released if the process dies)."""
    with connect(url) as connection:
        connection.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])
