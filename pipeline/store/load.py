"""Load a parsed rebate file as one window's rows in DuckDB: replace, verify to the last digit, commit, or roll back."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from pipeline.clock import Clock
from pipeline.columns import AMOUNT_COLUMNS
from pipeline.config import DEFAULT_LOCK_TIMEOUT
from pipeline.db import connect, sql_text, transaction
from pipeline.ledger import FileRecord, WindowRecord, loaded_in
from pipeline.store.parse import ParsedFile, RejectedFile

log = logging.getLogger(__name__)

NO_ROWS = (date(1, 1, 1), date(1, 1, 1))
"""Trade-date bounds that match nothing: a window whose file was empty."""


class ArrowStream:
    """Hands a Polars frame to DuckDB through the Arrow C stream interface: zero-copy, and no pyarrow needed.

    DuckDB reads a registered Polars frame through pyarrow; an object that offers only `__arrow_c_stream__` it
    reads directly.
    """

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The frame's Arrow stream capsule."""
        return self.frame.__arrow_c_stream__(requested_schema)


class LoadMismatchError(Exception):
    """What landed in rebate_details is not what was parsed; the load was rolled back."""


@dataclass(frozen=True)
class LoadResult:
    """What one load did."""

    window_id: str
    file_id: str
    rows_loaded: int
    rows_replaced: int
    totals: dict[str, Decimal]
    skipped: bool
    """True when this file was already the window's loaded file: nothing changed."""
    warnings: tuple[str, ...] = ()


def _bounds(frame: pl.DataFrame) -> tuple[date, date]:
    if frame.height == 0:
        return NO_ROWS
    low, high = frame.select(pl.col("trade_date").min().alias("low"), pl.col("trade_date").max().alias("high")).row(0)
    return low, high


def _current_load(db: duckdb.DuckDBPyConnection, window_id: str) -> tuple[str, date, date] | None:
    row = db.execute(
        "SELECT file_id, min_trade_date, max_trade_date FROM rebate_loads WHERE window_id = ? "
        "ORDER BY load_id DESC LIMIT 1",
        [window_id],
    ).fetchone()
    if row is None:
        return None
    low, high = (row[1], row[2]) if row[1] is not None else NO_ROWS
    return str(row[0]), low, high


def _read_totals(
    db: duckdb.DuckDBPyConnection, window_id: str, bounds: tuple[date, date]
) -> tuple[int, dict[str, Decimal]]:
    row = db.execute(
        sql_text("load/window_totals.sql"), {"window_id": window_id, "min_date": bounds[0], "max_date": bounds[1]}
    ).fetchone()
    assert row is not None
    return int(row[0]), {column: Decimal(value) for column, value in zip(AMOUNT_COLUMNS, row[1:], strict=True)}


def load_window(
    db_path: Path,
    record: WindowRecord,
    archived: FileRecord,
    parsed: ParsedFile,
    clock: Clock,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> LoadResult:
    """Make `parsed` the window's rows, in one transaction that also marks the window loaded.

    The window's previous rows (an earlier file, or the same file loaded before) are replaced, so loading again
    changes nothing. The key (ord_id, broker_code, trade_date) must then hold once on the file's days, or the
    file is rejected (`RejectedFile`: twice in the file, or a window overlapping another). The rows and every
    amount total are read back and must equal the parsed file's exactly, or everything rolls back and
    `LoadMismatchError` is raised. The orders the old and new rows belong to are listed in
    pending_order_refresh in the same transaction; `refresh_orders` recomputes them.
    """
    window_id = record.window_id
    new_bounds = _bounds(parsed.frame)
    now = clock.now()
    with connect(db_path, lock_timeout=lock_timeout) as db:
        current = _current_load(db, window_id)
        if current is not None and current[0] == archived.file_id:
            # The rows of this very file are what the window holds (its load committed with them): keep them.
            log.info("%s: %s is already loaded; nothing to do", window_id, archived.file_id)
            rows, totals = _read_totals(db, window_id, current[1:])
            with transaction(db):
                loaded_in(db, window_id, now, rows=None, detail="already loaded")
            return LoadResult(window_id, archived.file_id, rows, 0, totals, skipped=True)
        with transaction(db):
            old_bounds = current[1:] if current is not None else NO_ROWS
            params = {"window_id": window_id, "min_date": old_bounds[0], "max_date": old_bounds[1]}
            db.execute(sql_text("load/collect_window_keys.sql"), params)
            replaced_row = db.execute(sql_text("load/delete_window.sql"), params).fetchone()
            replaced = int(replaced_row[0]) if replaced_row else 0
            db.register("incoming", ArrowStream(parsed.frame))
            try:
                db.execute(
                    sql_text("load/insert_details.sql"),
                    {"broker_type": record.broker_type, "window_id": window_id, "file_id": archived.file_id,
                     "loaded_at": now},
                )  # fmt: skip
                db.execute(sql_text("load/collect_incoming_keys.sql"))
            finally:
                db.unregister("incoming")
            _check_key(db, window_id, new_bounds)
            rows, landed = _read_totals(db, window_id, new_bounds)
            if rows != parsed.rows or landed != parsed.totals:
                differences = [
                    f"{column}: file {parsed.totals[column]} vs loaded {landed[column]}"
                    for column in AMOUNT_COLUMNS
                    if landed[column] != parsed.totals[column]
                ]
                raise LoadMismatchError(
                    f"{window_id}: loaded {rows} rows of {parsed.rows}"
                    + (f"; {'; '.join(differences)}" if differences else "")
                )
            db.execute(
                "INSERT INTO rebate_loads (window_id, file_id, loaded_at, rows_in_file, rows_loaded, rows_replaced, "
                "min_trade_date, max_trade_date, file_totals, loaded_totals, extra_columns, warnings) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [window_id, archived.file_id, now, parsed.rows, rows, replaced,
                 None if parsed.rows == 0 else new_bounds[0], None if parsed.rows == 0 else new_bounds[1],
                 _json_totals(parsed.totals), _json_totals(landed), list(parsed.extra_columns),
                 list(parsed.warnings)],
            )  # fmt: skip
            loaded_in(db, window_id, now, rows=rows, detail=f"{rows} rows from {archived.file_id}")
    log.info("%s: loaded %s rows from %s (replaced %s)", window_id, f"{rows:,}", archived.path, f"{replaced:,}")
    return LoadResult(window_id, archived.file_id, rows, replaced, landed, skipped=False, warnings=parsed.warnings)


def _check_key(db: duckdb.DuckDBPyConnection, window_id: str, bounds: tuple[date, date]) -> None:
    """Reject the file being loaded when rebate_details' key now holds twice on its days (the caller rolls back)."""
    duplicate = db.execute(
        sql_text("load/duplicate_keys.sql"), {"min_date": bounds[0], "max_date": bounds[1]}
    ).fetchone()
    if duplicate is None:
        return
    ord_id, broker_code, trade_date = duplicate
    copies = db.execute(
        sql_text("load/key_copies.sql"),
        {"ord_id": ord_id, "broker_code": broker_code, "trade_date": trade_date, "window_id": window_id},
    ).fetchall()
    own_rows = [str(row[2]) for row in copies if row[0] == window_id]
    others = sorted({f"{row[0]} (file {row[1]})" for row in copies if row[0] != window_id})
    if others:
        raise RejectedFile(
            f"ordId {ord_id} (brokerCode {broker_code}) on {trade_date} is already loaded from "
            f"{', '.join(others)}; this window overlaps it (data row {', '.join(own_rows)})"
        )
    raise RejectedFile(
        f"ordId {ord_id} (brokerCode {broker_code}) appears {len(own_rows)} times on {trade_date} "
        f"(data rows {', '.join(own_rows)}); OKX writes one row per order per day"
    )


def refresh_orders(db_path: Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> int:
    """Recompute the rebate_orders rows that loads marked stale (pending_order_refresh); returns how many keys.

    One transaction: a crash leaves the list as it was, for the next call. Cheap when nothing is pending.
    """
    with connect(db_path, lock_timeout=lock_timeout) as db:
        if db.execute("SELECT 1 FROM pending_order_refresh LIMIT 1").fetchone() is None:
            return 0
        with transaction(db):
            counted = db.execute(sql_text("load/refresh_orders.sql")).fetchone()
    keys = int(counted[0]) if counted else 0
    log.info("recomputed %s orders in rebate_orders", f"{keys:,}")
    return keys


def _json_totals(totals: dict[str, Decimal]) -> str:
    """Totals as JSON strings (exact text, never JSON numbers that a reader might take as floats)."""
    return json.dumps({column: str(value) for column, value in totals.items()})
