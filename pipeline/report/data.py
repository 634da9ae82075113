"""Run the report queries (sql/reports) into one `Report`; summary rows carry their own kind (see `cell_kind`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Context, Decimal
from itertools import groupby
from operator import itemgetter
from pathlib import Path, PurePosixPath
from typing import Any

import duckdb

from pipeline.columns import AMOUNT_COLUMNS
from pipeline.config import DEFAULT_ACCOUNT, DEFAULT_LOCK_TIMEOUT
from pipeline.db import connect
from pipeline.ledger import WindowState
from pipeline.report.model import SUMMARY, Cell, Chart, Column, Kind, Period, Report, Table
from pipeline.sqlfiles import sql_text

__all__ = [
    "CHARTS",
    "METRICS",
    "TABLES",
    "TOP_INSTRUMENTS",
    "build_report",
    "ratio",
]

TOP_INSTRUMENTS = 20
"""How many instruments `top_instruments` lists."""

RATE_QUANTUM = Decimal("1E-10")
_DIVISION = Context(prec=28)
_QUANTIZING = Context(prec=60)
"""Wide enough that quantizing any quotient of two DECIMAL(38,18) sums to 1E-10 never overflows."""

AMOUNT_LABELS: dict[str, str] = {
    "spot_trade_amt": "Spot volume",
    "derivative_trade_amt": "Derivative volume",
    "fee": "Fee",
    "net_fee": "Net fee",
    "settlement_fee": "Settlement fee",
    "broker_rebate": "Broker rebate",
    "sub_broker_rebate": "Sub-broker rebate",
    "user_rebate": "User rebate",
}

METRICS: tuple[tuple[str, str, Kind], ...] = (
    *((name, AMOUNT_LABELS[name], Kind.AMOUNT) for name in AMOUNT_COLUMNS),
    ("effective_rate", "Effective rebate rate (broker rebate / net fee)", Kind.RATE),
    ("orders", "Orders", Kind.INTEGER),
    ("broker_codes", "Active broker codes", Kind.INTEGER),
    ("users", "Active users", Kind.INTEGER),
)
"""The summary's rows in order: (key in period_totals.sql, the `metric` cell, the row's kind)."""

_COLUMNS: dict[str, Column] = {
    column.name: column
    for column in (
        Column("trade_date", "Day", Kind.DATE),
        Column("account", "Account", Kind.TEXT),
        Column("broker_type", "Broker type", Kind.TEXT),
        Column("broker_code", "Broker code", Kind.TEXT),
        Column("inst_type", "Instrument type", Kind.TEXT),
        Column("inst_id", "Instrument", Kind.TEXT),
        Column("level", "User level", Kind.TEXT),
        Column("affiliated", "Affiliated rebate", Kind.BOOLEAN),
        Column("orders", "Orders", Kind.INTEGER),
        Column("users", "Users", Kind.INTEGER),
        *(Column(name, label, Kind.AMOUNT) for name, label in AMOUNT_LABELS.items()),
        Column("effective_rate", "Effective rate", Kind.RATE),
        Column("share", "Share of broker rebate", Kind.RATE),
        Column("covered", "Covered", Kind.BOOLEAN),
        Column("window_id", "Window", Kind.TEXT),
        Column("state", "State", Kind.TEXT),
        Column("file_name", "File", Kind.TEXT),
        Column("sha256", "SHA-256", Kind.TEXT),
        Column("rows_in_file", "Rows in file", Kind.INTEGER),
        Column("rows_in_db", "Rows in database", Kind.INTEGER),
        *(Column(f"file_{name}", f"{label} (file)", Kind.AMOUNT) for name, label in AMOUNT_LABELS.items()),
        *(Column(f"db_{name}", f"{label} (database)", Kind.AMOUNT) for name, label in AMOUNT_LABELS.items()),
        Column("matches", "Matches", Kind.BOOLEAN),
        Column("differences", "Differences", Kind.TEXT),
    )
}

SUMMARY_COLUMNS = (
    Column("metric", "Metric", Kind.TEXT),
    Column("kind", "Kind", Kind.TEXT),
    Column("this_period", "This period", Kind.AMOUNT),
    Column("previous_period", "Previous period", Kind.AMOUNT),
    Column("change", "Change", Kind.AMOUNT),
    Column("change_pct", "Change %", Kind.RATE),
)


def ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    """The ratio of two sums to 28 digits, quantized to 1E-10 (`RATE_QUANTUM`); None when the denominator is 0."""
    if denominator == 0:
        return None
    quotient = _DIVISION.divide(Decimal(numerator), Decimal(denominator))
    return quotient.quantize(RATE_QUANTUM, context=_QUANTIZING)


@contextmanager
def _open(db_path: Path, lock_timeout: float) -> Iterator[duckdb.DuckDBPyConnection]:
    """The database read-only; an empty one in memory (schema only) when the file does not exist yet."""
    if db_path.exists():
        with connect(db_path, read_only=True, lock_timeout=lock_timeout) as db:
            yield db
    else:
        with connect(Path(":memory:")) as db:
            yield db


def _query(db: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, object]) -> list[dict[str, Any]]:
    """Run `sql/reports/<name>.sql` with its parameters; one dict per row, keyed by column name."""
    cursor = db.execute(sql_text(f"reports/{name}.sql"), dict(params))
    names = [description[0] for description in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@dataclass(frozen=True)
class _TableSpec:
    """One table of the report: `sql/reports/<name>.sql` gives its rows; `note` may name {tz} and end with {scope}."""

    name: str
    title: str
    columns: tuple[str, ...]
    note: str


TABLES = (
    _TableSpec(
        "by_day", "By day",
        ("trade_date", "orders", "fee", "net_fee", "broker_rebate", "sub_broker_rebate", "user_rebate", "covered"),
        "Every day of the period (trade_date in {tz}), zeros where nothing was traded; covered is false where some "
        "broker type has no loaded window holding the day, so that day is incomplete; an order that filled on two "
        "days counts on both.{scope}",
    ),
    _TableSpec(
        "by_account", "By account",
        ("account", "orders", "users", "spot_trade_amt", "derivative_trade_amt", "fee", "net_fee", "broker_rebate",
         "effective_rate", "share"),
        "Totals per OKX broker account (REBATES_ACCOUNTS); effective rate is broker rebate / net fee, share its part "
        "of the period's broker rebate.{scope}",
    ),
    _TableSpec(
        "by_broker_code", "By broker code",
        ("broker_type", "broker_code", "orders", "users", "spot_trade_amt", "derivative_trade_amt", "fee", "net_fee",
         "broker_rebate", "effective_rate", "share"),
        "Totals per broker code the users' orders were tagged with; effective rate is broker rebate / net fee, share "
        "its part of the period's broker rebate.{scope}",
    ),
    _TableSpec(
        "by_instrument_type", "By instrument type",
        ("inst_type", "orders", "spot_trade_amt", "derivative_trade_amt", "net_fee", "broker_rebate", "share"),
        "Totals per instrument type (from the instrument id) and their share of the broker rebate.{scope}",
    ),
    _TableSpec(
        "top_instruments", f"Top {TOP_INSTRUMENTS} instruments",
        ("inst_id", "inst_type", "orders", "spot_trade_amt", "derivative_trade_amt", "net_fee", "broker_rebate",
         "share"),
        f"The {TOP_INSTRUMENTS} instruments that earned the most broker rebate.{{scope}}",
    ),
    _TableSpec(
        "by_user_level", "By user level",
        ("level", "orders", "users", "net_fee", "broker_rebate", "share"),
        "Totals per user fee level, (none) where OKX left it empty; an order or user whose level changed during the "
        "period counts under each.{scope}",
    ),
    _TableSpec(
        "affiliated", "Affiliated rebates",
        ("affiliated", "orders", "net_fee", "broker_rebate", "user_rebate", "share"),
        "Totals for rows with and without an affiliated rebate.{scope}",
    ),
    _TableSpec(
        "reconciliation", "Reconciliation",
        ("window_id", "state", "file_name", "sha256", "rows_in_file", "rows_in_db",
         *(f"{side}_{name}" for name in AMOUNT_COLUMNS for side in ("file", "db")), "matches", "differences"),
        "Each loaded window overlapping the period, whole (not clipped to the period{scope}): its file's rows and "
        "totals against what the database holds for it now.",
    ),
)  # fmt: skip
"""The report's tables, in order; by_account only in a report of every account when more than one has rows."""

BY_ACCOUNT = "by_account"

CHARTS = (
    Chart("by_day", "Broker rebate per day", "line", "trade_date", ("broker_rebate",)),
    Chart("by_instrument_type", "Broker rebate by instrument type", "bar", "inst_type", ("broker_rebate",)),
)


def _table(spec: _TableSpec, records: list[dict[str, Any]], note: str) -> Table:
    columns = tuple(_COLUMNS[name] for name in spec.columns)
    rows = tuple(tuple(record[column.name] for column in columns) for record in records)
    return Table(spec.name, spec.title, columns, rows, note)


def _with_rates(records: list[dict[str, Any]], total_broker_rebate: Decimal) -> list[dict[str, Any]]:
    """Each record with its effective rate (broker rebate / net fee) and share of the period's broker rebate."""
    return [
        {
            **record,
            "effective_rate": ratio(record["broker_rebate"], record["net_fee"]) if "net_fee" in record else None,
            "share": ratio(record["broker_rebate"], total_broker_rebate),
        }
        for record in records
    ]


def _summary(this: Mapping[str, Any], previous: Mapping[str, Any]) -> Table:
    rows: list[tuple[Cell, ...]] = []
    for key, label, kind in METRICS:
        now, before = this[key], previous[key]
        change = now - before if now is not None and before is not None else None
        change_pct = ratio(change, abs(before)) if change is not None else None
        rows.append((label, kind.value, now, before, change, change_pct))
    return Table(
        SUMMARY,
        "Summary",
        SUMMARY_COLUMNS,
        tuple(rows),
        "Each metric this period and the previous one; change % is the change over the previous value's size.",
    )


def _totals(db: duckdb.DuckDBPyConnection, params: Mapping[str, object]) -> dict[str, Any]:
    (totals,) = _query(db, "period_totals", params)
    totals["effective_rate"] = ratio(totals["broker_rebate"], totals["net_fee"])
    return totals


def _reconciliation(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each window's file totals (exact strings in rebate_loads) against the sums its rows have now."""
    reconciled = []
    for record in records:
        file_totals = {name: Decimal(text) for name, text in json.loads(record["file_totals"]).items()}
        row: dict[str, Any] = {
            "window_id": record["window_id"],
            "state": record["state"],
            "file_name": PurePosixPath(record["path"]).name,
            "sha256": record["sha256"],
            "rows_in_file": record["rows_in_file"],
            "rows_in_db": record["rows_in_db"],
        }
        differences = [] if record["rows_in_file"] == record["rows_in_db"] else ["rows"]
        for name in AMOUNT_COLUMNS:
            row[f"file_{name}"] = file_totals.get(name)
            row[f"db_{name}"] = record[name]
            if row[f"file_{name}"] != record[name]:
                differences.append(name)
        row["matches"] = not differences
        row["differences"] = ", ".join(differences) or None
        reconciled.append(row)
    return reconciled


@dataclass(frozen=True)
class _Results:
    """Everything the queries return for one report, read in one short read-only session."""

    totals: dict[str, Any]
    previous_totals: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]]
    previous_days: list[dict[str, Any]]
    windows: list[dict[str, Any]]
    uncovered: list[dict[str, Any]]
    """(account, broker_type, trade_date) of the period that no loaded window of that account and type holds."""


def _read(
    db: duckdb.DuckDBPyConnection, period: Period, previous: Period, broker_code: str | None, account: str | None
) -> _Results:
    scope = {"broker_code": broker_code, "account": account}
    params = {"start": period.start, "end": period.end, **scope}
    previous_params = {"start": previous.start, "end": previous.end, **scope}
    window_params = {"start": period.start, "end": period.end, "account": account}
    query_params: dict[str, Mapping[str, object]] = {
        "top_instruments": {**params, "top": TOP_INSTRUMENTS},
        "reconciliation": window_params,
    }
    return _Results(
        totals=_totals(db, params),
        previous_totals=_totals(db, previous_params),
        tables={spec.name: _query(db, spec.name, query_params.get(spec.name, params)) for spec in TABLES},
        previous_days=_query(db, "by_day", previous_params),
        windows=_query(db, "windows_in_period", window_params),
        uncovered=_query(db, "uncovered_days", window_params),
    )


def _warnings(
    db_path: Path, period: Period, previous: Period, results: _Results, reconciliation: list[dict[str, Any]]
) -> list[str]:
    """What a reader must know before trusting the figures: missing days, broken windows, mismatches."""
    warnings = [] if db_path.exists() else [f"{db_path} does not exist: nothing has been loaded yet"]
    missing = [day["trade_date"] for day in results.tables["by_day"] if not day["covered"]]
    if missing and not results.uncovered:  # no window at all yet
        warnings.append(f"no window holds any day of {period.label} yet, so its figures are incomplete")
    for (account, broker_type), rows in groupby(results.uncovered, key=itemgetter("account", "broker_type")):
        days = [row["trade_date"] for row in rows]
        of_account = "" if account == DEFAULT_ACCOUNT else f" of account {account}"
        warnings.append(
            f"{len(days)} day(s) of {period.label} have no loaded {broker_type} window{of_account}, so their figures "
            f"are incomplete: {', '.join(day.isoformat() for day in days)}"
        )
    previous_missing = [day for day in results.previous_days if not day["covered"]]
    if previous_missing:
        warnings.append(
            f"{len(previous_missing)} day(s) of the previous period {previous.label} lack a loaded window of some "
            "account or broker type, so the comparison with it is incomplete"
        )
    warnings += [
        f"window {window['window_id']} is {window['state']}: {window['last_error']}"
        for window in results.windows
        if window["state"] in (WindowState.QUARANTINED, WindowState.FAILED)
    ]
    warnings += [
        f"window {record['window_id']}: the database no longer matches its file ({record['differences']})"
        for record in reconciliation
        if not record["matches"]
    ]
    return warnings


def build_report(
    db_path: Path,
    period: Period,
    *,
    broker_code: str | None,
    tz_label: str,
    now: datetime,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    account: str | None = None,
) -> Report:
    """The commission report for `period` (days are trade_date in REBATES_TZ), compared with `period.previous()`.

    `broker_code` limits every table but the reconciliation (which is per window, whole) to one code; None means
    all codes. `account` limits every table, the reconciliation and the coverage of days to one OKX broker
    account's rows and windows; None means every account together, with a `by_account` table whenever more than one
    account has rows in the period. `tz_label` is REBATES_TZ as text and `now` the generation time, both printed on
    the report. The database is opened read-only, for the queries only, waiting up to `lock_timeout` seconds while a
    pipeline run holds it; when the file does not exist yet the report is empty and says so in its warnings.
    """
    previous = period.previous()
    with _open(db_path, lock_timeout) as db:
        results = _read(db, period, previous, broker_code, account)
    reconciliation = _reconciliation(results.tables["reconciliation"])
    scope = f" Account {account} only." if account else ""
    scope += f" Broker code {broker_code} only." if broker_code else ""
    tables = []
    for spec in TABLES:
        if spec.name == BY_ACCOUNT and (account is not None or len(results.tables[BY_ACCOUNT]) < 2):
            continue
        if spec.name == "reconciliation":
            note = spec.note.format(scope=", and for every broker code" if broker_code else "")
            tables.append(_table(spec, reconciliation, note))
        else:
            records = _with_rates(results.tables[spec.name], results.totals["broker_rebate"])
            tables.append(_table(spec, records, spec.note.format(tz=tz_label, scope=scope)))
    return Report(
        period=period,
        previous=previous,
        broker_code=broker_code,
        generated_at=now,
        timezone=tz_label,
        summary=_summary(results.totals, results.previous_totals),
        tables=tuple(tables),
        charts=CHARTS,
        windows_covered=tuple(
            window["window_id"] for window in results.windows if window["state"] == WindowState.LOADED
        ),
        missing_days=tuple(day["trade_date"] for day in results.tables["by_day"] if not day["covered"]),
        reconciliation_ok=all(record["matches"] for record in reconciliation),
        warnings=tuple(_warnings(db_path, period, previous, results, reconciliation)),
        account=account,
    )
