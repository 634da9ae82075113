"""The CSV files: one per table, machine headers with units, every value exactly the report's, a Total row."""

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
from pipeline.report.model import TOTAL, Column, Kind, Missing, Report, Table, cell_kind
from pipeline.report.xlsx import write_xlsx
from tests.report.conftest import JANUARY, ReportDatabase, totals

EXACT_DECIMAL = re.compile(r"-?\d+(\.\d*[1-9])?")
"""Plain decimal text: no exponent, no trailing zeros, no thousands separators."""


@pytest.fixture(scope="module")
def csv_paths(january_report: Report, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_csvs(january_report, tmp_path_factory.mktemp("csv") / "commission_2025-01")


def read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def tables(report: Report) -> list[Table]:
    return [report.summary, *report.tables]


def test_one_csv_per_table_summary_first_named_after_the_table(csv_paths: list[Path], january_report: Report) -> None:
    names = [table.name for table in tables(january_report)]
    assert [path.name for path in csv_paths] == [f"{name}.csv" for name in names]
    assert sorted(path.name for path in csv_paths[0].parent.iterdir()) == sorted(path.name for path in csv_paths)
    assert "by_user.csv" in [path.name for path in csv_paths]


def test_headers_are_the_column_names_and_amounts_carry_their_unit(
    csv_paths: list[Path], january_report: Report
) -> None:
    for path, table in zip(csv_paths, tables(january_report), strict=True):
        header = read(path)[0]
        assert header == [column.name for column in table.columns], table.name
        for column in table.columns:
            if column.kind is Kind.AMOUNT and table.name != "summary":
                assert column.name.endswith("_usdt"), (table.name, column.name)
            if column.kind is Kind.RATE:
                assert column.name.endswith("_pct"), (table.name, column.name)
    assert "broker_rebate_usdt" in read(csv_paths[[t.name for t in tables(january_report)].index("by_day")])[0]


def test_every_value_is_the_reports_amounts_exact_rates_in_percent(
    csv_paths: list[Path], january_report: Report
) -> None:
    decimals = 0
    for path, table in zip(csv_paths, tables(january_report), strict=True):
        lines = read(path)[1:]
        rows: list[tuple[int | None, tuple[object, ...]]] = list(enumerate(table.rows))
        if table.total is not None:
            rows.append((None, table.total))
        assert len(lines) == len(rows), table.name
        for written, (index, row) in zip(lines, rows, strict=True):
            for text, column, value in zip(written, table.columns, row, strict=True):
                kind = cell_kind(table, column, index)
                where = (table.name, column.name, text)
                if value is None or isinstance(value, Missing):
                    assert text == "", where
                elif isinstance(value, bool):
                    assert text == ("true" if value else "false"), where
                elif isinstance(value, Decimal):
                    assert EXACT_DECIMAL.fullmatch(text), where
                    expected = value.scaleb(2) if kind in (Kind.RATE, Kind.RATE_POINTS) else value
                    assert Decimal(text) == expected, where
                    decimals += 1
                elif isinstance(value, int):
                    assert int(text) == value and kind is not Kind.AMOUNT, where
                elif isinstance(value, date):
                    assert text == (f"{value:%Y-%m}" if kind is Kind.MONTH else value.isoformat()), where
                else:
                    assert text == value, where
    assert decimals > 400


def test_every_partitioning_table_ends_with_its_exact_total(
    csv_paths: list[Path], january_report: Report, report_db: ReportDatabase
) -> None:
    expected = totals(report_db.rows_in(JANUARY))
    by_name = {path.stem: read(path) for path in csv_paths}
    for name in ("by_day", "by_broker_code", "by_user", "by_instrument_type", "top_instruments", "by_user_level",
                 "affiliated", "change_by_broker_code", "change_by_instrument_type"):  # fmt: skip
        header, *_, total = by_name[name]
        assert total[0] == TOTAL, name
        record = dict(zip(header, total, strict=True))
        assert Decimal(record["broker_rebate_usdt"]) == expected["broker_rebate"], name
        assert Decimal(record["net_fee_usdt"]) == expected["net_fee"], name


def test_users_of_files_without_uid_are_empty_fields(csv_paths: list[Path]) -> None:
    header, *rows = read(next(path for path in csv_paths if path.name == "by_broker_code.csv"))
    users = header.index("users")
    types = header.index("broker_type")
    assert {row[users] for row in rows if row[types] == "api"} == {""}
    assert all(row[users].isdigit() for row in rows if row[types] == "oauth")


def test_decimal_text_is_exact_without_exponent_or_trailing_zeros() -> None:
    assert cell_text(Decimal("123.450000000000000000")) == "123.45"
    assert cell_text(Decimal("0E-18")) == "0"
    assert cell_text(Decimal("-0.000")) == "0"
    assert cell_text(Decimal("1E-18")) == "0.000000000000000001"
    assert cell_text(Decimal("-12345678901234567890.123456789012345678")) == "-12345678901234567890.123456789012345678"
    assert cell_text(Decimal("1E+3")) == "1000"
    assert cell_text(Decimal("0.1234567891"), Kind.RATE) == "12.34567891"
    assert cell_text(Decimal("-0.0125"), Kind.RATE_POINTS) == "-1.25"
    assert cell_text(date(2025, 1, 31)) == "2025-01-31"
    assert cell_text(date(2025, 1, 1), Kind.MONTH) == "2025-01"
    assert (cell_text(True), cell_text(None), cell_text(7), cell_text(Missing.NO_DATA)) == ("true", "", "7", "")


def test_the_files_are_utf8_and_keep_text_as_it_is(january_report: Report, tmp_path: Path) -> None:
    table = Table("odd", "Odd", (Column("broker_code", "Broker code", Kind.TEXT),), (('代理-é,"x"',), ("BTC-USDT",)))
    report = dataclasses.replace(january_report, tables=(table,), charts=())
    (_, path) = write_csvs(report, tmp_path)
    assert read(path) == [["broker_code"], ['代理-é,"x"'], ["BTC-USDT"]]
    assert "代理".encode() in path.read_bytes()


def test_a_prefix_names_every_file(january_report: Report, tmp_path: Path) -> None:
    written = write_csvs(january_report, tmp_path, prefix="statement_2025-01_ABC_")
    assert all(path.name.startswith("statement_2025-01_ABC_") and path.parent == tmp_path for path in written)


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
    header, *rows = read(csv_paths[0])
    for offset, row in enumerate(rows):
        record = dict(zip(header, row, strict=True))
        cells = [sheet.cell(row=first + offset, column=index).value for index in range(1, 6)]
        assert cells[0] == record["metric"]
        for name, value in zip(("this_period", "previous_period", "change", "change_pct"), cells[1:], strict=True):
            text = record[name]
            if text == "":
                assert value is None or isinstance(value, str)
                continue
            number = float(Decimal(text))
            if name == "change_pct" or (record["unit"] == "%" and name != "change"):
                number /= 100  # the workbook holds a rate as a ratio shown as %; a rate's change in points, as CSV
            assert value == pytest.approx(number, rel=1e-15), (record["metric"], name)
