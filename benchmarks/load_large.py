"""Whole `rebates load` of 1M and 10M-row CSVs (50M with --huge) against the same work done by hand in DuckDB.

Run: `.venv/bin/python benchmarks/load_large.py` (about 15 min; generating the 10M-row files once takes 2 more).
Each file comes in two variants: `plain` (every amount a plain decimal) and `odd` (the same values, about 80 amounts
a million rows written as some exporters do: `-7.7395e-05`, `+0.5`, `.5`). For each, in fresh processes timed by
GNU time (`/usr/bin/time -f %M`, what a container's memory limit counts):

- the baseline, the same work by hand in one DuckDB script (`SAME_WORK_SQL`): CREATE TABLE AS of the details with
  the same casts, a GROUP BY for the orders, both COPYed to day-partitioned Parquet like the lake;
- the whole `rebates -v load` (archive, details, orders, lake, entry point), its RSS sampled every 50 ms and put
  down to the step its last log line named (`--trace` prints the steps).

Then the loaded rows and every amount's total are checked against an independent sum of the file's text (integer
arithmetic on the digits and the exponent, no DECIMAL cast). Targets (issue 22): the load <= 1.3x the baseline at
10M rows for both variants; peak RSS <= 3 GiB at 10M and 50M rows.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
from common import ORDERS_PER_DAY, days_for, markdown_table, write_csv
from load_csv import BASELINE_SQL, FIRST_DAY

from pipeline.columns import AMOUNT_COLUMNS
from pipeline.simulator.files import AMOUNT_COLUMNS as FILE_AMOUNT_HEADERS

SCRIPT = Path(__file__).resolve()
HEADERS = dict(zip(AMOUNT_COLUMNS, FILE_AMOUNT_HEADERS, strict=True))
"""Table column → the file's header for each amount."""
WINDOW_DAYS = 150
"""Days the generated file spans, within OKX's 180-day window (the 10M-row file has more orders a day)."""
VARIANTS = ("plain", "odd")
TARGET_RATIO = 1.3
GIB = 1024**3

SAME_WORK_SQL = (
    "SET TimeZone = 'UTC';\n"
    + BASELINE_SQL
    + """;

CREATE TABLE rebate_orders_baseline AS
SELECT
    ord_id, broker_code,
    arg_max({'uid': uid, 'level': level, 'inst_id': inst_id, 'cl_ord_id': cl_ord_id}, ts) AS latest,
    sum(spot_trade_amt) AS spot_trade_amt, sum(derivative_trade_amt) AS derivative_trade_amt, sum(fee) AS fee,
    sum(net_fee) AS net_fee, sum(settlement_fee) AS settlement_fee, sum(broker_rebate) AS broker_rebate,
    sum(sub_broker_rebate) AS sub_broker_rebate, sum(user_rebate) AS user_rebate,
    bool_or(affiliated) AS affiliated, min(ts) AS first_ts, max(ts) AS last_ts,
    min(trade_date) AS first_trade_date, max(trade_date) AS last_trade_date, count(*) AS fill_days
FROM rebate_details_baseline
GROUP BY ord_id, broker_code;
COPY rebate_details_baseline TO '{lake}/rebate_details' (FORMAT parquet, PARTITION_BY (trade_date));
COPY rebate_orders_baseline TO '{lake}/rebate_orders' (FORMAT parquet, PARTITION_BY (first_trade_date));
"""
)
"""The baseline: what `rebates load` does, done by hand in one DuckDB script with DuckDB's defaults."""

STEP_LINES = (
    ("archive", re.compile(r"archiving ")),
    ("scans", re.compile(r"scanning ")),
    ("insert", re.compile(r"inserting |reading .* exactly")),
    ("key check", re.compile(r"checking the key")),
    ("refresh", re.compile(r"refreshing rebate_orders|recomputing ")),
    ("publish", re.compile(r"publishing the lake")),
    ("entry point", re.compile(r"writing the entry point")),
)
"""The steps of a load as `rebates -v load` logs them: a step lasts from its line to the next step's."""


@dataclass
class Run:
    """One timed process: wall and CPU seconds, GNU time's peak RSS, and with a trace the peak RSS of each step."""

    seconds: float
    cpu: float
    rss: float
    steps: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    """Step → (seconds in it, CPU seconds in it, peak RSS in GiB), in order."""
    statements: list[str] = field(default_factory=list)
    """The baseline's statements, each with its time and CPU."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--huge", action="store_true", help="also 50,000,000 rows (about 8 GiB of CSV)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs of each, taking turns")
    parser.add_argument("--trace", action="store_true", help="print each load's RSS by step")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "okx-rebates-benchmarks")
    args = parser.parse_args()
    sizes = [*args.sizes, *([50_000_000] if args.huge else [])]
    args.cache.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in sizes:
        for variant in args.variants:
            orders_per_day = max(ORDERS_PER_DAY, -(-size // WINDOW_DAYS))
            csv = ensure_large_csv(args.cache, size, orders_per_day, odd=variant == "odd")
            last_day = FIRST_DAY + timedelta(days=days_for(size, orders_per_day) - 1)
            window = f"api:{FIRST_DAY:%Y%m%d}-{last_day:%Y%m%d}"
            baselines, loads, exact = [], [], ""
            loads_at = []
            for attempt in range(args.repeat):
                baselines.append(same_work(csv))
                load, exact = rebates_load(csv, window, check=attempt == args.repeat - 1)
                loads.append(load)
                loads_at.append(os.getloadavg()[0])
                print(
                    f"{size:>11,} {variant:<5} run {attempt + 1}: baseline {baselines[-1].seconds:.1f} s "
                    f"({baselines[-1].cpu:.1f} CPU-s, {baselines[-1].rss:.2f} GiB); rebates load {load.seconds:.1f} s "
                    f"({load.cpu:.1f} CPU-s, {load.rss:.2f} GiB): {load.seconds / baselines[-1].seconds:.2f}x, "
                    f"CPU {load.cpu / baselines[-1].cpu:.2f}x; load average {loads_at[-1]:.1f}",
                    flush=True,
                )
                if args.trace:
                    print("\n".join(baselines[-1].statements))
                    print(trace_table(load), flush=True)
            base = min(baselines, key=lambda run: run.seconds)
            best = min(loads, key=lambda run: run.seconds)
            rows.append((size, variant, base, best, exact, f"{min(loads_at):.1f}-{max(loads_at):.1f}"))
    print()
    table = [
        (f"{size:,}", variant, f"{base.seconds:.1f} s / {base.cpu:.1f} CPU-s", f"{base.rss:.2f} GiB",
         f"{load.seconds:.1f} s / {load.cpu:.1f} CPU-s", f"{load.rss:.2f} GiB",
         f"**{load.seconds / base.seconds:.2f}**", f"{load.cpu / base.cpu:.2f}", exact, average)
        for size, variant, base, load, exact, average in rows
    ]  # fmt: skip
    header = ("rows", "file", "same work by hand", "its peak RSS", "rebates load", "its peak RSS", "ratio",
              "CPU ratio", "exact", "load average")  # fmt: skip
    print(markdown_table(header, table))
    print(f"\ntarget: ratio <= {TARGET_RATIO} at 10M rows, both files; peak RSS <= 3 GiB")


def ensure_large_csv(cache: Path, rows: int, orders_per_day: int, *, odd: bool = False) -> Path:
    """The generated CSV of `rows` rows over at most `WINDOW_DAYS` days (one window), written once and reused."""
    path = cache / f"load-large-{rows}-{orders_per_day}{'-odd' if odd else ''}.csv"
    if not path.exists():
        partial = path.with_suffix(".partial")
        write_csv(partial, FIRST_DAY, rows=rows, orders_per_day=orders_per_day, odd_amounts=odd)
        partial.replace(path)
    return path


def same_work(csv: Path) -> Run:
    """The baseline in a fresh process, in a work folder of its own (removed after)."""
    work = Path(tempfile.mkdtemp(prefix="okx-rebates-same-work-"))
    try:
        return timed([sys.executable, str(SCRIPT), "--same-work", str(csv), str(work)])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def rebates_load(csv: Path, window: str, *, check: bool) -> tuple[Run, str]:
    """`rebates -v load` of `csv` as `window` into a fresh data folder; then, with `check`, whether it is exact."""
    work = Path(tempfile.mkdtemp(prefix="okx-rebates-load-large-"))
    try:
        data = work / "data"
        env = {**os.environ, "REBATES_DATA_DIR": str(data), "REBATES_DB": str(data / "rebates.duckdb")}
        rebates = Path(sys.executable).with_name("rebates")
        run = timed([str(rebates), "-v", "load", str(csv), "--window", window], env=env, trace=True)
        return run, check_exact(csv, data / "rebates.duckdb") if check else ""
    finally:
        shutil.rmtree(work, ignore_errors=True)


def timed(command: list[str], env: dict[str, str] | None = None, *, trace: bool = False) -> Run:
    """Run `command` under GNU time: wall and CPU seconds and the peak RSS of the process, as `time -f %M` counts it.

    With `trace`, the process's RSS is also sampled every 50 ms and each sample put down to the step its stderr's
    last log line named (`STEP_LINES`).
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        ["/usr/bin/time", "-f", "GNUTIME %M %U %S", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    step = ["start"]
    samples: list[tuple[str, float, float, float]] = []
    done = threading.Event()
    if trace:
        threading.Thread(target=_sample, args=(process.pid, step, samples, done), daemon=True).start()
    lines = []
    for line in process.stderr:
        lines.append(line)
        for name, pattern in STEP_LINES:
            if pattern.search(line):
                step[0] = name
    process.wait()
    done.set()
    seconds = time.perf_counter() - started
    measured = next((line for line in reversed(lines) if line.startswith("GNUTIME ")), None)
    steps = [line.strip() for line in lines if line.startswith("baseline step ")]
    if process.returncode != 0 or measured is None:
        raise RuntimeError(f"{command} failed:\n{''.join(lines[-40:])}")
    kib, user, system = measured.split()[1:]
    run = Run(seconds, float(user) + float(system), int(kib) * 1024 / GIB, statements=steps)
    for name, moment, used, rss in samples:
        spent, cpu, peak = run.steps.get(name, (0.0, 0.0, 0.0))
        run.steps[name] = (spent + moment, cpu + used, max(peak, rss))
    return run


def _sample(
    time_pid: int, step: list[str], samples: list[tuple[str, float, float, float]], done: threading.Event
) -> None:
    """Every 50 ms, the step GNU time's child (the command) is in, the time and CPU since the last sample, its RSS."""
    ticks = os.sysconf("SC_CLK_TCK")
    last_time, last_cpu = time.perf_counter(), 0.0
    while not done.wait(0.05):
        try:
            children = Path(f"/proc/{time_pid}/task/{time_pid}/children").read_text().split()
            status = Path(f"/proc/{children[0]}/status").read_text() if children else ""
            fields = Path(f"/proc/{children[0]}/stat").read_text().rsplit(")", 1)[1].split() if children else []
        except OSError:
            continue
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if found and fields:
            now, cpu = time.perf_counter(), (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
            samples.append((step[0], now - last_time, cpu - last_cpu, int(found.group(1)) * 1024 / GIB))
            last_time, last_cpu = now, cpu


def trace_table(run: Run) -> str:
    """A load's steps: time and CPU in each, and its peak RSS."""
    rows = [
        (name, f"{spent:.1f} s", f"{cpu:.1f} CPU-s", f"{peak:.2f} GiB")
        for name, (spent, cpu, peak) in run.steps.items()
    ]
    return markdown_table(("step", "time", "CPU", "peak RSS"), rows)


def same_work_child(csv: str, work: str) -> None:
    """The baseline's own process: one DuckDB database file, one script."""
    lake = Path(work) / "lake"
    lake.mkdir()
    with duckdb.connect(str(Path(work) / "same-work.duckdb")) as db:
        for statement in duckdb.extract_statements(SAME_WORK_SQL.replace("{lake}", str(lake))):
            started, cpu = time.perf_counter(), time.process_time()
            db.execute(statement.query, {"path": csv} if "$path" in statement.query else None)
            label = " ".join(statement.query.split()[:3])
            spent = f"{time.perf_counter() - started:.1f} s, {time.process_time() - cpu:.1f} CPU-s"
            print(f"baseline step {label}: {spent}", file=sys.stderr)


def check_exact(csv: Path, db_path: Path) -> str:
    """Compare rows and totals in rebate_details with sums of the file's text as integers (no DECIMAL cast).

    Each amount is read as sign, digits and exponent, and counted in units of 1e-18 as a HUGEINT.
    """
    pattern = r"^([+-]?)([0-9]*)\.?([0-9]*)(?:[eE]([+-]?[0-9]+))?$"
    scaled = ", ".join(
        f"sum(scaled_amount(regexp_extract({header}, '{pattern}', ['sign', 'whole', 'fraction', 'exponent'])))"
        for header in HEADERS.values()
    )
    macro = """
        CREATE MACRO scaled_amount(p) AS
            (CASE WHEN p.sign = '-' THEN -1 ELSE 1 END)
            * (p.whole || p.fraction)::HUGEINT
            * ('1' || repeat('0', scale_of(p)))::HUGEINT;
        CREATE MACRO scale_of(p) AS CASE
            WHEN 18 + coalesce(nullif(p.exponent, '')::INTEGER, 0) - length(p.fraction) >= 0
            THEN 18 + coalesce(nullif(p.exponent, '')::INTEGER, 0) - length(p.fraction)
            ELSE error('an amount with more than 18 decimal places')
        END
    """
    with duckdb.connect() as db:
        db.execute(macro)
        query = f"SELECT count(*), {scaled} FROM read_csv(?, all_varchar = true)"  # noqa: S608 - fixed column names
        row = db.execute(query, [str(csv)]).fetchone()
    assert row is not None
    expected = (int(row[0]), *(Decimal(int(value)).scaleb(-18) for value in row[1:]))
    sums = ", ".join(f"sum({name})" for name in AMOUNT_COLUMNS)
    with duckdb.connect(str(db_path), read_only=True) as db:
        loaded = db.execute(f"SELECT count(*), {sums} FROM rebate_details").fetchone()  # noqa: S608 - fixed names
    assert loaded is not None
    return "yes" if (int(loaded[0]), *loaded[1:]) == expected else f"NO: file {expected} vs loaded {loaded}"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--same-work":
        same_work_child(sys.argv[2], sys.argv[3])
    else:
        main()
