"""The CSV files: one per table, machine headers, every value exactly the report's, amounts as exact decimal text."""

from __future__ import annotations

import csv
import dataclasses
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from pipeline.report.csv_files import cell_text, write_csvs
from pipeline.report.model import Column, Kind, Report, Table, cell_kind
from pipeline.report.xlsx import write_xlsx

EXACT_DECIMAL = re.compile(r"-?\d+(\.\d*[1-9])?")
"""Plain decimal text: no exponent, no trailing zeros, no thousands separators."""


@pytest.fixture(scope="module")
def csv_paths(january_report: Report, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_csvs(january_report, tmp_path_factory.mktemp("csv") / "commission_2025-01")


def read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_one_csv_per_table_summary_first_named_after_the_table(csv_paths: list[Path], january_report: Report) -> None:
    names = [table.name for table in (january_report.summary, *january_report.tables)]
    assert [path.name for path in csv_paths] == [f"{name}.csv" for name in names]
    assert sorted(path.name for path in csv_paths[0].parent.iterdir()) == sorted(path.name for path in csv_paths)


def test_headers_are_the_column_names(csv_paths: list[Path], january_report: Report) -> None:
    for path, table in zip(csv_paths, (january_report.summary, *january_report.tables), strict=True):
        assert read(path)[0] == [column.name for column in table.columns], table.name


def test_every_value_is_the_reports_and_amounts_are_exact_decimal_text(
    csv_paths: list[Path], january_report: Report
) -> None:
    decimals = 0
    for path, table in zip(csv_paths, (january_report.summary, *january_report.tables), strict=True):
        rows = read(path)[1:]
        assert len(rows) == len(table.rows), table.name
        for written, row in zip(rows, table.rows, strict=True):
            for text, column, value in zip(written, table.columns, row, strict=True):
                where = (table.name, column.name, text)
                if value is None:
                    assert text == "", where
                elif isinstance(value, bool):
                    assert text == ("true" if value else "false"), where
                elif isinstance(value, Decimal):
                    assert EXACT_DECIMAL.fullmatch(text) and Decimal(text) == value, where
                    decimals += 1
                elif isinstance(value, int):
                    assert int(text) == value and cell_kind(table, column, row) is not Kind.AMOUNT, where
                elif isinstance(value, date):
                    assert date.fromisoformat(text) == value, where
                else:
                    assert text == value, where
    assert decimals > 400


def test_decimal_text_is_exact_without_exponent_or_trailing_zeros() -> None:
    assert cell_text(Decimal("123.450000000000000000")) == "123.45"
    assert cell_text(Decimal("0E-18")) == "0"
    assert cell_text(Decimal("-0.000")) == "0"
    assert cell_text(Decimal("1E-18")) == "0.000000000000000001"
    assert cell_text(Decimal("-12345678901234567890.123456789012345678")) == "-12345678901234567890.123456789012345678"
    assert cell_text(Decimal("1E+3")) == "1000"
    assert cell_text(date(2025, 1, 31)) == "2025-01-31"
    assert (cell_text(True), cell_text(None), cell_text(7)) == ("true", "", "7")


def test_the_files_are_utf8_and_keep_text_as_it_is(january_report: Report, tmp_path: Path) -> None:
    table = Table("odd", "Odd", (Column("broker_code", "Broker code", Kind.TEXT),), (('代理-é,"x"',), ("BTC-USDT",)))
    report = dataclasses.replace(january_report, tables=(table,), charts=())
    (_, path) = write_csvs(report, tmp_path)
    assert read(path) == [["broker_code"], ['代理-é,"x"'], ["BTC-USDT"]]
    assert "代理".encode() in path.read_bytes()


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-12.5", "-12.5"),
        ("+3E-7", "+3E-7"),
        ("BTC-USDT-SWAP", "BTC-USDT-SWAP"),
    ],
)
def test_text_a_spreadsheet_would_run_as_a_formula_is_neutralised(
    january_report: Report, tmp_path: Path, text: str, written: str
) -> None:
    table = Table("odd", "Odd", (Column("inst_id", "Instrument", Kind.TEXT),), ((text,),))
    report = dataclasses.replace(january_report, tables=(table,), charts=())
    (_, path) = write_csvs(report, tmp_path)
    assert read(path) == [["inst_id"], [written]]


def test_csv_and_xlsx_agree_on_the_summary(csv_paths: list[Path], january_report: Report, tmp_path: Path) -> None:
    sheet = load_workbook(write_xlsx(january_report, tmp_path / "r.xlsx"))["Summary"]
    first = next(int(cell.row) for cell in sheet["A"] if cell.value == "Metric") + 1
    for offset, row in enumerate(read(csv_paths[0])[1:]):
        cells = [sheet.cell(row=first + offset, column=index).value for index in range(1, len(row) + 1)]
        assert cells[:2] == row[:2]
        for text, value in zip(row[2:], cells[2:], strict=True):
            assert (value is None) if text == "" else value == pytest.approx(float(Decimal(text)), rel=1e-15)
