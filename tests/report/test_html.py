"""The HTML report: every table and chart of the model, escaped, formatted for people, offline, drawn by Chromium."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.report.html import TABLE_BUDGET, column_px, render_html, table_parts, write_html
from pipeline.report.model import (
    TOTAL,
    Cell,
    Chart,
    Column,
    Freshness,
    KeyFigure,
    Kind,
    Missing,
    Period,
    Report,
    Table,
    cell_kind,
    for_people,
)
from pipeline.report.text import format_amount, format_cell, format_points, format_rate
from tests.report.browser import WINDOW, Layout, decode_png, render, too_wide

pytestmark = pytest.mark.slow

EVIL = "<script>alert('x')</script>"
BLUE = bytes((0x00, 0x72, 0xB2))
"""The first series colour: pixels of it in the screenshot mean the charts were painted."""


def _table(name: str, title: str, columns: list[tuple[str, str, Kind]], rows: list[tuple[Cell, ...]]) -> Table:
    return Table(
        name=name,
        title=title,
        columns=tuple(Column(*column) for column in columns),
        rows=tuple(rows),
        note=f"What {title.lower()} shows.",
    )


def month_report(*, broker_code: str | None = None) -> Report:
    """A January with every kind of cell: large, tiny and negative amounts, rates, None, booleans, an unsafe code."""
    period = Period.month(2025, 1)
    days = period.day_list()
    by_day = _table(
        "by_day",
        "By day",
        [
            ("day", "Day", Kind.DATE),
            ("orders", "Orders", Kind.INTEGER),
            ("net_fee_usdt", "Net fee (USDT)", Kind.AMOUNT),
            ("broker_rebate_usdt", "Broker rebate (USDT)", Kind.AMOUNT),
        ],
        [
            (day, 100 + index * 7, Decimal(1500 + 90 * index) + Decimal("0.125"), Decimal(300 + 25 * (index % 9)))
            for index, day in enumerate(days)
        ],
    )
    by_code = _table(
        "by_broker_code",
        "By broker code",
        [
            ("broker_code", "Broker code", Kind.TEXT),
            ("broker_rebate_usdt", "Broker rebate (USDT)", Kind.AMOUNT),
            ("rebate_rate_pct", "Rebate rate", Kind.RATE),
        ],
        [
            ("alpha", Decimal("12345.678"), Decimal("0.2")),
            ("beta", Decimal("4321.5"), Decimal("0.15")),
            (EVIL, Decimal("0.000123456789"), Decimal("0.000042")),
            ("refunds", Decimal("-250.5"), None),
        ],
    )
    by_code = replace(by_code, total=(TOTAL, Decimal("16416.678123456789"), Decimal("0.19")))
    summary = replace(
        _table(
            "summary",
            "Summary",
            [
                ("metric", "Metric", Kind.TEXT),
                ("this_period", "This period", Kind.AMOUNT),
                ("previous_period", "Previous period", Kind.AMOUNT),
                ("change", "Change", Kind.AMOUNT),
                ("change_pct", "Change %", Kind.RATE),
            ],
            [
                ("Broker rebate (USDT)", Decimal("16416.678123"), Decimal(15000), Decimal("1416.678123"),
                 Decimal("0.0944")),
                ("Net fee (USDT)", Decimal("80000.5"), Missing.NO_DATA, Missing.NO_DATA, Missing.NO_DATA),
                ("Effective rate", Decimal("0.2052"), Decimal("0.25"), Decimal("-0.0448"), None),
                ("Orders", 4200, 4400, -200, Decimal("-0.04545")),
            ],
        ),
        row_kinds=(Kind.AMOUNT, Kind.AMOUNT, Kind.RATE, Kind.INTEGER),
    )  # fmt: skip
    reconciliation = replace(
        _table(
            "reconciliation",
            "Reconciliation",
            [
                ("file", "File", Kind.TEXT),
                ("sha256", "SHA-256", Kind.TEXT),
                ("net_fee_in_file_usdt", "Net fee in file (USDT)", Kind.AMOUNT),
                ("net_fee_in_database_usdt", "Net fee in database (USDT)", Kind.AMOUNT),
                ("matches", "Matches", Kind.BOOLEAN),
            ],
            [("api file 2024-12-15 to 2025-01-20", "ab" * 32, Decimal("9000.1"), Decimal("9000.1"), True)],
        ),
        cards=True,
    )
    empty = _table("affiliated", "Affiliated", [("uid", "UID", Kind.TEXT), ("rebate", "Rebate", Kind.AMOUNT)], [])
    return Report(
        period=period,
        previous=period.previous(),
        broker_code=broker_code,
        generated_at=datetime(2025, 2, 1, 2, 0, tzinfo=UTC),
        timezone="UTC+08:00",
        summary=summary,
        tables=(by_day, by_code, empty, reconciliation),
        charts=(
            Chart("by_day", "Fees and rebates by day", "line", "day", ("net_fee_usdt", "broker_rebate_usdt")),
            Chart("by_broker_code", "Rebate by broker code", "bar", "broker_code", ("broker_rebate_usdt",)),
            Chart("affiliated", "Affiliated rebates", "bar", "uid", ("rebate",)),
        ),
        sources=("api: 1 file (2024-12-15..2025-01-20)",),
        missing_days=tuple(date(2025, 1, day) for day in (21, 22, 23, 31)),
        reconciliation_ok=True,
        warnings=(f"broker code {EVIL} appears in no file",),
        freshness=Freshness(datetime(2025, 2, 1, 1, 0, tzinfo=UTC), date(2025, 1, 20)),
        key_figures=(
            KeyFigure("Broker rebate (USDT)", Decimal("16416.678123"), Kind.AMOUNT, Decimal("0.0944"), Kind.RATE),
            KeyFigure("Net fee (USDT)", Decimal("80000.5"), Kind.AMOUNT, Missing.NO_DATA, Kind.RATE),
            KeyFigure("Effective rate", Decimal("0.2052"), Kind.RATE, Decimal("-0.0448"), Kind.RATE_POINTS),
        ),
        glossary=(("Broker rebate (USDT)", "The rebate amount to the broker."),),
        incomplete=("2025-01-21..2025-01-23: no api file loaded yet", "2025-01-31: no api file loaded yet"),
    )


class Page(HTMLParser):
    """What a reader sees: table cells per section (every part of a split table), the svg elements per chart, text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.section: str | None = None
        self.chart: str | None = None
        self.cells: dict[str, list[list[str]]] = {}
        self.parts: dict[str, int] = {}
        self.td_classes: dict[str, list[str]] = {}
        self.shapes: dict[str, list[dict[str, str]]] = {}
        self.charts: dict[str, dict[str, str]] = {}
        self.text: list[str] = []
        self.stack: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        self.stack.append(tag)
        if tag == "section" and "data-table" in attributes:
            self.section = attributes["data-table"]
            self.cells[self.section] = []
            self.parts[self.section] = 0
        elif tag == "svg":
            self.chart = attributes.get("data-chart", "")
            self.charts[self.chart] = attributes
            self.shapes[self.chart] = []
        elif self.chart is not None:
            self.shapes[self.chart].append({"tag": tag, **attributes})
        elif tag == "table" and self.section is not None:
            self.parts[self.section] += 1
        elif tag == "tr" and self.section is not None:
            self.cells[self.section].append([])
        elif tag == "td" and self.section is not None:
            self.cells[self.section][-1].append("")
            self.td_classes.setdefault(self.section, []).append(attributes.get("class", ""))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.stack:
            self.stack.pop()
        if tag == "svg":
            self.chart = None
        elif tag == "section":
            self.section = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.stack and self.stack[-1] == "td" and self.section is not None:
            self.cells[self.section][-1][-1] += data

    def rows(self, table: str) -> list[list[str]]:
        return [row for row in self.cells[table] if row]

    def count(self, chart: str, css_class: str) -> int:
        return sum(1 for shape in self.shapes[chart] if shape.get("class") == css_class)


def page_text(text: str) -> str:
    return " ".join(Page(text).text)


def shown(table: Table) -> list[list[str]]:
    """Each row as the page writes it (the short list if any, then the Total row), every column once."""
    table = for_people(table)
    rows: list[tuple[int | None, tuple[Cell, ...]]] = (
        [(index, row) for index, row in enumerate(table.rows)]
        if table.short_rows is None
        else [(None, row) for row in table.short_rows]
    )
    if table.total is not None:
        rows.append((None, table.total))
    return [
        [
            "" if cell is None and column.kind in (Kind.TEXT, Kind.DATE, Kind.BOOLEAN, Kind.MONTH)
            else format_cell(cell, cell_kind(table, column, index))
            for cell, column in zip(row, table.columns, strict=True)
        ]
        for index, row in rows
    ]  # fmt: skip


@pytest.fixture
def report() -> Report:
    return month_report()


def test_every_row_of_every_table_is_shown_formatted_in_order(report: Report) -> None:
    page = Page(render_html(report))
    assert list(page.cells) == ["summary", "by_day", "by_broker_code", "affiliated", "reconciliation"]
    for table in (report.summary, *report.tables):
        if table.rows and not table.cards:
            assert page.rows(table.name) == shown(table), table.name


def test_summary_rows_are_written_as_their_own_kind(report: Report) -> None:
    rows = Page(render_html(report)).rows("summary")
    assert rows[1] == ["Net fee (USDT)", "80,000.50", "No data", "No data", "No data"]
    assert rows[2] == ["Effective rate", "20.52%", "25.00%", "-4.48 pp", "—"]
    assert rows[3] == ["Orders", "4,200", "4,400", "-200", "-4.55%"]


def test_a_total_row_closes_the_table_bold(report: Report) -> None:
    text = render_html(report)
    assert '<tr class="total"><td>Total</td><td class="num" title="16416.678123456789">16,416.68</td>' in text
    assert Page(text).rows("by_broker_code")[-1] == ["Total", "16,416.68", "19.00%"]


def test_tables_keep_titles_notes_and_say_when_empty(report: Report) -> None:
    text = render_html(report)
    for table in (report.summary, *report.tables):
        assert f"<h2>{table.title}</h2>" in text
        assert table.note in text
    assert page_text(text).count("No rows in this period.") == 1


def test_text_from_files_is_shown_as_text_never_as_markup(report: Report) -> None:
    text = render_html(replace(report, broker_code=EVIL))
    assert "<script" not in text.lower()
    assert "&lt;script&gt;" in text
    assert f"broker code {EVIL}" in page_text(text)  # title, facts and warning read as the code itself
    assert [EVIL, "0.00", "0.00%"] in Page(text).rows("by_broker_code")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1234567.891", "1,234,567.89"),
        ("2.675", "2.68"),  # half up, on the Decimal: a float would print 2.67
        ("-1234.5", "-1,234.50"),
        ("0", "0.00"),
        ("0.5", "0.50"),
        ("0.000123456789", "0.00"),
        ("-0.000000000000000001", "0.00"),  # never -0.00
        ("-0.005", "-0.01"),
        ("99999999999999999999.999999999999999999", "100,000,000,000,000,000,000.00"),
    ],
)
def test_amounts_read_with_two_fixed_decimals_separators_and_sign(value: str, expected: str) -> None:
    assert format_amount(Decimal(value)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.12345", "12.35%"), ("-0.5", "-50.00%"), ("0.000042", "0.00%"), ("1", "100.00%"), ("0", "0.00%")],
)
def test_rates_read_as_percentages(value: str, expected: str) -> None:
    assert format_rate(Decimal(value)) == expected


def test_a_rates_change_reads_in_percentage_points() -> None:
    assert format_points(Decimal("0.0123")) == "+1.23 pp"
    assert format_points(Decimal("-0.0448")) == "-4.48 pp"
    assert format_points(Decimal("0")) == "0.00 pp"


def test_cells_of_every_kind_read_for_people() -> None:
    assert format_cell(None, Kind.RATE) == "—"
    assert format_cell(True, Kind.BOOLEAN) == "Yes"
    assert format_cell(False, Kind.BOOLEAN) == "No"
    assert format_cell(Missing.NOT_AVAILABLE, Kind.INTEGER) == "n/a"
    assert format_cell(Missing.NO_DATA, Kind.AMOUNT) == "No data"
    assert format_cell(1234567, Kind.INTEGER) == "1,234,567"
    assert format_cell(date(2025, 1, 2), Kind.DATE) == "2025-01-02"
    assert format_cell(date(2025, 1, 1), Kind.MONTH) == "2025-01"
    assert format_cell(EVIL, Kind.TEXT) == EVIL  # escaping is the page's job, not the formatter's


def test_negative_amounts_are_marked_numbers_right_aligned_and_exact_in_the_tooltip(report: Report) -> None:
    text = render_html(report)
    page = Page(text)
    classes = page.td_classes["by_broker_code"]
    assert page.rows("by_broker_code")[3] == ["refunds", "-250.50", "—"]
    assert classes[9:12] == ["", "num negative", "num empty"]
    assert 'th class="num">Broker rebate (USDT)</th>' in text
    assert 'title="0.000123456789">0.00</td>' in text


def test_a_wide_table_is_split_into_parts_that_fit_repeating_its_key_column() -> None:
    columns = [("broker_code", "Broker code", Kind.TEXT)] + [
        (f"amount_{index}_usdt", f"Amount {index} (USDT)", Kind.AMOUNT) for index in range(14)
    ]
    wide = _table("wide", "Wide", columns, [("656204a3b0e9BCDE", *(Decimal("12345678.12"),) * 14)])
    parts = table_parts(wide)
    assert len(parts) > 1
    assert all(part[0] == 0 for part in parts)
    assert sorted({index for part in parts for index in part}) == list(range(15))
    for part in parts:
        assert sum(column_px(wide, index) for index in part) <= TABLE_BUDGET
    page = Page(render_html(replace(month_report(), tables=(wide,), charts=())))
    assert page.parts["wide"] == len(parts)


def test_the_reconciliation_is_one_card_per_file(report: Report) -> None:
    text = render_html(report)
    assert '<div class="cards">' in text
    assert '<article class="card"><h3>api file 2024-12-15 to 2025-01-20</h3>' in text
    assert f'<dd class="wide">{"ab" * 32}</dd>' in text


def test_the_page_loads_nothing_from_outside(report: Report) -> None:
    text = render_html(report).lower()
    for reference in ("http://", "https://", "src=", "<link", "<script", "@import", "url(", "<img", "<iframe"):
        assert reference not in text
    assert "content-security-policy" in text


def test_it_prints_on_a4_landscape_repeating_table_headers(report: Report) -> None:
    text = render_html(report)
    assert "@page { size: A4 landscape;" in text
    assert "thead { display: table-header-group; }" in text


def test_charts_draw_a_point_or_bar_per_value(report: Report) -> None:
    page = Page(render_html(report))
    assert set(page.charts) == {"by_day", "by_broker_code", "affiliated"}
    assert page.count("by_day", "point") == 2 * 31
    assert page.count("by_day", "line") == 2
    assert page.count("by_broker_code", "bar") == 4
    assert page.count("affiliated", "bar") == 0
    for attributes in page.charts.values():
        assert attributes["role"] == "img"
        assert attributes["aria-label"]


def test_a_chart_has_title_axis_labels_gridlines_legend_and_tooltips(report: Report) -> None:
    text = render_html(report)
    page = Page(text)
    chart = page.shapes["by_day"]
    assert page.count("by_day", "grid") >= 3
    assert page.count("by_day", "swatch") == 2  # two series: a legend
    assert page.count("by_broker_code", "swatch") == 0
    assert "Fees and rebates by day" in text
    assert ">Day</text>" in text and ">USDT</text>" in text
    assert sum(1 for shape in chart if shape["tag"] == "title") >= 62
    assert "2025-01-01 · Broker rebate (USDT): 300.00" in text


def test_y_axis_is_round_steps_around_zero_including_negatives(report: Report) -> None:
    page = Page(render_html(report))
    text = render_html(report)
    assert ">-5,000</text>" in text and ">0</text>" in text and ">15,000</text>" in text
    bars = [shape for shape in page.shapes["by_broker_code"] if shape.get("class") == "bar"]
    zero = next(shape for shape in page.shapes["by_broker_code"] if shape.get("class") == "zero")
    assert float(bars[3]["y"]) == float(zero["y1"])  # drawn down from the zero line
    assert float(bars[0]["y"]) + float(bars[0]["height"]) == pytest.approx(float(zero["y1"]))


def test_empty_and_single_point_charts_still_draw(report: Report) -> None:
    one_day = replace(report.table("by_day"), rows=report.table("by_day").rows[:1])
    single = replace(report, tables=(one_day,), charts=(report.charts[0],))
    page = Page(render_html(single))
    assert page.count("by_day", "point") == 2
    assert page.count("by_day", "line") == 0
    assert "No data in this period" in render_html(report)


def test_the_header_says_period_status_freshness_and_missing_days_once(report: Report) -> None:
    text = page_text(render_html(report))
    assert "OKX broker commission report 2025-01" in text
    assert "2025-01-01 to 2025-01-31 (31 days), days in UTC+08:00" in text
    assert "2024-12-01 to 2024-12-31" in text
    assert "2025-02-01 02:00:00 UTC" in text  # generated at, in its own offset here (UTC)
    assert "Latest complete day" in text and "2025-01-20" in text
    assert "Reconciled" in text and "Not reconciled" not in text
    assert text.count("2025-01-21..2025-01-23: no api file loaded yet") == 1
    assert "Incomplete: 4 days" in text
    failed = page_text(render_html(replace(report, reconciliation_ok=False, missing_days=())))
    assert "Not reconciled" in failed and "Incomplete" not in failed
    later = replace(report, freshness=Freshness(None, None, (date(2025, 1, 31),)))
    assert "Not over yet: 2025-01-31" in page_text(render_html(later))


def test_key_figures_come_first_with_their_change(report: Report) -> None:
    text = page_text(render_html(report))
    assert "16,416.68 ▲ 9.44% vs 2024-12" in text
    assert "No data for 2024-12" in text
    assert "▼ 4.48 pp vs 2024-12" in text


def test_the_glossary_and_the_exactness_note_close_the_page(report: Report) -> None:
    text = page_text(render_html(report))
    assert "Glossary" in text and "The rebate amount to the broker." in text
    assert "doubles" in text and "exactly, to 18 decimals" in text


def test_a_chart_of_a_column_the_table_lacks_is_an_error_naming_it(report: Report) -> None:
    broken = replace(report, charts=(Chart("by_day", "Oops", "line", "day", ("nope",)),))
    with pytest.raises(ValueError, match="'nope'"):
        render_html(broken)
    with pytest.raises(ValueError, match="'pie'"):
        render_html(replace(report, charts=(Chart("by_day", "Pie", "pie", "day", ("orders",)),)))


def test_write_html_writes_one_file_and_returns_its_path(report: Report, tmp_path: Path) -> None:
    path = write_html(report, tmp_path / "reports" / "commission_2025-01.html")
    assert path.read_text(encoding="utf-8") == render_html(report)
    assert [child.name for child in path.parent.iterdir()] == ["commission_2025-01.html"]


def test_a_report_from_the_database_shows_every_table_and_charts_every_value(january_report: Report) -> None:
    page = Page(render_html(january_report))
    assert list(page.cells) == [table.name for table in (january_report.summary, *january_report.tables)]
    for table in january_report.tables:
        if table.cards:
            continue
        expected, parts = shown(table), page.parts[table.name]
        if parts == 1:
            assert page.rows(table.name) == expected, table.name
        else:  # each part shows every row, the key column first
            assert len(page.rows(table.name)) == len(expected) * parts, table.name
            assert [row[0] for row in page.rows(table.name)] == [row[0] for row in expected] * parts
    for chart in january_report.charts:
        values = [value for name in chart.y for value in january_report.table(chart.table).column(name)]
        drawn = page.count(chart.table, "bar" if chart.kind == "bar" else "point")
        assert drawn == sum(1 for value in values if isinstance(value, Decimal)), chart.table
    text = page_text(render_html(january_report))
    for developer_word in ("Kind", "trade_date", "REBATES_TZ", "window_id"):
        assert developer_word not in text


@dataclass(frozen=True)
class Rendered:
    """The January report from the database as Chromium drew it at 1280 px: its DOM, layout and screenshot."""

    source: str
    dom: str
    layout: Layout
    screenshot: bytes


@pytest.fixture(scope="module")
def rendered(january_report: Report, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    work = tmp_path_factory.mktemp("chromium")
    page = write_html(january_report, work / "commission_2025-01.html")
    dom, layout, shot = render(page, work)
    return Rendered(page.read_text(encoding="utf-8"), dom, layout, shot)


@pytest.mark.integration
def test_chromium_fits_every_table_in_a_1280_px_window(rendered: Rendered) -> None:
    assert rendered.layout.window == WINDOW[0]
    assert len(rendered.layout.tables) > 12
    assert too_wide(rendered.layout) == []
    assert rendered.layout.page <= rendered.layout.window, "nothing makes the page scroll sideways"


@pytest.mark.integration
def test_chromium_renders_the_page_with_its_charts(rendered: Rendered) -> None:
    drawn = Page(rendered.dom)
    assert set(drawn.charts) == {"trend", "by_day", "by_instrument_type"}
    assert drawn.rows("by_day") == Page(rendered.source).rows("by_day")
    width, height, channels, pixels = decode_png(rendered.screenshot)
    assert (width, height) == WINDOW
    colours = {pixels[offset : offset + 3] for offset in range(0, len(pixels), channels * 3)}
    assert len(colours) > 50, "the screenshot is (nearly) blank"
    white = bytes((255, 255, 255))
    inked = sum(1 for offset in range(0, len(pixels), channels * 3) if pixels[offset : offset + 3] != white)
    assert inked > len(pixels) // (channels * 3) // 50, "hardly anything was painted"
    blue = pixels.count(BLUE)
    assert blue > 200, f"only {blue} pixels of the first series colour: the charts did not draw"
