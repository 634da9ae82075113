"""Load-cost-vs-history benchmark: one day's file loaded while rebate_details holds 1M, 10M and 50M rows."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

import duckdb
from common import (
    ORDERS_PER_DAY,
    ROWS_PER_DAY,
    child_main,
    disk_free,
    install_generator,
    markdown_table,
    register_file,
    run_child,
    scan_table,
    write_csv,
)
from common import ingest as ingest_file

from pipeline.db import connect

FIRST_DAY = date(2022, 1, 1)
DEFAULT_SIZES = [1_000_000, 10_000_000, 50_000_000]
"""History sizes (rows in rebate_details) a day's load is measured at."""
BATCH_DAYS = 20
"""History is written this many days (about 1M rows) per transaction."""
FILL_MEMORY_LIMIT = "8GB"
"""DuckDB's memory limit while the history is written (its default, 80 % of RAM, lets the fill take most of it)."""
WARMUP_DAYS = 4
"""New days loaded, unmeasured, before the measured ones: the first checkpoints after the bulk write are not what
a database grown load by load sees."""
FLAT = 1.3
"""Load time at the largest history over the smallest: above this, the cost grows with history."""
GIB_PER_ROW = 0.25 / 1_000_000
"""Database size per history row (rebate_details and rebate_orders), a generous estimate for the disk check."""
SCRIPT = Path(__file__).resolve()

# One batch of history days [$lo, $hi]: generated once into a temp table, then written as the pipeline would have
# left it: each day one loaded daily window with its file and load recorded, and summed_orders summing every order of
# more than one row.
BATCH_SQL = """
CREATE OR REPLACE TEMP TABLE batch AS
SELECT * FROM bench_order_fills(($lo - 1)::DATE, $days + 1, $orders, $seed) WHERE fill_day <= $hi;

INSERT INTO rebate_details
SELECT
    'api', broker_code, level, uid, inst_id, inst_type(inst_id), ord_id, cl_ord_id,
    bench_decimal(spot_u), bench_decimal(deriv_u), bench_decimal(fee_u), bench_decimal(net_u),
    bench_decimal(settle_u), bench_decimal(broker_u), bench_decimal(sub_u), bench_decimal(user_u),
    affiliated, make_timestamp_ms(ts_ms)::TIMESTAMPTZ, fill_day, NULL,
    bench_window(fill_day), bench_window(fill_day) || '@history', i + 1 + fill * $orders, $now, 'default'
FROM batch
WHERE fill_day >= $lo;

-- Orders first filled on the previous batch's last day and again on this batch's first day: the previous batch left
-- them one row each; now they have two, summed from their rows as a load's refresh would.
INSERT INTO summed_orders
SELECT
    ord_id, broker_code, arg_max(broker_type, ts), arg_max(uid, ts), arg_max(level, ts), arg_max(inst_id, ts),
    arg_max(inst_type, ts), arg_max(cl_ord_id, ts), sum(spot_trade_amt), sum(derivative_trade_amt), sum(fee),
    sum(net_fee), sum(settlement_fee), sum(broker_rebate), sum(sub_broker_rebate), sum(user_rebate),
    bool_or(affiliated), min(ts), max(ts), min(trade_date), max(trade_date), count(*), count(DISTINCT window_id),
    'default'
FROM rebate_details
WHERE trade_date BETWEEN ($lo - 1)::DATE AND $lo
  AND (ord_id, broker_code) IN (SELECT ord_id, broker_code FROM batch WHERE order_day = ($lo - 1)::DATE AND carried)
GROUP BY ord_id, broker_code;

-- The batch's own orders: most filled on one day only, so the view rebate_orders reads them from rebate_details; the
-- one in 20 that filled again the next day inside the batch is summed over its two fills.
INSERT INTO summed_orders
SELECT
    any_value(ord_id), any_value(broker_code), 'api', any_value(uid), any_value(level), any_value(inst_id),
    inst_type(any_value(inst_id)), any_value(cl_ord_id),
    bench_decimal(sum(spot_u)), bench_decimal(sum(deriv_u)), bench_decimal(sum(fee_u)), bench_decimal(sum(net_u)),
    bench_decimal(sum(settle_u)), bench_decimal(sum(broker_u)), bench_decimal(sum(sub_u)), bench_decimal(sum(user_u)),
    bool_or(affiliated), make_timestamp_ms(min(ts_ms))::TIMESTAMPTZ, make_timestamp_ms(max(ts_ms))::TIMESTAMPTZ,
    min(fill_day), max(fill_day), count(*), count(*), 'default'
FROM batch
WHERE order_day >= $lo AND carried AND order_day < $hi
GROUP BY order_day, i;

CREATE OR REPLACE TEMP TABLE batch_windows AS
SELECT
    window_id, min(trade_date) AS day, count(*) AS rows,
    json_object(
        'spot_trade_amt', sum(spot_trade_amt)::VARCHAR, 'derivative_trade_amt', sum(derivative_trade_amt)::VARCHAR,
        'fee', sum(fee)::VARCHAR, 'net_fee', sum(net_fee)::VARCHAR, 'settlement_fee', sum(settlement_fee)::VARCHAR,
        'broker_rebate', sum(broker_rebate)::VARCHAR, 'sub_broker_rebate', sum(sub_broker_rebate)::VARCHAR,
        'user_rebate', sum(user_rebate)::VARCHAR
    ) AS totals
FROM rebate_details
WHERE trade_date BETWEEN $lo AND $hi
GROUP BY window_id;

INSERT INTO rebate_windows (window_id, broker_type, begin_date, end_date, kind, state, planned_at, requested_at,
    server_requested_at, polled_at, finished_at, file_id, downloaded_at, loaded_at, rows_loaded, attempts, updated_at)
SELECT window_id, 'api', day, day, 'daily', 'loaded', $now, $now, $now, $now, $now, window_id || '@history', $now,
    $now, rows, 0, $now
FROM batch_windows;

INSERT INTO rebate_files (file_id, window_id, path, bytes, sha256, format, source_host, first_downloaded_at,
    last_downloaded_at)
SELECT window_id || '@history', window_id, 'raw/api/' || strftime(day, '%Y%m%d') || '.csv', rows * 170, 'history',
    'csv', 'history.local', $now, $now
FROM batch_windows;

INSERT INTO rebate_loads (window_id, file_id, loaded_at, rows_in_file, rows_loaded, rows_replaced, min_trade_date,
    max_trade_date, file_totals, loaded_totals, extra_columns, warnings)
SELECT window_id, window_id || '@history', $now, rows, rows, 0, day, day, totals, totals, [], []
FROM batch_windows;

DROP TABLE batch;
DROP TABLE batch_windows;
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(size) for size in text.split(",")],
        default=DEFAULT_SIZES,
        help="history sizes in rows, comma-separated (default 1000000,10000000,50000000)",
    )
    parser.add_argument(
        "--rows", type=int, help="the largest history: measure at N and at the default sizes below it (1M, 10M)"
    )
    parser.add_argument("--repeat", type=int, default=4, help="first loads (one new day each) and reloads per size")
    parser.add_argument("--quick", action="store_true", help="histories of 200,000 and 1,000,000 rows, 3 runs")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()), help="where the database goes")
    parser.add_argument("--keep", action="store_true", help="keep the database and day files afterwards")
    args = parser.parse_args()
    if args.rows:
        args.sizes = [size for size in DEFAULT_SIZES if size < args.rows] + [args.rows]
    if args.quick:
        args.sizes, args.repeat = [200_000, 1_000_000], 3
    workdir = Path(tempfile.mkdtemp(prefix="okx-rebates-history-", dir=args.workdir))
    sizes = sorted(args.sizes)
    print(f"work dir {workdir} ({disk_free(workdir)}); sizes {', '.join(f'{size:,}' for size in sizes)}")
    print(f"the databases take about {sum(sizes) * GIB_PER_ROW:.1f} GiB at once (a copy per size)")
    started = time.perf_counter()
    stages: list[dict[str, Any]] = []
    try:
        days = [max(1, round(size / ROWS_PER_DAY)) for size in sizes]
        print(f"\nwriting {days[-1]} days of history from {FIRST_DAY}, a copy at {', '.join(map(str, days))} days ...")
        task = {"kind": "fill", "dir": str(workdir), "first_day": FIRST_DAY.isoformat(), "stages": days}
        fill = run_child(SCRIPT, task)
        print(f"  done in {fill['seconds']:.0f} s (peak RSS {fill['peak_rss_mib']:,.0f} MiB)", flush=True)
        for size, stage_days, written in zip(sizes, days, fill["stages"], strict=True):
            db_path = Path(written["path"])
            stage = run_stage(db_path, workdir, FIRST_DAY + timedelta(days=stage_days), args.repeat)
            stage.update(size=size, fill=written, fill_rss=fill["peak_rss_mib"])
            stages.append(stage)
            if not args.keep:
                for path in workdir.glob(db_path.name + "*"):
                    path.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report(stages, args.repeat, time.perf_counter() - started)


def run_stage(db_path: Path, workdir: Path, next_day: date, repeat: int) -> dict[str, Any]:
    """Time new days' loads (and their rebate_orders refresh) and reloads of the last new day on a history copy."""
    print(f"\n{db_path.name}", flush=True)
    warmup = run_child(SCRIPT, {"kind": "warmup", "db": str(db_path), "dir": str(workdir), "day": next_day.isoformat()})
    print(f"  {WARMUP_DAYS} warm-up days loaded (not measured): {', '.join(f'{s:.2f}' for s in warmup['seconds'])} s")
    next_day += timedelta(days=WARMUP_DAYS)
    first_loads, reloads = [], []
    profiled: dict[str, Any] = {}
    # The last new day is loaded with DuckDB's profiler on (it costs a little), to show what each scan read.
    for attempt in range(repeat + 1):
        csv = day_file(workdir, next_day)
        window, _ = register_file(db_path, next_day, next_day, csv, "first")
        result = load(db_path, window, csv, profile=attempt == repeat)
        print(
            f"  new day {next_day}: load_window {result['load']:.3f} s ({result['rows']:,} rows), "
            f"refresh {result['refresh']:.3f} s",
            flush=True,
        )
        if attempt == repeat:
            profiled["first"] = result
        else:
            first_loads.append(result)
        next_day += timedelta(days=1)
    last_day = next_day - timedelta(days=1)
    csv = day_file(workdir, last_day)
    for attempt in range(repeat + 1):
        window, _ = register_file(db_path, last_day, last_day, csv, f"reload{attempt}")
        result = load(db_path, window, csv, profile=attempt == repeat)
        print(f"  reload {last_day}: load_window {result['load']:.3f} s ({result['replaced']:,} replaced)", flush=True)
        if attempt == repeat:
            profiled["reload"] = result
        else:
            reloads.append(result)
    with connect(db_path) as db:
        row = db.execute("SELECT count(*) FROM rebate_details").fetchone()
        orders = db.execute("SELECT count(*) FROM rebate_orders").fetchone()
    assert row is not None and orders is not None
    return {
        "history_rows": first_loads[0]["history_rows"],
        "rows_after": int(row[0]),
        "orders_after": int(orders[0]),
        "first": first_loads,
        "reload": reloads,
        "profiled": profiled,
        "db_bytes": sum(path.stat().st_size for path in db_path.parent.glob(db_path.name + "*")),
    }


def day_file(workdir: Path, day: date) -> Path:
    """The CSV of one day (continuing the generated history), written once."""
    path = workdir / "raw" / f"{day:%Y%m%d}.csv"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_csv(path, day, rows=10 * ROWS_PER_DAY, days=1)
    return path


def load(db_path: Path, window: str, csv: Path, *, profile: bool) -> dict[str, Any]:
    task = {"kind": "load", "db": str(db_path), "window": window, "csv": str(csv), "profile": profile}
    return run_child(SCRIPT, task)


def report(stages: list[dict[str, Any]], repeat: int, elapsed: float) -> None:
    print(f"\n### load_history: one day's file (~{ROWS_PER_DAY:,} rows) vs history size, {repeat} runs each\n")
    rows = []
    for stage in stages:
        first, reload = _loads(stage["first"]), _loads(stage["reload"])
        rows.append(
            (
                f"{stage['history_rows']:,}",
                f"{median(first):.3f} s",
                f"{min(first):.3f} s",
                ", ".join(f"{value:.2f}" for value in first),
                f"{median(reload):.3f} s",
                f"{min(reload):.3f} s",
                ", ".join(f"{value:.2f}" for value in reload),
                f"{median(result['refresh'] for result in stage['first']):.3f} s",
                f"{median(result['parse'] for result in stage['first']):.3f} s",
                f"{max(result['peak_rss_mib'] for result in stage['first'] + stage['reload']):,.0f} MiB",
            )
        )
    headers = (
        "rows in rebate_details",
        "new day: median",
        "min",
        "all runs (s)",
        "reload: median",
        "min",
        "all runs (s)",
        "new day's rebate_orders refresh (median)",
        "parse (median)",
        "peak RSS of a load",
    )
    print(markdown_table(headers, rows))
    print(
        "(load_window only, and the end of the pass's rebate_orders refresh apart; parse is the same file at every "
        "size; each load runs in a fresh process)"
    )
    smallest, largest = stages[0], stages[-1]
    for kind, label in (("first", "new day"), ("reload", "reload")):
        for part, pick in (("load_window", _loads), ("its statements (without COMMIT and close)", _statements_only)):
            low, high = median(pick(smallest[kind])), median(pick(largest[kind]))
            growth = high / low
            verdict = "flat" if growth <= FLAT else "GROWS with history"
            print(
                f"{label}, {part}: median {high:.3f} s at {largest['history_rows']:,} rows vs {low:.3f} s at "
                f"{smallest['history_rows']:,} rows = {growth:.2f}x ({verdict}; flat means <= {FLAT}x)"
            )

    print("\n### Building the history\n")
    build = [
        (
            f"{stage['fill']['rows']:,}",
            f"{stage['orders_after']:,}",
            f"{stage['fill']['seconds']:.0f} s",
            f"{stage['db_bytes'] / 1024**3:.2f} GiB",
        )
        for stage in stages
    ]
    build_headers = ("history rows", "rebate_orders rows", "write (its days)", "db file")
    print(markdown_table(build_headers, build))
    print(
        f"(the write ran in one process, peak RSS {stages[0]['fill_rss']:,.0f} MiB with DuckDB's memory_limit "
        f"{FILL_MEMORY_LIMIT}; rebate_orders rows and the file size are counted at the end, after the benchmark's "
        "own days)"
    )

    for kind, label in (("first", "new day"), ("reload", "reload")):
        print(f"\n### Where a {label} load's time goes (median per phase, seconds)\n")
        medians = [_phase_medians(stage[kind]) for stage in stages]
        names = sorted({name for phases in medians for name in phases}, key=lambda name: -medians[-1].get(name, 0.0))
        table = [
            (name, *(f"{phases.get(name, 0.0):.3f}" for phases in medians))
            for name in names
            if max(phases.get(name, 0.0) for phases in medians) >= 0.005
        ]
        print(markdown_table(("phase", *(f"{stage['history_rows']:,} rows" for stage in stages)), table))

    for stage in (smallest, largest) if len(stages) > 1 else (smallest,):
        for kind, label in (("first", "new day"), ("reload", "reload")):
            profiled = stage["profiled"][kind]
            print(f"\n### Table scans of a {label} load at {stage['history_rows']:,} rows (profiled run)\n")
            print(scan_table(profiled["scans"]))
    print(f"\ntotal benchmark time {elapsed / 60:.1f} min")


def _loads(results: list[dict[str, Any]]) -> list[float]:
    return [float(result["load"]) for result in results]


_CHECKPOINTING = ("load: sql COMMIT", "load: close (checkpoint)")


def _statements_only(results: list[dict[str, Any]]) -> list[float]:
    """load_window's time without its COMMIT and close, where DuckDB checkpoints (a cost that cycles run to run)."""
    return [
        float(result["load"]) - sum(result["phases"].get(name, 0.0) for name in _CHECKPOINTING) for result in results
    ]


def _phase_medians(results: list[dict[str, Any]]) -> dict[str, float]:
    names = {name for result in results for name in result["phases"] if not name.startswith("parse:")}
    return {name: median(result["phases"].get(name, 0.0) for result in results) for name in names}


# --- children ---------------------------------------------------------------------------------------------------


def child(task: dict[str, Any]) -> dict[str, Any]:
    if task["kind"] == "fill":
        return fill_history(Path(task["dir"]), date.fromisoformat(task["first_day"]), list(task["stages"]))
    db_path = Path(task["db"])
    if task["kind"] == "warmup":
        first = date.fromisoformat(task["day"])
        seconds = []
        for offset in range(WARMUP_DAYS):
            day = first + timedelta(days=offset)
            csv = day_file(Path(task["dir"]), day)
            window, _ = register_file(db_path, day, day, csv, "first")
            seconds.append(ingest_file(db_path, window, csv)["load"])
        return {"seconds": seconds}
    with connect(db_path) as db:
        row = db.execute("SELECT count(*) FROM rebate_details").fetchone()
    assert row is not None
    result = ingest_file(db_path, task["window"], Path(task["csv"]), profile=bool(task["profile"]))
    result["history_rows"] = int(row[0])
    return result


def fill_history(workdir: Path, first_day: date, stages: list[int]) -> dict[str, Any]:
    """Write history day by day from `first_day`, copying the database each time it holds `stages[i]` days.

    Returns each copy's path, rows and the seconds its days took to write.
    """
    started = time.perf_counter()
    now = datetime.now(UTC)
    base = workdir / "history.duckdb"
    written: list[dict[str, Any]] = []
    done = 0
    with connect(base) as db:
        db.execute(f"SET memory_limit = '{FILL_MEMORY_LIMIT}'")
        install_generator(db)
        for stage_days in stages:
            stage_started = time.perf_counter()
            while done < stage_days:
                count = min(BATCH_DAYS, stage_days - done)
                low = first_day + timedelta(days=done)
                params = {"lo": low, "hi": low + timedelta(days=count - 1), "days": count}
                params.update(orders=ORDERS_PER_DAY, seed=0, now=now)
                db.execute("BEGIN TRANSACTION")
                for statement in _statements(BATCH_SQL):
                    db.execute(statement, {name: value for name, value in params.items() if f"${name}" in statement})
                db.execute("COMMIT")
                done += count
            db.execute("CHECKPOINT")
            row = db.execute("SELECT count(*) FROM rebate_details").fetchone()
            assert row is not None
            copy = workdir / f"rebates-{stage_days}-days.duckdb"
            if stage_days != stages[-1]:
                shutil.copyfile(base, copy)  # consistent: checkpointed, and this process alone holds the file
            written.append({"path": str(copy), "rows": int(row[0]), "seconds": time.perf_counter() - stage_started})
    base.replace(written[-1]["path"])
    return {"seconds": time.perf_counter() - started, "stages": written}


def _statements(script: str) -> list[str]:
    return [statement.query for statement in duckdb.extract_statements(script)]


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child_main(child)
    else:
        main()
