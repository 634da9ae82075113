"""Read the lake as an analyst does: the entry point opened read-only, results as exact text (`rebates sql`).

`rebates sql` reads the lake and nothing else. The connection may touch no file outside the lake's folder (DuckDB's
`enable_external_access` off, `allowed_directories` the lake), with its configuration locked so no statement can undo
that; and it runs queries only, because DuckDB would let a COPY, an EXPORT or an ATTACH write inside the lake.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb


class NoEntryPointError(Exception):
    """The analysts' entry point does not exist yet; the message says how to make it."""


class NotAQueryError(Exception):
    """A statement `rebates sql` does not run: anything but a query (it writes, attaches or changes a setting)."""


QueryError = (duckdb.Error, NotAQueryError)
"""What a statement that is refused raises: by DuckDB (bad SQL, a missing column, a file outside the lake, no lake
files yet) or by `rebates sql` (not a query)."""

QUERIES = "SELECT, FROM, WITH, VALUES, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN of one of those"
"""What `rebates sql` runs, in words (DuckDB parses every one of them as a SELECT, EXPLAIN aside)."""


@dataclass(frozen=True)
class QueryResult:
    """A query's columns and rows, as DuckDB returned them (Decimal amounts, dates, text ids)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def open_entry_point(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the entry point read-only, as any DuckDB 1.4+ would, able to read the lake's folder and nothing else.

    Its views find the lake next to it. The file itself is left as it is, so it keeps working in any DuckDB: the
    restrictions are this connection's, set once it is open (DuckDB takes `allowed_directories` only from a running
    database) and then locked.
    """
    if not path.exists():
        raise NoEntryPointError(
            f"no analysts' entry point at {path} yet: the first load writes it (`rebates sync`, or `rebates load`); "
            "check REBATES_DATA_DIR if the pipeline writes somewhere else"
        )
    connection = duckdb.connect(str(path), read_only=True)
    try:
        connection.execute("SET allowed_directories = ?", [[str(path.parent.resolve()) + os.sep]])
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
    except BaseException:
        connection.close()
        raise
    return connection


def run_query(connection: duckdb.DuckDBPyConnection, statement: str) -> QueryResult:
    """Run one query (or several: the last one's result) and fetch its rows; refuse the lot if one is not a query."""
    statements = connection.extract_statements(statement)
    for parsed in statements:
        refuse_unless_query(connection, parsed)
    relation = None
    for parsed in statements:
        relation = connection.execute(parsed)
    if relation is None:
        return QueryResult((), ())
    columns = tuple(column[0] for column in relation.description or ())
    return QueryResult(columns, tuple(relation.fetchall()) if columns else ())


def refuse_unless_query(connection: duckdb.DuckDBPyConnection, statement: duckdb.Statement) -> None:
    """Raise NotAQueryError unless `statement` only reads: a SELECT, or an EXPLAIN (ANALYZE) of one."""
    if statement.type is duckdb.StatementType.SELECT:
        return
    if statement.type is duckdb.StatementType.EXPLAIN:
        explained = connection.extract_statements(_explained(statement.query))
        if len(explained) == 1 and explained[0].type is duckdb.StatementType.SELECT:
            return
    kind = statement.type
    what = {
        duckdb.StatementType.EXPLAIN: "an EXPLAIN of anything else",
        duckdb.StatementType.MULTI: "a PIVOT on its own (write SELECT * FROM (PIVOT ...))",
    }.get(kind, f"{kind.name} statements")
    keep = (
        "; to keep a result, print it with --format csv (or json) and redirect it to a file"
        if kind in {duckdb.StatementType.COPY, duckdb.StatementType.EXPORT, duckdb.StatementType.COPY_DATABASE}
        else ""
    )
    raise NotAQueryError(f"rebates sql only reads the lake: it runs {QUERIES}, not {what}{keep}")


def _explained(query: str) -> str:
    """What an EXPLAIN [ANALYZE] statement explains: its text after those keywords (comments skipped)."""
    tokens = duckdb.tokenize(query)
    ends = [start for start, _ in tokens[1:]] + [len(query)]
    words = [
        (start, query[start:end].strip().upper())
        for (start, kind), end in zip(tokens, ends, strict=True)
        if kind is not duckdb.token_type.comment
    ]
    skip = 2 if [word for _, word in words[1:2]] == ["ANALYZE"] else 1
    return query[words[skip][0] :] if len(words) > skip else ""


def explain(error: Exception) -> str:
    """DuckDB's message, with the fix when it is about the lake rather than the query."""
    message = str(error)
    if isinstance(error, duckdb.PermissionException):
        return (
            f"{message}\nrebates sql reads the lake's folder and nothing else: no other file, directory, database, "
            "extension or setting"
        )
    if "No files found that match the pattern" in message:
        return (
            f"{message}\nThe lake has no rows for this table yet (the first load publishes them), or the entry point"
            " was moved without its lake folder: keep analysts.duckdb next to rebate_details/, rebate_orders/, ..."
        )
    return message


def text(value: object) -> str:
    """A cell as exact text: decimals in full (never as a float or in E-notation), dates and times in ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    return str(value)


def as_csv(result: QueryResult) -> str:
    """The result as CSV with a header row; empty cells are NULL."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.columns)
    writer.writerows([text(value) for value in row] for row in result.rows)
    return buffer.getvalue()


def as_json(result: QueryResult) -> str:
    """The result as a JSON array of objects; amounts are strings of exact decimal text, never JSON numbers."""

    def plain(value: object) -> object:
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, list | tuple):
            return [plain(item) for item in value]
        if isinstance(value, dict):
            return {str(key): plain(item) for key, item in value.items()}
        return text(value)

    return json.dumps([dict(zip(result.columns, map(plain, row), strict=True)) for row in result.rows], indent=2)
