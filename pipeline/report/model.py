"""What a commission report or statement holds, independent of format: every writer (xlsx, csv, html) reads one."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from decimal import Context, Decimal
from enum import StrEnum
from typing import Literal, get_args

ReportFormat = Literal["xlsx", "csv", "html"]
"""The formats a report is written in."""
FORMATS: tuple[ReportFormat, ...] = get_args(ReportFormat)
"""Every format, in the order they are written."""

EXACT = Context(prec=80)
"""Wider than any sum or difference of DECIMAL(38,18) values: adding and subtracting in it never rounds."""


def exact_sum(values: Iterable[Decimal | int]) -> Decimal:
    """The exact sum of amounts (Python's default context keeps only 28 digits; DECIMAL(38,18) needs 38)."""
    total = Decimal(0)
    for value in values:
        total = EXACT.add(total, Decimal(value))
    return total


def exact_text(value: Decimal) -> str:
    """A Decimal as plain exact text: no exponent or trailing zeros, `0` for any zero (`-12.5`, `1E-18` as digits)."""
    if value.is_zero():
        return "0"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class Kind(StrEnum):
    """How a column's values are written: decides number formats in xlsx and alignment in html."""

    TEXT = "text"
    DATE = "date"
    MONTH = "month"
    """A calendar month, held as its first day; shown `2025-01`."""
    INTEGER = "integer"
    AMOUNT = "amount"
    """USDT, a Decimal with up to 18 decimals."""
    RATE = "rate"
    """A ratio such as broker_rebate / net_fee, a Decimal (shown as a percentage; a ratio in CSV)."""
    RATE_POINTS = "rate_points"
    """The difference of two rates, a Decimal ratio (shown in percentage points: 0.0123 reads +1.23 pp)."""
    BOOLEAN = "boolean"


NUMERIC_KINDS = frozenset({Kind.INTEGER, Kind.AMOUNT, Kind.RATE, Kind.RATE_POINTS})
"""Kinds that are numbers: right-aligned, headers included."""


class Missing(StrEnum):
    """A value that cannot be given, and why: written as this text for people, as an empty field in CSV."""

    NO_DATA = "No data"
    """No loaded file holds any day of that period: not zero, unknown."""
    NOT_AVAILABLE = "n/a"
    """The files carry no uid (14-column api files), so users cannot be counted."""


@dataclass(frozen=True)
class Column:
    """A column of a report table: its machine name (CSV header), its label for people, and its kind.

    Amount columns carry their unit in both: `broker_rebate_usdt`, "Broker rebate (USDT)". A `detail` column is
    written to CSV only (the exact figures a machine checks); the workbook and the page leave it out.
    """

    name: str
    label: str
    kind: Kind
    detail: bool = False


Cell = str | int | Decimal | date | bool | None
"""A value: text (a `Missing` is text), a count, an amount or rate, a day, a yes/no, or nothing."""

TOTAL = "Total"
"""The first cell of every Total row."""


@dataclass(frozen=True)
class Table:
    """One table of the report: a sheet in xlsx, a file in csv, a section in html."""

    name: str
    """Machine name: `by_day`, `by_broker_code`, ...; the CSV file is `<name>.csv`, the sheet uses `title`."""
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""
    """What the table shows, in a sentence or two, and anything about its Total row a reader must know."""
    total: tuple[Cell, ...] | None = None
    """The Total row (first cell `Total`), written after the rows in every format: the exact sums where the rows
    partition the period, the period's distinct counts where they do not (the note then says so)."""
    row_kinds: tuple[Kind, ...] = ()
    """For a table of one metric per row (the summary): each row's kind, which its `ROW_KIND_COLUMNS` cells take."""
    short_rows: tuple[tuple[Cell, ...], ...] | None = None
    """What the page shows instead of `rows` when they are many: the first ones and one row adding up the rest."""
    cards: bool = False
    """The page shows each row as a card of label: value lines instead of a table row (too many columns)."""
    key_columns: int = 1
    """How many leading columns name a row; repeated in each part when the page splits a wide table."""

    def column(self, name: str) -> list[Cell]:
        """Every value of one column (the Total row excluded)."""
        index = [column.name for column in self.columns].index(name)
        return [row[index] for row in self.rows]

    def records(self) -> list[dict[str, Cell]]:
        """The rows as dicts keyed by column name (the Total row excluded)."""
        names = [column.name for column in self.columns]
        return [dict(zip(names, row, strict=True)) for row in self.rows]

    def indexed_rows(self, *, short: bool = False) -> list[tuple[int | None, tuple[Cell, ...]]]:
        """The rows to write, each with its index for `cell_kind` (None for the Total row, which comes last).

        With `short`, the page's short list where there is one (its rows then have no index: an added-up row's
        kinds are its columns')."""
        shown = self.short_rows if short and self.short_rows is not None else self.rows
        plain = not short or self.short_rows is None
        rows: list[tuple[int | None, tuple[Cell, ...]]] = [
            (index if plain else None, row) for index, row in enumerate(shown)
        ]
        if self.total is not None:
            rows.append((None, self.total))
        return rows

    def total_record(self) -> dict[str, Cell]:
        """The Total row keyed by column name (empty when the table has none)."""
        if self.total is None:
            return {}
        return dict(zip((column.name for column in self.columns), self.total, strict=True))


def for_people(table: Table) -> Table:
    """The table as the workbook and the page show it: without its `detail` (CSV-only) columns."""
    keep = [index for index, column in enumerate(table.columns) if not column.detail]
    if len(keep) == len(table.columns):
        return table

    def project(row: Sequence[Cell]) -> tuple[Cell, ...]:
        return tuple(row[index] for index in keep)

    return replace(
        table,
        columns=tuple(table.columns[index] for index in keep),
        rows=tuple(project(row) for row in table.rows),
        total=project(table.total) if table.total is not None else None,
        short_rows=tuple(project(row) for row in table.short_rows) if table.short_rows is not None else None,
    )


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
    """Days [start, end], both included, as days in the report's timezone; a month or a free range."""

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

    @classmethod
    def last_ended_month(cls, now: datetime, tz: tzinfo) -> Period:
        """The last calendar month that has ended in `tz` at `now`: what a month-end run reports on."""
        today = now.astimezone(tz).date()
        return cls.month(today.year, today.month).previous()

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

    @property
    def words(self) -> str:
        """`2025-01-01 to 2025-01-31 (31 days)`: the period for people."""
        return f"{self.start} to {self.end} ({self.days} day{'s' if self.days != 1 else ''})"

    def previous(self) -> Period:
        """The period to compare with: the previous month for a month, else as many days just before."""
        if self.is_month:
            last = self.start - timedelta(days=1)
            return Period.month(last.year, last.month)
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def day_list(self) -> list[date]:
        """Every day of the period."""
        return [self.start + timedelta(days=offset) for offset in range(self.days)]

    def months_back(self, count: int) -> Period:
        """The `count` calendar months ending with the month of the period's last day."""
        year, month = self.end.year, self.end.month - (count - 1)
        while month < 1:
            year, month = year - 1, month + 12
        return Period(date(year, month, 1), Period.month(self.end.year, self.end.month).end)


@dataclass(frozen=True)
class KeyFigure:
    """One of the figures a reader sees first: its value and its change from the previous period."""

    label: str
    value: Cell
    kind: Kind
    change: Cell
    """The change % for amounts and counts (a RATE), the change in percentage points for a rate (RATE_POINTS)."""
    change_kind: Kind


@dataclass(frozen=True)
class Freshness:
    """How current the figures are: when data was last loaded and the newest day every file type holds."""

    last_load: datetime | None
    """When the newest load finished (UTC), of any window in scope; None before any load."""
    latest_complete_day: date | None
    """The newest day every (account, broker type) in scope has a loaded file for; None before any."""
    not_over: tuple[date, ...] = ()
    """Days of the period that have not ended yet in the report's timezone: nobody can have their file yet."""


@dataclass(frozen=True)
class Report:
    """A commission report (or one broker code's statement) for a period, with the previous period to compare."""

    period: Period
    previous: Period
    broker_code: str | None
    generated_at: datetime
    """When it was made, timezone-aware; printed in the report's timezone with UTC beside it."""
    timezone: str
    """The report's timezone as text (REBATES_TZ): its days are days there."""
    summary: Table
    """One metric per row: this period, previous period, change, change % (kinds from `row_kinds`)."""
    tables: tuple[Table, ...]
    charts: tuple[Chart, ...]
    sources: tuple[str, ...]
    """The loaded OKX files the figures come from, in words (`api file 2025-01-01 to 2025-01-14`)."""
    missing_days: tuple[date, ...]
    """Days of the period (over by now) that lack a loaded file of some broker type: their figures are incomplete."""
    reconciliation_ok: bool
    """Every figure reconciled with the loaded files it comes from."""
    warnings: tuple[str, ...] = field(default=())
    account: str | None = None
    """The one OKX broker account reported on; None for every account together."""
    kind: str = "report"
    """`report` (a commission report) or `statement` (one broker code's statement)."""
    local_generated_at: datetime | None = None
    """`generated_at` in the report's timezone (None: shown in its own offset)."""
    freshness: Freshness = field(default_factory=lambda: Freshness(None, None))
    key_figures: tuple[KeyFigure, ...] = ()
    glossary: tuple[tuple[str, str], ...] = ()
    """(term, meaning) pairs: each amount as OKX defines it, the sign convention, the words the report uses."""
    incomplete: tuple[str, ...] = ()
    """The missing days as ranges with what each lacks, one line per range (`2025-01-15: no api file loaded`)."""
    facts: tuple[tuple[str, str], ...] = ()
    """Further label: value lines the header shows (a statement's broker type, say)."""

    @property
    def name(self) -> str:
        """What the document is: `OKX broker commission report` or `Commission statement`."""
        return "Commission statement" if self.kind == "statement" else "OKX broker commission report"

    @property
    def title(self) -> str:
        """The heading: the name, the period once, the account and broker code when there is one."""
        account = f", account {self.account}" if self.account else ""
        scope = f", broker code {self.broker_code}" if self.broker_code else ""
        return f"{self.name} {self.period.label}{account}{scope}"

    @property
    def shown_generated_at(self) -> datetime:
        """The generation time as the reader's days count it (the report's timezone)."""
        return self.local_generated_at or self.generated_at

    def table(self, name: str) -> Table:
        """A table by machine name (the summary included)."""
        for table in (self.summary, *self.tables):
            if table.name == name:
                return table
        raise KeyError(name)


SUMMARY = "summary"
"""The summary table's name: one metric per row."""

ROW_KIND_COLUMNS = frozenset({"this_period", "previous_period", "change"})
"""The columns whose cells take their kind from the row (`Table.row_kinds`), not from the column."""


def cell_kind(table: Table, column: Column, row_index: int | None) -> Kind:
    """How one cell is written: its column's kind, except in a metric-per-row table's value columns.

    The summary holds one metric per row, and metrics differ in kind: amounts, the effective rebate rate and counts.
    Its `this_period`, `previous_period` and `change` cells take the row's kind from `row_kinds`, except that a
    rate's change is in percentage points (RATE_POINTS). `row_index` None is the Total row (the column decides).
    """
    if row_index is None or not table.row_kinds or column.name not in ROW_KIND_COLUMNS:
        return column.kind
    kind = table.row_kinds[row_index]
    if kind is Kind.RATE and column.name == "change":
        return Kind.RATE_POINTS
    return kind


def day_runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Days as runs of consecutive days, oldest first: [(first, last), ...]."""
    runs: list[tuple[date, date]] = []
    for day in sorted(set(days)):
        if runs and day - runs[-1][1] == timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def span_text(start: date, end: date) -> str:
    """A run of days: `2025-01-03..2025-01-05`, or the one day."""
    return f"{start}" if start == end else f"{start}..{end}"


def days_text(days: Iterable[date]) -> str:
    """Days as ranges: `2025-01-03..2025-01-05, 2025-01-09`, or `none`."""
    return ", ".join(span_text(start, end) for start, end in day_runs(days)) or "none"
