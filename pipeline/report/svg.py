"""Charts for the HTML page as inline SVG: computed from the Decimal values, drawn without scripts or fetches."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

from pipeline.report.model import Cell, Chart, Kind, Table
from pipeline.report.text import escaped as _e
from pipeline.report.text import format_cell

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
CHART_KINDS = ("line", "bar")


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


def chart_svg(chart: Chart, table: Table) -> str:
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
