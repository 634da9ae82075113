"""Write a `Report` as an Excel workbook: a Summary sheet, one sheet per table, typed cells and native charts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.chart.axis import DateAxis
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from pipeline.formulas import sheet_text, write_text
from pipeline.report.model import Cell, Chart, Kind, Report, Table, cell_kind

AMOUNT_FORMAT = "#,##0.00########"
"""USDT: thousands separators, at least 2 decimals and up to 10 (what OKX writes); Excel keeps ~15 digits."""
RATE_FORMAT = "0.00%"
INTEGER_FORMAT = "#,##0"
DATE_FORMAT = "yyyy-mm-dd"
AXIS_AMOUNT_FORMAT = "#,##0.00"
NUMBER_FORMATS = {
    Kind.AMOUNT: AMOUNT_FORMAT,
    Kind.RATE: RATE_FORMAT,
    Kind.INTEGER: INTEGER_FORMAT,
    Kind.DATE: DATE_FORMAT,
}

MAX_SHEET_TITLE = 31
MIN_WIDTH, MAX_WIDTH = 8, 60
TITLE_FONT = Font(bold=True, size=14)
LABEL_FONT = Font(bold=True)
NOTE_FONT = Font(italic=True, color="555555")
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDE4EE")
_SHEET_TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


@dataclass(frozen=True)
class _Placed:
    """Where a table landed on its sheet, for the charts that draw from it."""

    sheet: Worksheet
    table: Table
    header_row: int

    @property
    def last_row(self) -> int:
        return self.header_row + len(self.table.rows)

    def column_index(self, name: str) -> int:
        """The sheet column (from 1) of a table column."""
        return [column.name for column in self.table.columns].index(name) + 1


def write_xlsx(report: Report, path: Path) -> Path:
    """Write the report to `path` (replaced atomically if it exists) and return it.

    Amounts are numeric cells written from their Decimals (Excel keeps them as doubles, about 15 significant
    digits; the CSV files keep the exact text), rates are percentages, days real dates. Every table has a bold,
    frozen header row, an autofilter and widths fitted to its content; each of `report.charts` is drawn as a native
    chart beside its table.
    """
    workbook = Workbook()
    summary = workbook.active
    assert summary is not None
    summary.title = "Summary"
    placed = {report.summary.name: _write_summary(summary, report)}
    titles = {"summary"}
    for table in report.tables:
        sheet = workbook.create_sheet(_sheet_title(table.title, titles))
        sheet["A1"] = table.title
        sheet["A1"].font = TITLE_FONT
        sheet["A2"] = sheet_text(table.note)
        sheet["A2"].font = NOTE_FONT
        placed[table.name] = _write_table(sheet, table, header_row=4)
        _fit_widths(sheet, table, header_row=4)
    for chart in report.charts:
        _add_chart(placed[chart.table], chart)
    created = report.generated_at.astimezone(UTC).replace(tzinfo=None)
    workbook.properties.created = created
    workbook.properties.modified = created
    workbook.properties.title = report.title
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    workbook.save(partial)
    partial.replace(path)
    return path


def _write_summary(sheet: Worksheet, report: Report) -> _Placed:
    """The report's facts, one per row, then the metrics table."""
    sheet["A1"] = report.title
    sheet["A1"].font = TITLE_FONT
    facts: list[tuple[str, str]] = [
        ("Period", f"{report.period.label} ({report.period.start} to {report.period.end})"),
        ("Compared with", f"{report.previous.label} ({report.previous.start} to {report.previous.end})"),
        ("Account", report.account or "all"),
        ("Broker code", report.broker_code or "all"),
        ("Timezone", f"days are trade_date in {report.timezone} (REBATES_TZ)"),
        ("Generated at", report.generated_at.isoformat(timespec="seconds")),
        ("Windows covered", ", ".join(report.windows_covered) or "none"),
        ("Missing days", ", ".join(day.isoformat() for day in report.missing_days) or "none"),
        (
            "Reconciliation",
            "every window's file matches the database"
            if report.reconciliation_ok
            else "MISMATCH: see the Reconciliation sheet",
        ),
        *(("Warning", warning) for warning in report.warnings),
    ]
    for offset, (label, value) in enumerate(facts, start=2):
        sheet.cell(row=offset, column=1, value=label).font = LABEL_FONT
        sheet.cell(row=offset, column=2, value=sheet_text(value))
    note_row = len(facts) + 3
    sheet.cell(row=note_row, column=1, value=sheet_text(report.summary.note)).font = NOTE_FONT
    header_row = note_row + 1
    placed = _write_table(sheet, report.summary, header_row=header_row)
    _fit_widths(sheet, report.summary, header_row=header_row, extra={1: [label for label, _ in facts]})
    return placed


def _write_table(sheet: Worksheet, table: Table, *, header_row: int) -> _Placed:
    """Header (bold, frozen, filtered) at `header_row`, then one typed, formatted row per table row."""
    for index, column in enumerate(table.columns, start=1):
        cell = sheet.cell(row=header_row, column=index, value=column.label)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
    for row_offset, row in enumerate(table.rows, start=1):
        for index, (column, value) in enumerate(zip(table.columns, row, strict=True), start=1):
            kind = cell_kind(table, column, row)
            target = sheet.cell(row=header_row + row_offset, column=index)
            if isinstance(value, str):
                write_text(target, value)
            else:
                target.value = value
            if value is not None and kind in NUMBER_FORMATS:
                target.number_format = NUMBER_FORMATS[kind]
    last_column = get_column_letter(len(table.columns))
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=1).coordinate
    sheet.auto_filter.ref = f"A{header_row}:{last_column}{header_row + len(table.rows)}"
    return _Placed(sheet, table, header_row)


def _display(value: Cell, kind: Kind) -> str:
    """About what Excel shows for a cell with its number format: what the column width must fit."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "FALSE" if not value else "TRUE"
    if isinstance(value, Decimal) and kind is Kind.RATE:
        return f"{value * 100:,.2f}%"
    if isinstance(value, Decimal):
        text = f"{value:,.10f}".rstrip("0")
        return text + "0" * max(0, 2 - len(text.partition(".")[2]))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, date):
        return value.isoformat()
    return value


def _fit_widths(
    sheet: Worksheet, table: Table, *, header_row: int, extra: dict[int, Sequence[str]] | None = None
) -> None:
    """Set each column's width from its header and the widest value shown (plus `extra` texts per column)."""
    for index, column in enumerate(table.columns, start=1):
        texts = [column.label, *(_display(row[index - 1], cell_kind(table, column, row)) for row in table.rows)]
        texts += (extra or {}).get(index, [])
        width = max(len(text) for text in texts) + 2
        sheet.column_dimensions[get_column_letter(index)].width = min(max(width, MIN_WIDTH), MAX_WIDTH)


def _sheet_title(title: str, used: set[str]) -> str:
    """A sheet name Excel accepts: no []:*?/\\, at most 31 characters, unique (case-insensitively)."""
    base = _SHEET_TITLE_FORBIDDEN.sub(" ", title).strip()[:MAX_SHEET_TITLE] or "Sheet"
    candidate, number = base, 2
    while candidate.lower() in used:
        suffix = f" ({number})"
        candidate, number = base[: MAX_SHEET_TITLE - len(suffix)] + suffix, number + 1
    used.add(candidate.lower())
    return candidate


def _add_chart(placed: _Placed, chart: Chart) -> None:
    """A native line or bar chart of the table's `chart.y` columns against `chart.x`, beside the table."""
    if not placed.table.rows:
        return
    drawing = LineChart() if chart.kind == "line" else BarChart()
    if isinstance(drawing, BarChart):
        drawing.type = "col"
    drawing.title = chart.title
    drawing.width, drawing.height = 24, 10
    for name in chart.y:
        column = placed.column_index(name)
        data = Reference(placed.sheet, min_col=column, min_row=placed.header_row, max_row=placed.last_row)
        drawing.add_data(data, titles_from_data=True)
    x_column = placed.column_index(chart.x)
    drawing.set_categories(
        Reference(placed.sheet, min_col=x_column, min_row=placed.header_row + 1, max_row=placed.last_row)
    )
    columns = {column.name: column for column in placed.table.columns}
    x_kind = columns[chart.x].kind
    y_kind = columns[chart.y[0]].kind
    if x_kind is Kind.DATE and isinstance(drawing, LineChart):
        drawing.x_axis = DateAxis(crossAx=drawing.y_axis.axId, majorTimeUnit="days")
        drawing.y_axis.crossAx = drawing.x_axis.axId
    if x_kind is Kind.DATE:
        drawing.x_axis.number_format = DATE_FORMAT
    drawing.x_axis.title = columns[chart.x].label
    drawing.y_axis.title = "USDT" if y_kind is Kind.AMOUNT else columns[chart.y[0]].label
    drawing.y_axis.number_format = (
        AXIS_AMOUNT_FORMAT if y_kind is Kind.AMOUNT else NUMBER_FORMATS.get(y_kind, "General")
    )
    drawing.x_axis.delete = False  # openpyxl leaves it unset, and recent Excel then hides the axes
    drawing.y_axis.delete = False
    if len(chart.y) == 1:
        drawing.legend = None
    anchor = placed.sheet.cell(row=placed.header_row, column=len(placed.table.columns) + 2).coordinate
    placed.sheet.add_chart(drawing, anchor)
