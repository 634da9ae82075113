"""The SQL shipped in the package: files by name, and the ledger's one set of statements in each backend's dialect."""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import PurePath


class Dialect(StrEnum):
    """Where the ledger lives: the embedded DuckDB file, or PostgreSQL shared by every worker."""

    DUCKDB = "duckdb"
    POSTGRES = "postgres"


_PARAMETER = re.compile(r"\$([a-z_][a-z0-9_]*)")


def sql_literal(value: str | PurePath) -> str:
    """Text (a path, a pattern) as a SQL string literal: the only way Python puts a value into SQL text."""
    text = str(value)
    if any(character in text for character in "\0\n\r"):
        raise ValueError(f"{text!r} cannot be a SQL literal here: it holds a control character")
    return "'" + text.replace("'", "''") + "'"


def sql_root() -> Traversable:
    """The `sql` package's folder."""
    return files("sql")


def sql_text(relative: str) -> str:
    """A SQL file shipped in the package, e.g. `schema/050_rebate_details.sql`."""
    return sql_root().joinpath(*relative.split("/")).read_text(encoding="utf-8")


def sql_folder(relative: str) -> list[str]:
    """The `.sql` files of one folder of the package, by name (names that start with a number give the order)."""
    folder = sql_root().joinpath(*relative.split("/"))
    if not folder.is_dir():
        return []
    return sorted(f"{relative}/{entry.name}" for entry in folder.iterdir() if entry.name.endswith(".sql"))


@cache
def ledger_statement(name: str, dialect: Dialect) -> str:
    """`sql/ledger/<name>.sql` in the dialect's parameters, or `sql/ledger/postgres/<name>.sql` where PostgreSQL
    truly differs (a row lock, an advisory lock, its limiter tables).

    The files are written once, with DuckDB's `$name` parameters; for PostgreSQL they become psycopg's `%(name)s`
    (a literal `%` doubled), which is all that separates the two dialects in the statements they share.
    """
    own = f"ledger/{dialect.value}/{name}.sql"
    if dialect is Dialect.POSTGRES and sql_root().joinpath(*own.split("/")).is_file():
        text = sql_text(own)
    else:
        text = sql_text(f"ledger/{name}.sql")
    return text if dialect is Dialect.DUCKDB else pyformat(text)


def pyformat(text: str) -> str:
    """A statement with `$name` parameters as psycopg's `%(name)s` (and every literal `%` doubled)."""
    return _PARAMETER.sub(r"%(\1)s", text.replace("%", "%%"))
