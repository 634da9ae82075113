"""Time `parse_rebate_file` against a raw calamine read (200,000-row xlsx) and a raw Polars read (1,000,000-row CSV).

Run: `.venv/bin/python benchmarks/parse_xlsx.py` (add `--help` for sizes). The generated files are kept in a cache
directory (default: the system temp dir), so a second run skips the slow generation. Target: xlsx ratio <= 1.3.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import fastexcel
import polars as pl

from pipeline.config import load_settings
from pipeline.simulator.files import MULTI_DAY_SHARE, FileShape, FileSpec, generate_rows, render
from pipeline.store.inflate import member_chunks
from pipeline.store.parse import parse_rebate_file
from pipeline.store.xlsx_numbers import SheetScanner

FIRST_DAY = date(2025, 1, 1)
DAYS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--xlsx-rows", type=int, default=200_000)
    parser.add_argument("--csv-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "okx-rebates-benchmarks")
    parser.add_argument("--xlsx-only", action="store_true", help="skip the CSV measurements")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    xlsx, csv = ensure_files(args.cache, args.xlsx_rows, args.csv_rows)

    def parse(path: Path) -> int:
        parsed = parse_rebate_file(path, tz=settings.rebates_tz, max_unzipped_bytes=settings.rebates_max_unzipped_bytes)
        return parsed.rows

    print(f"\nxlsx: {xlsx} ({xlsx.stat().st_size / 1e6:.1f} MB, {parse(xlsx):,} data rows)")
    times = best_of_interleaved(
        args.repeat,
        {
            "pl.read_excel(engine='calamine')": lambda: pl.read_excel(xlsx, engine="calamine").height,
            "fastexcel load_sheet(0).to_polars()": lambda: (
                fastexcel.read_excel(str(xlsx)).load_sheet(0).to_polars().height
            ),
            "parse_rebate_file": lambda: parse(xlsx),
            "of which: inflate every member": lambda: inflate_members(xlsx, scan=False),
            "   (the same by zipfile's zlib)": lambda: inflate_members(xlsx, scan=False, reader="zlib"),
            "of which: inflate + scan <v> texts": lambda: inflate_members(xlsx, scan=True),
        },
    )
    for label, seconds in times.items():
        report(label, seconds)
    parsed, polars_raw = times["parse_rebate_file"], times["pl.read_excel(engine='calamine')"]
    print(f"  ratio parse / pl.read_excel          {parsed / polars_raw:8.2f}  (target <= 1.3)")
    print(f"  ratio parse / fastexcel              {parsed / times['fastexcel load_sheet(0).to_polars()']:8.2f}")
    if args.xlsx_only:
        return

    print(f"\ncsv: {csv} ({csv.stat().st_size / 1e6:.1f} MB, {parse(csv):,} data rows)")
    raw_default = best_of(args.repeat, lambda: pl.read_csv(csv).height)
    raw_text = best_of(args.repeat, lambda: pl.read_csv(csv, infer_schema=False).height)
    parsed = best_of(args.repeat, lambda: parse(csv))
    report("pl.read_csv (types inferred)", raw_default)
    report("pl.read_csv(infer_schema=False)", raw_text)
    report("parse_rebate_file", parsed)
    print(f"  ratio parse / pl.read_csv            {parsed / raw_default:8.2f}")
    print(f"  ratio parse / read_csv as text       {parsed / raw_text:8.2f}")


def ensure_files(cache: Path, xlsx_rows: int, csv_rows: int) -> tuple[Path, Path]:
    """The benchmark files, generated once per size: the simulator's rows, written by its own xlsx and CSV writers."""
    xlsx = cache / f"rebates-{xlsx_rows}.xlsx"
    csv = cache / f"rebates-{csv_rows}.csv"
    if xlsx.exists() and csv.exists():
        print(f"reusing {xlsx} and {csv}")
        return xlsx, csv
    # Each day has orders_per_day rows plus the second-day rows of 1 in 20 of the previous day's orders.
    per_day = math.ceil(xlsx_rows / DAYS / (1 + 1 / MULTI_DAY_SHARE))
    spec = FileSpec(FIRST_DAY, FIRST_DAY + timedelta(days=DAYS - 1), "api", orders_per_day=per_day)
    started = time.perf_counter()
    rows = generate_rows(spec)
    print(f"generated {len(rows):,} rows in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    xlsx.write_bytes(render(rows, replace(spec, shape=FileShape.XLSX)))
    print(f"wrote the xlsx with openpyxl in {time.perf_counter() - started:.1f} s")
    # The CSV repeats those rows (a parse does not care that orders repeat) rather than generating 1,000,000.
    started = time.perf_counter()
    header, *lines = render(rows, spec).decode().splitlines(keepends=True)
    copies = math.ceil(csv_rows / len(lines))
    with csv.open("w", encoding="utf-8", newline="") as out:
        out.write(header)
        out.writelines((lines * copies)[:csv_rows])
    print(f"wrote the CSV ({csv_rows:,} rows: {copies} copies of those rows) in {time.perf_counter() - started:.1f} s")
    return xlsx, csv


def inflate_members(xlsx: Path, *, scan: bool, reader: str = "isal") -> int:
    """The size cap's pass over the workbook alone: inflate every member (by ISA-L as parse.py does, or by zipfile's
    zlib), and maybe scan its number texts."""
    changed = 0
    with zipfile.ZipFile(xlsx) as archive:
        for info in archive.infolist():
            scanner = SheetScanner()
            for chunk in member_chunks(archive, info) if reader == "isal" else zipfile_chunks(archive, info):
                if scan:
                    scanner.feed(chunk)
            changed += len(scanner.finish().changed)
    return changed


def zipfile_chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """A member's bytes as zipfile inflates them (zlib): what parse.py used before ISA-L."""
    with archive.open(info) as source:
        while chunk := source.read(1 << 20):
            yield chunk


def best_of_interleaved(repeat: int, runs: dict[str, Callable[[], int]]) -> dict[str, float]:
    """The best time of each run, the runs taking turns, so that a busy spell on a shared machine hits them alike."""
    times: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(repeat):
        for label, run in runs.items():
            started = time.perf_counter()
            run()
            times[label].append(time.perf_counter() - started)
    return {label: min(seconds) for label, seconds in times.items()}


def best_of(repeat: int, run: Callable[[], int]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def report(label: str, seconds: float) -> None:
    print(f"  {label:<36} {seconds:8.3f} s")


if __name__ == "__main__":
    main()
