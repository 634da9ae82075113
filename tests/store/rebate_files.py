"""Rebate files made for the reader's tests: a real row, CSV and workbook bytes, and how to parse or reject them."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, localcontext
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import xlwt
from openpyxl import Workbook

from pipeline.columns import AMOUNT_COLUMNS
from pipeline.fileformat import FileFormat
from pipeline.simulator.files import (
    AMOUNT_COLUMNS as FILE_AMOUNT_COLUMNS,
)
from pipeline.simulator.files import (
    COLUMNS_16,
    FileShape,
    FileSpec,
)
from pipeline.store.parse import ParsedFile, RejectedFile, parse_rebate_file

UTC8 = timezone(timedelta(hours=8))
SNAKE = dict(zip(FILE_AMOUNT_COLUMNS, AMOUNT_COLUMNS, strict=True))
FORMATS = {
    FileShape.CSV: FileFormat.CSV,
    FileShape.CSV_BOM: FileFormat.CSV,
    FileShape.CSV_CRLF: FileFormat.CSV,
    FileShape.ZIP_CSV: FileFormat.ZIP,
    FileShape.XLSX: FileFormat.XLSX,
    FileShape.XLS: FileFormat.XLS,
}
REAL_ROW = {
    "brokerCode": "656204a3b0e9BCDE",
    "level": "",
    "uid": "",
    "instId": "SOL-USDT-SWAP",
    "ordId": "2877198384625049600",
    "clOrdId": "",
    "spotTradeAmt": "0",
    "derivativeTradeAmt": "24.68",
    "fee": "-0.004936",
    "netFee": "0.0019744",
    "settlementFee": "0.004936",
    "brokerRebate": "0.004936",
    "suBrokerRebate": "0",
    "userRebate": "0",
    "affiliated": "false",
    "ts": "1758250140000",
}
"""The row FACTS.md quotes from a real file (as 16 columns, uid and clOrdId empty)."""


def spec(shape: FileShape = FileShape.CSV, **changes: object) -> FileSpec:
    fields: dict[str, object] = {"shape": shape, "orders_per_day": 6, "seed": 7}
    fields.update(changes)
    return FileSpec(date(2025, 3, 1), date(2025, 3, 2), "api", **fields)  # type: ignore[arg-type]


def write(tmp_path: Path, data: bytes, name: str = "rebates.xls") -> Path:
    """Write under a misleading name: the parser must go by the bytes."""
    path = tmp_path / name
    path.write_bytes(data)
    return path


def parse_file(path: Path, *, max_unzipped_bytes: int = 10**9, tz: timezone | ZoneInfo = UTC8) -> ParsedFile:
    return parse_rebate_file(path, tz=tz, max_unzipped_bytes=max_unzipped_bytes)


def csv_bytes(rows: Sequence[dict[str, str]], columns: Sequence[str] = COLUMNS_16, newline: str = "\n") -> bytes:
    lines = [",".join(columns)] + [",".join(row[column] for column in columns) for row in rows]
    return (newline.join(lines) + newline).encode()


def row(**changes: str) -> dict[str, str]:
    return {**REAL_ROW, **changes}


def rejected(tmp_path: Path, data: bytes, max_unzipped_bytes: int = 10**9) -> str:
    with pytest.raises(RejectedFile) as caught:
        parse_file(write(tmp_path, data), max_unzipped_bytes=max_unzipped_bytes)
    message = str(caught.value)
    assert "\n" not in message
    return message


def exact_sum(values: Sequence[Decimal]) -> Decimal:
    """A sum of decimals with room for every digit (the default context rounds to 28 significant digits)."""
    with localcontext() as context:
        context.prec = 100
        return sum(values, Decimal(0))


def epoch_ms_day(ms: str, tz: timezone) -> date:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(ms))).astimezone(tz).date()


def xlsx_bytes(rows: Sequence[Sequence[object]], sheets: int = 1) -> bytes:
    book = Workbook()
    for index in range(sheets):
        sheet = book.active if index == 0 else book.create_sheet(f"Sheet{index + 1}")
        assert sheet is not None
        for values in rows:
            sheet.append(list(values))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xls_bytes(rows: Sequence[Sequence[object]]) -> bytes:
    book = xlwt.Workbook()
    sheet = book.add_sheet("RebateDetails")
    for row_index, values in enumerate(rows):
        for column_index, value in enumerate(values):
            if value is not None:
                sheet.write(row_index, column_index, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def sheet_rows(rows: Sequence[dict[str, str]], **cells: object) -> list[list[object]]:
    """A header and rows as a real workbook types them: amounts and ts as numbers, the rest text; `cells` override."""
    table: list[list[object]] = [list(COLUMNS_16)]
    for values in rows:
        typed: list[object] = []
        for column in COLUMNS_16:
            text = values[column]
            if column in cells:
                typed.append(cells[column])
            elif column in FILE_AMOUNT_COLUMNS:
                typed.append(float(text))
            elif column == "ts":
                typed.append(int(text))
            else:
                typed.append(text or None)
        table.append(typed)
    return table


MakeWorkbook = Callable[[Sequence[Sequence[object]]], bytes]


def epoch_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
