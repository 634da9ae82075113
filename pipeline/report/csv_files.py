"""Write a `Report` as CSV files, one per table: exact decimal text, ISO dates, the columns' machine names."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

from pipeline.formulas import neutralised
from pipeline.report.model import Cell, Kind, Missing, Report, Table, cell_kind, exact_text

PERCENT_KINDS = frozenset({Kind.RATE, Kind.RATE_POINTS})
"""Kinds written as percentages (`_pct` columns) or percentage points: the ratio times 100, exactly."""


def write_csvs(report: Report, directory: Path, prefix: str = "") -> list[Path]:
    """Write `<prefix><table name>.csv` for the summary and every table into `directory`; return the paths in order.

    UTF-8, comma-separated, CRLF line ends (RFC 4180), a header of column names (amounts end in `_usdt`, rates in
    `_pct`), then the rows and the table's Total row (first field `Total`). Amounts are written as the exact decimal
    text of their Decimal, without exponent or trailing zeros (never through a float); rates as exact percentages
    (`12.5` is 12.5%; a rate's change in percentage points); days as YYYY-MM-DD, months as YYYY-MM; booleans as
    `true`/`false`; a value that cannot be given (no data, n/a, a rate over a zero) as an empty field; text a
    spreadsheet would run as a formula starts with `'`. The summary's `unit` column says whether each row's values
    are USDT, % or a count.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for table in (report.summary, *report.tables):
        path = directory / f"{prefix}{table.name}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")  # RFC 4180; a field holding \r or \n is quoted
            writer.writerow(column.name for column in table.columns)
            writer.writerows(_lines(table))
        written.append(path)
    return written


def _lines(table: Table) -> list[list[str]]:
    return [
        [cell_text(cell, cell_kind(table, column, index)) for cell, column in zip(row, table.columns, strict=True)]
        for index, row in table.indexed_rows()
    ]


def cell_text(cell: Cell, kind: Kind = Kind.TEXT) -> str:
    """One value as CSV text: exact for Decimals (`-12.5`, `0.0000000001`, `0`), a rate as a percentage, ISO days."""
    if cell is None or isinstance(cell, Missing):
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, Decimal):
        return exact_text(cell.scaleb(2) if kind in PERCENT_KINDS else cell)
    if isinstance(cell, date):
        return f"{cell:%Y-%m}" if kind is Kind.MONTH else cell.isoformat()
    if isinstance(cell, int):
        return str(cell)
    return neutralised(cell)
