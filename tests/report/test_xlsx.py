"""The workbook: typed cells equal to the report, Total rows, native straight-line charts, set up to print on A4."""

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

from pipeline.report.model import NUMERIC_KINDS, TOTAL, Column, Kind, Missing, Report, Table, cell_kind, for_people
from pipeline.report.xlsx import (
    AMOUNT_FORMAT,
    DATE_FORMAT,
    DATETIME_FORMAT,
    FONT_NAME,
    INTEGER_FORMAT,
    MONTH_FORMAT,
    RATE_FORMAT,
    RATE_POINTS_FORMAT,
    write_xlsx,
)

FORMATS = {
    Kind.AMOUNT: AMOUNT_FORMAT,
    Kind.RATE: RATE_FORMAT,
    Kind.RATE_POINTS: RATE_POINTS_FORMAT,
    Kind.INTEGER: INTEGER_FORMAT,
}


@pytest.fixture(scope="module")
def workbook_path(january_report: Report, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_xlsx(january_report, tmp_path_factory.mktemp("xlsx") / "reports" / "commission_2025-01.xlsx")


@pytest.fixture(scope="module")
def workbook(workbook_path: Path) -> Workbook:
    return load_workbook(workbook_path)


def worksheet(workbook: Workbook, title: str) -> Worksheet:
    sheet = workbook[title]
    assert isinstance(sheet, Worksheet)
    return sheet


def header_row(sheet: Worksheet, first_label: str) -> int:
    """The row whose first cell is the table's first column label."""
    return next(int(cell.row) for cell in sheet["A"] if cell.value == first_label)


def charts(sheet: Worksheet) -> list[ChartBase]:
    """The native charts on a sheet (openpyxl keeps them in `_charts`, which its stubs leave out)."""
    return list(sheet._charts)  # type: ignore[attr-defined]


def test_sheets_are_the_summary_one_per_table_then_the_glossary(workbook: Workbook, january_report: Report) -> None:
    assert workbook.sheetnames == ["Summary", *(table.title for table in january_report.tables), "Glossary"]
    assert all(len(name) <= 31 for name in workbook.sheetnames)


def test_write_xlsx_returns_the_path_it_wrote_and_leaves_no_partial_file(workbook_path: Path) -> None:
    assert workbook_path.is_file()
    assert [path.name for path in workbook_path.parent.iterdir()] == [workbook_path.name]


def test_each_table_starts_at_row_1_its_header_alone_frozen_filtered_and_aligned(
    workbook: Workbook, january_report: Report
) -> None:
    for table in map(for_people, january_report.tables):
        sheet = worksheet(workbook, table.title)
        labels = [sheet.cell(row=1, column=index).value for index in range(1, len(table.columns) + 1)]
        assert labels == [column.label for column in table.columns], table.name
        assert sheet.freeze_panes == "A2", table.name
        assert sheet.auto_filter.ref == f"A1:{get_column_letter(len(table.columns))}{1 + len(table.rows)}", table.name
        for index, column in enumerate(table.columns, start=1):
            header = sheet.cell(row=1, column=index)
            assert header.font.b and header.font.name == FONT_NAME
            assert header.alignment.horizontal == ("right" if column.kind in NUMERIC_KINDS else "left"), column.name
            width = sheet.column_dimensions[get_column_letter(index)].width
            assert width >= max(len(word) for word in column.label.split()), (table.name, column.name)


def test_every_cell_is_typed_formatted_in_an_explicit_font_and_equal_to_the_report(
    workbook: Workbook, january_report: Report
) -> None:
    checked = 0
    for table in map(for_people, [january_report.summary, *january_report.tables]):
        sheet = worksheet(workbook, "Summary" if table.name == "summary" else table.title)
        first = header_row(sheet, table.columns[0].label) + 1
        rows: list[tuple[int | None, tuple[object, ...]]] = list(enumerate(table.rows))
        if table.total is not None:
            rows.append((None, table.total))
        for offset, (index, row) in enumerate(rows):
            for number, (column, value) in enumerate(zip(table.columns, row, strict=True), start=1):
                cell = sheet.cell(row=first + offset, column=number)
                kind = cell_kind(table, column, index)
                where = (table.name, offset, column.name)
                assert cell.font.name == FONT_NAME, where
                if value is None:
                    assert cell.value is None, where
                elif isinstance(value, bool):
                    assert cell.value == ("Yes" if value else "No"), where
                elif isinstance(value, Missing):
                    assert cell.value == value.value and cell.data_type == "s", where
                elif isinstance(value, Decimal):
                    assert cell.data_type == "n" and cell.number_format == FORMATS[kind], where
                    expected = value.scaleb(2) if kind is Kind.RATE_POINTS else value
                    # Excel keeps numbers as doubles, written with 16 significant digits: equal to that precision.
                    assert cell.value == pytest.approx(float(expected), rel=1e-15, abs=1e-18), where
                    checked += 1
                elif isinstance(value, int):
                    assert cell.value == value and cell.number_format == INTEGER_FORMAT, where
                elif isinstance(value, str):
                    assert cell.value == value and cell.data_type == "s", where
                elif kind in (Kind.DATE, Kind.MONTH):
                    assert cell.number_format == (DATE_FORMAT if kind is Kind.DATE else MONTH_FORMAT), where
                    assert isinstance(cell.value, datetime) and cell.value.date() == value, where
                else:
                    assert cell.value == value, where
    assert checked > 400


def test_total_rows_are_bold_and_first_cell_total(workbook: Workbook, january_report: Report) -> None:
    for table in january_report.tables:
        if table.total is None:
            continue
        sheet = worksheet(workbook, table.title)
        row = 2 + len(table.rows)
        assert sheet.cell(row=row, column=1).value == TOTAL, table.name
        assert sheet.cell(row=row, column=1).font.b, table.name
        note = sheet.cell(row=row + 2, column=1)
        assert note.value == table.note and note.alignment.wrap_text, table.name


def test_every_sheet_prints_on_a4_one_page_wide_with_titles_header_and_page_numbers(
    workbook: Workbook, january_report: Report
) -> None:
    for sheet in workbook.worksheets:
        assert isinstance(sheet, Worksheet)
        setup = sheet.page_setup
        assert int(setup.paperSize or 0) == int(sheet.PAPERSIZE_A4), sheet.title
        assert sheet.sheet_properties.pageSetUpPr is not None and sheet.sheet_properties.pageSetUpPr.fitToPage
        assert setup.fitToWidth == 1 and setup.fitToHeight in (0, 1), sheet.title
        used = sum(sheet.column_dimensions[get_column_letter(index)].width or 8.43
                   for index in range(1, sheet.max_column + 1))  # fmt: skip
        assert setup.orientation == ("landscape" if used > 100 else "portrait"), sheet.title
        assert sheet.oddHeader is not None and sheet.oddFooter is not None
        assert sheet.oddHeader.left.text == january_report.title, sheet.title
        assert sheet.oddHeader.right.text == "&A"
        assert sheet.oddFooter.right.text == "Page &P of &N"
        assert "UTC" in str(sheet.oddFooter.left.text)
        if sheet.title != "Summary":
            assert sheet.print_title_rows == "$1:$1", sheet.title
    assert worksheet(workbook, "By broker code").page_setup.orientation == "landscape"


def test_summary_sheet_states_period_generation_time_freshness_and_warnings(
    workbook: Workbook, january_report: Report
) -> None:
    sheet = worksheet(workbook, "Summary")
    facts = {row[0].value: row[1] for row in sheet.iter_rows(min_row=3, max_row=30) if row[0].value}
    assert sheet["A1"].value == january_report.title
    assert str(sheet["A2"].value).startswith("Reconciled")
    assert str(facts["Period"].value).startswith("2025-01-01 to 2025-01-31 (31 days), days in UTC+08:00")
    assert str(facts["Compared with"].value).startswith("2024-12-01 to 2024-12-31")
    generated = facts["Generated at"]
    assert generated.value == datetime(2025, 3, 1, 10, 0) and generated.number_format == DATETIME_FORMAT
    zone = sheet.cell(row=generated.row, column=3).value
    assert zone == "UTC+08:00 (2025-03-01 02:00:00 UTC)"
    assert facts["Latest complete day"].value == "2025-01-31"
    assert facts["Incomplete"].value == "2025-01-15: no api file loaded yet"
    warnings = [row[1].value for row in sheet.iter_rows(min_row=2, max_row=40) if row[0].value == "Warning"]
    assert warnings == list(january_report.warnings)
    texts = " ".join(str(cell.value) for row in sheet.iter_rows() for cell in row if cell.value is not None)
    assert "doubles" in texts and "exactly, to 18 decimals" in texts and "holds every decimal" not in texts
    for developer_word in ("Kind", "trade_date", "REBATES_TZ"):
        assert developer_word not in texts


def test_by_day_has_a_straight_line_chart_of_the_daily_broker_rebate(workbook: Workbook) -> None:
    sheet = worksheet(workbook, "By day")
    (chart,) = charts(sheet)
    assert isinstance(chart, LineChart)
    (series,) = chart.series
    assert series.val.numRef.f == "'By day'!$F$2:$F$32"  # broker_rebate_usdt, the 31 days, not the Total row
    assert series.cat.numRef.f == "'By day'!$A$2:$A$32"
    assert series.tx.strRef.f == "'By day'!F1"
    assert series.smooth is False


def test_the_trend_and_instrument_types_have_charts_and_no_other_sheet_does(workbook: Workbook) -> None:
    (trend,) = charts(worksheet(workbook, "Last 12 months"))
    assert isinstance(trend, LineChart) and len(trend.series) == 4
    assert all(series.smooth is False for series in trend.series)
    (bars,) = charts(worksheet(workbook, "By instrument type"))
    assert isinstance(bars, BarChart)
    with_charts = [sheet.title for sheet in workbook.worksheets if isinstance(sheet, Worksheet) and charts(sheet)]
    assert with_charts == ["Last 12 months", "By day", "By instrument type"]


def test_the_glossary_explains_every_amount_and_the_sign_convention(workbook: Workbook) -> None:
    sheet = worksheet(workbook, "Glossary")
    terms = {row[0].value: row[1].value for row in sheet.iter_rows(min_row=2) if row[0].value}
    for label in ("Broker rebate (USDT)", "Sub-broker rebate (USDT)", "User rebate (USDT)", "Net fee (USDT)",
                  "Settlement fee (USDT)", "Fee (USDT)", "Spot volume (USDT)", "Derivative volume (USDT)"):  # fmt: skip
        assert label in terms, label
    assert "negative" in str(terms["Fee (USDT)"]) and "brokerRebate" in str(terms["Broker rebate (USDT)"])
    assert "percentage points" in str(terms["Effective rate"])


def test_text_that_looks_like_a_formula_or_holds_control_characters_stays_text(
    january_report: Report, tmp_path: Path
) -> None:
    table = Table("odd", "Odd: text?", (Column("broker_code", "Broker code", Kind.TEXT),), (("=1+1",), ("a\x01b",)))
    report = dataclasses.replace(january_report, tables=(table,), charts=())
    sheet = worksheet(load_workbook(write_xlsx(report, tmp_path / "odd.xlsx")), "Odd  text")
    assert (sheet["A2"].value, sheet["A2"].data_type) == ("=1+1", "s")
    assert sheet["A3"].value == "a\ufffdb"
