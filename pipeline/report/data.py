"""Run the report queries (sql/reports) into one `Report`: its tables, Total rows, comparisons and reconciliation."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import groupby
from pathlib import Path, PurePosixPath
from typing import Any

import duckdb

from pipeline.columns import AMOUNT_COLUMNS
from pipeline.config import DEFAULT_ACCOUNT, DEFAULT_LOCK_TIMEOUT
from pipeline.db import connect
from pipeline.ledger import WindowState
from pipeline.report.model import (
    EXACT,
    SUMMARY,
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
    day_runs,
    days_text,
    exact_sum,
    span_text,
)
from pipeline.report.reconcile import Reconciler, WindowCheck
from pipeline.report.source_files import SourceFiles, file_figures
from pipeline.report.tables import (
    COLUMNS,
    change,
    count_note,
    first_rows,
    keyed,
    rate_change,
    ratio,
    table,
    total_row,
    users_cell,
    with_rates,
)
from pipeline.report.words import glossary, window_words
from pipeline.sqlfiles import sql_text
from pipeline.windows import yesterday

__all__ = [
    "CHARTS",
    "METRICS",
    "TOP_INSTRUMENTS",
    "TOP_USERS",
    "TREND_MONTHS",
    "UnknownBrokerCode",
    "build_report",
]

TOP_INSTRUMENTS = 20
"""How many instruments `top_instruments` lists before adding the rest up in one row."""
TOP_USERS = 20
"""How many users the page shows (the workbook and by_user.csv list every one)."""
TREND_MONTHS = 12
"""How many months the trend covers, the period's last month included."""

COMPARED = ("net_fee", "broker_rebate")
"""The amounts the change tables compare per broker code and per instrument type."""

REBATE_METRICS: tuple[tuple[str, str, Kind], ...] = (
    ("net_fee", "Net fee (USDT)", Kind.AMOUNT),
    ("broker_rebate", "Broker rebate (USDT)", Kind.AMOUNT),
    ("effective_rate", "Effective rate (broker rebate / net fee)", Kind.RATE),
    ("sub_broker_rebate", "Sub-broker rebate (USDT)", Kind.AMOUNT),
    ("user_rebate", "User rebate (USDT)", Kind.AMOUNT),
)
"""The first rows of every summary, a report's and a statement's: the fee earned and who the rebates went to."""

VOLUME_METRICS: tuple[tuple[str, str, Kind], ...] = (
    ("settlement_fee", "Settlement fee (USDT)", Kind.AMOUNT),
    ("spot_trade_amt", "Spot volume (USDT)", Kind.AMOUNT),
    ("derivative_trade_amt", "Derivative volume (USDT)", Kind.AMOUNT),
    ("orders", "Orders", Kind.INTEGER),
)
"""Every summary's rows after its fee: what was settled and traded, and how many orders."""

METRICS: tuple[tuple[str, str, Kind], ...] = (
    *REBATE_METRICS,
    ("fee_paid", "Fee paid (USDT)", Kind.AMOUNT),
    *VOLUME_METRICS,
    ("broker_codes", "Active broker codes", Kind.INTEGER),
    ("users", "Active users", Kind.INTEGER),
)
"""The summary's rows in order: (key in the period's totals, the `metric` cell, the row's kind)."""

KEY_FIGURES = ("net_fee", "broker_rebate", "effective_rate", "orders")
"""The metrics a reader sees first, with their change."""

UNITS = {Kind.AMOUNT: "USDT", Kind.RATE: "%", Kind.INTEGER: "count"}
"""The summary CSV's `unit` per row kind (a % row's change is in percentage points)."""

SUMMARY_COLUMNS = (
    Column("metric", "Metric", Kind.TEXT),
    Column("unit", "Unit", Kind.TEXT, detail=True),
    Column("this_period", "This period", Kind.AMOUNT),
    Column("previous_period", "Previous period", Kind.AMOUNT),
    Column("change", "Change", Kind.AMOUNT),
    Column("change_pct", "Change %", Kind.RATE),
)

BY_ACCOUNT = "by_account"

CHARTS = (
    Chart(
        "trend",
        "Net fee and rebates per month",
        "line",
        "month",
        ("net_fee_usdt", "broker_rebate_usdt", "sub_broker_rebate_usdt", "user_rebate_usdt"),
    ),
    Chart("by_day", "Broker rebate per day", "line", "day", ("broker_rebate_usdt",)),
    Chart("by_instrument_type", "Broker rebate by instrument type", "bar", "instrument_type", ("broker_rebate_usdt",)),
)


class UnknownBrokerCode(ValueError):
    """A broker code the loaded files never name: the message lists the ones they do."""


@contextmanager
def open_database(db_path: Path, lock_timeout: float) -> Iterator[duckdb.DuckDBPyConnection]:
    """The database read-only; an empty one in memory (schema only) when the file does not exist yet.

    Either way the connection holds the report's own TEMP macro `details_in_scope`, which its queries read from.
    """
    if db_path.exists():
        opened = connect(db_path, read_only=True, lock_timeout=lock_timeout)
    else:
        opened = connect(Path(":memory:"))
    with opened as db:
        db.execute(sql_text("reports/details_in_scope.sql"))
        yield db


def query(db: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, object]) -> list[dict[str, Any]]:
    """Run `sql/reports/<name>.sql` with its parameters; one dict per row, keyed by column name."""
    cursor = db.execute(sql_text(f"reports/{name}.sql"), dict(params))
    names = [description[0] for description in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def check_broker_code(db: duckdb.DuckDBPyConnection, broker_code: str, account: str | None) -> None:
    """Raise `UnknownBrokerCode` listing the known codes when no loaded row names `broker_code`."""
    known = query(db, "known_broker_codes", {"account": account})
    if any(record["broker_code"] == broker_code for record in known):
        return
    listed = ", ".join(f"{record['broker_code']} ({record['broker_type']})" for record in known) or "none yet"
    whose = f" of account {account}" if account else ""
    raise UnknownBrokerCode(f"broker code {broker_code!r} is in no loaded file{whose}; the known codes are: {listed}")


@dataclass(frozen=True)
class Scope:
    """What a report covers: its days, one account or all (None), one broker code or all (None)."""

    period: Period
    account: str | None
    broker_code: str | None

    def params(self, period: Period | None = None) -> dict[str, object]:
        """The query parameters for this scope (or for another period of it)."""
        days = period or self.period
        return {"start": days.start, "end": days.end, "broker_code": self.broker_code, "account": self.account}

    def window_params(self, period: Period | None = None) -> dict[str, object]:
        """The parameters of the window queries: windows are per account, never per broker code."""
        days = period or self.period
        return {"start": days.start, "end": days.end, "account": self.account}


def totals(db: duckdb.DuckDBPyConnection, params: Mapping[str, object]) -> dict[str, Any]:
    """The period's totals with the effective rate and the fee paid (the fee, its sign turned)."""
    (found,) = query(db, "period_totals", params)
    found["effective_rate"] = ratio(found["broker_rebate"], found["net_fee"])
    found["fee_paid"] = EXACT.minus(found["fee"])
    return found


@dataclass(frozen=True)
class Coverage:
    """Which days of a period are complete, which lack a file (and what they lack), which are not over yet."""

    complete: dict[date, str]
    """Each day's `Data complete` cell: Yes, No or Not over yet."""
    missing: tuple[date, ...]
    not_over: tuple[date, ...]
    lines: tuple[str, ...]
    """The missing days as ranges, once each, with what they lack: `2025-01-15: no api file loaded yet`."""


def coverage(
    period: Period, by_day: Sequence[Mapping[str, Any]], uncovered: Sequence[Mapping[str, Any]], last_over: date
) -> Coverage:
    """The period's days sorted out from by_day.sql's `covered` and uncovered_days.sql's (account, type, day)."""
    not_over = tuple(day for day in period.day_list() if day > last_over)
    lacking: dict[date, list[str]] = {}
    for record in uncovered:
        if record["trade_date"] <= last_over:
            account = "" if record["account"] == DEFAULT_ACCOUNT else f"account {record['account']}'s "
            lacking.setdefault(record["trade_date"], []).append(f"{account}{record['broker_type']}")
    missing = tuple(
        record["trade_date"] for record in by_day if not record["covered"] and record["trade_date"] <= last_over
    )
    lines = []
    for what, days in groupby(missing, key=lambda day: tuple(lacking.get(day, ()))):
        kinds = " or ".join(what) if what else "any"
        for start, end in day_runs(days):
            lines.append(f"{span_text(start, end)}: no {kinds} file loaded yet")
    complete = {
        record["trade_date"]: "Not over yet"
        if record["trade_date"] > last_over
        else ("Yes" if record["covered"] else "No")
        for record in by_day
    }
    return Coverage(complete, missing, not_over, tuple(lines))


def freshness(db: duckdb.DuckDBPyConnection, account: str | None) -> Freshness:
    """When data was last loaded and the newest day every file type holds (`not_over` is the caller's coverage's)."""
    (found,) = query(db, "freshness", {"account": account})
    return Freshness(found["last_load"], found["latest_complete_day"])


def sources(windows: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The loaded files in words, one line per (account, broker type): how many and which days they hold."""
    loaded = [window for window in windows if window["state"] == WindowState.LOADED]
    lines = []
    for (account, broker_type), group in groupby(
        sorted(loaded, key=lambda window: (window["account"], window["broker_type"], window["begin_date"])),
        key=lambda window: (window["account"], window["broker_type"]),
    ):
        files = list(group)
        days = [day for window in files for day in Period(window["begin_date"], window["end_date"]).day_list()]
        spans = days_text(days)
        whose = "" if account == DEFAULT_ACCOUNT else f"account {account}, "
        lines.append(f"{whose}{broker_type}: {len(files)} file{'s' if len(files) != 1 else ''} ({spans})")
    return tuple(lines)


def window_warnings(windows: Sequence[Mapping[str, Any]]) -> list[str]:
    """A line per window that failed or was set aside, in words."""
    words = {WindowState.QUARANTINED: "was set aside (quarantined)", WindowState.FAILED: "failed"}
    return [
        f"the {window_words(window['window_id'])} {words[window['state']]}: {window['last_error']}"
        for window in windows
        if window["state"] in words
    ]


def previous_warning(previous: Period, has_data: bool, previous_coverage: Coverage) -> list[str]:
    """What the comparison with the previous period is worth."""
    if not has_data:
        return [f"no file of the previous period {previous.label} is loaded: its figures read No data"]
    if previous_coverage.missing:
        return [
            f"{len(previous_coverage.missing)} day(s) of the previous period {previous.label} have no loaded file, "
            "so the comparison with it is incomplete"
        ]
    return []


def has_loaded(days: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a loaded file holds any of these by_day.sql days: a period with none has no data, not zeros."""
    return any(day["loaded_types"] for day in days)


def _days_in(days: Sequence[Mapping[str, Any]], period: Period) -> list[dict[str, Any]]:
    """The by_day.sql records of `period`'s days (each day's record does not depend on the range it was asked in)."""
    return [dict(day) for day in days if period.start <= day["trade_date"] <= period.end]


@dataclass(frozen=True)
class _Results:
    """Everything the queries return for one report, read in one short read-only session."""

    totals: dict[str, Any]
    previous_totals: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]]
    previous_tables: dict[str, list[dict[str, Any]]]
    previous_days: list[dict[str, Any]]
    windows: list[dict[str, Any]]
    uncovered: list[dict[str, Any]]
    previous_uncovered: list[dict[str, Any]]
    trend: list[dict[str, Any]]
    trend_days: list[dict[str, Any]]
    held: list[dict[str, Any]]
    freshness: Freshness


RECORD_QUERIES = (
    "by_day",
    "by_account",
    "by_broker_code",
    "by_user",
    "by_instrument_type",
    "top_instruments",
    "by_user_level",
    "affiliated",
    "reconciliation",
)


def _read(db: duckdb.DuckDBPyConnection, scope: Scope, previous: Period) -> _Results:
    params, previous_params = scope.params(), scope.params(previous)
    trend_period = scope.period.months_back(TREND_MONTHS)
    # by_day once, over every day the period, the previous one and the trend need: each is a slice of it.
    span = Period(min(previous.start, trend_period.start), max(scope.period.end, trend_period.end))
    days = query(db, "by_day", scope.params(span))
    return _Results(
        totals=totals(db, params),
        previous_totals=totals(db, previous_params),
        tables={
            name: _days_in(days, scope.period)
            if name == "by_day"
            else query(db, name, scope.window_params() if name == "reconciliation" else params)
            for name in RECORD_QUERIES
        },
        previous_tables={name: query(db, name, previous_params) for name in ("by_broker_code", "by_instrument_type")},
        previous_days=_days_in(days, previous),
        windows=query(db, "windows_in_period", scope.window_params()),
        uncovered=query(db, "uncovered_days", scope.window_params()),
        previous_uncovered=query(db, "uncovered_days", scope.window_params(previous)),
        trend=query(db, "monthly_trend", scope.params(trend_period)),
        trend_days=_days_in(days, trend_period),
        held=query(db, "window_code_days", params),
        freshness=freshness(db, scope.account),
    )


def _summary(this: Mapping[str, Any], previous: Mapping[str, Any], previous_has_data: bool) -> Table:
    rows: list[tuple[Cell, ...]] = []
    for key, label, kind in METRICS:
        now, before = metric_value(this, key), metric_value(previous, key) if previous_has_data else Missing.NO_DATA
        if kind is Kind.RATE:
            rows.append((label, UNITS[kind], now, before, rate_change(now, before), None))
        else:
            rows.append((label, UNITS[kind], now, before, *change(now, before)))
    note = (
        "Each figure this period and the previous one. A rate's change is in percentage points; Fee paid is the fee "
        "with its sign turned (OKX stores fees as negative numbers), so that less fee paid reads as a fall."
    )
    if 0 < this["rows_with_uid"] < this["rows"]:
        note += " Active users counts the users of OAuth broker files only: API broker files carry no uid."
    return Table(SUMMARY, "Summary", SUMMARY_COLUMNS, tuple(rows), note, row_kinds=tuple(kind for *_, kind in METRICS))


def metric_value(totals: Mapping[str, Any], key: str) -> Cell:
    if key == "users":
        return users_cell(totals["users"] if totals["rows_with_uid"] else None, totals["rows"])
    value: Cell = totals[key]
    return value


def key_figures(summary: Table) -> tuple[KeyFigure, ...]:
    """The key metrics of a comparison summary, each with its change % (or rate points)."""
    by_label = {str(row[0]): (row, kind) for row, kind in zip(summary.rows, summary.row_kinds, strict=True)}
    labels = {key: label for key, label, _ in METRICS}
    found = []
    for key in KEY_FIGURES:
        row, kind = by_label[labels[key]]
        value, change_cell, change_pct = row[2], row[4], row[5]
        if kind is Kind.RATE:
            found.append(KeyFigure(labels[key], value, kind, change_cell, Kind.RATE_POINTS))
        else:
            found.append(KeyFigure(labels[key], value, kind, change_pct, Kind.RATE))
    return tuple(found)


BY_DAY = (
    "day",
    "orders",
    "fee",
    "net_fee",
    "settlement_fee",
    "broker_rebate",
    "sub_broker_rebate",
    "user_rebate",
    "data_complete",
)


def by_day(
    records: Sequence[Mapping[str, Any]], complete: Coverage, period_orders: int, tz: str, keys: Sequence[str] = BY_DAY
) -> Table:
    """Every day of the period with its Total; the note says why the days' orders add up to more."""
    rows = []
    for record in records:
        row = keyed(record) | {"data_complete": complete.complete[record["trade_date"]]}
        if not record["loaded_types"]:  # no file holds the day: its figures are unknown, not zero
            row |= {key: Missing.NO_DATA for key in keys if key in AMOUNT_COLUMNS or key == "orders"}
        rows.append(row)
    total = total_row(keys, rows, {"orders": period_orders})
    note = (
        f"Every day of the period (days in {tz}), zeros where nothing was traded and No data where no file holds the "
        "day. Data complete is No where some broker type's file for the day is not loaded yet, and Not over yet for "
        "a day that has not ended."
    )
    note += count_note(
        rows, dict(zip(keys, total, strict=True)), "orders", "order", "an order that filled on two days counts on both"
    )
    return table("by_day", "By day", keys, rows, note, total=total)


def _comparison(
    name: str,
    title: str,
    key: str,
    now: Sequence[Mapping[str, Any]],
    before: Sequence[Mapping[str, Any]],
    previous_has_data: bool,
    extra: Sequence[str] = (),
) -> Table:
    """This period against the previous one per `key` (a broker code, an instrument type): net fee, broker rebate."""
    previous = {record[key]: record for record in before}
    current = {record[key]: record for record in now}
    order = list(current) + [name for name in previous if name not in current]
    keys: list[str] = [key, *extra]
    for amount in COMPARED:
        keys += [amount, f"{amount}_previous"]
        keys += [f"{amount}_change", f"{amount}_change_pct"] if amount == "broker_rebate" else [f"{amount}_change_pct"]
    rows = []
    for item in order:
        this, that = current.get(item), previous.get(item)
        row: dict[str, Any] = {key: item}
        for column in extra:
            row[column] = (this or that or {}).get(column)
        for amount in COMPARED:
            now_value = this[amount] if this else Decimal(0)
            before_value: Cell = (that[amount] if that else Decimal(0)) if previous_has_data else Missing.NO_DATA
            row[amount], row[f"{amount}_previous"] = now_value, before_value
            row[f"{amount}_change"], row[f"{amount}_change_pct"] = change(now_value, before_value)
        rows.append(row)
    total: dict[str, Any] = {key: TOTAL}
    for amount in COMPARED:
        total[amount] = exact_sum(row[amount] for row in rows)
        total[f"{amount}_previous"] = (
            exact_sum(row[f"{amount}_previous"] for row in rows) if previous_has_data else Missing.NO_DATA
        )
        total[f"{amount}_change"], total[f"{amount}_change_pct"] = change(total[amount], total[f"{amount}_previous"])
    note = (
        f"Net fee and broker rebate this period against the previous one, per {COLUMNS[key].label.lower()}; "
        "0.00 where there were no orders in one of them."
    )
    if not previous_has_data:
        note += " No file of the previous period is loaded, so it reads No data."
    return table(name, title, keys, rows, note, total=tuple(total.get(column) for column in keys))


def _trend(records: Sequence[Mapping[str, Any]], days: Sequence[Mapping[str, Any]], last_over: date) -> Table:
    keys = (
        "month",
        "net_fee",
        "broker_rebate",
        "sub_broker_rebate",
        "user_rebate",
        "effective_rate",
        "orders",
        "active_broker_codes",
        "active_users",
        "data",
    )
    first = next((index for index, record in enumerate(records) if record["has_data"]), len(records))
    rows = []
    for record in records[first:]:
        month = record["month"]
        in_month = [
            day
            for day in days
            if (day["trade_date"].year, day["trade_date"].month) == (month.year, month.month)
            and day["trade_date"] <= last_over
        ]
        covered = sum(1 for day in in_month if day["covered"])
        if not record["has_data"]:
            rows.append({key: Missing.NO_DATA for key in keys} | {"month": month, "data": "No data"})
            continue
        days_in_month = Period.month(month.year, month.month).days
        if len(in_month) < days_in_month:
            state = f"{covered} of {len(in_month)} days so far"
        else:
            state = "Complete" if covered == days_in_month else f"{covered} of {days_in_month} days"
        rows.append(
            {
                **{
                    key: record[key]
                    for key in ("month", "net_fee", "broker_rebate", "sub_broker_rebate", "user_rebate", "orders")
                },
                "effective_rate": ratio(record["broker_rebate"], record["net_fee"]),
                "active_broker_codes": record["broker_codes"],
                "active_users": users_cell(record["users"], record["rows"]),
                "data": state,
            }
        )
    note = (
        f"The last {TREND_MONTHS} months up to the period's month, from the first month any loaded file holds. Data "
        "says how many of the month's days (up to yesterday) every broker type's file holds."
    )
    return table("trend", f"Last {TREND_MONTHS} months", keys, rows, note)


BY_USER = ("uid", "broker_codes", "orders", "net_fee", "broker_rebate", "user_rebate")


def by_user(records: Sequence[Mapping[str, Any]], period_orders: int, keys: Sequence[str] = BY_USER) -> Table:
    """Every user of the period with its Total; the page shows the first `TOP_USERS` and one row for the others."""
    users = [dict(record) for record in records if record["uid"] is not None]
    without = [dict(record) | {"uid": Missing.NOT_AVAILABLE} for record in records if record["uid"] is None]

    def others(rest: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        summed = {key: exact_sum(record[key] for record in rest) for key in ("net_fee", "broker_rebate", "user_rebate")}
        orders = sum(int(record["orders"]) for record in rest)
        return {"uid": f"{len(rest):,} other users", "broker_codes": None, "orders": orders, **summed}

    rows = users + without
    total = total_row(keys, rows, {"orders": period_orders})
    note = (
        "Every user (uid) of the period, the biggest earner of broker rebate first; the page shows the first "
        f"{TOP_USERS} and adds up the others in one row."
    )
    if without:
        note += (
            " The n/a row holds the orders of API broker files, which carry no uid (14 columns), so their users "
            "cannot be told apart."
        )
    return table(
        "by_user",
        "By user",
        keys,
        rows,
        note,
        total=total,
        short_rows=tuple(
            tuple(record[key] for key in keys) for record in [*first_rows(users, TOP_USERS, others), *without]
        ),
    )


BY_INSTRUMENT_TYPE = (
    "instrument_type",
    "orders",
    "spot_trade_amt",
    "derivative_trade_amt",
    "net_fee",
    "broker_rebate",
    "share",
)
"""By instrument type's columns; Top instruments shows the same figures per instrument."""


def _top_instruments(records: Sequence[Mapping[str, Any]], broker_rebate: Decimal, period_orders: int) -> Table:
    keys = ("instrument", *BY_INSTRUMENT_TYPE)

    def others(rest: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        summed = {key: exact_sum(record[key] for record in rest) for key in AMOUNT_COLUMNS}
        orders = sum(int(record["orders"]) for record in rest)
        return {"instrument": f"{len(rest):,} other instruments", "instrument_type": None, "orders": orders, **summed}

    rows = with_rates(first_rows([keyed(record) for record in records], TOP_INSTRUMENTS, others), broker_rebate)
    total = total_row(keys, rows, {"orders": period_orders})
    note = (
        f"The {TOP_INSTRUMENTS} instruments that earned the most broker rebate, then every other instrument added "
        "up in one row."
    )
    return table("top_instruments", f"Top {TOP_INSTRUMENTS} instruments", keys, rows, note, total=total)


def breakdown(
    name: str,
    title: str,
    keys: Sequence[str],
    records: Sequence[Mapping[str, Any]],
    totals: Mapping[str, Any],
    note: str,
    overlap: Mapping[str, tuple[str, str]] | None = None,
) -> Table:
    """A table of the period split one way, its Total row and a sentence for each count its rows overlap in."""
    rows = [
        keyed(record) | {"users": users_cell(record["users"], int(record["orders"]))}
        if "users" in record
        else keyed(record)
        for record in with_rates(records, totals["broker_rebate"])
    ]
    counts = {"orders": totals["orders"], "users": metric_value(totals, "users")}
    total = total_row(keys, rows, counts)
    shown = dict(zip(keys, total, strict=True))
    for key, (what, why) in (overlap or {}).items():
        note += count_note(rows, shown, key, what, why)
    if any(row.get("users") is Missing.NOT_AVAILABLE for row in rows):
        note += " Users read n/a where the files carry no uid (API broker files have 14 columns, without uid)."
    return table(name, title, keys, rows, note, total=total)


def _reconciliation(checks: Sequence[WindowCheck], broker_code: str | None) -> Table:
    keys = ["file", "file_name_detail", "sha256_detail", "days", "rows_in_file", "rows_in_database"]
    for key in AMOUNT_COLUMNS:
        keys += [f"{key}_in_file", f"{key}_in_database"]
    keys += ["matches", "unchanged", "differences"]
    rows = []
    for check in checks:
        row: dict[str, Any] = {
            "file": window_words(check.window_id),
            "file_name_detail": check.file_name,
            "sha256_detail": check.sha256,
            "days": span_text(check.begin, check.end),
            "rows_in_file": check.in_file.rows,
            "rows_in_database": check.in_db.rows,
            "matches": check.matches,
            "unchanged": check.unchanged,
            "differences": check.differences(),
        }
        for key in AMOUNT_COLUMNS:
            row[f"{key}_in_file"], row[f"{key}_in_database"] = check.in_file.amounts[key], check.in_db.amounts[key]
        rows.append(row)
    total: dict[str, Any] = {
        "file": TOTAL,
        "rows_in_file": sum(row["rows_in_file"] for row in rows),
        "rows_in_database": sum(row["rows_in_database"] for row in rows),
        "matches": all(row["matches"] for row in rows),
        "unchanged": all(row["unchanged"] for row in rows),
    }
    for key in keys:
        if key.endswith(("_in_file", "_in_database")) and key not in total:
            total[key] = exact_sum(row[key] for row in rows)
    whose = f" of broker code {broker_code}" if broker_code else ""
    note = (
        f"Each loaded file holding a day of the period (named in Source files), read again from the archive: its "
        f"rows{whose} on the period's days against what the database holds, all eight amounts compared exactly (net "
        "fee and broker rebate shown; the CSV has all eight, and each file's name and SHA-256). Unchanged since "
        "loaded checks the whole file against its rows in the database."
    )
    return table(
        "reconciliation", "Reconciliation", keys, rows, note, total=tuple(total.get(key) for key in keys), cards=True
    )


def _report_tables(
    results: _Results, scope: Scope, checks: Sequence[WindowCheck], cover: Coverage, tz: str, previous_has_data: bool
) -> list[Table]:
    found = results.tables
    this = results.totals
    tables = [
        _trend(results.trend, results.trend_days, _last_over(cover, scope.period)),
        by_day(found["by_day"], cover, this["orders"], tz),
    ]
    amounts = AMOUNT_COLUMNS
    if scope.account is None and len(found[BY_ACCOUNT]) > 1:
        tables.append(
            breakdown(
                BY_ACCOUNT,
                "By account",
                ("account", "orders", "users", *amounts, "effective_rate", "share"),
                found[BY_ACCOUNT],
                this,
                "Totals per OKX broker account.",
            )
        )
    tables += [
        breakdown(
            "by_broker_code",
            "By broker code",
            ("broker_code", "broker_type", "orders", "users", *amounts, "effective_rate", "share"),
            found["by_broker_code"],
            this,
            "What each broker code earned and what it is owed: every amount of the period per code the users' orders "
            "were tagged with, the biggest earner first. Effective rate is broker rebate / net fee.",
            {"users": ("user", "a user who traded under several broker codes counts under each")},
        ),
        _comparison(
            "change_by_broker_code",
            "Change by broker code",
            "broker_code",
            found["by_broker_code"],
            results.previous_tables["by_broker_code"],
            previous_has_data,
            ("broker_type",),
        ),
        by_user(found["by_user"], this["orders"]),
        breakdown(
            "by_instrument_type",
            "By instrument type",
            BY_INSTRUMENT_TYPE,
            found["by_instrument_type"],
            this,
            "Totals per instrument type (from the instrument id).",
        ),
        _comparison(
            "change_by_instrument_type",
            "Change by instrument type",
            "instrument_type",
            [keyed(record) for record in found["by_instrument_type"]],
            [keyed(record) for record in results.previous_tables["by_instrument_type"]],
            previous_has_data,
        ),
        _top_instruments(found["top_instruments"], this["broker_rebate"], this["orders"]),
        breakdown(
            "by_user_level",
            "By user level",
            ("user_level", "orders", "users", "net_fee", "broker_rebate", "share"),
            found["by_user_level"],
            this,
            "Totals per user fee level; (none) where OKX left it empty.",
            {
                "orders": ("order", "an order whose user's level changed during the period counts under each level"),
                "users": ("user", "a user whose level changed during the period counts under each level"),
            },
        ),
        breakdown(
            "affiliated",
            "Affiliated rebates",
            ("affiliated", "orders", "net_fee", "broker_rebate", "user_rebate", "share"),
            found["affiliated"],
            this,
            "Totals for rows with and without an affiliated rebate.",
            {"orders": ("order", "an order affiliated on one day and not on another counts under both")},
        ),
        _reconciliation(checks, scope.broker_code),
        source_files(results.tables["reconciliation"], scope.period),
    ]
    return tables


def source_files(windows: Sequence[Mapping[str, Any]], period: Period) -> Table:
    """The archived OKX files the figures come from: what each holds of the period, its name and its SHA-256."""
    keys = ("file", "file_name", "sha256", "days")
    rows = [
        {
            "file": window_words(window["window_id"]),
            "file_name": PurePosixPath(window["path"]).name,
            "sha256": window["sha256"],
            "days": span_text(max(window["begin_date"], period.start), min(window["end_date"], period.end)),
        }
        for window in windows
    ]
    note = "The OKX files the figures come from, as archived (name and SHA-256), and the days of the period each holds."
    return table("source_files", "Source files", keys, rows, note)


def _last_over(cover: Coverage, period: Period) -> date:
    return min(cover.not_over) - timedelta(days=1) if cover.not_over else period.end


def build_report(
    db_path: Path,
    period: Period,
    *,
    sources_from: SourceFiles,
    tz_label: str,
    now: datetime,
    broker_code: str | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    account: str | None = None,
) -> Report:
    """The commission report for `period` (days in REBATES_TZ), compared with `period.previous()`.

    `broker_code` limits every table and the reconciliation to one code (`UnknownBrokerCode` for a code no loaded
    file names); None means all codes. `account` limits every table, the reconciliation and the coverage of days to
    one OKX broker account's rows and windows; None means every account together, with a `by_account` table whenever
    more than one account has rows in the period. `sources_from` says where the archived files are and how to read
    them: the reconciliation reads each loaded file of the period again. `tz_label` is REBATES_TZ as text and `now`
    the generation time, both printed. The database is opened read-only, for the queries only, waiting up to
    `lock_timeout` seconds while a pipeline run holds it; when the file does not exist yet the report is empty and
    says so in its warnings.
    """
    scope = Scope(period, account, broker_code)
    previous = period.previous()
    last_over = yesterday(now, sources_from.tz)
    with open_database(db_path, lock_timeout) as db:
        if broker_code is not None:
            check_broker_code(db, broker_code, account)
        results = _read(db, scope, previous)
    cover = coverage(period, results.tables["by_day"], results.uncovered, last_over)
    previous_cover = coverage(previous, results.previous_days, results.previous_uncovered, last_over)
    previous_has_data = has_loaded(results.previous_days)
    checks = Reconciler(
        period,
        results.tables["reconciliation"],
        results.held,
        lambda path: file_figures(Path(path), sources_from, period.start, period.end),
    ).window_checks(broker_code)
    summary = _summary(results.totals, results.previous_totals, previous_has_data)
    warnings = [] if db_path.exists() else [f"nothing has been loaded yet: there is no database at {db_path}"]
    if not results.windows:  # the missing days themselves are in `incomplete`, said once as ranges
        warnings.append(f"no file holding a day of {period.label} is loaded yet, so there are no figures")
    warnings += previous_warning(previous, previous_has_data, previous_cover) if results.windows else []
    warnings += window_warnings(results.windows)
    warnings += [
        f"the {window_words(check.window_id)} does not match the database: {check.differences()}"
        for check in checks
        if not check.matches
    ]
    warnings += [
        f"the {window_words(check.window_id)}'s rows in the database changed since it was loaded"
        for check in checks
        if check.matches and not check.unchanged
    ]
    return Report(
        period=period,
        previous=previous,
        broker_code=broker_code,
        generated_at=now,
        local_generated_at=now.astimezone(sources_from.tz),
        timezone=tz_label,
        summary=summary,
        tables=tuple(_report_tables(results, scope, checks, cover, tz_label, previous_has_data)),
        charts=CHARTS,
        sources=sources(results.windows),
        missing_days=cover.missing,
        reconciliation_ok=all(check.matches and check.unchanged for check in checks),
        warnings=tuple(warnings),
        account=account,
        freshness=replace(results.freshness, not_over=cover.not_over),
        key_figures=key_figures(summary),
        glossary=glossary(tz_label),
        incomplete=cover.lines,
    )
