"""The workbook: the sheets finance expects, typed and formatted cells equal to the report, native charts."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl.chart import BarChart, LineChart
from openpyxl.chart._chart import ChartBase
from openpyxl.utils import get_column_letter
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from pipeline.report.model import Column, Kind, Report, Table, cell_kind
from pipeline.report.xlsx import AMOUNT_FORMAT, DATE_FORMAT, INTEGER_FORMAT, RATE_FORMAT, write_xlsx

SUMMARY_HEADER_LABEL = "Metric"
TABLE_HEADER_ROW = 4
"""Sheets of tables: title in row 1, note in row 2, header in row 4."""


@pytest.fixture(scope="module")
def workbook_path(january_report: Report, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_xlsx(january_report, tmp_path_factory.mktemp("xlsx") / "reports" / "commission_2025-01.xlsx")


@pytest.fixture(scope="module")
def workbook(workbook_path: Path) -> Workbook:
    return load_workbook(workbook_path)


def header_row(sheet: Worksheet, first_label: str) -> int:
    """The row whose first cell is the table's first column label."""
    return next(int(cell.row) for cell in sheet["A"] if cell.value == first_label)


def worksheet(workbook: Workbook, title: str) -> Worksheet:
    sheet = workbook[title]
    assert isinstance(sheet, Worksheet)
    return sheet


def charts(sheet: Worksheet) -> list[ChartBase]:
    """The native charts on a sheet (openpyxl keeps them in `_charts`, which its stubs leave out)."""
    return list(sheet._charts)  # type: ignore[attr-defined]


def sheet_of(workbook: Workbook, table: Table) -> Worksheet:
    return worksheet(workbook, table.title)


def test_sheets_are_the_summary_then_one_per_table_in_order(workbook: Workbook, january_report: Report) -> None:
    assert workbook.sheetnames == ["Summary", *(table.title for table in january_report.tables)]
    assert all(len(name) <= 31 for name in workbook.sheetnames)


def test_write_xlsx_returns_the_path_it_wrote_and_leaves_no_partial_file(workbook_path: Path) -> None:
    assert workbook_path.is_file()
    assert [path.name for path in workbook_path.parent.iterdir()] == [workbook_path.name]


def test_every_table_has_a_bold_frozen_header_an_autofilter_and_fitted_widths(
    workbook: Workbook, january_report: Report
) -> None:
    for table in (january_report.summary, *january_report.tables):
        sheet = sheet_of(workbook, table)
        row = header_row(sheet, table.columns[0].label)
        labels = [sheet.cell(row=row, column=index).value for index in range(1, len(table.columns) + 1)]
        assert labels == [column.label for column in table.columns], table.name
        assert all(sheet.cell(row=row, column=index).font.b for index in range(1, len(table.columns) + 1))
        assert sheet.freeze_panes == f"A{row + 1}", table.name
        last = get_column_letter(len(table.columns))
        assert sheet.auto_filter.ref == f"A{row}:{last}{row + len(table.rows)}", table.name
        for index, column in enumerate(table.columns, start=1):
            width = sheet.column_dimensions[get_column_letter(index)].width
            assert width >= min(len(column.label) + 2, 60), (table.name, column.name)
    assert sheet_of(workbook, january_report.tables[0])["A1"].value == january_report.tables[0].title
    assert header_row(worksheet(workbook, "By day"), "Day") == TABLE_HEADER_ROW


def test_every_cell_is_typed_formatted_and_equal_to_the_report(workbook: Workbook, january_report: Report) -> None:
    formats = {Kind.AMOUNT: AMOUNT_FORMAT, Kind.RATE: RATE_FORMAT, Kind.INTEGER: INTEGER_FORMAT}
    checked = 0
    for table in (january_report.summary, *january_report.tables):
        sheet = sheet_of(workbook, table)
        first = header_row(sheet, table.columns[0].label) + 1
        for offset, row in enumerate(table.rows):
            for index, (column, value) in enumerate(zip(table.columns, row, strict=True), start=1):
                cell = sheet.cell(row=first + offset, column=index)
                kind = cell_kind(table, column, row)
                where = (table.name, offset, column.name)
                if value is None:
                    assert cell.value is None, where
                elif kind in (Kind.AMOUNT, Kind.RATE):
                    assert isinstance(value, Decimal)
                    assert cell.data_type == "n" and cell.number_format == formats[kind], where
                    # Excel keeps numbers as doubles, written with 16 significant digits: equal to that precision.
                    assert cell.value == pytest.approx(float(value), rel=1e-15, abs=1e-18), where
                    checked += 1
                elif kind is Kind.INTEGER:
                    assert cell.value == value and cell.number_format == INTEGER_FORMAT, where
                elif kind is Kind.DATE:
                    assert cell.number_format == DATE_FORMAT, where
                    assert isinstance(cell.value, datetime) and cell.value.date() == value, where
                else:
                    assert cell.value == value, where
    assert checked > 400


def test_summary_sheet_states_period_timezone_generation_windows_and_missing_days(
    workbook: Workbook, january_report: Report
) -> None:
    sheet = worksheet(workbook, "Summary")
    facts = {row[0].value: row[1].value for row in sheet.iter_rows(min_row=2, max_row=20) if row[0].value}
    assert sheet["A1"].value == january_report.title
    assert str(facts["Period"]).startswith("2025-01 (2025-01-01 to 2025-01-31)")
    assert str(facts["Compared with"]).startswith("2024-12")
    assert january_report.timezone in str(facts["Timezone"])
    assert facts["Generated at"] == january_report.generated_at.isoformat(timespec="seconds")
    assert facts["Windows covered"] == ", ".join(january_report.windows_covered)
    assert facts["Missing days"] == "2025-01-15"
    assert facts["Broker code"] == "all"
    assert "matches" in str(facts["Reconciliation"])
    warnings = [row[1].value for row in sheet.iter_rows(min_row=2, max_row=20) if row[0].value == "Warning"]
    assert warnings == list(january_report.warnings)
    assert header_row(sheet, SUMMARY_HEADER_LABEL) > len(warnings) + 9


def test_by_day_has_a_native_line_chart_of_the_daily_broker_rebate(workbook: Workbook) -> None:
    sheet = worksheet(workbook, "By day")
    (chart,) = charts(sheet)
    assert isinstance(chart, LineChart)
    (series,) = chart.series
    assert series.val.numRef.f == "'By day'!$E$5:$E$35"  # broker_rebate, the 31 days under the header
    assert series.cat.numRef.f == "'By day'!$A$5:$A$35"
    assert series.tx.strRef.f == "'By day'!E4"


def test_by_instrument_type_has_a_bar_chart_and_other_sheets_none(workbook: Workbook, january_report: Report) -> None:
    (chart,) = charts(worksheet(workbook, "By instrument type"))
    assert isinstance(chart, BarChart)
    rows = len(january_report.table("by_instrument_type").rows)
    assert chart.series[0].val.numRef.f == f"'By instrument type'!$F$5:$F${4 + rows}"
    with_charts = [sheet.title for sheet in workbook.worksheets if isinstance(sheet, Worksheet) and charts(sheet)]
    assert with_charts == ["By day", "By instrument type"]


def test_text_that_looks_like_a_formula_or_holds_control_characters_stays_text(
    january_report: Report, tmp_path: Path
) -> None:
    table = Table("odd", "Odd: text?", (Column("broker_code", "Broker code", Kind.TEXT),), (("=1+1",), ("a\x01b",)))
    report = dataclasses.replace(january_report, tables=(table,), charts=())
    sheet = worksheet(load_workbook(write_xlsx(report, tmp_path / "odd.xlsx")), "Odd  text")
    assert (sheet["A5"].value, sheet["A5"].data_type) == ("=1+1", "s")
    assert sheet["A6"].value == "a\ufffdb"
