"""Publish what analysts read: the rebate tables as a Parquet lake, rewritten by partition, and its entry point.

The lake (`DataLayout.lake`) holds `rebate_details` and `rebate_orders` hive-partitioned by account, broker type and
day, and
the ledger's small tables whole. A publish rewrites only the partitions the loads since the last publish touched,
each file written beside the lake and renamed into place, so a reader sees the old file or the new one, never half of
one. The database remembers up to which load the lake holds (`lake_publishes`), so a publish that died is redone by
the next. The entry point (`DataLayout.analysts`) is a small DuckDB file of views over the lake, written in a storage
version DuckDB 1.4 and later open, that finds the lake next to itself.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from pipeline.config import DataLayout
from pipeline.db import duckdb_threads, transaction
from pipeline.sqlfiles import sql_folder, sql_literal, sql_text
from pipeline.store.load import merged_ranges

log = logging.getLogger(__name__)

ENTRY_POINT_STORAGE_VERSION = "v1.4.0"
"""The storage version the entry point is written in: DuckDB 1.4, 1.5 and 2.x all open it."""

PARTITION_FILE = "data.parquet"
"""The one file in each partition folder (and of each small table): replaced whole, never appended to."""

LAKE_LAYOUT = 2
"""The lake's folder layout: 2 is `<table>/account=<a>/broker_type=<t>/<day column>=<d>/`, 1 had no account level.
A publish records it; the first publish after it changes rewrites the whole lake and removes the old folders."""

_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class PartitionedTable:
    """A table the lake splits into one file per (account, broker_type, day)."""

    name: str
    day_column: str
    """The date column that names the day folder: trade_date for details, first_trade_date for orders."""

    def folder(self, account: str, broker_type: str, day: str) -> Path:
        """The partition's folder in the lake: `rebate_details/account=eu/broker_type=api/trade_date=2025-01-31`."""
        for value in (account, broker_type):
            if not _SAFE_VALUE.match(value):
                raise ValueError(f"{value!r} cannot name a lake folder")
        return Path(self.name, f"account={account}", f"broker_type={broker_type}", f"{self.day_column}={day}")


PARTITIONED = (PartitionedTable("rebate_details", "trade_date"), PartitionedTable("rebate_orders", "first_trade_date"))
"""rebate_orders goes by its first day: an order keeps it while later days are added, and lake_pending_ranges
remembers where it was when a load moves it (sql/lake/plan.sql)."""

WHOLE = ("rebate_windows", "rebate_loads", "rebate_files")
"""Small tables written whole by every publish: what is complete, the reconciliation trail, lineage."""


@dataclass(frozen=True)
class PublishResult:
    """What one publish wrote."""

    partitions_written: int
    partitions_removed: int
    bytes_written: int
    last_load_id: int
    """Every load up to this one is in the lake."""
    entry_point_written: bool


def mark_pending_orders(db: duckdb.DuckDBPyConnection) -> None:
    """Remember the ordId ranges the coming rebate_orders refresh will recompute, until a publish rewrote their orders.

    Call it in the same held connection, just before the refresh (which empties pending_order_ranges). It commits at
    once, so a pass that dies after the refresh leaves them for the next publish. Nothing pending: nothing written.
    """
    if db.execute("SELECT 1 FROM pending_order_ranges LIMIT 1").fetchone() is None:
        return
    with transaction(db):
        db.execute(sql_text("lake/mark_pending_orders.sql"))


def publish_lake(db: duckdb.DuckDBPyConnection, layout: DataLayout) -> PublishResult:
    """Bring the lake up to date with the database: rewrite the partitions changed since the last publish.

    `db` is held by the caller for the whole publish, so no load lands between what is planned and what is recorded.
    The first publish (or one after the lake folder was deleted) writes every partition. When nothing changed since
    the last publish (no load, no moved order, the ledger's small tables the same) it writes nothing at all.
    """
    for name in WHOLE:
        db.execute(sql_text(f"lake/{name}.sql"))  # temp views: nothing is written
    digest = _one(db, "lake/ledger_digest.sql")
    fingerprint = entry_point_fingerprint()
    last = db.execute(sql_text("lake/last_publish.sql")).fetchone()
    full = _needs_full_publish(db, layout, last)
    if not full and last is not None and _up_to_date(layout, last, fingerprint, digest):
        log.debug("the lake is up to date with load %d: nothing to publish", last[0])
        return PublishResult(0, 0, 0, int(last[0]), entry_point_written=False)
    log.debug("publishing the lake at %s", layout.lake)
    staging = layout.lake_staging
    if staging.exists():
        shutil.rmtree(staging)  # what a publish that died left; nothing reads it
    staging.mkdir(parents=True)
    try:
        _plan_pending_days(db)
        db.execute(sql_text("lake/plan.sql"), {"full": full})
        if full:
            _plan_existing_partitions(db, layout)
        _next_batch(db, "", date.min)  # empty: the views below bind against it
        for relative in ("lake/rebate_details.sql", "lake/rebate_orders.sql"):
            db.execute(sql_text(relative))
        written, removed, size = _publish_tables(db, layout)
        for name in WHOLE:  # last: a window the ledger file calls loaded has its rows in the lake already
            staged = staging / name / PARTITION_FILE
            staged.parent.mkdir(parents=True)
            _copy(db, "lake/copy_file.sql", f"lake_{name}", staged)
            size += staged.stat().st_size
            _replace(staged, layout.lake / name / PARTITION_FILE)
        entry_written = not layout.analysts.exists() or last is None or last[1] != fingerprint
        if entry_written:
            write_entry_point(db, layout, staging)
        if full:  # after the entry point reads the new layout: analysts see the old files or the new, never both
            removed += _remove_old_layout(layout)
        with transaction(db):
            db.execute(
                sql_text("lake/record_publish.sql"),
                {"written": written, "removed": removed, "bytes": size, "entry_point": fingerprint,
                 "layout": LAKE_LAYOUT, "ledger_digest": digest},
            )  # fmt: skip
        row = db.execute("SELECT max(last_load_id) FROM lake_publishes").fetchone()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PublishResult(written, removed, size, int(row[0]) if row and row[0] is not None else 0, entry_written)


def _one(db: duckdb.DuckDBPyConnection, statement: str) -> str:
    row = db.execute(sql_text(statement)).fetchone()
    assert row is not None
    return str(row[0])


def _up_to_date(layout: DataLayout, last: tuple[object, ...], fingerprint: str, digest: str) -> bool:
    """Whether the lake already holds everything (sql/lake/last_publish.sql's row `last`): no load and no moved order
    since the last publish, the small tables as it wrote them, and every file it wrote still there.

    Then a publish writes nothing at all: an idle hour costs a few small reads, and no fsync.
    """
    _, entry_point, published_digest, changed, _ = last
    files = [layout.analysts, *(layout.lake / name / PARTITION_FILE for name in WHOLE)]
    return not changed and entry_point == fingerprint and published_digest == digest and all(f.exists() for f in files)


def _needs_full_publish(db: duckdb.DuckDBPyConnection, layout: DataLayout, last: tuple[Any, ...] | None) -> bool:
    """True before the first publish (`last`, last_publish.sql's row, is None), after LAKE_LAYOUT changed, and when
    the lake is gone but the database is not."""
    if last is None or last[4] != LAKE_LAYOUT:
        return True
    lake_is_gone = not all((layout.lake / table.name).exists() for table in PARTITIONED)
    return lake_is_gone and db.execute("SELECT 1 FROM rebate_details LIMIT 1").fetchone() is not None


def _plan_pending_days(db: duckdb.DuckDBPyConnection) -> None:
    """lake_pending_days: the rebate_orders partitions the refreshes since the last publish may have changed, one
    merged ordId range of lake_pending_ranges at a time (sql/lake/pending_days.sql)."""
    db.execute("CREATE OR REPLACE TEMP TABLE lake_pending_days (account VARCHAR, broker_type VARCHAR, day DATE)")
    ranges = db.execute("SELECT first_ord_id, last_ord_id FROM lake_pending_ranges ORDER BY ALL").fetchall()
    for first, last in merged_ranges([(str(first), str(last)) for first, last in ranges]):
        db.execute(sql_text("lake/pending_days.sql"), {"first_ord_id": first, "last_ord_id": last})


def _plan_existing_partitions(db: duckdb.DuckDBPyConnection, layout: DataLayout) -> None:
    """Add every partition folder already in the lake to a full publish's plan, so one with no rows is deleted."""
    existing = []
    for table in PARTITIONED:
        for folder in (layout.lake / table.name).glob(f"account=*/broker_type=*/{table.day_column}=*"):
            account = folder.parent.parent.name.removeprefix("account=")
            broker_type = folder.parent.name.removeprefix("broker_type=")
            existing.append((table.name, account, broker_type, folder.name.removeprefix(f"{table.day_column}=")))
    if existing:
        db.executemany("INSERT INTO lake_plan VALUES (?, ?, ?, CAST(? AS DATE))", existing)


def _remove_old_layout(layout: DataLayout) -> int:
    """Delete the partition folders of layout 1 (`<table>/broker_type=*/`), once layout 2 holds their rows."""
    removed = 0
    for table in PARTITIONED:
        for folder in (layout.lake / table.name).glob("broker_type=*"):
            removed += sum(1 for _ in folder.rglob("*.parquet"))
            shutil.rmtree(folder)
    return removed


def _publish_tables(db: duckdb.DuckDBPyConnection, layout: DataLayout) -> tuple[int, int, int]:
    """Publish the planned partitions of every partitioned table: the tables side by side when DuckDB may use threads.

    A day's COPY to one file is one row group, encoded on one thread; with two threads allowed, rebate_details and
    rebate_orders are written at once, each on a cursor of its own (its own lake_plan rows, lake_batch, view and
    variables), so the publish uses both cores. Each file is still staged and renamed into place whole; the caller
    records the publish only after both tables are done. Returns (written, removed, bytes) summed over the tables.
    """
    plans = {
        table.name: db.execute("FROM lake_plan WHERE lake_table = ?", [table.name]).fetchall() for table in PARTITIONED
    }
    workers = min(len(PARTITIONED), duckdb_threads(db))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lake-publish") as pool:
        futures = [pool.submit(_publish_table, db, layout, table, plans[table.name]) for table in PARTITIONED]
        results = [future.result() for future in futures]  # the first error raised, after every table finished
    return (sum(r[0] for r in results), sum(r[1] for r in results), sum(r[2] for r in results))


def _publish_table(
    db: duckdb.DuckDBPyConnection, layout: DataLayout, table: PartitionedTable, plan: list[tuple[object, ...]]
) -> tuple[int, int, int]:
    """Publish one table's planned partitions on a cursor of its own (a connection to the same database)."""
    with db.cursor() as cursor:
        cursor.execute(sql_text("lake/plan_table.sql"))
        if plan:
            cursor.executemany("INSERT INTO lake_plan VALUES (?, ?, ?, ?)", plan)
        _next_batch(cursor, "", date.min)  # empty: the view binds against it
        cursor.execute(sql_text(f"lake/{table.name}.sql"))
        return _publish_partitions(cursor, layout, table)


def _publish_partitions(
    db: duckdb.DuckDBPyConnection, layout: DataLayout, table: PartitionedTable
) -> tuple[int, int, int]:
    """Write the table's planned partitions beside the lake, then rename each into place or delete an emptied one.

    One planned day at a time, and one plain COPY per partition file: the day's constant bounds let the scan read
    only that day's row groups, and a COPY to one file keeps no partition buffers open. One partitioned COPY of a
    month of days took about a quarter more CPU and held a month of partitions in memory (benchmarks.md, issue 12).
    """
    written = removed = size = 0
    after = date.min
    while planned := _next_batch(db, table.name, after):
        db.execute(sql_text("lake/batch_bounds.sql"))
        for account, broker_type, day in planned:
            folder = table.folder(account, broker_type, day.isoformat())
            staged = layout.lake_staging / folder / PARTITION_FILE
            staged.parent.mkdir(parents=True, exist_ok=True)
            final = layout.lake / folder / PARTITION_FILE
            db.execute("SET VARIABLE lake_account = ?", [account])
            db.execute("SET VARIABLE lake_broker_type = ?", [broker_type])
            rows = _copy(db, "lake/copy_partition.sql", f"lake_{table.name}", staged, day_column=table.day_column)
            if rows:
                size += staged.stat().st_size
                _replace(staged, final)
                written += 1
            else:
                staged.unlink()
                if final.exists():
                    final.unlink()
                    _remove_empty_folders(final.parent, layout.lake / table.name)
                    removed += 1
        after = max(day for _, _, day in planned)
    return written, removed, size


def _next_batch(db: duckdb.DuckDBPyConnection, table: str, after: date) -> list[tuple[str, str, date]]:
    """Make lake_batch the table's next planned day after `after` (one partition per account and broker type)."""
    db.execute(sql_text("lake/batch.sql"), {"lake_table": table, "after": after})
    rows = db.execute("FROM lake_batch ORDER BY ALL").fetchall()
    return [(str(account), str(broker_type), day) for account, broker_type, day in rows]


def _copy(db: duckdb.DuckDBPyConnection, statement: str, view: str, target: Path, *, day_column: str = "") -> int:
    """Run a COPY statement of sql/lake with its view, target path and day column filled in (all validated here).

    Returns the rows it wrote.
    """
    if not _SAFE_VALUE.match(view) or not _SAFE_VALUE.match(day_column or "x"):
        raise ValueError(f"{view!r} / {day_column!r} is not an identifier")
    copied = db.execute(sql_text(statement).format(view=view, target=sql_literal(target), day_column=day_column))
    row = copied.fetchone()
    return int(row[0]) if row else 0


def _replace(staged: Path, final: Path) -> None:
    """Make `staged` the file at `final` in one rename, after its bytes are on disk: readers see old or new, whole."""
    with staged.open("rb") as handle:
        os.fsync(handle.fileno())
    final.parent.mkdir(parents=True, exist_ok=True)
    staged.replace(final)
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _remove_empty_folders(folder: Path, stop: Path) -> None:
    """Remove `folder` and its parents up to (not including) `stop` while they are empty."""
    while folder != stop and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def entry_point_sql() -> list[str]:
    """The SQL files the entry point is made of, in order: the shared macros, the lake's views, the analysts' views."""
    return ["schema/005_macros.sql", *sql_folder("lake/entry"), *sql_folder("views")]


def entry_point_fingerprint() -> str:
    """A hash of what the entry point is made of: it is written again only when this changes (or it is missing)."""
    digest = hashlib.sha256(f"{ENTRY_POINT_STORAGE_VERSION} layout {LAKE_LAYOUT}".encode())
    for relative in entry_point_sql():
        digest.update(relative.encode() + b"\0" + sql_text(relative).encode())
    return digest.hexdigest()


def write_entry_point(db: duckdb.DuckDBPyConnection, layout: DataLayout, staging: Path) -> None:
    """Write the analysts' entry point beside the lake and rename it into place (open sessions keep the old one).

    DuckDB checks a view's files when the view is created, so the views are created against zero-row files with the
    lake's columns (a template); each session then reads the real lake, found next to the entry point.
    """
    log.debug("writing the entry point at %s", layout.analysts)
    template = staging / "template"
    for table in PARTITIONED:
        target = template / table.folder("default", "api", "2000-01-01") / PARTITION_FILE
        target.parent.mkdir(parents=True)
        _copy(db, "lake/copy_template.sql", f"lake_{table.name}", target, day_column=table.day_column)
    for name in WHOLE:
        target = template / name / PARTITION_FILE
        target.parent.mkdir(parents=True)
        _copy(db, "lake/copy_file.sql", f"lake_{name}", target)
    staged = staging / "analysts.duckdb"
    with duckdb.connect() as entry:
        entry.execute(f"ATTACH {sql_literal(staged)} AS analysts (STORAGE_VERSION '{ENTRY_POINT_STORAGE_VERSION}')")
        entry.execute("USE analysts")
        entry.execute(f"SET VARIABLE rebates_lake = {sql_literal(template)}")
        for relative in entry_point_sql():
            entry.execute(sql_text(relative))
        entry.execute("USE memory")
        entry.execute("DETACH analysts")
    _replace(staged, layout.analysts)
