"""PostgreSQL shared state (REBATES_STATE_URL): connections, the schema, advisory locks, and a URL never shown whole."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from pipeline.logs import first_line
from pipeline.migrations import Executor, is_current, postgres_schema, upgrade
from pipeline.sqlfiles import Dialect, ledger_statement

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


UNREADABLE_URL = "postgresql://(unreadable, not shown)"
"""How a REBATES_STATE_URL that libpq cannot read as intended is described: never any part of it."""

URL_FIX = (
    "write it as postgresql://user:password@host:port/database, with any of : / @ ? # % & in the user name or "
    "password percent-encoded (%3A %2F %40 %3F %23 %25 %26)"
)
"""What to do about an unreadable REBATES_STATE_URL."""

_SHOWN = ("user", "host", "port", "dbname")
"""The only parts of the URL ever shown."""

_PORTS = re.compile(r"^[0-9]+(?:,[0-9]*)*$")


def url_parts(url: str) -> dict[str, str] | None:
    """The URL's connection parameters as libpq reads them (psycopg's conninfo), or None if it cannot be trusted.

    None when libpq refuses it, and when it reads it other than as intended, which is how a password with an
    unescaped `/` or `@` is read (`postgresql://u:pa/ss@h/db` is host `u`, port `pa`, database `ss@h/db`): an `@`
    left in the host, port or database, or a port that is not a number.
    """
    from psycopg import Error
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = {name: str(value) for name, value in conninfo_to_dict(url).items() if value is not None}
    except Error:
        return None
    if any("@" in parts.get(name, "") for name in ("host", "port", "dbname")):
        return None
    if "port" in parts and not _PORTS.match(parts["port"]):
        return None
    return parts


def describe_url(url: str) -> str:
    """Where the state is, as user, host, port and database only: `postgresql://rebates@db.internal:5432/rebates`.

    Built from libpq's reading of the URL, never from its text; UNREADABLE_URL when that cannot be trusted.
    """
    parts = url_parts(url)
    if parts is None:
        return UNREADABLE_URL
    user, host, port, dbname = (parts.get(name, "") for name in _SHOWN)
    hosts = host.split(",")
    ports = port.split(",") if port else []
    if len(ports) == 1:
        ports *= len(hosts)
    sockets = [name for name in hosts if name.startswith("/")]
    where = ",".join(
        (f"[{name}]" if ":" in name else quote(name, safe=".-_"))
        + (f":{ports[index]}" if index < len(ports) and ports[index] else "")
        for index, name in enumerate(hosts)
        if name and not name.startswith("/")
    )
    at = f"{quote(user, safe='')}@" if user else ""
    socket = f"?host={quote(sockets[0], safe='/')}" if sockets else ""
    return f"postgresql://{at}{where}/{quote(dbname, safe='')}{socket}"


def redact(text: str, url: str) -> str:
    """`text` with the URL described, and its password and every piece of it of 4 characters or more as `***`.

    The password as libpq reads it and as it is written (percent-encoded or not, in the user info or a `password=`
    parameter); any `password=…` too. A second line of defence: messages are built from `describe_url`, but a
    driver's message may quote its input, or part of it.
    """
    text = text.replace(url, describe_url(url))
    for secret in sorted(_password_spellings(url), key=len, reverse=True):
        for length in range(len(secret), min(len(secret), REDACTED_PIECE) - 1, -1):
            for start in range(len(secret) - length + 1):
                text = text.replace(secret[start : start + length], "***")
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text, flags=re.IGNORECASE)


REDACTED_PIECE = 4
"""The shortest piece of a password `redact` removes on its own (shorter ones would blank ordinary words)."""


def _password_spellings(url: str) -> set[str]:
    """Every way the URL may spell its password: as libpq reads it, percent-encoded or not, and as written."""
    after_scheme = url.partition("://")[2]
    written = {urlsplit(url).password or "", *re.findall(r"password=([^&\s]*)", url, flags=re.IGNORECASE)}
    if "@" in after_scheme:
        written.add(after_scheme.partition("@")[0].partition(":")[2])  # up to the first @, as libpq reads it
        written.add(after_scheme.rpartition("@")[0].partition(":")[2])  # up to the last @, as a person may mean it
    parts = url_parts(url)
    if parts is not None:
        written.add(parts.get("password", ""))
    return {
        spelling for secret in written for spelling in (secret, unquote(secret), quote(secret, safe="")) if spelling
    }


def executor(connection: psycopg.Connection[Any]) -> Executor:
    """The connection as the schema upgrade runs statements: `?` parameters, whole DDL files sent as they are."""

    def run(statement: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if parameters:
            cursor = connection.execute(statement.replace("?", "%s"), parameters)
        else:
            cursor = connection.execute(statement.encode())  # a DDL file: no parameters to parse
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []

    return run


def apply_schema(connection: psycopg.Connection[Any]) -> None:
    """Bring the state schema up to date, under an advisory lock so two workers starting at once do not race."""
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [SCHEMA_LOCK])
        upgrade(executor(connection), postgres_schema())


def schema_is_current(connection: psycopg.Connection[Any]) -> bool:
    """Whether the state database holds this version's schema (what `rebates doctor` checks)."""
    with connection.transaction():
        return is_current(executor(connection), postgres_schema())


def open_connection(url: str, *, apply: bool = True) -> psycopg.Connection[Any]:
    """A connection to the state database in UTC (the schema applied first unless `apply` is False).

    Errors are `StateUnavailableError` whose message names host and database but never the password. psycopg is
    imported here, not at the top: the embedded default never loads it.
    """
    import psycopg

    if url_parts(url) is None:
        raise StateUnavailableError(f"REBATES_STATE_URL does not read as a PostgreSQL URL (not shown): {URL_FIX}")
    try:
        connection = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True)
    except psycopg.Error as exc:
        raise StateUnavailableError(
            f"PostgreSQL at {describe_url(url)} (REBATES_STATE_URL) is not reachable: {redact(first_line(exc), url)}; "
            "check the server is up, the host, port, user and password, and pg_hba.conf"
        ) from None
    except (ValueError, TypeError) as exc:
        raise StateUnavailableError(
            f"REBATES_STATE_URL ({describe_url(url)}) is not a usable PostgreSQL URL: {redact(first_line(exc), url)}"
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
            f"PostgreSQL at {describe_url(url)} refused the state schema: {redact(first_line(exc), url)}; the user "
            "needs CREATE on the database's public schema"
        ) from None
    return connection


class HeldConnection:
    """One state connection kept for a component's life (a pass's ledger, a limiter): opened when first needed,
    opened again if the server dropped it, closed by `close`. One connection a pass, not one a call."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: psycopg.Connection[Any] | None = None

    def get(self) -> psycopg.Connection[Any]:
        """The connection, (re)opened if there is none or it broke; autocommit: use `connection.transaction()`."""
        if self._connection is None or self._connection.closed or self._connection.broken:
            self._connection = open_connection(self.url)
        return self._connection

    def close(self) -> None:
        """Close the connection, if one is open (it is opened again when next needed)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


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
    connection.execute(ledger_statement("lock", Dialect.POSTGRES), {"key": key})


@contextmanager
def session_lock(url: str, key: str) -> Iterator[None]:
    """Hold the advisory lock `key` for the `with` block, on a connection of its own (released if the process dies)."""
    with connect(url) as connection:
        connection.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])
