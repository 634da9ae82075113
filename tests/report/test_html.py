"""The HTML report: every table and chart of the model, escaped, formatted for people, offline, drawn by Chromium."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.report.html import format_amount, format_cell, format_rate, render_html, write_html
from pipeline.report.model import Cell, Chart, Column, Kind, Period, Report, Table, cell_kind

EVIL = "<script>alert('x')</script>"
BLUE = bytes((0x00, 0x72, 0xB2))
"""The first series colour: pixels of it in the screenshot mean the charts were painted."""
WINDOW = (1280, 2000)
CHROMIUM_TIMEOUT = 60


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
            ("trade_date", "Trade date", Kind.DATE),
            ("orders", "Orders", Kind.INTEGER),
            ("net_fee", "Net fee (USDT)", Kind.AMOUNT),
            ("broker_rebate", "Broker rebate (USDT)", Kind.AMOUNT),
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
            ("broker_rebate", "Broker rebate (USDT)", Kind.AMOUNT),
            ("rebate_rate", "Rebate rate", Kind.RATE),
        ],
        [
            ("alpha", Decimal("12345.678"), Decimal("0.2")),
            ("beta", Decimal("4321.5"), Decimal("0.15")),
            (EVIL, Decimal("0.000123456789"), Decimal("0.000042")),
            ("refunds", Decimal("-250.5"), None),
        ],
    )
    summary = _table(
        "summary",
        "Summary",
        [
            ("metric", "Metric", Kind.TEXT),
            ("kind", "Kind", Kind.TEXT),
            ("this_period", "This period", Kind.AMOUNT),
            ("previous_period", "Previous period", Kind.AMOUNT),
            ("change", "Change", Kind.AMOUNT),
            ("change_pct", "Change %", Kind.RATE),
        ],
        [
            (
                "Broker rebate",
                "amount",
                Decimal("16416.678123"),
                Decimal(15000),
                Decimal("1416.678123"),
                Decimal("0.0944"),
            ),
            ("Net fee", "amount", Decimal("80000.5"), Decimal(0), Decimal("80000.5"), None),
            ("Effective rate", "rate", Decimal("0.2052"), Decimal("0.25"), Decimal("-0.0448"), Decimal("-0.1792")),
            ("Orders", "integer", 4200, 4400, -200, Decimal("-0.04545")),
        ],
    )
    reconciliation = _table(
        "reconciliation",
        "Reconciliation",
        [
            ("window", "Window", Kind.TEXT),
            ("file_total", "File total (USDT)", Kind.AMOUNT),
            ("db_total", "Database total (USDT)", Kind.AMOUNT),
            ("ok", "Equal", Kind.BOOLEAN),
        ],
        [("2024-12-15..2025-01-20", Decimal("9000.1"), Decimal("9000.1"), True)],
    )
    empty = _table("affiliated", "Affiliated", [("uid", "UID", Kind.TEXT), ("rebate", "Rebate", Kind.AMOUNT)], [])
    return Report(
        period=period,
        previous=period.previous(),
        broker_code=broker_code,
        generated_at=datetime(2025, 2, 1, 2, 0, tzinfo=UTC),
        timezone="Asia/Shanghai",
        summary=summary,
        tables=(by_day, by_code, empty, reconciliation),
        charts=(
            Chart("by_day", "Fees and rebates by day", "line", "trade_date", ("net_fee", "broker_rebate")),
            Chart("by_broker_code", "Rebate by broker code", "bar", "broker_code", ("broker_rebate",)),
            Chart("affiliated", "Affiliated rebates", "bar", "uid", ("rebate",)),
        ),
        windows_covered=("2024-12-15..2025-01-20",),
        missing_days=tuple(date(2025, 1, day) for day in (21, 22, 23, 31)),
        reconciliation_ok=True,
        warnings=(f"broker code {EVIL} appears in no window",),
    )


class Page(HTMLParser):
    """What a reader sees: table cells per section, the svg elements per chart, all visible text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.section: str | None = None
        self.chart: str | None = None
        self.cells: dict[str, list[list[str]]] = {}
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
        elif tag == "svg":
            self.chart = attributes.get("data-chart", "")
            self.charts[self.chart] = attributes
            self.shapes[self.chart] = []
        elif self.chart is not None:
            self.shapes[self.chart].append({"tag": tag, **attributes})
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


@pytest.fixture
def report() -> Report:
    return month_report()


def test_every_row_of_every_table_is_shown_formatted_in_order(report: Report) -> None:
    page = Page(render_html(report))
    assert list(page.cells) == ["summary", "by_day", "by_broker_code", "affiliated", "reconciliation"]
    for table in (report.summary, *report.tables):
        if not table.rows:
            continue
        expected = [
            [format_cell(cell, cell_kind(table, column, row)) for cell, column in zip(row, table.columns, strict=True)]
            for row in table.rows
        ]
        assert page.rows(table.name) == expected


def test_summary_rows_are_written_as_their_own_kind(report: Report) -> None:
    rows = Page(render_html(report)).rows("summary")
    assert rows[2] == ["Effective rate", "rate", "20.52%", "25.00%", "-4.48%", "-17.92%"]
    assert rows[3] == ["Orders", "integer", "4,200", "4,400", "-200", "-4.55%"]


def test_tables_keep_titles_notes_and_say_when_empty(report: Report) -> None:
    text = render_html(report)
    for table in (report.summary, *report.tables):
        assert f"<h2>{table.title}</h2>" in text
        assert table.note in text
    assert page_text(text).count("No rows in this period.") == 1


def page_text(text: str) -> str:
    return " ".join(Page(text).text)


def test_text_from_files_is_shown_as_text_never_as_markup(report: Report) -> None:
    text = render_html(replace(report, broker_code=EVIL))
    assert "<script" not in text.lower()
    assert "&lt;script&gt;" in text
    shown = page_text(text)
    assert f"broker code {EVIL}" in shown  # title, facts and warning read as the code itself
    assert [EVIL, "0.00012345679", "0.0042%"] in Page(text).rows("by_broker_code")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1234567.891", "1,234,567.89"),
        ("2.675", "2.68"),  # half up, on the Decimal: a float would print 2.67
        ("-1234.5", "-1,234.50"),
        ("0", "0.00"),
        ("0.5", "0.50"),
        ("0.000123456789", "0.00012345679"),
        ("-0.000000000000000001", "-0.000000000000000001"),
        ("0.00000000000000000001", "0.00"),
        ("-0.001", "-0.001"),
        ("99999999999999999999.999999999999999999", "100,000,000,000,000,000,000.00"),
    ],
)
def test_amounts_read_exactly_enough_with_separators_and_sign(value: str, expected: str) -> None:
    assert format_amount(Decimal(value)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.12345", "12.35%"), ("-0.5", "-50.00%"), ("0.000042", "0.0042%"), ("1", "100.00%"), ("0", "0.00%")],
)
def test_rates_read_as_percentages(value: str, expected: str) -> None:
    assert format_rate(Decimal(value)) == expected


def test_cells_of_every_kind_read_for_people() -> None:
    assert format_cell(None, Kind.RATE) == "—"
    assert format_cell(True, Kind.BOOLEAN) == "yes"
    assert format_cell(1234567, Kind.INTEGER) == "1,234,567"
    assert format_cell(date(2025, 1, 2), Kind.DATE) == "2025-01-02"
    assert format_cell(EVIL, Kind.TEXT) == EVIL  # escaping is the page's job, not the formatter's


def test_negative_amounts_are_marked_and_numbers_right_aligned(report: Report) -> None:
    page = Page(render_html(report))
    classes = page.td_classes["by_broker_code"]
    assert page.rows("by_broker_code")[3] == ["refunds", "-250.50", "—"]
    row = 3 * len(report.table("by_broker_code").columns)
    assert classes[row : row + 3] == ["", "num negative", "num empty"]
    assert 'th class="num">Broker rebate (USDT)</th>' in render_html(report)


def test_the_page_loads_nothing_from_outside(report: Report) -> None:
    text = render_html(report).lower()
    for reference in ("http://", "https://", "src=", "<link", "<script", "@import", "url(", "<img", "<iframe"):
        assert reference not in text
    assert "content-security-policy" in text


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
    assert ">Trade date</text>" in text and ">USDT</text>" in text
    assert sum(1 for shape in chart if shape["tag"] == "title") >= 62
    assert "2025-01-01 · Broker rebate (USDT): 300.00" in text


def test_y_axis_is_round_steps_around_zero_including_negatives(report: Report) -> None:
    page = Page(render_html(report))
    ticks = [shape for shape in page.shapes["by_broker_code"] if shape.get("class") == "tick"]
    assert len(ticks) >= 3
    text = render_html(report)
    assert ">-5,000</text>" in text and ">0</text>" in text and ">15,000</text>" in text
    bars = [shape for shape in page.shapes["by_broker_code"] if shape.get("class") == "bar"]
    zero = next(shape for shape in page.shapes["by_broker_code"] if shape.get("class") == "zero")
    negative = bars[3]
    assert float(negative["y"]) == float(zero["y1"])  # drawn down from the zero line
    assert float(bars[0]["y"]) + float(bars[0]["height"]) == pytest.approx(float(zero["y1"]))


def test_empty_and_single_point_charts_still_draw(report: Report) -> None:
    one_day = replace(report.table("by_day"), rows=report.table("by_day").rows[:1])
    single = replace(report, tables=(one_day,), charts=(report.charts[0],))
    page = Page(render_html(single))
    assert page.count("by_day", "point") == 2
    assert page.count("by_day", "line") == 0
    assert "No data in this period" in render_html(report)


def test_the_header_says_period_scope_status_and_missing_days(report: Report) -> None:
    text = page_text(render_html(report))
    assert "OKX broker commission 2025-01" in text
    assert "2025-01-01 to 2025-01-31 (31 days" in text
    assert "2024-12-01 to 2024-12-31" in text
    assert "Asia/Shanghai" in text and "2025-02-01 02:00:00+00:00" in text
    assert "Reconciled" in text and "Not reconciled" not in text
    assert "Incomplete: 4 days" in text and "2025-01-21..2025-01-23, 2025-01-31" in text
    assert "1: 2024-12-15..2025-01-20" in text
    failed = page_text(render_html(replace(report, reconciliation_ok=False, missing_days=())))
    assert "Not reconciled" in failed and "Incomplete" not in failed


def test_a_chart_of_a_column_the_table_lacks_is_an_error_naming_it(report: Report) -> None:
    broken = replace(report, charts=(Chart("by_day", "Oops", "line", "trade_date", ("nope",)),))
    with pytest.raises(ValueError, match="'nope'"):
        render_html(broken)
    with pytest.raises(ValueError, match="'pie'"):
        render_html(replace(report, charts=(Chart("by_day", "Pie", "pie", "trade_date", ("orders",)),)))


def test_write_html_writes_one_file_and_returns_its_path(report: Report, tmp_path: Path) -> None:
    path = write_html(report, tmp_path / "reports" / "commission_2025-01.html")
    assert path.read_text(encoding="utf-8") == render_html(report)
    assert [child.name for child in path.parent.iterdir()] == ["commission_2025-01.html"]


def chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        pytest.fail("the HTML report test renders in Debian's Chromium: run `make chromium` (apt-get install chromium)")
    return found


def chromium_args(profile: Path) -> list[str]:
    """Headless, and quiet on the network (it is closed here): no sync, updates, background fetches or QUIC."""
    return [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ]


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """Width, height, bytes per pixel and the unfiltered pixels of an 8-bit RGB or RGBA PNG (stdlib only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, header, compressed = 8, b"", bytearray()
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed += body
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG format {header!r}"
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(bytes(compressed))
    stride = width * channels
    assert len(raw) == height * (stride + 1)
    low, high = int.from_bytes(b"\x7f" * stride, "big"), int.from_bytes(b"\x80" * stride, "big")
    pixels, prior = bytearray(), bytes(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], raw[start + 1 : start + 1 + stride]
        if kind == 0:
            current = line
        elif kind == 2:  # Up, the usual one: add bytes to the row above, all at once (SIMD within a Python int)
            a, b = int.from_bytes(line, "big"), int.from_bytes(prior, "big")
            current = (((a & low) + (b & low)) ^ ((a ^ b) & high)).to_bytes(stride, "big")
        else:
            current = unfilter(kind, line, prior, channels)
        pixels += current
        prior = current
    return width, height, channels, bytes(pixels)


def unfilter(kind: int, line: bytes, prior: bytes, channels: int) -> bytes:
    """PNG filters Sub (1), Average (3) and Paeth (4), byte by byte."""
    out = bytearray(len(line))
    for index, value in enumerate(line):
        left = out[index - channels] if index >= channels else 0
        up = prior[index]
        corner = prior[index - channels] if index >= channels else 0
        if kind == 1:
            predicted = left
        elif kind == 3:
            predicted = (left + up) // 2
        else:
            guess = left + up - corner
            distances = (abs(guess - left), abs(guess - up), abs(guess - corner))
            predicted = (left, up, corner)[distances.index(min(distances))]
        out[index] = (value + predicted) & 0xFF
    return bytes(out)


@pytest.mark.integration
def test_chromium_renders_the_page_with_its_charts(report: Report, tmp_path: Path) -> None:
    page = write_html(report, tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    with subprocess.Popen(
        [*chromium_args(tmp_path / "profile-shot"), f"--screenshot={shot}", page.as_uri()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as screenshot:
        try:
            dom = subprocess.run(
                [*chromium_args(tmp_path / "profile-dom"), "--dump-dom", page.as_uri()],
                capture_output=True,
                text=True,
                timeout=CHROMIUM_TIMEOUT,
                check=False,
            )
            _, shot_errors = screenshot.communicate(timeout=CHROMIUM_TIMEOUT)
        except subprocess.TimeoutExpired:
            screenshot.kill()
            pytest.fail(f"Chromium did not render the report within {CHROMIUM_TIMEOUT} s")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert screenshot.returncode == 0, shot_errors[-2000:]

    rendered = Page(dom.stdout)
    assert set(rendered.charts) == {"by_day", "by_broker_code", "affiliated"}
    assert rendered.count("by_day", "point") == 62
    assert rendered.count("by_broker_code", "bar") == 4
    assert rendered.rows("by_day") == Page(page.read_text(encoding="utf-8")).rows("by_day")

    width, height, channels, pixels = decode_png(shot.read_bytes())
    assert (width, height) == WINDOW
    colours = {pixels[offset : offset + 3] for offset in range(0, len(pixels), channels * 3)}
    assert len(colours) > 50, "the screenshot is (nearly) blank"
    white = bytes((255, 255, 255))
    inked = sum(1 for offset in range(0, len(pixels), channels * 3) if pixels[offset : offset + 3] != white)
    assert inked > len(pixels) // (channels * 3) // 50, "hardly anything was painted"
    blue = pixels.count(BLUE)
    assert blue > 200, f"only {blue} pixels of the first series colour: the charts did not draw"


def test_a_report_from_the_database_shows_every_table_and_charts_every_value(january_report: Report) -> None:
    page = Page(render_html(january_report))
    assert list(page.cells) == [table.name for table in (january_report.summary, *january_report.tables)]
    for table in january_report.tables:
        assert len(page.rows(table.name)) == max(len(table.rows), 1)
    for chart in january_report.charts:
        values = [value for name in chart.y for value in january_report.table(chart.table).column(name)]
        drawn = page.count(chart.table, "bar" if chart.kind == "bar" else "point")
        assert drawn == sum(1 for value in values if value is not None)
