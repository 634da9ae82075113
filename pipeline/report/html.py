"""The commission report as one self-contained HTML page: every table, inline SVG charts, no external loads."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path

from pipeline.report.model import Cell, Chart, Column, Kind, Report, Table, cell_kind

AMOUNT_PLACES = 2
"""Amounts of 1 USDT or more are shown with two decimals, rounded half up (`1,234.57`)."""
SMALL_AMOUNT_DIGITS = 8
"""Amounts under 1 USDT keep up to eight significant digits (`0.00012345679`), so a tiny rebate never reads 0.00."""
RATE_PLACES = 2
"""Rates are percentages with two decimals (`12.35%`)..."""
SMALL_RATE_DIGITS = 2
"""...or two significant digits under 1% (`0.0042%`)."""
MAX_PLACES = 18
"""The database keeps DECIMAL(38,18): no display needs more decimals than that."""
EMPTY_CELL = "—"
"""What a missing value (None, e.g. a change % from zero) shows."""

CHART_WIDTH = 960
CHART_HEIGHT = 380
"""The tallest a chart gets (slanted long x labels); with upright labels it ends just below the x axis title."""
PLOT_LEFT = 96
PLOT_RIGHT = CHART_WIDTH - 24
PLOT_TOP = 56
PLOT_BOTTOM = CHART_HEIGHT - 110
Y_TICKS = 5
"""About how many intervals the y axis is cut into (the step is rounded to 1, 2 or 5 * 10^n)."""
X_LABEL_CHARS = 16
"""Longer x labels are cut with an ellipsis; the full text is in the label's tooltip."""
CHAR_WIDTH = 6.6
"""About how wide a character of the 12px chart text is: enough to decide whether x labels fit upright."""
SERIES_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9")
"""Okabe-Ito: told apart by colour-blind readers, one per y series in order."""

NUMERIC_KINDS = frozenset({Kind.INTEGER, Kind.AMOUNT, Kind.RATE})
CHART_KINDS = ("line", "bar")


def write_html(report: Report, path: Path) -> Path:
    """Write `report` to `path` as one HTML file that opens offline (written beside, then moved into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(render_html(report), encoding="utf-8")
    partial.replace(path)
    return path


def render_html(report: Report) -> str:
    """The whole page as text: header with the report's facts and status, then the summary and every table."""
    sections = [_section(table, report) for table in (report.summary, *report.tables)]
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            # Data come from files: even if some text slipped through unescaped, the page may load nothing.
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
            '<meta name="generator" content="okx-rebates">',
            f"<title>{_e(report.title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            _header(report),
            "<main>",
            *sections,
            "</main>",
            _footer(report),
            "</body>",
            "</html>",
            "",
        ]
    )


def format_amount(value: Decimal) -> str:
    """USDT for people: `-1,234.57`, `0.00012345679` (see AMOUNT_PLACES and SMALL_AMOUNT_DIGITS)."""
    return _format_decimal(value, AMOUNT_PLACES, SMALL_AMOUNT_DIGITS)


def format_rate(value: Decimal) -> str:
    """A ratio as a percentage: `0.12345` → `12.35%` (see RATE_PLACES and SMALL_RATE_DIGITS)."""
    return _format_decimal(value.scaleb(2), RATE_PLACES, SMALL_RATE_DIGITS) + "%"


def format_cell(cell: Cell, kind: Kind) -> str:
    """A cell as text for a table or a tooltip, written as `kind` (see `cell_kind` for the summary's rows)."""
    if cell is None:
        return EMPTY_CELL
    if isinstance(cell, bool):
        return "yes" if cell else "no"
    if isinstance(cell, int | Decimal):
        if kind is Kind.RATE:
            return format_rate(Decimal(cell))
        if isinstance(cell, Decimal) or kind is Kind.AMOUNT:
            return format_amount(Decimal(cell))
        return f"{cell:,}"
    if isinstance(cell, datetime):
        return cell.isoformat(sep=" ", timespec="seconds")
    if isinstance(cell, date):
        return cell.isoformat()
    return cell


def _format_decimal(value: Decimal, places: int, small_digits: int) -> str:
    """`places` decimals from 1 up, `small_digits` significant digits below 1; grouped, rounded half up, no float."""
    if not value.is_finite():
        return str(value)
    with localcontext() as context:
        context.prec = 80  # wider than DECIMAL(38,18): quantize never runs out of digits
        magnitude = abs(value)
        decimals = places
        if 0 < magnitude < 1:
            decimals = min(MAX_PLACES, max(places, small_digits - 1 - magnitude.adjusted()))
        rounded = magnitude.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    whole, _, fraction = f"{rounded:,f}".partition(".")
    fraction = fraction.rstrip("0").ljust(places, "0")
    sign = "-" if value < 0 and rounded != 0 else ""
    return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"


def _e(text: str) -> str:
    """Text (from files, from settings) made safe inside HTML and attribute values."""
    return html.escape(text, quote=True)


def _header(report: Report) -> str:
    period, previous = report.period, report.previous
    facts = [
        ("Period", f"{period.start} to {period.end} ({period.days} days, trade dates in {report.timezone})"),
        ("Compared with", f"{previous.start} to {previous.end} ({previous.days} days)"),
        ("Account", report.account or "all accounts"),
        ("Broker code", report.broker_code or "all broker codes"),
        ("Timezone", report.timezone),
        ("Generated at", report.generated_at.isoformat(sep=" ", timespec="seconds")),
        ("Windows covered", _windows_text(report.windows_covered)),
        ("Missing days", _days_text(report.missing_days)),
    ]
    rows = "\n".join(f"<dt>{_e(label)}</dt><dd>{_e(value)}</dd>" for label, value in facts)
    parts = [
        "<header>",
        f"<h1>{_e(report.title)}</h1>",
        *_status(report),
        f'<dl class="facts">\n{rows}\n</dl>',
    ]
    if report.warnings:
        items = "\n".join(f"<li>{_e(warning)}</li>" for warning in report.warnings)
        parts.append(f'<section class="warnings" role="alert"><h2>Warnings</h2>\n<ul>\n{items}\n</ul></section>')
    contents = "\n".join(
        f'<li><a href="#{_anchor(table)}">{_e(table.title)}</a></li>' for table in (report.summary, *report.tables)
    )
    parts += [f'<nav aria-label="Contents"><h2>Contents</h2>\n<ol>\n{contents}\n</ol></nav>', "</header>"]
    return "\n".join(parts)


def _status(report: Report) -> list[str]:
    """One banner for reconciliation, and one more when days are missing: the first thing a reader sees."""
    if report.reconciliation_ok:
        banners = [
            '<p class="status ok" role="status" data-status="reconciled">'
            "✔ Reconciled: every window's file totals equal what the database holds.</p>"
        ]
    else:
        banners = [
            '<p class="status problem" role="status" data-status="not-reconciled">'
            "✘ Not reconciled: some window's file totals differ from the database; "
            f"see {_reconciliation_link(report)} before using these figures.</p>"
        ]
    if report.missing_days:
        count = len(report.missing_days)
        banners.append(
            f'<p class="status incomplete" role="status" data-status="incomplete">'
            f"⚠ Incomplete: {count} day{'s' if count != 1 else ''} of the period "
            f"{'are' if count != 1 else 'is'} in no loaded window ({_e(_days_text(report.missing_days))}).</p>"
        )
    return banners


def _reconciliation_link(report: Report) -> str:
    for table in report.tables:
        if table.name == "reconciliation":
            return f'<a href="#{_e(_anchor(table))}">the reconciliation table</a>'
    return "the reconciliation table"


def _windows_text(windows: Sequence[str]) -> str:
    if not windows:
        return "none"
    return f"{len(windows)}: {', '.join(windows)}"


def _days_text(days: Sequence[date]) -> str:
    """Days as runs: `2025-01-03..2025-01-05, 2025-01-09`, or `none`."""
    runs: list[tuple[date, date]] = []
    for day in sorted(days):
        if runs and day - runs[-1][1] == timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return ", ".join(f"{start}" if start == end else f"{start}..{end}" for start, end in runs) or "none"


def _anchor(table: Table) -> str:
    return f"table-{table.name}"


def _section(table: Table, report: Report) -> str:
    """A table's heading, note, its charts, then the table itself."""
    charts = [_chart_svg(chart, table) for chart in report.charts if chart.table == table.name]
    parts = [f'<section id="{_e(_anchor(table))}" class="report-table" data-table="{_e(table.name)}">']
    parts.append(f"<h2>{_e(table.title)}</h2>")
    if table.note:
        parts.append(f'<p class="note">{_e(table.note)}</p>')
    parts += charts
    parts += [_table_html(table), "</section>"]
    return "\n".join(parts)


def _table_html(table: Table) -> str:
    head = "".join(f"<th{_cell_class(column.kind, '')}>{_e(column.label)}</th>" for column in table.columns)
    if table.rows:
        body = "\n".join(
            "<tr>"
            + "".join(
                _td(cell, column, cell_kind(table, column, row))
                for cell, column in zip(row, table.columns, strict=True)
            )
            + "</tr>"
            for row in table.rows
        )
    else:
        body = f'<tr><td class="none" colspan="{len(table.columns)}">No rows in this period.</td></tr>'
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _td(cell: Cell, column: Column, kind: Kind) -> str:
    """A cell written as its own kind (the summary's rows decide theirs) and aligned as its column."""
    text = format_cell(cell, kind)
    extra = "negative" if text.startswith("-") and column.kind in NUMERIC_KINDS else ""
    if cell is None:
        extra = "empty"
    return f"<td{_cell_class(column.kind, extra)}>{_e(text)}</td>"


def _cell_class(kind: Kind, extra: str) -> str:
    classes = " ".join(name for name in ("num" if kind in NUMERIC_KINDS else "", extra) if name)
    return f' class="{classes}"' if classes else ""


def _footer(report: Report) -> str:
    return (
        f"<footer><p>Generated by okx-rebates at {_e(report.generated_at.isoformat(sep=' ', timespec='seconds'))}. "
        f"Amounts are USDT: two decimals from 1 up, up to {SMALL_AMOUNT_DIGITS} significant digits below 1, "
        "rounded half up; the CSV and XLSX files hold every decimal. "
        "Rates are percentages.</p></footer>"
    )


@dataclass(frozen=True)
class _Series:
    """One y column of a chart: its label, colour and values (None where the table has no number)."""

    label: str
    colour: str
    kind: Kind
    values: tuple[Decimal | None, ...]


@dataclass(frozen=True)
class _YAxis:
    """The y range [low, high] cut into `step`s: computed from the Decimal values, never from floats."""

    low: Decimal
    high: Decimal
    step: Decimal
    kind: Kind

    def ticks(self) -> list[Decimal]:
        count = int((self.high - self.low) / self.step)
        return [self.low + self.step * index for index in range(count + 1)]

    def label(self, value: Decimal) -> str:
        """A tick label with as many decimals as the step needs (`0.005`, `1,000`, `12.5%`)."""
        if self.kind is Kind.RATE:
            value, step, suffix = value.scaleb(2), self.step.scaleb(2), "%"
        else:
            step, suffix = self.step, ""
        decimals = max(0, -step.adjusted())  # a step is 1, 2 or 5 * 10^n: n says how many decimals
        return f"{value:,.{decimals}f}{suffix}"


def _chart_svg(chart: Chart, table: Table) -> str:
    """One chart as inline SVG: title, legend, y gridlines and ticks, x labels, axis labels, bars or points."""
    if chart.kind not in CHART_KINDS:
        raise ValueError(f"chart {chart.title!r} is of kind {chart.kind!r}; the html writer draws {CHART_KINDS}")
    columns = {column.name: column for column in table.columns}
    for name in (chart.x, *chart.y):
        if name not in columns:
            raise ValueError(f"chart {chart.title!r} draws column {name!r}, which table {table.name!r} does not have")
    x_column = columns[chart.x]
    x_labels = [format_cell(cell, x_column.kind) for cell in table.column(chart.x)]
    series = [
        _Series(
            columns[name].label,
            SERIES_COLOURS[index % len(SERIES_COLOURS)],
            columns[name].kind,
            tuple(_number(cell) for cell in table.column(name)),
        )
        for index, name in enumerate(chart.y)
    ]
    numbers = [value for one in series for value in one.values if value is not None]
    axis = _y_axis(numbers, series[0].kind if series else Kind.AMOUNT)
    y_title = series[0].label if len(series) == 1 else _unit(axis.kind)
    description = f"{chart.kind} chart of {', '.join(one.label for one in series)} by {x_column.label}"
    x_parts, x_labels_end = _x_labels(x_labels)
    x_title_y = min(CHART_HEIGHT - 8, round(x_labels_end + 22))
    height = x_title_y + 8
    parts = [
        f'<svg class="chart" data-chart="{_e(chart.table)}" data-kind="{_e(chart.kind)}" role="img" '
        f'aria-label="{_e(chart.title)}: {_e(description)}" viewBox="0 0 {CHART_WIDTH} {height}" '
        f'width="{CHART_WIDTH}" height="{height}">',
        f'<text class="chart-title" x="{PLOT_LEFT}" y="22">{_e(chart.title)}</text>',
        *_legend(series),
        *(_y_gridlines(axis) if numbers else []),
        *x_parts,
        f'<line class="axis" x1="{PLOT_LEFT}" y1="{PLOT_BOTTOM}" x2="{PLOT_RIGHT}" y2="{PLOT_BOTTOM}"/>',
        f'<line class="axis" x1="{PLOT_LEFT}" y1="{PLOT_TOP}" x2="{PLOT_LEFT}" y2="{PLOT_BOTTOM}"/>',
        f'<text class="axis-title" x="{(PLOT_LEFT + PLOT_RIGHT) / 2}" y="{x_title_y}" '
        f'text-anchor="middle">{_e(x_column.label)}</text>',
        f'<text class="axis-title" transform="translate(16 {(PLOT_TOP + PLOT_BOTTOM) / 2}) rotate(-90)" '
        f'text-anchor="middle">{_e(y_title)}</text>',
    ]
    if not numbers:
        parts.append(
            f'<text class="no-data" x="{(PLOT_LEFT + PLOT_RIGHT) / 2}" y="{(PLOT_TOP + PLOT_BOTTOM) / 2}" '
            'text-anchor="middle">No data in this period</text>'
        )
    elif chart.kind == "bar":
        parts += _bars(series, x_labels, axis)
    else:
        parts += _lines(series, x_labels, axis)
    parts.append("</svg>")
    return "\n".join(parts)


def _number(cell: Cell) -> Decimal | None:
    """A cell as a chartable number, or None (text, dates and booleans are not plotted)."""
    if isinstance(cell, bool) or not isinstance(cell, int | Decimal):
        return None
    number = Decimal(cell)
    return number if number.is_finite() else None


def _unit(kind: Kind) -> str:
    return {Kind.AMOUNT: "USDT", Kind.RATE: "percent", Kind.INTEGER: "count"}.get(kind, "")


def _y_axis(values: Sequence[Decimal], kind: Kind) -> _YAxis:
    """A y range that includes zero and every value, with a round step (1, 2 or 5 * 10^n; whole for counts)."""
    with localcontext() as context:
        context.prec = 80
        low, high = min([Decimal(0), *values]), max([Decimal(0), *values])
        if low == high:
            high = Decimal(1)
        step = _round_step((high - low) / Y_TICKS)
        if kind is Kind.INTEGER:
            step = max(step, Decimal(1))
        low = (low / step).to_integral_value(rounding=ROUND_FLOOR) * step
        high = (high / step).to_integral_value(rounding=ROUND_CEILING) * step
    return _YAxis(low, high, step, kind)


def _round_step(raw: Decimal) -> Decimal:
    """The smallest of 1, 2, 5, 10 * 10^n that is at least `raw`."""
    exponent = raw.adjusted()
    for mantissa in (1, 2, 5):
        candidate = Decimal(mantissa).scaleb(exponent)
        if candidate >= raw:
            return candidate
    return Decimal(1).scaleb(exponent + 1)


def _svg_y(value: Decimal, axis: _YAxis) -> float:
    """The one place a Decimal becomes a float: an SVG coordinate in pixels, never an amount shown to anyone."""
    share = (value - axis.low) / (axis.high - axis.low)
    return round(PLOT_BOTTOM - float(share) * (PLOT_BOTTOM - PLOT_TOP), 2)


def _slot(index: int, count: int) -> tuple[float, float]:
    """The centre and width of the `index`-th of `count` equal x slots."""
    width = (PLOT_RIGHT - PLOT_LEFT) / max(count, 1)
    return round(PLOT_LEFT + width * (index + 0.5), 2), width


def _legend(series: Sequence[_Series]) -> list[str]:
    """Swatches under the title when there is more than one series (one series is named by the y axis)."""
    if len(series) < 2:
        return []
    parts, x = [], float(PLOT_LEFT)
    for one in series:
        parts.append(
            f'<rect class="swatch" x="{x}" y="32" width="12" height="12" fill="{one.colour}"/>'
            f'<text class="legend" x="{x + 18}" y="42">{_e(one.label)}</text>'
        )
        x += 36 + 7 * len(one.label)
    return parts


def _y_gridlines(axis: _YAxis) -> list[str]:
    parts = []
    for tick in axis.ticks():
        y = _svg_y(tick, axis)
        kind = "zero" if tick == 0 else "grid"
        parts.append(
            f'<line class="{kind}" x1="{PLOT_LEFT}" y1="{y}" x2="{PLOT_RIGHT}" y2="{y}"/>'
            f'<text class="tick" x="{PLOT_LEFT - 8}" y="{y + 4}" text-anchor="end">{_e(axis.label(tick))}</text>'
        )
    return parts


def _x_labels(labels: Sequence[str]) -> tuple[list[str], float]:
    """Upright labels when they fit, else slanted 45°, every k-th one if too many; and where the lowest one ends."""
    if not labels:
        return [], PLOT_BOTTOM + 16
    shown = [label if len(label) <= X_LABEL_CHARS else label[: X_LABEL_CHARS - 1] + "…" for label in labels]
    text_width = max(len(label) for label in shown) * CHAR_WIDTH
    upright = text_width + 8 <= (PLOT_RIGHT - PLOT_LEFT) / len(labels)
    every = 1 if upright else math.ceil(len(labels) / ((PLOT_RIGHT - PLOT_LEFT) // 20))
    y = PLOT_BOTTOM + 16
    parts = []
    for index, (label, short) in enumerate(zip(labels, shown, strict=True)):
        if index % every:
            continue
        x, _ = _slot(index, len(labels))
        placement = 'text-anchor="middle"' if upright else f'text-anchor="end" transform="rotate(-45 {x} {y})"'
        parts.append(f'<text class="x-label" x="{x}" y="{y}" {placement}><title>{_e(label)}</title>{_e(short)}</text>')
    return parts, y + (0 if upright else text_width * 0.71)


def _bars(series: Sequence[_Series], labels: Sequence[str], axis: _YAxis) -> list[str]:
    """Side-by-side bars per x slot, from the zero line up (or down for negative values)."""
    zero = _svg_y(Decimal(0), axis)
    parts = []
    for index, label in enumerate(labels):
        centre, width = _slot(index, len(labels))
        bar_width = min(width * 0.8 / len(series), 48.0)
        left = centre - bar_width * len(series) / 2
        for position, one in enumerate(series):
            value = one.values[index]
            if value is None:
                continue
            y = _svg_y(value, axis)
            parts.append(
                f'<rect class="bar" x="{round(left + position * bar_width, 2)}" y="{min(y, zero)}" '
                f'width="{round(bar_width, 2)}" height="{round(abs(zero - y), 2)}" fill="{one.colour}">'
                f"<title>{_e(_tooltip(label, one, value))}</title></rect>"
            )
    return parts


def _lines(series: Sequence[_Series], labels: Sequence[str], axis: _YAxis) -> list[str]:
    """A polyline per series (broken where a value is missing) with a point, and its tooltip, at every value."""
    parts = []
    for one in series:
        points = [
            (index, _slot(index, len(labels))[0], _svg_y(value, axis), value)
            for index, value in enumerate(one.values)
            if value is not None
        ]
        if len(points) > 1:
            steps, previous = [], -2
            for index, x, y, _ in points:
                steps.append(f"{'L' if index == previous + 1 else 'M'}{x},{y}")
                previous = index
            parts.append(
                f'<path class="line" d="{" ".join(steps)}" fill="none" stroke="{one.colour}" stroke-width="2"/>'
            )
        radius = 3.5 if len(labels) <= 40 else 2.5
        parts += [
            f'<circle class="point" cx="{x}" cy="{y}" r="{radius}" fill="{one.colour}">'
            f"<title>{_e(_tooltip(labels[index], one, value))}</title></circle>"
            for index, x, y, value in points
        ]
    return parts


def _tooltip(label: str, series: _Series, value: Decimal) -> str:
    return f"{label} · {series.label}: {format_cell(value, series.kind)}"


STYLE = """
:root { color-scheme: light; --ink: #1b1f24; --muted: #57606a; --line: #d0d7de; --head: #eef1f4;
  --negative: #b42318; --ok: #1a7f37; --bad: #b42318; --warn: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1200px; padding: 24px 32px 48px; color: var(--ink); background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", "Liberation Sans",
  sans-serif; }
h1 { font-size: 24px; margin: 0 0 12px; }
h2 { font-size: 18px; margin: 28px 0 4px; padding-top: 12px; border-top: 2px solid var(--line); }
header h2 { font-size: 15px; border: 0; margin: 16px 0 4px; padding: 0; }
.note { color: var(--muted); margin: 0 0 10px; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 12px 0; }
.facts dt { font-weight: 600; color: var(--muted); }
.facts dd { margin: 0; }
.status { margin: 8px 0; padding: 8px 14px; border-radius: 4px; border-left: 6px solid; font-weight: 600; }
.status.ok { background: #e9f7ee; border-color: var(--ok); color: #0f5132; }
.status.problem { background: #fdecea; border-color: var(--bad); color: #7a1d14; }
.status.incomplete { background: #fff6e0; border-color: var(--warn); color: #5c3d00; }
.warnings { background: #fff6e0; border: 1px solid #e8c77a; border-radius: 4px; padding: 4px 14px; }
.warnings ul { margin: 4px 0 8px; padding-left: 20px; }
nav ol { columns: 2; margin: 4px 0; padding-left: 24px; }
nav a { color: #0b57d0; }
table { border-collapse: separate; border-spacing: 0; margin: 8px 0 16px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { position: sticky; top: 0; z-index: 1; background: var(--head); border-bottom: 2px solid #8c959f;
  font-weight: 600; }
th.num, td.num { text-align: right; white-space: nowrap; }
td.negative { color: var(--negative); }
td.empty, td.none { color: var(--muted); }
tbody tr:nth-child(even) td { background: #f8f9fa; }
tbody tr:hover td { background: #eaf2ff; }
svg.chart { display: block; width: 100%; max-width: 960px; height: auto; margin: 8px 0 12px; }
svg.chart text { font-family: inherit; font-size: 12px; fill: var(--muted); }
svg.chart .chart-title { font-size: 15px; font-weight: 600; fill: var(--ink); }
svg.chart .axis-title { font-weight: 600; }
svg.chart .legend { fill: var(--ink); }
svg.chart .no-data { font-size: 14px; font-style: italic; }
svg.chart .grid { stroke: #e3e6ea; stroke-width: 1; }
svg.chart .axis, svg.chart .zero { stroke: #8c959f; stroke-width: 1; }
svg.chart .point { stroke: #fff; stroke-width: 1; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { max-width: none; padding: 0; font-size: 10pt; }
  nav { display: none; }
  thead { display: table-header-group; }
  thead th { position: static; }
  tr, svg.chart { break-inside: avoid; }
  h2 { break-after: avoid; }
  tbody tr:hover td { background: none; }
  .status, .warnings, thead th, tbody tr:nth-child(even) td { print-color-adjust: exact;
    -webkit-print-color-adjust: exact; }
}
"""
