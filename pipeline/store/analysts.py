"""Read the lake as an analyst does: the entry point opened read-only, results as exact text (`rebates sql`)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

QueryError = duckdb.Error
"""What a query that DuckDB refuses raises (bad SQL, a missing column, no lake files yet)."""


class NoEntryPointError(Exception):
    """The analysts' entry point does not exist yet; the message says how to make it."""


@dataclass(frozen=True)
class QueryResult:
    """A query's columns and rows, as DuckDB returned them (Decimal amounts, dates, text ids)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


def open_entry_point(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the entry point read-only, as any DuckDB 1.4+ would; its views find the lake next to it."""
    if not path.exists():
        raise NoEntryPointError(
            f"no analysts' entry point at {path} yet: the first load writes it (`rebates sync`, or `rebates load`); "
            "check REBATES_DATA_DIR if the pipeline writes somewhere else"
        )
    return duckdb.connect(str(path), read_only=True)


def run_query(connection: duckdb.DuckDBPyConnection, statement: str) -> QueryResult:
    """Run one statement (or several: the last one's result) and fetch its rows."""
    relation = connection.execute(statement)
    columns = tuple(column[0] for column in relation.description or ())
    return QueryResult(columns, tuple(relation.fetchall()) if columns else ())


def explain(error: Exception) -> str:
    """DuckDB's message, with the fix when it is about the lake rather than the query."""
    message = str(error)
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
