"""What a commission report holds, independent of format: every writer (xlsx, csv, html) reads one `Report`."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal, get_args

ReportFormat = Literal["xlsx", "csv", "html"]
"""The formats a report is written in."""
FORMATS: tuple[ReportFormat, ...] = get_args(ReportFormat)
"""Every format, in the order they are written."""


class Kind(StrEnum):
    """How a column's values are written: decides number formats in xlsx and alignment in html."""

    TEXT = "text"
    DATE = "date"
    INTEGER = "integer"
    AMOUNT = "amount"
    """USDT, a Decimal with up to 18 decimals."""
    RATE = "rate"
    """A ratio such as broker_rebate / net_fee, a Decimal (shown as a percentage)."""
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class Column:
    """A column of a report table: its machine name (CSV header), its label for people, and its kind."""

    name: str
    label: str
    kind: Kind


Cell = str | int | Decimal | date | bool | None


@dataclass(frozen=True)
class Table:
    """One table of the report: a sheet in xlsx, a file in csv, a section in html."""

    name: str
    """Machine name: `by_day`, `by_broker_code`, ...; the CSV file is `<name>.csv`, the sheet uses `title`."""
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""
    """One sentence under the title saying what the table shows."""

    def column(self, name: str) -> list[Cell]:
        """Every value of one column."""
        index = [column.name for column in self.columns].index(name)
        return [row[index] for row in self.rows]


@dataclass(frozen=True)
class Chart:
    """A chart to draw from a table: `kind` "line" or "bar", x from `x`, one series per name in `y`."""

    table: str
    title: str
    kind: str
    x: str
    y: tuple[str, ...]


@dataclass(frozen=True)
class Period:
    """Days [start, end], both included, as trade_date in REBATES_TZ; a month or a free range."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"the period ends ({self.end}) before it starts ({self.start})")

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        """A calendar month."""
        return cls(date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]))

    @classmethod
    def parse_month(cls, text: str) -> Period:
        """`YYYY-MM` as a calendar month (ValueError when it is not one)."""
        try:
            year, month = (int(part) for part in text.split("-"))
            return cls.month(year, month)
        except ValueError:
            raise ValueError(f"{text!r} is not a month as YYYY-MM") from None

    @property
    def is_month(self) -> bool:
        """Whether the period is exactly one calendar month."""
        return self.start.day == 1 and self == Period.month(self.start.year, self.start.month)

    @property
    def days(self) -> int:
        """How many days it covers."""
        return (self.end - self.start).days + 1

    @property
    def label(self) -> str:
        """`2025-01` for a month, `2025-01-03..2025-01-09` otherwise."""
        return f"{self.start:%Y-%m}" if self.is_month else f"{self.start}..{self.end}"

    def previous(self) -> Period:
        """The period to compare with: the previous month for a month, else as many days just before."""
        if self.is_month:
            last = self.start - timedelta(days=1)
            return Period.month(last.year, last.month)
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def day_list(self) -> list[date]:
        """Every day of the period."""
        return [self.start + timedelta(days=offset) for offset in range(self.days)]


@dataclass(frozen=True)
class Report:
    """A commission report for a period (optionally one account, one broker code), with the previous period."""

    period: Period
    previous: Period
    broker_code: str | None
    generated_at: datetime
    timezone: str
    """REBATES_TZ as text: the days are trade_date there."""
    summary: Table
    """metric, this period, previous period, change, change % (change % is a RATE, None when undefined)."""
    tables: tuple[Table, ...]
    """by_day, by_account (all accounts, more than one with rows), by_broker_code, by_instrument_type,
    top_instruments, by_user_level, affiliated, reconciliation."""
    charts: tuple[Chart, ...]
    windows_covered: tuple[str, ...]
    """Loaded windows overlapping the period."""
    missing_days: tuple[date, ...]
    """Days of the period no loaded window covers (the report is incomplete for them)."""
    reconciliation_ok: bool
    """Every window's file totals equal what the database holds for it."""
    warnings: tuple[str, ...] = field(default=())
    account: str | None = None
    """The one OKX broker account reported on; None for every account together."""

    @property
    def title(self) -> str:
        """The report's heading."""
        account = f", account {self.account}" if self.account else ""
        scope = f", broker code {self.broker_code}" if self.broker_code else ""
        return f"OKX broker commission {self.period.label}{account}{scope}"

    def table(self, name: str) -> Table:
        """A table by machine name (the summary included)."""
        for table in (self.summary, *self.tables):
            if table.name == name:
                return table
        raise KeyError(name)


SUMMARY = "summary"
"""The summary table's name: one metric per row."""

ROW_KIND_COLUMNS = frozenset({"this_period", "previous_period", "change"})
"""The summary's columns whose cells take their kind from the row's `kind` cell (see `cell_kind`)."""


def cell_kind(table: Table, column: Column, row: Sequence[Cell]) -> Kind:
    """How one cell is written: its column's kind, except in the summary's value columns, where the row decides.

    The summary holds one metric per row, and metrics differ in kind: eight USDT amounts, the effective rebate rate,
    and three counts. So the summary has a `kind` column (TEXT: `amount`, `rate` or `integer`, a `Kind` value), and
    the cells of `this_period`, `previous_period` and `change` are of that kind: Decimal amounts, a Decimal rate
    (a ratio; its change is in rate points), or ints. Those three columns are declared AMOUNT, the most common kind;
    `change_pct` is always a RATE. Every writer formats summary cells through this function.
    """
    if table.name == SUMMARY and column.name in ROW_KIND_COLUMNS:
        kind_index = [each.name for each in table.columns].index("kind")
        return Kind(str(row[kind_index]))
    return column.kind
