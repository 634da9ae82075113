"""Whole `rebates load` of 1M and 10M-row CSVs (50M with --huge), each in a fresh process, vs DuckDB's own CTAS.

Run: `.venv/bin/python benchmarks/load_large.py` (about 5 min, generating the 10M-row file once takes 2 more). Each
run reports wall time and peak RSS; then the loaded rows and every amount's total are checked against an
independent sum of the file's text (integer arithmetic on the digits, no DECIMAL cast). Targets: peak RSS at 10M
rows <= 3 GiB and <= 2x its 1M-row peak; the whole load <= 2.0x the CTAS at 10M rows. Each line also gives CPU
seconds and their ratio, which a busy shared machine changes much less than wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
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
SCALE = 10**18
WINDOW_DAYS = 150
"""Days the generated file spans, within OKX's 180-day window (the 10M-row file has more orders a day)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--huge", action="store_true", help="also 50,000,000 rows (about 8 GiB of CSV)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "okx-rebates-benchmarks")
    args = parser.parse_args()
    sizes = [*args.sizes, *([50_000_000] if args.huge else [])]
    args.cache.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in sizes:
        orders_per_day = max(ORDERS_PER_DAY, -(-size // WINDOW_DAYS))
        csv = ensure_large_csv(args.cache, size, orders_per_day)
        last_day = FIRST_DAY + timedelta(days=days_for(size, orders_per_day) - 1)
        work = Path(tempfile.mkdtemp(prefix="okx-rebates-load-large-"))
        try:
            ctas_seconds, ctas_rss, ctas_cpu = timed(
                [sys.executable, str(SCRIPT), "--ctas", str(csv), str(work / "ctas.duckdb")]
            )
            (work / "ctas.duckdb").unlink()
            data = work / "data"
            env = {**os.environ, "REBATES_DATA_DIR": str(data), "REBATES_DB": str(data / "rebates.duckdb")}
            window = f"api:{FIRST_DAY:%Y%m%d}-{last_day:%Y%m%d}"
            rebates = Path(sys.executable).with_name("rebates")
            load_seconds, load_rss, load_cpu = timed([str(rebates), "load", str(csv), "--window", window], env=env)
            exact = check_exact(csv, data / "rebates.duckdb")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(
            f"{size:>11,} rows: CTAS {ctas_seconds:.1f} s ({ctas_cpu:.1f} CPU-s) {ctas_rss:.2f} GiB; rebates load "
            f"{load_seconds:.1f} s ({load_cpu:.1f} CPU-s) {load_rss:.2f} GiB ({load_seconds / ctas_seconds:.2f}x, "
            f"CPU {load_cpu / ctas_cpu:.2f}x); exact: {exact}; load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        rows.append((size, ctas_seconds, ctas_cpu, ctas_rss, load_seconds, load_cpu, load_rss, exact))
    table = [
        (f"{size:,}", f"{ctas:.1f} s / {ctas_cpu:.1f} CPU-s", f"{ctas_rss:.2f} GiB",
         f"{load:.1f} s / {load_cpu:.1f} CPU-s", f"{load_rss:.2f} GiB", f"{load / ctas:.2f}",
         f"{load_cpu / ctas_cpu:.2f}", exact)
        for size, ctas, ctas_cpu, ctas_rss, load, load_cpu, load_rss, exact in rows
    ]  # fmt: skip
    print()
    header = ("rows", "DuckDB CTAS", "its peak RSS", "rebates load", "its peak RSS", "ratio", "CPU ratio", "exact")
    print(markdown_table(header, table))


def ensure_large_csv(cache: Path, rows: int, orders_per_day: int) -> Path:
    """The generated CSV of `rows` rows over at most `WINDOW_DAYS` days (one window), written once and reused."""
    path = cache / f"load-large-{rows}-{orders_per_day}.csv"
    if not path.exists():
        partial = path.with_suffix(".partial")
        write_csv(partial, FIRST_DAY, rows=rows, orders_per_day=orders_per_day)
        partial.replace(path)
    return path


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Run `command` in a fresh process: wall seconds, the peak RSS of its process tree (GiB) and its CPU seconds.

    CPU seconds (user + system, every thread) are what a busy shared machine changes least: the wall ratio moves
    with whoever else runs, the CPU ratio much less.

    The measurement runs in a child of its own (`--measure`), so RUSAGE_CHILDREN sees only that command's processes.
    """
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--measure", *command], env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{command} failed:\n{completed.stdout}\n{completed.stderr}")
    rss, cpu = completed.stdout.strip().splitlines()[-1].split()
    return seconds, float(rss), float(cpu)


def measure(command: list[str]) -> None:
    """Run `command` and print the peak RSS (GiB) of the largest process it started and their CPU seconds."""
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(usage.ru_maxrss / 1024**2, usage.ru_utime + usage.ru_stime)


def ctas(csv: str, db_path: str) -> None:
    """The baseline: DuckDB reads the CSV as text and makes the same casts into a new table."""
    with duckdb.connect(db_path) as db:
        db.execute("SET TimeZone = 'UTC'")
        db.execute(BASELINE_SQL, {"path": csv})


def check_exact(csv: Path, db_path: Path) -> str:
    """Compare rows and totals in rebate_details with sums of the file's digits as integers (no DECIMAL cast)."""
    scaled = ", ".join(
        f"sum((CASE WHEN starts_with({h}, '-') THEN -1 ELSE 1 END) * (split_part(ltrim({h}, '-'), '.', 1)::HUGEINT "
        f"* {SCALE} + rpad(split_part(ltrim({h}, '-'), '.', 2), 18, '0')::HUGEINT))"
        for h in HEADERS.values()
    )
    with duckdb.connect() as db:
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
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        measure(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "--ctas":
        ctas(sys.argv[2], sys.argv[3])
    else:
        main()
