"""Load a rebate file as one window's rows in DuckDB, batch by batch: replace, verify to the last digit, commit."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from pipeline.clock import Clock
from pipeline.columns import AMOUNT_COLUMNS
from pipeline.config import DEFAULT_LOCK_TIMEOUT, Settings
from pipeline.db import ArrowStream, connect, duckdb_threads, transaction
from pipeline.ledger import FileRecord, WindowRecord
from pipeline.logs import first_line
from pipeline.sqlfiles import sql_text
from pipeline.store.csv_ranges import RowRange, has_blank_line, row_ranges
from pipeline.store.parse import FilePart, RebateFile, RejectedFile
from pipeline.store.rows import fast_path_sql, fast_path_ts_range

log = logging.getLogger(__name__)

ORDER_SLICE_ROWS = 1_000_000
"""Rows of rebate_details one GROUP BY of the rebate_orders refresh reads (about): its hash table then fits in
REBATES_DB_MEMORY_LIMIT. One GROUP BY over a whole 10M-row window outgrew it and spilled (108 s of a 400 s load)."""

NO_ROWS = (date(1, 1, 1), date(1, 1, 1))
"""Trade-date bounds that match nothing: a window whose file was empty."""


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
    skipped_parts: tuple[str, ...] = ()
    """Zip members skipped as packaging junk (`__MACOSX/`, Finder metadata), each with why; every other part loaded."""


@dataclass(frozen=True)
class DatabaseLimits:
    """What a load may take of the machine: DuckDB spills to `temp_directory` past `memory_limit`."""

    memory_limit: str
    threads: int
    temp_directory: Path


class _FastPathRefused(Exception):
    """DuckDB cannot take the file's text as it is (an unusual value or shape); read it exactly with parse.py."""


def _apply_limits(db: duckdb.DuckDBPyConnection, limits: DatabaseLimits | None) -> None:
    """Bound DuckDB's memory and threads; without `limits`, the settings' defaults and DuckDB's own spill directory."""
    if limits is None:
        fields = Settings.model_fields
        db.execute("SET memory_limit = ?", [fields["rebates_db_memory_limit"].default])
        db.execute("SET threads = ?", [fields["rebates_db_threads"].default])
        return
    limits.temp_directory.mkdir(parents=True, exist_ok=True)
    db.execute("SET memory_limit = ?", [limits.memory_limit])
    db.execute("SET threads = ?", [limits.threads])
    db.execute("SET temp_directory = ?", [str(limits.temp_directory)])


def _current_load(db: duckdb.DuckDBPyConnection, window_id: str) -> tuple[str, date, date] | None:
    row = db.execute(sql_text("load/current_load.sql"), {"window_id": window_id}).fetchone()
    if row is None:
        return None
    low, high = (row[1], row[2]) if row[1] is not None else NO_ROWS
    return str(row[0]), low, high


@dataclass(frozen=True)
class _Held:
    """What a window holds in rebate_details: rows, their days and every amount's total."""

    rows: int
    bounds: tuple[date, date]
    totals: dict[str, Decimal]


def _read_totals(db: duckdb.DuckDBPyConnection, window_id: str, bounds: tuple[date, date]) -> _Held:
    row = db.execute(
        sql_text("load/window_totals.sql"), {"window_id": window_id, "min_date": bounds[0], "max_date": bounds[1]}
    ).fetchone()
    assert row is not None
    rows, low, high = int(row[0]), row[1], row[2]
    totals = {column: Decimal(value) for column, value in zip(AMOUNT_COLUMNS, row[3:], strict=True)}
    return _Held(rows, (low, high) if rows else NO_ROWS, totals)


def load_window(
    db_path: Path,
    record: WindowRecord,
    archived: FileRecord,
    source: RebateFile,
    clock: Clock,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    limits: DatabaseLimits | None = None,
) -> LoadResult:
    """Make the rows of `source` the window's rows, in one transaction; the caller then marks the window loaded.

    The file is read in batches inside that transaction, so memory does not grow with its size, and it still loads
    whole or not at all. A CSV part in OKX's usual shape is read by DuckDB itself (sql/load/insert_csv.sql), a large
    one in row ranges on every thread (csv_ranges.py); if any of its values is unusual, that attempt rolls back and
    the file is read exactly by parse.py instead, which loads it or names the bad row. The window's previous rows
    (an earlier file, or the same file loaded before) are replaced, so loading again changes nothing. The key
    (ord_id, broker_code, trade_date) must then hold once on the file's days, or the file is rejected
    (`RejectedFile`: twice in the file, or a window overlapping another). The rows and every amount total are read
    back and must equal the file's exactly, or everything rolls back and `LoadMismatchError` is raised. The ordIds
    of the old and new rows are listed in pending_order_ranges in the same transaction; `refresh_orders` recomputes
    them.
    """
    window_id = record.window_id
    now = clock.now()
    with connect(db_path, lock_timeout=lock_timeout) as db:
        _apply_limits(db, limits)
        current = _current_load(db, window_id)
        if current is not None and current[0] == archived.file_id:
            # The rows of this very file are what the window holds (its load committed with them): keep them.
            log.info("%s: %s is already loaded; nothing to do", window_id, archived.file_id)
            held = _read_totals(db, window_id, current[1:])
            return LoadResult(window_id, archived.file_id, held.rows, 0, held.totals, skipped=True)
        old_bounds = current[1:] if current is not None else NO_ROWS
        load = _Load(db, record, archived, old_bounds, now)
        if source.fast_path_possible:
            try:
                return load.run(source, fast=True)
            except _FastPathRefused as refused:
                log.info("%s: reading %s exactly (%s)", window_id, archived.path, refused)
        return load.run(source.again(), fast=False)


@dataclass(frozen=True)
class _Load:
    """One attempt at replacing a window's rows with a file's, in one transaction."""

    db: duckdb.DuckDBPyConnection
    record: WindowRecord
    archived: FileRecord
    old_bounds: tuple[date, date]
    now: datetime

    def run(self, source: RebateFile, *, fast: bool) -> LoadResult:
        try:
            return self._replace(source, fast=fast)
        finally:  # after the transaction ended: an aborted one refuses every statement
            self.db.execute("RESET preserve_insertion_order")

    def _replace(self, source: RebateFile, *, fast: bool) -> LoadResult:
        db, window_id = self.db, self.record.window_id
        window = (self.record.begin_date, self.record.end_date)
        with transaction(db):
            params = {"window_id": window_id, "min_date": self.old_bounds[0], "max_date": self.old_bounds[1]}
            db.execute(sql_text("load/collect_window_range.sql"), params)
            replaced_row = db.execute(sql_text("load/delete_window.sql"), params).fetchone()
            replaced = int(replaced_row[0]) if replaced_row else 0
            for part in source.parts():
                if fast:
                    self._insert_text(source, part)
                else:
                    log.debug("inserting %s read by the exact reader", part.label or "the file")
                    for batch in source.batches(part):
                        self._insert_batch(batch)
            held = _read_totals(db, window_id, window)
            params = {"window_id": window_id, "min_date": held.bounds[0], "max_date": held.bounds[1]}
            db.execute(sql_text("load/collect_window_range.sql"), params)
            log.debug("%s: checking the key on %s..%s", window_id, *held.bounds)
            _check_key(db, window_id, held.bounds)
            summary = source.summary
            # DuckDB read the text itself on the fast path: what it holds is the file, checked value by value.
            file_rows, file_totals = (held.rows, held.totals) if fast else (summary.rows, summary.totals)
            if held.rows != file_rows or held.totals != file_totals:
                differences = [
                    f"{column}: file {file_totals[column]} vs loaded {held.totals[column]}"
                    for column in AMOUNT_COLUMNS
                    if held.totals[column] != file_totals[column]
                ]
                raise LoadMismatchError(
                    f"{window_id}: loaded {held.rows} rows of {file_rows}"
                    + (f"; {'; '.join(differences)}" if differences else "")
                )
            rows, warnings, skipped = held.rows, summary.all_warnings(), tuple(summary.skipped)
            low, high = (None, None) if rows == 0 else held.bounds
            db.execute(
                sql_text("load/record_load.sql"),
                {"window_id": window_id, "file_id": self.archived.file_id, "loaded_at": self.now,
                 "rows_in_file": file_rows, "rows_loaded": rows, "rows_replaced": replaced, "min_trade_date": low,
                 "max_trade_date": high, "file_totals": _json_totals(file_totals),
                 "loaded_totals": _json_totals(held.totals), "extra_columns": list(summary.extra_columns),
                 "warnings": [*warnings, *(f"skipped {part}" for part in skipped)], "account": self.record.account},
            )  # fmt: skip
        log.info(
            "%s: loaded %s rows from %s (replaced %s)", window_id, f"{rows:,}", self.archived.path, f"{replaced:,}"
        )
        return LoadResult(
            window_id, self.archived.file_id, rows, replaced, held.totals, skipped=False, warnings=warnings,
            skipped_parts=skipped,
        )  # fmt: skip

    def _insert_text(self, source: RebateFile, part: FilePart) -> None:
        """DuckDB reads a CSV part itself; raises `_FastPathRefused` when the part or one of its values is unusual."""
        log.debug("scanning %s for blank lines and quotes", part.label or "the CSV")
        if part.csv_path is None or not part.known_columns or has_blank_line(part.csv_path):
            raise _FastPathRefused(f"{part.label or 'the file'} is not plain CSV text with OKX's columns")
        offset = source.tz.utcoffset(None)
        assert offset is not None  # source.fast_path_possible
        first_ts_ms, last_ts_ms = fast_path_ts_range((self.record.begin_date, self.record.end_date), offset)
        self.db.execute(fast_path_sql(sql_text("load/plain_amount.sql")))
        ranges = row_ranges(part.csv_path, duckdb_threads(self.db))
        # The ranges' reads run at once only when DuckDB need not keep the rows in file order; each row carries its
        # number anyway, and each range's rows stay together (row groups keep their day and ordId bounds).
        self.db.execute("SET preserve_insertion_order = ?", [len(ranges) == 1])
        log.debug("inserting %s in %d row range(s)", part.label or "the CSV", len(ranges))
        try:
            inserted = self.db.execute(
                _insert_csv_text(ranges),
                {
                    "path": str(part.csv_path),
                    "names": list(part.names),
                    "first_row": source.summary.rows + 1,
                    "offset_ms": offset // timedelta(milliseconds=1),
                    "first_ts_ms": first_ts_ms,
                    "last_ts_ms": last_ts_ms,
                    **self._lineage(),
                },
            ).fetchone()
        except duckdb.Error as exc:
            raise _FastPathRefused(first_line(exc)) from exc
        source.count_rows(int(inserted[0]) if inserted else 0)

    def _insert_batch(self, batch: pl.DataFrame) -> None:
        """Insert one typed batch through the Arrow C stream (zero-copy).

        The statement finds the batch as the local variable `incoming` (DuckDB's replacement scan of the calling
        frame), not by `register`: a registered object stays alive until the transaction ends, even unregistered
        (duckdb-python issue 469), so every batch of the file stayed in memory until the COMMIT (4.5 GiB at 10M rows).
        """
        incoming = ArrowStream(batch)  # noqa: F841 - read by name by the statement below
        self.db.execute(sql_text("load/insert_details.sql"), self._lineage())

    def _lineage(self) -> dict[str, object]:
        return {
            "broker_type": self.record.broker_type,
            "window_id": self.record.window_id,
            "file_id": self.archived.file_id,
            "loaded_at": self.now,
            "account": self.record.account,
        }


def _insert_csv_text(ranges: tuple[RowRange, ...]) -> str:
    """load/insert_csv.sql, its row rules filled in, reading the part in `ranges`, each a load/csv_range.sql."""
    branch = sql_text("load/csv_range.sql")
    parts = [
        branch.replace("{skip}", str(int(part.skip))).replace(
            "{limit}", "" if part.rows is None else f"LIMIT {int(part.rows)}"
        )
        for part in ranges
    ]
    return fast_path_sql(sql_text("load/insert_csv.sql")).replace("{row_ranges}", "\n    UNION ALL\n".join(parts))


def _check_key(db: duckdb.DuckDBPyConnection, window_id: str, bounds: tuple[date, date]) -> None:
    """Reject the file being loaded when rebate_details' key now holds twice on its days (the caller rolls back)."""
    days = {"min_date": bounds[0], "max_date": bounds[1]}
    if db.execute(sql_text("load/repeated_key_hashes.sql"), days).fetchone() is None:
        return
    duplicate = db.execute(sql_text("load/duplicate_keys.sql"), days).fetchone()
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


def refresh_orders(db: duckdb.DuckDBPyConnection, *, limits: DatabaseLimits | None = None) -> int:
    """Recompute the orders of more than one row in the ordId ranges loads marked stale (summed_orders, which the view
    rebate_orders adds to the orders of one row); returns how many it wrote.

    `db` is the connection the caller holds for the end of its pass. One transaction: a crash leaves the ranges as
    they were, for the next call. Overlapping ranges are merged, and each is recomputed from every row its orders
    have, in slices of about ORDER_SLICE_ROWS rows (every row of an order shares its ordId, so any cut between ordIds
    is exact), so no GROUP BY outgrows memory and spills. An order of one row is that row in rebate_details: it is
    neither aggregated nor copied (that copy was two thirds of the refresh). Nothing pending: one read, nothing
    written.
    """
    ranges = db.execute(sql_text("load/pending_ranges.sql")).fetchall()
    if not ranges:
        return 0
    _apply_limits(db, limits)
    log.debug("refreshing rebate_orders in %d ordId range(s)", len(ranges))
    # Each slice writes its own ordId range, so the order of rows within it does not matter: the inserts then use
    # every thread (a fifth less time on a million orders).
    db.execute("SET preserve_insertion_order = false")
    orders = 0
    try:
        with transaction(db):
            for first, last in merged_ranges(ranges):
                params = {"first_ord_id": first, "last_ord_id": last}
                db.execute(sql_text("load/delete_orders_in_range.sql"), params)
                after = ""  # below every ordId (ordIds are digits, never empty)
                for through in [*_slice_ends(db, first, last), last]:
                    orders += _refresh_slice(db, {**params, "after": after, "through": through})
                    after = through
            db.execute("DELETE FROM pending_order_ranges")
    finally:
        db.execute("RESET preserve_insertion_order")
    log.info("recomputed %s orders of more than one row in rebate_orders", f"{orders:,}")
    return orders


def _refresh_slice(db: duckdb.DuckDBPyConnection, params: dict[str, str]) -> int:
    """Write the summed_orders rows of one slice (its orders of more than one row, aggregated); how many."""
    db.execute(sql_text("load/orders_filled_twice.sql"), params)
    written = db.execute(sql_text("load/insert_orders_filled_twice.sql"), params).fetchone()
    return int(written[0]) if written else 0


def _slice_ends(db: duckdb.DuckDBPyConnection, first: str, last: str) -> list[str]:
    """OrdIds that cut the range's rows into slices of about ORDER_SLICE_ROWS (none when it holds fewer), ascending.

    Taken from a sample of the range's ordIds: the slices only need to be roughly even, and any cut is exact.
    """
    row = db.execute(sql_text("load/orders_in_range_count.sql"), {"first_ord_id": first, "last_ord_id": last})
    counted = row.fetchone()
    slices = -(-int(counted[0]) // ORDER_SLICE_ROWS) if counted else 0
    if slices <= 1:
        return []
    sample = sorted(
        str(value)
        for (value,) in db.execute(
            sql_text("load/orders_in_range_sample.sql"), {"first_ord_id": first, "last_ord_id": last}
        ).fetchall()
    )
    ends = {sample[len(sample) * index // slices] for index in range(1, slices)}
    return sorted(end for end in ends if end < last)


def merged_ranges(ranges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Sorted (first, last) ranges with every overlap merged."""
    merged: list[tuple[str, str]] = []
    for first, last in ranges:
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _json_totals(totals: dict[str, Decimal]) -> str:
    """Totals as JSON strings (exact text, never JSON numbers that a reader might take as floats)."""
    return json.dumps({column: str(value) for column, value in totals.items()})
