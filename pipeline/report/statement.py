"""One broker code's commission statement: only its rows and totals, reconciled day by day with its files' rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pipeline.columns import AMOUNT_COLUMNS
from pipeline.config import DEFAULT_LOCK_TIMEOUT
from pipeline.report.data import (
    REBATE_METRICS,
    SUMMARY_COLUMNS,
    UNITS,
    VOLUME_METRICS,
    Scope,
    breakdown,
    by_day,
    by_user,
    check_broker_code,
    coverage,
    freshness,
    metric_value,
    open_database,
    query,
    source_files,
    sources,
    totals,
    window_warnings,
)
from pipeline.report.model import (
    SUMMARY,
    TOTAL,
    Chart,
    Freshness,
    Kind,
    Missing,
    Period,
    Report,
    Table,
)
from pipeline.report.reconcile import DayCheck, Reconciler
from pipeline.report.source_files import SourceFiles, file_figures
from pipeline.report.tables import column_sum, table
from pipeline.report.words import glossary
from pipeline.windows import yesterday

STATEMENT_METRICS: tuple[tuple[str, str, Kind], ...] = (
    *REBATE_METRICS,
    ("fee", "Fee (USDT)", Kind.AMOUNT),
    *VOLUME_METRICS,
    ("users", "Users", Kind.INTEGER),
)
"""A statement's summary rows: its totals as the files write them (the fee negative)."""

STATEMENT_DAY = ("day", "orders", *AMOUNT_COLUMNS, "data_complete")
"""A statement's By day: every amount, in the file's order."""
STATEMENT_USER = ("uid", "orders", "net_fee", "broker_rebate", "user_rebate")

STATEMENT_CHARTS = (Chart("by_day", "Broker rebate per day", "line", "day", ("broker_rebate_usdt",)),)


RECONCILIATION_KEYS = (
    "day",
    "rows_in_files",
    "rows_in_statement",
    *(f"{key}_in_files" for key in AMOUNT_COLUMNS),
    *(f"{key}_in_statement" for key in AMOUNT_COLUMNS),
    "matches",
    "differences",
    "files",
)


@dataclass(frozen=True)
class _CodeResults:
    """One broker code's figures, read in the statements' one database session."""

    broker_code: str
    broker_types: tuple[str, ...]
    accounts: tuple[str, ...]
    totals: dict[str, Any]
    by_day: list[dict[str, Any]]
    by_user: list[dict[str, Any]]
    by_instrument_type: list[dict[str, Any]]


def build_statements(
    db_path: Path,
    period: Period,
    *,
    sources_from: SourceFiles,
    tz_label: str,
    now: datetime,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    account: str | None = None,
    broker_code: str | None = None,
) -> list[Report]:
    """A statement per broker code with rows in `period` (of one account, or every account), biggest earner first.

    Each holds only its code's rows and totals: the summary, every day, its users (where its files carry uids), its
    instrument types, and its own reconciliation: every day, the code's rows in the loaded files (read again from the
    archive) against the statement's. `broker_code` makes one code's statement (`UnknownBrokerCode` when no loaded
    file names it; none when it has no rows in the period). Read-only, like `build_report`.
    """
    everything = Scope(period, account, None)
    last_over = yesterday(now, sources_from.tz)
    with open_database(db_path, lock_timeout) as db:
        if broker_code is not None:
            check_broker_code(db, broker_code, account)
        active = query(db, "by_broker_code", everything.params())
        codes: dict[str, list[dict[str, Any]]] = {}
        for record in active:
            if broker_code in (None, record["broker_code"]):
                codes.setdefault(record["broker_code"], []).append(record)
        windows = query(db, "windows_in_period", everything.window_params())
        loaded = query(db, "reconciliation", everything.window_params())
        held = query(db, "window_code_days", everything.params())
        uncovered = query(db, "uncovered_days", everything.window_params())
        fresh = freshness(db, account)
        results = [_read_code(db, Scope(period, account, code), records) for code, records in codes.items()]
    reconciler = Reconciler(
        period, loaded, held, lambda path: file_figures(Path(path), sources_from, period.start, period.end)
    )
    return [
        _statement(result, period, reconciler, windows, uncovered, fresh, last_over, now, sources_from, tz_label,
                   account)
        for result in results
    ]  # fmt: skip


def _read_code(db: Any, scope: Scope, records: Sequence[Mapping[str, Any]]) -> _CodeResults:
    params = scope.params()
    assert scope.broker_code is not None
    return _CodeResults(
        broker_code=scope.broker_code,
        broker_types=tuple(sorted({record["broker_type"] for record in records})),
        accounts=tuple(sorted({account for record in records for account in record["accounts"]})),
        totals=totals(db, params),
        by_day=query(db, "by_day", params),
        by_user=query(db, "by_user", params),
        by_instrument_type=query(db, "by_instrument_type", params),
    )


def _mine(records: Sequence[Mapping[str, Any]], code: _CodeResults) -> list[Mapping[str, Any]]:
    """The window records of the code's accounts and broker types."""
    return [
        record
        for record in records
        if record["broker_type"] in code.broker_types and record["account"] in code.accounts
    ]


def _statement(
    code: _CodeResults,
    period: Period,
    reconciler: Reconciler,
    windows: Sequence[Mapping[str, Any]],
    uncovered: Sequence[Mapping[str, Any]],
    fresh: Freshness,
    last_over: date,
    now: datetime,
    sources_from: SourceFiles,
    tz_label: str,
    account: str | None,
) -> Report:
    mine = _mine(windows, code)
    lacking = _mine(uncovered, code)
    lacking_days = {record["trade_date"] for record in lacking}
    known = any(window["broker_type"] in code.broker_types for window in windows)
    days = [
        record
        | {"covered": known and record["trade_date"] not in lacking_days}
        | {"loaded_types": int(known and record["trade_date"] not in lacking_days)}
        for record in code.by_day
    ]
    cover = coverage(period, days, lacking, last_over)
    checks = reconciler.day_checks(code.broker_code, code.broker_types, code.accounts)
    tables = [
        by_day(days, cover, code.totals["orders"], tz_label, STATEMENT_DAY),
    ]
    if code.totals["rows_with_uid"]:
        tables.append(by_user(code.by_user, code.totals["orders"], STATEMENT_USER))
    tables += [
        breakdown(
            "by_instrument_type",
            "By instrument type",
            ("instrument_type", "orders", "net_fee", "broker_rebate", "sub_broker_rebate", "user_rebate", "share"),
            code.by_instrument_type,
            code.totals,
            "This code's totals per instrument type (from the instrument id).",
        ),
        _reconciliation(checks, code.broker_code),
        source_files(_mine(reconciler.windows, code), period),
    ]
    warnings = window_warnings(mine)  # the missing days are in `incomplete`, said once as ranges
    warnings += [
        f"{check.day} does not match the files: {check.differences()}" for check in checks if not check.matches
    ]
    types = ", ".join(code.broker_types)
    return Report(
        period=period,
        previous=period.previous(),
        broker_code=code.broker_code,
        generated_at=now,
        local_generated_at=now.astimezone(sources_from.tz),
        timezone=tz_label,
        summary=_summary(code.totals),
        tables=tuple(tables),
        charts=STATEMENT_CHARTS,
        sources=sources(mine),
        missing_days=cover.missing,
        reconciliation_ok=all(check.matches for check in checks),
        warnings=tuple(warnings),
        account=account,
        kind="statement",
        freshness=replace(fresh, not_over=cover.not_over),
        glossary=glossary(tz_label, comparing=False),
        incomplete=cover.lines,
        facts=(("Broker type", types), ("OKX account", ", ".join(code.accounts))),
    )


def _summary(found: Mapping[str, Any]) -> Table:
    rows = tuple((label, UNITS[kind], metric_value(found, key)) for key, label, kind in STATEMENT_METRICS)
    columns = SUMMARY_COLUMNS[:3]  # metric, unit, this period: a statement compares with no other period
    note = "This broker code's totals for the period, as OKX's files write them (the fee is negative)."
    if not found["rows_with_uid"] and found["rows"]:
        note += " Users read n/a: this code's files carry no uid (API broker files have 14 columns, without uid)."
    return Table(SUMMARY, "Summary", columns, rows, note, row_kinds=tuple(kind for *_, kind in STATEMENT_METRICS))


def _reconciliation(checks: Sequence[DayCheck], broker_code: str) -> Table:
    rows = []
    for check in checks:
        held = bool(check.files)  # a day no file holds has no figures to check: unknown, not zero
        row: dict[str, Any] = {
            "day": check.day,
            "rows_in_files": check.in_files.rows if held else Missing.NO_DATA,
            "rows_in_statement": check.in_statement.rows if held else Missing.NO_DATA,
            "matches": check.matches if held else Missing.NO_DATA,
            "differences": check.differences(),
            "files": ", ".join(check.files) or "none loaded",
        }
        for key in AMOUNT_COLUMNS:
            row[f"{key}_in_files"] = check.in_files.amounts[key] if held else Missing.NO_DATA
            row[f"{key}_in_statement"] = check.in_statement.amounts[key] if held else Missing.NO_DATA
        rows.append(row)
    total: dict[str, Any] = {
        "day": TOTAL,
        "rows_in_files": sum(row["rows_in_files"] for row in rows if isinstance(row["rows_in_files"], int)),
        "rows_in_statement": sum(row["rows_in_statement"] for row in rows if isinstance(row["rows_in_statement"], int)),
        "matches": all(row["matches"] is not False for row in rows),
    }
    for key in RECONCILIATION_KEYS:
        if key.endswith(("_in_files", "_in_statement")) and key not in total:
            total[key] = column_sum(row[key] for row in rows)
    note = (
        f"Every day: broker code {broker_code}'s rows in the loaded OKX files, read again from the archive, against "
        "this statement's. Matches compares the rows and all eight amounts exactly (four are shown; the CSV has all "
        "eight from both sides). Only this code's rows are counted."
    )
    return table(
        "reconciliation",
        "Reconciliation",
        RECONCILIATION_KEYS,
        rows,
        note,
        total=tuple(total.get(key) for key in RECONCILIATION_KEYS),
    )
