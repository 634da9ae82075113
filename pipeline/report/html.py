"""The commission report as one self-contained HTML page: every table, inline SVG charts, no external loads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from pipeline.report.model import (
    NUMERIC_KINDS,
    TOTAL,
    Cell,
    Column,
    KeyFigure,
    Kind,
    Missing,
    Report,
    Table,
    cell_kind,
    days_text,
    exact_text,
    for_people,
)
from pipeline.report.svg import chart_svg
from pipeline.report.text import EMPTY_CELL, escaped, format_cell, format_points, format_rate
from pipeline.report.words import EXACTNESS, facts, moment

__all__ = ["render_html", "table_parts", "write_html"]

TABLE_BUDGET = 1100
"""The widest a table may be, in CSS pixels: the page's content is 1136 px wide (a 1280 px window shows it all)."""
CHAR_PX = 7.6
"""About how wide a character of the tables' 13 px text is (digits are tabular); bold headers a little more."""
CELL_PADDING_PX = 18
TEXT_COLUMN_PX = 260
"""Longer text wraps within this width (broker code lists, differences)."""
CARD_TEXT = 14
"""A card's text value longer than this goes under its label, across the card (file names, SHA-256)."""
LONG_WORD = 32
"""Text longer than this may break anywhere (a SHA-256); shorter words, broker codes among them, never do."""

_e = escaped


def write_html(report: Report, path: Path) -> Path:
    """Write `report` to `path` as one HTML file that opens offline (written beside, then moved into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(render_html(report), encoding="utf-8")
    partial.replace(path)
    return path


def render_html(report: Report) -> str:
    """The whole page as text: header with status, key figures and facts, then every table, then the glossary."""
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
            _glossary(report),
            "</main>",
            _footer(report),
            "</body>",
            "</html>",
            "",
        ]
    )


def _header(report: Report) -> str:
    rows = "\n".join(
        f"<dt>{_e(label)}</dt><dd>{_e(moment(value, report.timezone) if isinstance(value, datetime) else value)}</dd>"
        for label, value in facts(report)
    )
    parts = [
        "<header>",
        f"<h1>{_e(report.title)}</h1>",
        *_status(report),
        _key_figures(report),
        f'<dl class="facts">\n{rows}\n</dl>',
    ]
    if report.warnings:
        items = "\n".join(f"<li>{_e(warning)}</li>" for warning in report.warnings)
        parts.append(f'<section class="warnings" role="alert"><h2>Warnings</h2>\n<ul>\n{items}\n</ul></section>')
    entries = [(_anchor(table), table.title) for table in (report.summary, *report.tables)]
    entries.append(("glossary", "Glossary"))
    contents = "\n".join(f'<li><a href="#{_e(anchor)}">{_e(title)}</a></li>' for anchor, title in entries)
    parts += [f'<nav aria-label="Contents"><h2>Contents</h2>\n<ol>\n{contents}\n</ol></nav>', "</header>"]
    return "\n".join(parts)


def _status(report: Report) -> list[str]:
    """A banner for reconciliation, one when days are missing, one for days not over: what a reader sees first."""
    if report.reconciliation_ok:
        banners = [
            '<p class="status ok" role="status" data-status="reconciled">'
            "✔ Reconciled: every figure equals the loaded OKX files, read again from the archive.</p>"
        ]
    else:
        banners = [
            '<p class="status problem" role="status" data-status="not-reconciled">'
            "✘ Not reconciled: some figure differs from the OKX file it comes from; "
            'see <a href="#table-reconciliation">the reconciliation</a> before using these figures.</p>'
        ]
    if report.missing_days:
        count = len(report.missing_days)
        banners.append(
            f'<p class="status incomplete" role="status" data-status="incomplete">'
            f"⚠ Incomplete: {count} day{'s' if count != 1 else ''} of the period "
            f"{'have' if count != 1 else 'has'} no loaded file yet: {_e('; '.join(report.incomplete))}.</p>"
        )
    if report.freshness.not_over:
        banners.append(
            '<p class="status pending" role="status" data-status="not-over">'
            f"◷ Not over yet: {_e(days_text(report.freshness.not_over))}; no file can hold "
            f"{'these days' if len(report.freshness.not_over) > 1 else 'this day'} yet.</p>"
        )
    return banners


def _key_figures(report: Report) -> str:
    if not report.key_figures:
        return ""
    cards = "\n".join(_key_figure(figure, report.previous.label) for figure in report.key_figures)
    return f'<div class="key-figures">\n{cards}\n</div>'


def _key_figure(figure: KeyFigure, previous: str) -> str:
    value = format_cell(figure.value, figure.kind)
    if isinstance(figure.change, Missing):
        change = f"{figure.change.value} for {previous}"
        direction = "flat"
    elif figure.change is None:
        change, direction = f"no change % from zero in {previous}", "flat"
    else:
        assert isinstance(figure.change, Decimal)
        shown = format_points(figure.change) if figure.change_kind is Kind.RATE_POINTS else format_rate(figure.change)
        arrow = "▲" if figure.change > 0 else "▼" if figure.change < 0 else "="
        direction = "up" if figure.change > 0 else "down" if figure.change < 0 else "flat"
        change = f"{arrow} {shown.lstrip('+-')} vs {previous}"
    return (
        f'<div class="figure" data-figure="{_e(figure.label)}"><div class="label">{_e(figure.label)}</div>'
        f'<div class="value">{_e(value)}</div><div class="change {direction}">{_e(change)}</div></div>'
    )


def _anchor(table: Table) -> str:
    return f"table-{table.name}"


def _section(table: Table, report: Report) -> str:
    """A table's heading, note, its charts, then the table (split into parts when wide) or its cards."""
    shown = for_people(table)
    charts = [chart_svg(chart, shown) for chart in report.charts if chart.table == table.name]
    parts = [f'<section id="{_e(_anchor(table))}" class="report-table" data-table="{_e(table.name)}">']
    note = f'<p class="note">{_e(table.note)}</p>' if table.note else ""
    parts.append(f'<div class="heading"><h2>{_e(table.title)}</h2>{note}</div>')
    parts += charts
    parts += [_cards(shown) if shown.cards else _tables(shown), "</section>"]
    return "\n".join(parts)


def column_px(table: Table, index: int) -> float:
    """About how wide a column is drawn: its widest value, or its header's longest word; long text wraps."""
    column = table.columns[index]
    shown = table.indexed_rows(short=True)
    texts = [format_cell(row[index], cell_kind(table, column, position)) for position, row in shown]
    widest = max((len(text) for text in texts), default=0) * CHAR_PX
    if column.kind not in NUMERIC_KINDS:
        widest = min(widest, TEXT_COLUMN_PX)
    header = max(len(word) for word in column.label.split()) * (CHAR_PX + 0.6)
    return max(widest, header) + CELL_PADDING_PX


def table_parts(table: Table, budget: float = TABLE_BUDGET) -> list[list[int]]:
    """The table's columns cut into parts that each fit `budget` px, every part repeating the key columns."""
    widths = [column_px(table, index) for index in range(len(table.columns))]
    keys = list(range(min(table.key_columns, len(widths))))
    base = sum(widths[index] for index in keys)
    parts: list[list[int]] = []
    current: list[int] = []
    for index in range(len(keys), len(widths)):
        if current and base + sum(widths[each] for each in current) + widths[index] > budget:
            parts.append(keys + current)
            current = []
        current.append(index)
    parts.append(keys + current)
    return parts


def _tables(table: Table) -> str:
    if not table.rows:
        head = "".join(_th(column) for column in table.columns)
        empty = f'<tr><td class="none" colspan="{len(table.columns)}">No rows in this period.</td></tr>'
        return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{empty}\n</tbody>\n</table>"
    parts = table_parts(table)
    html_parts = []
    for number, columns in enumerate(parts, start=1):
        caption = f"<caption>Part {number} of {len(parts)}</caption>" if len(parts) > 1 else ""
        head = "".join(_th(table.columns[index]) for index in columns)
        body = "\n".join(
            f"<tr{_row_class(row, index)}>"
            + "".join(
                _td(row[each], table.columns[each], cell_kind(table, table.columns[each], index)) for each in columns
            )
            + "</tr>"
            for index, row in table.indexed_rows(short=True)
        )
        html_parts.append(f"<table>{caption}\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>")
    return "\n".join(html_parts)


def _row_class(row: Sequence[Cell], index: int | None) -> str:
    return ' class="total"' if index is None and row[0] == TOTAL else ""


def _th(column: Column) -> str:
    return f"<th{_cell_class(column.kind, '')}>{_e(column.label)}</th>"


def _td(cell: Cell, column: Column, kind: Kind) -> str:
    """A cell written as its own kind and aligned as its column; an amount's exact value in its tooltip."""
    text = "" if cell is None and column.kind not in NUMERIC_KINDS else format_cell(cell, kind)
    extra = "negative" if text.startswith("-") and column.kind in NUMERIC_KINDS else ""
    if cell is None or isinstance(cell, Missing):
        extra = "empty"
    elif len(text) > LONG_WORD:
        extra = "long"
    title = f' title="{_e(exact_text(cell))}"' if isinstance(cell, Decimal) and kind is Kind.AMOUNT else ""
    return f"<td{_cell_class(column.kind, extra)}{title}>{_e(text)}</td>"


def _cell_class(kind: Kind, extra: str) -> str:
    base = "num" if kind in NUMERIC_KINDS else "day" if kind in (Kind.DATE, Kind.MONTH) else ""
    classes = " ".join(name for name in (base, extra) if name)
    return f' class="{classes}"' if classes else ""


def _cards(table: Table) -> str:
    """Each row as a card: its first cell as the heading, then label: value for every other column."""
    if not table.rows:
        return '<p class="none">No rows in this period.</p>'
    cards = []
    for index, row in table.indexed_rows(short=True):
        lines = "".join(
            _card_line(column, format_cell(cell, cell_kind(table, column, index)))
            for column, cell in zip(table.columns[1:], row[1:], strict=True)
            if cell is not None
        )
        heading = format_cell(row[0], table.columns[0].kind)
        total = " total" if index is None and row[0] == TOTAL else ""
        cards.append(f'<article class="card{total}"><h3>{_e(heading)}</h3><dl>{lines}</dl></article>')
    return '<div class="cards">\n' + "\n".join(cards) + "\n</div>"


def _card_line(column: Column, text: str) -> str:
    """A label: value line of a card; text too long to sit beside its label goes on the line under it."""
    numeric = column.kind in NUMERIC_KINDS
    wide = not numeric and len(text) > CARD_TEXT
    return f"<dt>{_e(column.label)}</dt><dd{_cell_class(column.kind, 'wide' if wide else '')}>{_e(text)}</dd>"


def _glossary(report: Report) -> str:
    if not report.glossary:
        return ""
    entries = "\n".join(f"<dt>{_e(term)}</dt><dd>{_e(meaning)}</dd>" for term, meaning in report.glossary)
    return f'<section id="glossary" class="glossary"><h2>Glossary</h2>\n<dl>\n{entries}\n</dl>\n</section>'


def _footer(report: Report) -> str:
    return (
        f"<footer><p>Generated by okx-rebates at {_e(moment(report.shown_generated_at, report.timezone))}. "
        f"{_e(EXACTNESS)} Hover over an amount to see it exactly. {EMPTY_CELL} marks a rate over a zero.</p></footer>"
    )


STYLE = """
:root { color-scheme: light; --ink: #1b1f24; --muted: #57606a; --line: #d0d7de; --head: #eef1f4;
  --negative: #b42318; --ok: #1a7f37; --bad: #b42318; --warn: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1200px; padding: 24px 32px 48px; color: var(--ink); background: #fff;
  font: 14px/1.45 "Liberation Sans", Arial, Helvetica, "DejaVu Sans", sans-serif; }
h1 { font-size: 24px; margin: 0 0 12px; }
h2 { font-size: 18px; margin: 28px 0 4px; padding-top: 12px; border-top: 2px solid var(--line); }
header h2 { font-size: 15px; border: 0; margin: 16px 0 4px; padding: 0; }
.note { color: var(--muted); margin: 0 0 10px; max-width: 1100px; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 12px 0; }
.facts dt { font-weight: 600; color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.status { margin: 8px 0; padding: 8px 14px; border-radius: 4px; border-left: 6px solid; font-weight: 600; }
.status.ok { background: #e9f7ee; border-color: var(--ok); color: #0f5132; }
.status.problem { background: #fdecea; border-color: var(--bad); color: #7a1d14; }
.status.incomplete { background: #fff6e0; border-color: var(--warn); color: #5c3d00; }
.status.pending { background: #eef1f4; border-color: #8c959f; color: var(--muted); }
.key-figures { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin: 16px 0; }
.figure { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; }
.figure .label { color: var(--muted); font-size: 13px; }
.figure .value { font-size: 22px; font-weight: 700; font-variant-numeric: tabular-nums; }
.figure .change { font-size: 13px; color: var(--muted); }
.warnings { background: #fff6e0; border: 1px solid #e8c77a; border-radius: 4px; padding: 4px 14px; }
.warnings ul { margin: 4px 0 8px; padding-left: 20px; }
nav ol { columns: 3; margin: 4px 0; padding-left: 24px; }
nav a { color: #0b57d0; }
table { border-collapse: separate; border-spacing: 0; margin: 8px 0 16px; font-size: 13px;
  font-variant-numeric: tabular-nums; max-width: 100%; }
caption { text-align: left; color: var(--muted); font-size: 12px; padding-bottom: 2px; }
th, td { padding: 4px 9px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: bottom; }
td { vertical-align: top; }
th { font-weight: 600; }
thead th { position: sticky; top: 0; z-index: 1; background: var(--head); border-bottom: 2px solid #8c959f; }
th.num, td.num { text-align: right; }
td.num, td.day { white-space: nowrap; }
td:not(.num) { max-width: 260px; overflow-wrap: break-word; }
td.long { overflow-wrap: anywhere; }
td.negative { color: var(--negative); }
td.empty, td.none { color: var(--muted); }
tbody tr:nth-child(even) td { background: #f8f9fa; }
tbody tr.total td { font-weight: 700; border-top: 2px solid #8c959f; border-bottom: 3px double #8c959f;
  background: #eef1f4; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 12px; margin: 8px 0 16px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; font-size: 13px; }
.card.total { background: #eef1f4; }
.card h3 { font-size: 14px; margin: 0 0 6px; }
.card dl { display: grid; grid-template-columns: max-content 1fr; gap: 1px 10px; margin: 0; }
.card dt { color: var(--muted); }
.card dd { margin: 0; overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
.card dd.num { text-align: right; }
.card dd.wide { grid-column: 1 / -1; padding-left: 12px; font-size: 12px; color: var(--muted); }
.glossary dl { display: grid; grid-template-columns: 220px 1fr; gap: 4px 16px; }
.glossary dt { font-weight: 600; }
.glossary dd { margin: 0; }
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
  tr, svg.chart, .card, .figure { break-inside: avoid; }
  .heading { break-inside: avoid; break-after: avoid; }
  caption { break-after: avoid; }
  .key-figures { grid-template-columns: repeat(4, 1fr); }
  .status, .warnings, thead th, tbody tr:nth-child(even) td, tbody tr.total td, .card.total {
    print-color-adjust: exact; -webkit-print-color-adjust: exact; }
}
"""
