"""Write a `Report` as an Excel workbook: a Summary sheet, a sheet per table, a Glossary; set up to print on A4."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell.cell import Cell as SheetCell
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.chart.axis import DateAxis
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.worksheet import Worksheet

from pipeline.formulas import write_text
from pipeline.report.model import (
    NUMERIC_KINDS,
    Cell,
    Chart,
    Kind,
    Report,
    Table,
    cell_kind,
    for_people,
)
from pipeline.report.words import EXACTNESS, facts, moment, status_line, zone_note

AMOUNT_FORMAT = "#,##0.00"
"""USDT with thousands separators and exactly 2 decimals; the cell holds the amount as Excel does (a double)."""
RATE_FORMAT = "0.00%"
RATE_POINTS_FORMAT = '+0.00" pp";-0.00" pp";0.00" pp"'
"""A rate's change: the cell holds percentage points (the ratio times 100)."""
INTEGER_FORMAT = "#,##0"
DATE_FORMAT = "yyyy-mm-dd"
MONTH_FORMAT = "yyyy-mm"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
NUMBER_FORMATS = {
    Kind.AMOUNT: AMOUNT_FORMAT,
    Kind.RATE: RATE_FORMAT,
    Kind.RATE_POINTS: RATE_POINTS_FORMAT,
    Kind.INTEGER: INTEGER_FORMAT,
    Kind.DATE: DATE_FORMAT,
    Kind.MONTH: MONTH_FORMAT,
}

FONT_NAME = "Arial"
"""Every cell's font, named: LibreOffice and Excel then lay the sheet out alike (Liberation Sans stands in)."""
FONT_SIZE = 10
BODY_FONT = Font(name=FONT_NAME, size=FONT_SIZE)
BOLD_FONT = Font(name=FONT_NAME, size=FONT_SIZE, bold=True)
TITLE_FONT = Font(name=FONT_NAME, size=14, bold=True)
NOTE_FONT = Font(name=FONT_NAME, size=9, italic=True, color="555555")
OK_FONT = Font(name=FONT_NAME, size=FONT_SIZE, bold=True, color="1A7F37")
PROBLEM_FONT = Font(name=FONT_NAME, size=FONT_SIZE, bold=True, color="B42318")
HEADER_FILL = PatternFill("solid", fgColor="DDE4EE")
HEADER_BORDER = Border(bottom=Side(style="thin", color="8C959F"))
TOTAL_BORDER = Border(top=Side(style="thin"), bottom=Side(style="double"))

SUMMARY_COLUMNS = 5
"""The Summary sheet's facts and notes span at least this many columns (a statement's summary has two)."""
FACT_WIDTH = 20
"""The least width of a Summary column: a date-time (`yyyy-mm-dd hh:mm:ss`) fits."""
MAX_SHEET_TITLE = 31
MIN_WIDTH, MAX_WIDTH = 8, 40
"""Column widths in characters; longer text wraps inside its cell."""
TEXT_PER_WIDTH = 1.15
"""Characters of proportional text per unit of column width (a unit is a digit's width; most letters are narrower)."""
LINE_HEIGHT = 13.0
"""Points per line of 10-point text, for the rows whose height is set (headers, notes)."""
PORTRAIT_WIDTH = 100
"""About how many characters of width fit across a portrait A4 page; wider sheets print landscape."""
CHART_WIDTH_CM, CHART_HEIGHT_CM = 24.0, 8.0
"""The widest and the height of a chart; a chart is never wider than its table (so it does not widen the page)."""
CM_PER_WIDTH = 0.19
"""About how many centimetres one unit of column width prints as (a 10-point digit)."""
SMALL_AXIS = 50
"""Below this largest value, a chart's USDT axis shows cents."""
ONE_PAGE_ROWS = 45
"""A sheet of at most this many rows is scaled to print on one page, its chart included, rather than spill a few rows
onto a second page or cut the chart in two (LibreOffice ignores manual page breaks when it scales to fit)."""
_SHEET_TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


@dataclass(frozen=True)
class _Placed:
    """Where a table landed on its sheet, for the charts that draw from it."""

    sheet: Worksheet
    table: Table
    header_row: int

    @property
    def last_row(self) -> int:
        """The last data row (the Total row after it is not charted)."""
        return self.header_row + len(self.table.rows)

    def column_index(self, name: str) -> int:
        """The sheet column (from 1) of a table column."""
        return [column.name for column in self.table.columns].index(name) + 1


def write_xlsx(report: Report, path: Path) -> Path:
    """Write the report to `path` (replaced atomically if it exists) and return it.

    Amounts are numeric cells written from their Decimals, shown with 2 decimals (Excel keeps them as doubles, about
    15 significant digits; the CSV files keep the exact text), rates are percentages, days real dates. Each table's
    sheet has its header in row 1 (bold, frozen, filtered, repeated on every printed page), its Total row after the
    rows and its note under them; each of `report.charts` is drawn under its table. Every sheet prints on A4, one
    page wide, with the report's title in the header and `Page x of y` in the footer.
    """
    workbook = Workbook()
    summary = workbook.active
    assert summary is not None
    summary.title = "Summary"
    placed = {report.summary.name: _write_summary(summary, report)}
    titles = {"summary"}
    for table in report.tables:
        sheet = workbook.create_sheet(_sheet_title(table.title, titles))
        placed[table.name] = _write_table_sheet(sheet, for_people(table))
    glossary = workbook.create_sheet(_sheet_title("Glossary", titles))
    _write_glossary(glossary, report)
    for chart in report.charts:
        if chart.table in placed:
            _add_chart(placed[chart.table], chart)
    for sheet in workbook.worksheets:
        assert isinstance(sheet, Worksheet)
        _page_setup(sheet, report)
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
    """The title, the status, the report's facts and warnings, then the metrics table."""
    table = for_people(report.summary)
    width = max(len(table.columns), SUMMARY_COLUMNS)
    _put(sheet, 1, 1, report.title, TITLE_FONT)
    line = status_line(report)
    status = _put(sheet, 2, 1, line[0].upper() + line[1:], OK_FONT if report.reconciliation_ok else PROBLEM_FONT)
    _merge_wrapped(sheet, 2, width, status)
    row = 4
    labels = []
    for label, value in facts(report):
        _put(sheet, row, 1, label, BOLD_FONT).alignment = Alignment(vertical="top")
        labels.append(label)
        if isinstance(value, datetime):
            stamp = _put(sheet, row, 2, value.replace(tzinfo=None), BODY_FONT)
            stamp.number_format = DATETIME_FORMAT
            stamp.alignment = Alignment(horizontal="left", vertical="top")  # level with its zone note
            zone = _put(sheet, row, 3, zone_note(value, report.timezone), BODY_FONT)
            _merge_wrapped(sheet, row, width, zone, first_column=3)
        else:
            _merge_wrapped(sheet, row, width, _put(sheet, row, 2, value, BODY_FONT), first_column=2)
        row += 1
    for line in report.incomplete:
        _put(sheet, row, 1, "Incomplete", BOLD_FONT).alignment = Alignment(vertical="top")
        _merge_wrapped(sheet, row, width, _put(sheet, row, 2, line, BODY_FONT), first_column=2)
        row += 1
    for warning in report.warnings:
        _put(sheet, row, 1, "Warning", PROBLEM_FONT).alignment = Alignment(vertical="top")
        _merge_wrapped(sheet, row, width, _put(sheet, row, 2, warning, BODY_FONT), first_column=2)
        row += 1
    row += 1
    _merge_wrapped(sheet, row, width, _put(sheet, row, 1, table.note, NOTE_FONT))
    placed = _write_table(sheet, table, header_row=row + 1)
    _merge_wrapped(sheet, placed.end + 2, width, _put(sheet, placed.end + 2, 1, EXACTNESS, NOTE_FONT))
    _fit_widths(sheet, table, extra={1: labels})
    for column in range(2, width + 1):  # the facts' columns: wide enough for a date-time, whatever the table's
        letter = get_column_letter(column)
        sheet.column_dimensions[letter].width = max(sheet.column_dimensions[letter].width or 0, FACT_WIDTH)
    _fit_heights(sheet, header_row=placed.header_row)
    return placed


def _write_table_sheet(sheet: Worksheet, table: Table) -> _Placed:
    """The table from row 1 (its header frozen and filtered), its Total row, then its note."""
    placed = _write_table(sheet, table, header_row=1)
    sheet.freeze_panes = "A2"
    sheet.print_title_rows = "1:1"
    if table.rows:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(table.columns))}{placed.last_row}"
    _fit_widths(sheet, table)
    note_row = placed.end + 2
    _merge_wrapped(sheet, note_row, len(table.columns), _put(sheet, note_row, 1, table.note, NOTE_FONT))
    _fit_heights(sheet, header_row=1)
    return placed


@dataclass(frozen=True)
class _Written(_Placed):
    end: int
    """The last row written (the Total row when there is one)."""


def _write_table(sheet: Worksheet, table: Table, *, header_row: int) -> _Written:
    """Header at `header_row` (bold, filled, aligned as its column), one typed, formatted row per row, the Total."""
    for number, column in enumerate(table.columns, start=1):
        cell = _put(sheet, header_row, number, column.label, BOLD_FONT)
        cell.fill = HEADER_FILL
        cell.border = HEADER_BORDER
        cell.alignment = _alignment(column.kind, header=True)
    rows = table.indexed_rows()
    if not table.rows:
        _put(sheet, header_row + 1, 1, "No rows in this period.", NOTE_FONT)
    offset = header_row + max(1, len(table.rows))
    for position, (index, row) in enumerate(rows):
        target_row = header_row + 1 + position if index is not None else offset + 1
        for number, (column, value) in enumerate(zip(table.columns, row, strict=True), start=1):
            cell = _value(sheet, target_row, number, value, cell_kind(table, column, index), column.kind)
            if index is None:
                cell.font = BOLD_FONT
                cell.border = TOTAL_BORDER
    end = offset + 1 if table.total is not None else offset
    return _Written(sheet, table, header_row, end)


def _value(sheet: Worksheet, row: int, column: int, value: Cell, kind: Kind, column_kind: Kind) -> SheetCell:
    """One typed cell: numbers with their fixed format, Yes/No, text never run as a formula; aligned as its column."""
    written: Cell
    if isinstance(value, bool):
        written = "Yes" if value else "No"
    elif isinstance(value, Decimal) and kind is Kind.RATE_POINTS:
        written = value.scaleb(2)
    else:
        written = value
    cell = _put(sheet, row, column, written, BODY_FONT)
    if value is not None and not isinstance(value, bool | str) and kind in NUMBER_FORMATS:
        cell.number_format = NUMBER_FORMATS[kind]
    cell.alignment = _alignment(column_kind, wrap=isinstance(value, str) and len(value) > MAX_WIDTH)
    return cell


def _alignment(kind: Kind, *, wrap: bool = False, header: bool = False) -> Alignment:
    """Numbers (and their headers) to the right; text and days to the left, a little in from the number before."""
    vertical = "bottom" if header else "top"
    if kind in NUMERIC_KINDS:
        return Alignment(horizontal="right", vertical=vertical, wrap_text=header)
    return Alignment(horizontal="left", vertical=vertical, indent=1, wrap_text=header or wrap)


def _put(sheet: Worksheet, row: int, column: int, value: Cell | datetime, font: Font) -> SheetCell:
    """Write a value with its font; text stays text (never a formula or an error code) and loses control characters."""
    cell = sheet.cell(row=row, column=column)
    if isinstance(value, str):
        write_text(cell, value)
    else:
        cell.value = value
    cell.font = font
    assert isinstance(cell, SheetCell)
    return cell


def _merge_wrapped(sheet: Worksheet, row: int, width: int, cell: SheetCell, first_column: int = 1) -> None:
    """Merge the row's cells from `first_column` across the table's width and wrap the text (`_fit_heights` makes
    the row tall enough once the widths are known)."""
    last = max(width, first_column)
    if last > first_column:
        sheet.merge_cells(start_row=row, start_column=first_column, end_row=row, end_column=last)
    cell.alignment = Alignment(wrap_text=True, vertical="top")


def _fit_heights(sheet: Worksheet, header_row: int) -> None:
    """Give each row holding wrapped text (a note, a long value; not the header) the lines it needs.

    Neither LibreOffice nor Excel sizes a merged cell's row by itself, and a row's height set here is what prints.
    """
    spans = {(cells.min_row, cells.min_col): cells.max_col for cells in sheet.merged_cells.ranges}
    needed: dict[int, int] = {}
    for cells in sheet.iter_rows():
        for cell in cells:
            if not isinstance(cell, SheetCell) or cell.row == header_row or not cell.alignment.wrap_text:
                continue
            last = spans.get((cell.row, cell.column), cell.column)
            width = sum(_width(sheet, column) for column in range(cell.column, last + 1))
            lines = sum(_lines_needed(part, width * TEXT_PER_WIDTH) for part in str(cell.value or "").split("\n"))
            needed[cell.row] = max(needed.get(cell.row, 1), lines)
    for number, lines in needed.items():
        sheet.row_dimensions[number].height = LINE_HEIGHT * lines + 3


def _width(sheet: Worksheet, column: int) -> float:
    return float(sheet.column_dimensions[get_column_letter(column)].width or 8.43)


def _display(value: Cell, kind: Kind) -> str:
    """About what Excel shows for a cell with its number format: what the column width must fit."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        scaled = value.scaleb(2) if kind in (Kind.RATE, Kind.RATE_POINTS) else value
        with localcontext() as context:
            context.prec = 80
            text = f"{scaled.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,.2f}"
        return text + ("%" if kind is Kind.RATE else " pp" if kind is Kind.RATE_POINTS else "")
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:%Y-%m}" if kind is Kind.MONTH else value.isoformat()


def _fit_widths(sheet: Worksheet, table: Table, extra: dict[int, Sequence[str]] | None = None) -> list[float]:
    """Each column as wide as its widest value (its header may wrap at spaces); the header row tall enough."""
    widths = []
    header_lines = 1
    rows = table.indexed_rows()
    for number, column in enumerate(table.columns, start=1):
        texts = [_display(row[number - 1], cell_kind(table, column, index)) for index, row in rows]
        texts += (extra or {}).get(number, [])
        longest_word = max(len(word) for word in column.label.split())
        width = min(max(max((len(text) for text in texts), default=0), longest_word, MIN_WIDTH) + 2, MAX_WIDTH)
        sheet.column_dimensions[get_column_letter(number)].width = width
        widths.append(float(width))
        header_lines = max(header_lines, _lines_needed(column.label, width - 2))
    if header_lines > 1:
        header = next(row for row in range(1, sheet.max_row + 1) if sheet.cell(row, 1).value == table.columns[0].label)
        sheet.row_dimensions[header].height = LINE_HEIGHT * header_lines + 2
    return widths


def _lines_needed(text: str, width: float) -> int:
    """How many lines `text` wraps into at spaces within `width` characters."""
    lines, used = 1, 0
    for word in text.split():
        if used and used + 1 + len(word) > width:
            lines, used = lines + 1, len(word)
        else:
            used += len(word) + (1 if used else 0)
    return lines


def _write_glossary(sheet: Worksheet, report: Report) -> None:
    """Term and meaning, one per row: every amount as OKX defines it, the signs, the words the report uses."""
    for index, label in enumerate(("Term", "Meaning"), start=1):
        header = _put(sheet, 1, index, label, BOLD_FONT)
        header.fill = HEADER_FILL
        header.border = HEADER_BORDER
    sheet.column_dimensions["A"].width = 26
    sheet.column_dimensions["B"].width = 110
    for row, (term, meaning) in enumerate(report.glossary, start=2):
        _put(sheet, row, 1, term, BOLD_FONT).alignment = Alignment(vertical="top")
        _put(sheet, row, 2, meaning, BODY_FONT).alignment = Alignment(wrap_text=True, vertical="top")
    _fit_heights(sheet, header_row=1)
    sheet.freeze_panes = "A2"
    sheet.print_title_rows = "1:1"


def _page_setup(sheet: Worksheet, report: Report) -> None:
    """A4, one page wide (as many long as needed), landscape when wide, the title and page x of y on every page."""
    used = sum(_width(sheet, column) for column in range(1, sheet.max_column + 1))
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.orientation = "landscape" if used > PORTRAIT_WIDTH else "portrait"
    properties = sheet.sheet_properties.pageSetUpPr
    assert properties is not None
    properties.fitToPage = True
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 1 if sheet.max_row <= ONE_PAGE_ROWS else 0
    sheet.page_margins = PageMargins(left=0.4, right=0.4, top=0.7, bottom=0.7, header=0.3, footer=0.3)
    header, footer = sheet.oddHeader, sheet.oddFooter
    assert header is not None and footer is not None
    header.left.text = _header_text(report.title)
    header.left.font = f"{FONT_NAME},Bold"
    header.right.text = "&A"
    footer.left.text = _header_text(f"Generated {moment(report.shown_generated_at, report.timezone)}")
    footer.right.text = "Page &P of &N"
    for part in (header.left, header.right, footer.left, footer.right):
        part.size = 8


def _axis_format(placed: _Placed, chart: Chart) -> str:
    """Whole USDT on the value axis, or cents where every value is small (a tick of 0.5 must not read 1)."""
    values = [abs(value) for name in chart.y for value in placed.table.column(name) if isinstance(value, Decimal)]
    return "#,##0" if values and max(values) >= SMALL_AXIS else "#,##0.00"


def _header_text(text: str) -> str:
    """Text for a page header or footer: `&` starts a code there, so a literal one is doubled."""
    return text.replace("&", "&&")


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
    """A native line or bar chart of the table's `chart.y` columns against `chart.x`, under the table and its note."""
    if not placed.table.rows:
        return
    drawing = LineChart() if chart.kind == "line" else BarChart()
    if isinstance(drawing, BarChart):
        drawing.type = "col"
    drawing.title = chart.title
    table_cm = sum(_width(placed.sheet, column) for column in range(1, len(placed.table.columns) + 1)) * CM_PER_WIDTH
    drawing.width = min(CHART_WIDTH_CM, table_cm)  # type: ignore[assignment]  # the stubs say int; it is centimetres
    drawing.height = CHART_HEIGHT_CM
    for name in chart.y:
        column = placed.column_index(name)
        data = Reference(placed.sheet, min_col=column, min_row=placed.header_row, max_row=placed.last_row)
        drawing.add_data(data, titles_from_data=True)
    for series in drawing.series:
        series.smooth = False  # straight lines between the points: a smoothed curve invents values between days
    x_column = placed.column_index(chart.x)
    drawing.set_categories(
        Reference(placed.sheet, min_col=x_column, min_row=placed.header_row + 1, max_row=placed.last_row)
    )
    columns = {column.name: column for column in placed.table.columns}
    x_kind = columns[chart.x].kind
    y_kind = columns[chart.y[0]].kind
    if x_kind is Kind.DATE and isinstance(drawing, LineChart):
        drawing.x_axis = DateAxis(crossAx=drawing.y_axis.axId, majorTimeUnit="days", baseTimeUnit="days")
        drawing.y_axis.crossAx = drawing.x_axis.axId
    elif x_kind is Kind.MONTH and isinstance(drawing, LineChart):
        drawing.x_axis = DateAxis(crossAx=drawing.y_axis.axId, majorTimeUnit="months", baseTimeUnit="months")
        drawing.y_axis.crossAx = drawing.x_axis.axId
    if x_kind in NUMBER_FORMATS:
        drawing.x_axis.number_format = NUMBER_FORMATS[x_kind]
    drawing.x_axis.title = columns[chart.x].label
    drawing.y_axis.title = "USDT" if y_kind is Kind.AMOUNT else columns[chart.y[0]].label
    drawing.y_axis.number_format = (
        _axis_format(placed, chart) if y_kind is Kind.AMOUNT else NUMBER_FORMATS.get(y_kind, "General")
    )
    drawing.x_axis.delete = False  # openpyxl leaves it unset, and recent Excel then hides the axes
    drawing.y_axis.delete = False
    if len(chart.y) == 1:
        drawing.legend = None
    elif drawing.legend is not None:
        drawing.legend.position = "b"
    placed.sheet.add_chart(drawing, f"A{placed.sheet.max_row + 2}")
