"""How a value reads for people: amounts and rates with 2 fixed decimals, percentage points, Yes/No, days."""

from __future__ import annotations

import html
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext

from pipeline.report.model import Cell, Kind, Missing

AMOUNT_PLACES = 2
"""Amounts are shown with two decimals, rounded half up on the Decimal (`1,234.57`); the CSV has every decimal."""
RATE_PLACES = 2
"""Rates are percentages with two decimals (`12.35%`), their changes percentage points (`+1.20 pp`)."""
EMPTY_CELL = "—"
"""What a value that does not exist (a rate over a zero) shows."""


def format_amount(value: Decimal) -> str:
    """USDT for people: `-1,234.57`, `0.00` (never `-0.00`), grouped, rounded half up, no float."""
    return _fixed(value, AMOUNT_PLACES)


def format_rate(value: Decimal) -> str:
    """A ratio as a percentage: `0.12345` → `12.35%`."""
    return _fixed(value.scaleb(2), RATE_PLACES) + "%"


def format_points(value: Decimal) -> str:
    """A change of a rate (a ratio difference) in percentage points: `0.0123` → `+1.23 pp`."""
    text = _fixed(value.scaleb(2), RATE_PLACES)
    return f"{'' if text.startswith('-') or text == '0.00' else '+'}{text} pp"


def format_cell(cell: Cell, kind: Kind) -> str:
    """A cell as text for a table, a card or a tooltip, written as `kind`."""
    if cell is None:
        return EMPTY_CELL
    if isinstance(cell, Missing):
        return cell.value
    if isinstance(cell, bool):
        return "Yes" if cell else "No"
    if isinstance(cell, int | Decimal):
        if kind is Kind.RATE:
            return format_rate(Decimal(cell))
        if kind is Kind.RATE_POINTS:
            return format_points(Decimal(cell))
        if isinstance(cell, Decimal) or kind is Kind.AMOUNT:
            return format_amount(Decimal(cell))
        return f"{cell:,}"
    if isinstance(cell, datetime):
        return cell.isoformat(sep=" ", timespec="seconds")
    if isinstance(cell, date):
        return f"{cell:%Y-%m}" if kind is Kind.MONTH else cell.isoformat()
    return cell


def _fixed(value: Decimal, places: int) -> str:
    """`places` decimals, grouped, rounded half up, no minus on a value that rounds to zero."""
    if not value.is_finite():
        return str(value)
    with localcontext() as context:
        context.prec = 80  # wider than DECIMAL(38,18): quantize never runs out of digits
        rounded = abs(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 and rounded != 0 else ""
    return f"{sign}{rounded:,.{places}f}"


def escaped(text: str) -> str:
    """Text (from files, from settings) made safe inside HTML and attribute values."""
    return html.escape(text, quote=True)
