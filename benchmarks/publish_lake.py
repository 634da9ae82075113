"""Publish-cost-vs-history benchmark: the lake published after one new day, with 1M and 50M rows of history.

For each history size it writes the history in SQL (load_history's generator), publishes the whole lake once (the
first publish), loads warm-up days, then loads one more day at a time (about 50,000 rows) and times the end of that
pass: the rebate_orders refresh and the lake publish, and counts the bytes the publish wrote. The old snapshot copied
the whole database file instead; its size is reported beside. Then it runs idle passes: the load step of a pass
(`ingest_due`: the due windows, the refresh and the publish) with nothing new, its CPU seconds measured and every
file of the lake and the database checked untouched (issue 22: <= 0.5 CPU-s, flat from 1M to 10M rows).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from statistics import median
from typing import Any

import duckdb
from common import ROWS_PER_DAY, child_main, disk_free, markdown_table, register_file, run_child
from common import ingest as ingest_file
from load_history import FIRST_DAY, day_file, fill_history

from pipeline.clock import SystemClock
from pipeline.config import DataLayout, load_settings
from pipeline.db import connect
from pipeline.ledger import Ledger
from pipeline.store.ingest import ingest_due
from pipeline.store.lake import mark_pending_orders, publish_lake
from pipeline.store.load import refresh_orders

DEFAULT_SIZES = [1_000_000, 50_000_000]
"""History sizes (rows in rebate_details) the publish is measured at."""
WARMUP_DAYS = 2
"""New days loaded and published, unmeasured, after the first (whole) publish."""
IDLE_PASSES = 3
"""Idle passes measured per history size."""
IDLE_CPU = 0.5
"""CPU seconds an idle pass may take beyond its OKX calls (issue 22)."""
FLAT = 1.2
"""Publish time at the largest history over the smallest: above this, publishing grows with history."""
SCRIPT = Path(__file__).resolve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(size) for size in text.split(",")],
        default=DEFAULT_SIZES,
        help="history sizes in rows, comma-separated (default 1000000,50000000; 50M needs ~16 GiB of disk)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="measured new days per size")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()), help="where the databases go")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="okx-rebates-lake-", dir=args.workdir))
    sizes = sorted(args.sizes)
    print(f"work dir {workdir} ({disk_free(workdir)}); sizes {', '.join(f'{size:,}' for size in sizes)}")
    started = time.perf_counter()
    stages: list[dict[str, Any]] = []
    try:
        days = [max(1, round(size / ROWS_PER_DAY)) for size in sizes]
        print(f"\nwriting {days[-1]} days of history from {FIRST_DAY}, a copy at {', '.join(map(str, days))} days ...")
        fill = run_child(SCRIPT, {"kind": "fill", "dir": str(workdir), "stages": days})
        print(f"  done in {fill['seconds']:.0f} s", flush=True)
        for size, stage_days, written in zip(sizes, days, fill["stages"], strict=True):
            db_path = Path(written["path"])
            stage = run_stage(db_path, workdir, FIRST_DAY + timedelta(days=stage_days), args.repeat)
            stage.update(size=size, history_rows=written["rows"])
            stages.append(stage)
            for path in workdir.glob(db_path.name + "*"):
                path.unlink()
            shutil.rmtree(workdir / f"data-{db_path.stem}", ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(stages, args.repeat, time.perf_counter() - started)


def run_stage(db_path: Path, workdir: Path, next_day: date, repeat: int) -> dict[str, Any]:
    """The first publish, then `repeat` measured new days, each loaded and then published, on one history copy."""
    print(f"\n{db_path.name}", flush=True)
    data = workdir / f"data-{db_path.stem}"
    lake = DataLayout(data).lake
    first = run_child(SCRIPT, {"kind": "publish", "db": str(db_path), "data": str(data)})
    print(
        f"  first publish (the whole lake): {first['publish']:.1f} s, {first['partitions']:,} files, "
        f"{first['bytes'] / 1024**3:.2f} GiB",
        flush=True,
    )
    runs = []
    for attempt in range(WARMUP_DAYS + repeat):
        csv = day_file(workdir, next_day)
        window, _ = register_file(db_path, next_day, next_day, csv, "first")
        task = {"kind": "day", "db": str(db_path), "data": str(data), "window": window, "csv": str(csv)}
        result = run_child(SCRIPT, task)
        measured = attempt >= WARMUP_DAYS
        print(
            f"  {'' if measured else '(warm-up) '}new day {next_day}: {result['rows']:,} rows; refresh "
            f"{result['refresh']:.3f} s, publish {result['publish']:.3f} s, {result['partitions']} files, "
            f"{result['bytes']:,} bytes",
            flush=True,
        )
        if measured:
            runs.append(result)
        next_day += timedelta(days=1)
    idle = [run_child(SCRIPT, {"kind": "idle", "db": str(db_path), "data": str(data)}) for _ in range(IDLE_PASSES)]
    print(
        "  idle passes: "
        + ", ".join(
            f"{run['cpu']:.3f} CPU-s ({run['seconds']:.3f} s, {run['files_changed']} files changed)" for run in idle
        ),
        flush=True,
    )
    db_bytes = sum(path.stat().st_size for path in db_path.parent.glob(db_path.name + "*"))
    lake_bytes = sum(path.stat().st_size for path in lake.rglob("*") if path.is_file())
    return {"first": first, "runs": runs, "idle": idle, "db_bytes": db_bytes, "lake_bytes": lake_bytes}


def report(stages: list[dict[str, Any]], repeat: int, elapsed: float) -> None:
    print(f"\n### publish_lake: after one new day (~{ROWS_PER_DAY:,} rows) vs history size, {repeat} days each\n")
    rows = []
    for stage in stages:
        runs = stage["runs"]
        publish = [run["publish"] for run in runs]
        rows.append(
            (
                f"{stage['history_rows']:,}",
                f"{median(publish):.3f} / {min(publish):.3f} s",
                ", ".join(f"{value:.3f}" for value in publish),
                f"{median(run['refresh'] for run in runs):.3f} s",
                f"{median(run['bytes'] for run in runs) / 1024**2:.2f} MiB",
                f"{median(run['partitions'] for run in runs):.0f}",
                f"{stage['first']['publish']:.1f} s / {stage['first']['bytes'] / 1024**3:.2f} GiB",
                f"{stage['lake_bytes'] / 1024**3:.2f} GiB",
                f"{stage['db_bytes'] / 1024**3:.2f} GiB",
            )
        )
    headers = (
        "rows in rebate_details",
        "publish, median / min",
        "runs (s)",
        "rebate_orders refresh, median",
        "bytes written, median",
        "files written",
        "first publish (whole lake)",
        "lake",
        "database (what the snapshot copied)",
    )
    print(markdown_table(headers, rows))
    small, large = (median(run["publish"] for run in stage["runs"]) for stage in (stages[0], stages[-1]))
    ratio = large / small
    bytes_ratio = median(run["bytes"] for run in stages[-1]["runs"]) / median(run["bytes"] for run in stages[0]["runs"])
    verdict = "flat" if ratio <= FLAT else "GROWS WITH HISTORY"
    print(f"\npublish {stages[-1]['history_rows']:,} / {stages[0]['history_rows']:,} rows: {ratio:.2f}x ({verdict});")
    print(f"bytes written {bytes_ratio:.2f}x; {elapsed / 60:.1f} min in all")
    print(f"\n### An idle pass (nothing new): the load step of a pass, {IDLE_PASSES} passes each\n")
    idle_rows = [
        (
            f"{stage['history_rows']:,}",
            f"{median(run['cpu'] for run in stage['idle']):.3f} CPU-s",
            f"{median(run['seconds'] for run in stage['idle']):.3f} s",
            ", ".join(f"{run['cpu']:.3f}" for run in stage["idle"]),
            sum(run["files_changed"] for run in stage["idle"]),
            sum(run["fsyncs"] for run in stage["idle"]),
            max(run["connections"] for run in stage["idle"]),
        )
        for stage in stages
    ]
    idle_headers = ("rows in rebate_details", "CPU, median", "wall, median", "runs (CPU-s)", "files changed",
                    "fsyncs", "DuckDB connections")  # fmt: skip
    print(markdown_table(idle_headers, idle_rows))
    small_idle, large_idle = (median(run["cpu"] for run in stage["idle"]) for stage in (stages[0], stages[-1]))
    print(f"\nidle pass {large_idle / small_idle:.2f}x from the smallest history to the largest (<= {IDLE_CPU} CPU-s)")


def child(task: dict[str, Any]) -> dict[str, Any]:
    """One measurement in its own process: the history fill, the first publish, or one new day and its publish."""
    if task["kind"] == "fill":
        return fill_history(Path(task["dir"]), FIRST_DAY, list(task["stages"]))
    db_path, layout = Path(task["db"]), DataLayout(Path(task["data"]))
    if task["kind"] == "idle":
        return idle_pass(db_path, Path(task["data"]))
    result: dict[str, Any] = {}
    if task["kind"] == "day":
        loaded = ingest_file(db_path, task["window"], Path(task["csv"]), refresh=False)
        result["rows"] = loaded["rows"]
    with connect(db_path) as held:  # what refresh_and_publish does at the end of a pass
        started = time.perf_counter()
        mark_pending_orders(held)
        refresh_orders(held)
        refreshed = time.perf_counter()
        published = publish_lake(held, layout)
        finished = time.perf_counter()
    written = published.partitions_written + published.partitions_removed
    return result | {
        "refresh": refreshed - started,
        "publish": finished - refreshed,
        "partitions": written,
        "bytes": published.bytes_written,
    }


def idle_pass(db_path: Path, data: Path) -> dict[str, Any]:
    """The load step of a pass with nothing new, as `rebates sync` runs it: CPU, wall, files changed, fsyncs, and
    the DuckDB connections it opened (the ledger's read of the due windows, then the end of the pass)."""
    settings = load_settings(rebates_data_dir=data, rebates_db=db_path)
    clock = SystemClock()
    ledger = Ledger(db_path, clock)
    files = [*data.rglob("*"), *db_path.parent.glob(db_path.name + "*")]
    before = {path: (path.stat().st_ino, path.stat().st_mtime_ns) for path in files if path.exists()}
    fsyncs = [0]
    connections = [0]
    real_fsync, real_connect = os.fsync, duckdb.connect

    def counted_fsync(fd: int) -> None:
        fsyncs[0] += 1
        real_fsync(fd)

    def counted_connect(*args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        connections[0] += 1
        return real_connect(*args, **kwargs)

    os.fsync, duckdb.connect = counted_fsync, counted_connect  # type: ignore[assignment]
    try:
        started, cpu = time.perf_counter(), time.process_time()
        outcomes = ingest_due(settings, ledger, clock)
        seconds, used = time.perf_counter() - started, time.process_time() - cpu
    finally:
        os.fsync, duckdb.connect = real_fsync, real_connect  # type: ignore[assignment]
    after = {path: (path.stat().st_ino, path.stat().st_mtime_ns) for path in files if path.exists()}
    changed = sum(1 for path, stamp in before.items() if after.get(path) != stamp)
    new_files = [*data.rglob("*"), *db_path.parent.glob(db_path.name + "*")]
    changed += sum(1 for path in new_files if path not in before)
    return {"seconds": seconds, "cpu": used, "loaded": len(outcomes), "files_changed": changed,
            "fsyncs": fsyncs[0], "connections": connections[0]}  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child_main(child)
    else:
        main()
