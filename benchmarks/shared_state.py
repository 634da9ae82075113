"""Shared-state cost benchmark: the DuckDB write lock, the ledger copy before a publish, and a transition, per backend.

Runs against `--url` (a PostgreSQL database it may fill) or, without it, a throwaway cluster like the tests' own.
For each ledger size (windows, each with one archived file) it times, as medians of several runs: taking and
releasing the session-level DuckDB write lock, copying rebate_windows and rebate_files from PostgreSQL into DuckDB,
and one window transition in PostgreSQL beside the same in the embedded DuckDB ledger.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import median

import psycopg

from pipeline.clock import FakeClock
from pipeline.config import load_settings
from pipeline.db import connect
from pipeline.ledger import Ledger, WindowState
from pipeline.state import copy_ledger_to_duckdb, duckdb_writes
from pipeline.windows import RebateWindow, WindowKind

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.postgres import Cluster, bindir

START = datetime(2025, 1, 1, tzinfo=UTC)


def timed(action: Callable[[], object], runs: int) -> float:
    """The median wall time of `action` in milliseconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return median(times)


def fill(ledger: Ledger, windows: int) -> None:
    """`windows` one-day windows of the ledger's account, planned in one call, each with one archived file."""
    planned = [
        (RebateWindow("api", date(2000, 1, 1) + timedelta(days=day), date(2000, 1, 1) + timedelta(days=day)),
         WindowKind.HISTORY)
        for day in range(windows)
    ]  # fmt: skip
    records = ledger.add_windows(planned)
    if ledger.state_url is None:
        return
    with psycopg.connect(ledger.state_url) as connection:  # the files in bulk: one row per window, as a download makes
        connection.execute(
            "INSERT INTO rebate_files SELECT window_id || '@0', window_id, 'raw/api/' || window_id || '.csv', 1, '0',"
            " 'csv', '127.0.0.1', planned_at, planned_at, 1 FROM rebate_windows"
        )
    assert len(records) == windows


def measure(url: str, size: int, runs: int) -> str:
    """One table row: the costs with a ledger of `size` windows."""
    with tempfile.TemporaryDirectory() as folder:
        db_path = Path(folder) / "rebates.duckdb"
        settings = load_settings(rebates_data_dir=Path(folder), rebates_db=db_path, rebates_state_url=url)
        clock = FakeClock(START)
        shared = Ledger(db_path, clock, state_url=url)
        embedded = Ledger(Path(folder) / "embedded.duckdb", clock)
        fill(shared, size)
        fill(embedded, 1)  # one transition's cost does not grow with the ledger
        target, local = shared.windows()[0].window_id, embedded.windows()[0].window_id

        def hold() -> None:
            with duckdb_writes(settings):
                pass

        def copy() -> None:
            with connect(db_path) as db:
                copy_ledger_to_duckdb(settings, db)

        lock_ms = timed(hold, runs)
        copy_ms = timed(copy, runs)
        move_pg = timed(lambda: shared.transition(target, WindowState.DOWNLOADED), runs)
        move_duck = timed(lambda: embedded.transition(local, WindowState.DOWNLOADED), runs)
    return f"| {size:,} | {lock_ms:.1f} | {copy_ms:.1f} | {move_pg:.1f} | {move_duck:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a PostgreSQL database to use (default: a throwaway cluster)")
    parser.add_argument("--sizes", default="100,1000,3000", help="ledger sizes, in windows")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cluster = None
    if args.url is None:
        found = bindir()
        if found is None:
            sys.exit("no PostgreSQL binaries: pass --url")
        cluster = Cluster(found).start()
    try:
        print(
            "| windows | DuckDB write lock (ms) | copy windows+files (ms) | transition: PostgreSQL (ms) | DuckDB (ms) |"
        )
        print("|---:|---:|---:|---:|---:|")
        for size in (int(text) for text in args.sizes.split(",")):
            url = args.url if cluster is None else cluster.new_database()
            print(measure(url, size, args.runs), flush=True)
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
