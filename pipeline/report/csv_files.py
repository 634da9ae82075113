"""Write a `Report` as CSV files, one per table: exact decimal text, ISO dates, the columns' machine names."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

from pipeline.formulas import neutralised
from pipeline.report.model import Cell, Report


def write_csvs(report: Report, directory: Path) -> list[Path]:
    """Write `<table name>.csv` for the summary and every table into `directory`; return the paths in order.

    UTF-8, comma-separated, CRLF line ends (RFC 4180), a header of column names. Amounts and rates are written
    as the exact decimal text of their Decimal, without exponent or trailing zeros (never through a float); days
    as YYYY-MM-DD; booleans as `true`/`false`; a missing value (e.g. a rate over a zero) as an empty field; text a
    spreadsheet would run as a formula starts with `'`. The summary's `kind` column says whether each row's values
    are an amount, a rate or a count.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for table in (report.summary, *report.tables):
        path = directory / f"{table.name}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")  # RFC 4180; a field holding \r or \n is quoted
            writer.writerow(column.name for column in table.columns)
            writer.writerows([cell_text(cell) for cell in row] for row in table.rows)
        written.append(path)
    return written


def cell_text(cell: Cell) -> str:
    """One value as CSV text: exact for Decimals (`-12.5`, `0.0000000001`, `0`), ISO for days."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, Decimal):
        if cell.is_zero():
            return "0"
        text = format(cell, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(cell, date):
        return cell.isoformat()
    return neutralised(str(cell))
