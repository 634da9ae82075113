"""Shared benchmark helpers: a fast SQL generator of realistic rebate rows, child-process timing and tables."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from pipeline.clock import SystemClock
from pipeline.config import Settings
from pipeline.db import connect
from pipeline.ledger import FileRecord, Ledger
from pipeline.store import load, parse, rows
from pipeline.windows import RebateWindow, WindowKind

ORDERS_PER_DAY = 47_619
"""New orders a day; with the 1 in 20 that fill again the next day, a day's file holds about 50,000 rows."""
ROWS_PER_DAY = 50_000
"""About how many rows one day has (ORDERS_PER_DAY plus the previous day's orders carried over midnight)."""
BROKER_TYPE = "api"

CSV_HEADER = (
    "brokerCode,level,uid,instId,ordId,clOrdId,spotTradeAmt,derivativeTradeAmt,fee,netFee,settlementFee,"
    "brokerRebate,suBrokerRebate,userRebate,affiliated,ts"
)

# The generator is SQL (DuckDB temp macros) rather than Polars because the history benchmark fills tens of millions
# of rows straight into rebate_details with INSERT ... SELECT, and the day file it then loads must continue that
# history (the orders of the day before that fill over midnight): one generator, a pure function of
# (seed, day, order index), serves both. Every amount is an integer count of 1e-10 USDT, turned into text by integer
# division and padding (bench_text) and into DECIMAL by an exact decimal product (bench_decimal): never a float.
GENERATOR_SQL = """
CREATE OR REPLACE TEMP MACRO bench_text(u) AS
    CASE WHEN u = 0 THEN '0' ELSE
        (CASE WHEN u < 0 THEN '-' ELSE '' END) || (abs(u) // 10000000000)::VARCHAR ||
        CASE WHEN abs(u) % 10000000000 = 0 THEN ''
             ELSE '.' || rtrim(lpad((abs(u) % 10000000000)::VARCHAR, 10, '0'), '0') END
    END;
-- The same value as an exporter that writes floats might: scientific notation for one fee in about 33,000 and one
-- broker rebate in about 33,000 (`-7.7395e-05`, as Python's repr writes small numbers), a leading `+` on one
-- settlement fee in about 100,000, a fraction without its leading zero (`.5`) on one net fee in about 100,000 below 1.
CREATE OR REPLACE TEMP MACRO bench_sci(u) AS
    CASE WHEN u = 0 THEN '0' ELSE
        (CASE WHEN u < 0 THEN '-' ELSE '' END) || left(abs(u)::VARCHAR, 1) ||
        CASE WHEN length(rtrim(abs(u)::VARCHAR, '0')) > 1 THEN '.' || substr(rtrim(abs(u)::VARCHAR, '0'), 2)
             ELSE '' END ||
        'e' || CASE WHEN length(abs(u)::VARCHAR) < 11 THEN '-' ELSE '+' END ||
        lpad(abs(length(abs(u)::VARCHAR) - 11)::VARCHAR, 2, '0')
    END;
CREATE OR REPLACE TEMP MACRO bench_odd_text(u, h, form) AS
    CASE WHEN form = 'sci' AND h % 33333 = 0 THEN bench_sci(u)
         WHEN form = 'plus' AND h % 100003 = 1 AND u > 0 THEN '+' || bench_text(u)
         WHEN form = 'point' AND h % 100019 = 2 AND u <> 0 AND abs(u) < 10000000000
             THEN (CASE WHEN u < 0 THEN '-' ELSE '' END) || ltrim(bench_text(abs(u)), '0')
         ELSE bench_text(u) END;
CREATE OR REPLACE TEMP MACRO bench_decimal(u) AS (u::DECIMAL(18, 0) * 0.0000000001)::DECIMAL(38, 18);
CREATE OR REPLACE TEMP MACRO bench_share(u, percent) AS (u * percent + 50) // 100;
CREATE OR REPLACE TEMP MACRO bench_random(seed, a, b, c, d) AS (hash(seed, a, b, c, d) >> 1)::BIGINT;
CREATE OR REPLACE TEMP MACRO bench_window(day) AS 'api:' || strftime(day, '%Y%m%d') || '-' || strftime(day, '%Y%m%d');

CREATE OR REPLACE TEMP TABLE bench_users AS
SELECT
    range AS user_no,
    ['6cde6e1a8340PYGM', '7e2052f9f04eWJLO', 'b9c61f27aa01QKZT'][1 + range % 3] AS broker_code,
    CASE WHEN range % 10 = 0 THEN NULL
         ELSE ['Lv1', 'Lv1', 'Lv1', 'Lv2', 'Lv2', 'Lv3', 'Lv4', 'Lv5', 'VIP1', 'VIP2', 'VIP3', 'VIP4', 'VIP5',
               'VIP8'][1 + bench_random(0, range, 0, 0, 1) % 14] END AS level,
    left((100000000000000000 + bench_random(0, range, 0, 0, 2) % 900000000000000000)::VARCHAR,
         15 + (bench_random(0, range, 0, 0, 3) % 4)::INTEGER) AS uid,
    bench_random(0, range, 0, 0, 4) % 100 < 20 AS affiliated,
    bench_random(0, range, 0, 0, 5) % 100 < 10 AS sub_broker
FROM range(1000);

-- Every fill (row) of the orders first filled on the `days` days from `first_day`: one on that day, and for one
-- order in 20 a second on the next day (OKX writes an order once per day it filled on).
CREATE OR REPLACE TEMP MACRO bench_order_fills(first_day, days, orders_per_day, seed) AS TABLE
WITH day_list AS (
    SELECT
        day,
        epoch_ms(day::TIMESTAMP) - 28800000 AS start_ms,  -- midnight in UTC+8 (OKX's day, REBATES_TZ's default)
        last_day((date_trunc('quarter', day) + INTERVAL 2 MONTH)::DATE) AS quarter_end,
        quarter_end - ((isodow(quarter_end) + 2) % 7)::INTEGER AS this_quarter,
        last_day((date_trunc('quarter', day) + INTERVAL 5 MONTH)::DATE) AS next_quarter_end,
        next_quarter_end - ((isodow(next_quarter_end) + 2) % 7)::INTEGER AS next_quarter,
        strftime(CASE WHEN this_quarter > day THEN this_quarter ELSE next_quarter END, '%y%m%d') AS quarterly,
        strftime(day + (((11 - isodow(day)) % 7) + 1)::INTEGER, '%y%m%d') AS weekly
    FROM (SELECT (first_day + range::INTEGER)::DATE AS day FROM range(days))
),
orders AS (
    SELECT
        d.day AS order_day,
        d.start_ms,
        d.quarterly,
        d.weekly,
        o.range % orders_per_day AS i,
        bench_random(seed, d.day, i, 0, 1) AS h1,
        bench_random(seed, d.day, i, 0, 2) AS h2,
        h1 % 1000 AS user_no,
        (h1 >> 10) % 100 AS pick,
        (h1 >> 17) % 8 AS choice,
        d.start_ms + h2 % 86400000 AS created_ms,
        (h2 >> 32) % 20 = 0 AS carried,
        CASE
            WHEN pick < 35 THEN ['BTC-USDT', 'ETH-USDT', 'SOL-USDT', 'OKB-USDT', 'DOGE-USDT', 'XRP-USDT', 'TON-USDT',
                                 'LTC-USDT'][1 + choice]
            WHEN pick < 80 THEN ['BTC-USDT-SWAP', 'ETH-USDT-SWAP', 'SOL-USDT-SWAP', 'DOGE-USDT-SWAP',
                                 'BTC-USD-SWAP', 'ETH-USD-SWAP', 'XRP-USDT-SWAP', 'PEPE-USDT-SWAP'][1 + choice]
            WHEN pick < 90 THEN ['BTC-USD', 'ETH-USD', 'BTC-USDT', 'ETH-USDT'][1 + choice % 4] || '-' || d.quarterly
            WHEN choice % 2 = 0 THEN 'BTC-USD-' || (CASE WHEN (h1 >> 40) % 2 = 0 THEN d.quarterly ELSE d.weekly END)
                 || '-' || ((8 + (h1 >> 44) % 9) * 5000)::VARCHAR || '-' || ['C', 'P'][1 + (h1 >> 50) % 2]
            ELSE 'ETH-USD-' || (CASE WHEN (h1 >> 40) % 2 = 0 THEN d.quarterly ELSE d.weekly END)
                 || '-' || ((26 + (h1 >> 44) % 9) * 100)::VARCHAR || '-' || ['C', 'P'][1 + (h1 >> 50) % 2]
        END AS inst_id,
        CASE WHEN pick < 35 THEN [100, 80, 90, 60][1 + (h1 >> 20) % 4]
             WHEN pick < 90 THEN [50, 20, 30, 45][1 + (h1 >> 20) % 4]
             ELSE [30, 20][1 + (h1 >> 20) % 2] END AS fee_rate,
        (1000000000000000000 + (((created_ms - 915148800000) << 21) | (1 << 19) | i))::VARCHAR AS ord_id,
        CASE WHEN (h1 >> 24) % 2 = 0 THEN NULL
             ELSE ['a', 'k', 'q', 'x'][1 + (h2 >> 5) % 4] || left(to_base(h2 >> 7, 36) || to_base(h1 >> 7, 36),
                  8 + ((h1 >> 52) % 13)::INTEGER) END AS cl_ord_id
    FROM range(days * orders_per_day) AS o
    JOIN day_list AS d ON d.day = (first_day + (o.range // orders_per_day)::INTEGER)::DATE
),
fills AS (
    SELECT *, unnest(CASE WHEN carried THEN [0, 1] ELSE [0] END) AS fill FROM orders
)
SELECT
    o.order_day,
    (o.order_day + o.fill)::DATE AS fill_day,
    o.i,
    o.fill,
    u.broker_code,
    u.level,
    u.uid,
    o.inst_id,
    o.ord_id,
    o.cl_ord_id,
    u.affiliated,
    o.carried,
    bench_random(seed, o.order_day, o.i, o.fill, 3) AS hf,
    bench_random(seed, o.order_day, o.i, o.fill, 4) AS hg,
    CASE WHEN o.fill = 0 THEN o.created_ms + hf % (o.start_ms + 86400000 - o.created_ms)
         ELSE o.start_ms + 86400000 + hf % 86400000 END AS ts_ms,
    [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000, 10000000000] AS p10,
    (hf >> 8) % 7 AS places,
    CASE WHEN hf % 100 < 5 THEN (1 + (hf >> 16) % 99999) * [1000, 100, 10][1 + (hf >> 11) % 3]
         WHEN hf % 100 < 10 THEN (100000 * p10[1 + places] + (hf >> 16) % (900000 * p10[1 + places]))
                                 * p10[11 - places]
         ELSE (5 * p10[1 + places] + (hf >> 16) % (19995 * p10[1 + places])) * p10[11 - places] END AS notional,
    CASE WHEN o.pick < 35 THEN notional ELSE 0 END AS spot_u,
    CASE WHEN o.pick < 35 THEN 0 ELSE notional END AS deriv_u,
    -((notional * o.fee_rate + 50000) // 100000) AS fee_u,
    bench_share(-fee_u, CASE WHEN hg % 100 < 80 THEN 100 ELSE 80 + (hg >> 8) % 20 END) AS settle_u,
    bench_share(settle_u, CASE WHEN (hg >> 16) % 100 < 70 THEN 100 ELSE 30 + (hg >> 24) % 70 END) AS net_u,
    bench_share(net_u, [20, 25, 30, 40, 50][1 + (hg >> 32) % 5]) AS broker_u,
    CASE WHEN u.sub_broker THEN bench_share(net_u, 10) ELSE 0 END AS sub_u,
    CASE WHEN u.affiliated THEN bench_share(net_u, 5 + (hg >> 40) % 16) ELSE 0 END AS user_u
FROM fills AS o
JOIN bench_users AS u USING (user_no);

-- The rows whose day is one of the `days` days from `first_day`, as a file of those days holds them.
CREATE OR REPLACE TEMP MACRO bench_fills(first_day, days, orders_per_day, seed) AS TABLE
SELECT * FROM bench_order_fills((first_day - 1)::DATE, days + 1, orders_per_day, seed)
WHERE fill_day BETWEEN first_day AND (first_day + (days - 1))::DATE;
"""

CSV_SELECT = """
SELECT
    broker_code AS brokerCode, level, uid, inst_id AS instId, ord_id AS ordId, cl_ord_id AS clOrdId,
    bench_text(spot_u) AS spotTradeAmt, bench_text(deriv_u) AS derivativeTradeAmt, {fee} AS fee,
    {net_fee} AS netFee, {settlement_fee} AS settlementFee, {broker_rebate} AS brokerRebate,
    bench_text(sub_u) AS suBrokerRebate, bench_text(user_u) AS userRebate,
    CASE WHEN affiliated THEN 'true' ELSE 'false' END AS affiliated, ts_ms::VARCHAR AS ts
FROM bench_fills($first_day::DATE, $days, $orders_per_day, $seed)
ORDER BY fill_day, ts_ms, ord_id
LIMIT $rows
"""
PLAIN_AMOUNTS = {
    "fee": "bench_text(fee_u)",
    "net_fee": "bench_text(net_u)",
    "settlement_fee": "bench_text(settle_u)",
    "broker_rebate": "bench_text(broker_u)",
}
"""CSV_SELECT's amounts that `odd_amounts` writes otherwise: every one a plain decimal."""
ODD_AMOUNTS = {
    "fee": "bench_odd_text(fee_u, hf >> 3, 'sci')",
    "net_fee": "bench_odd_text(net_u, hg >> 3, 'point')",
    "settlement_fee": "bench_odd_text(settle_u, hf >> 5, 'plus')",
    "broker_rebate": "bench_odd_text(broker_u, hg >> 5, 'sci')",
}
"""The same amounts, a few written as other exporters do (bench_odd_text): about 60 a million rows in scientific
notation, 10 with a leading `+`, 10 without the leading zero."""


def install_generator(db: duckdb.DuckDBPyConnection) -> None:
    """Create the generator's temp macros and users table on this connection (nothing is persisted)."""
    db.execute(GENERATOR_SQL)


def days_for(rows: int, orders_per_day: int = ORDERS_PER_DAY) -> int:
    """How many days of generated rows hold at least `rows` rows."""
    return max(1, -(-rows // orders_per_day))


def write_csv(
    path: Path,
    first_day: date,
    *,
    rows: int,
    days: int | None = None,
    orders_per_day: int = ORDERS_PER_DAY,
    seed: int = 0,
    odd_amounts: bool = False,
) -> int:
    """Write a rebate CSV (the docs' 16 columns, LF line ends) of the days from `first_day`; returns its data rows.

    `rows` cuts the last day short so the file has exactly that many rows (when the days hold that many).
    `odd_amounts` writes a few amounts in scientific notation, with a leading `+` or without a leading zero
    (`ODD_AMOUNTS`): the same values, as some exporters write them.
    """
    days = days if days is not None else days_for(rows, orders_per_day)
    spill = path.with_name(path.name + ".spill")
    with duckdb.connect() as db:
        # Bounded, spilling beside the file: 50M rows held in memory took 19 GiB of this machine's 24 and kept growing.
        db.execute("SET memory_limit = '4GB'")
        db.execute("SET temp_directory = ?", [str(spill)])
        install_generator(db)
        params = {"first_day": first_day, "days": days, "orders_per_day": orders_per_day, "seed": seed, "rows": rows}
        select = CSV_SELECT.format(**(ODD_AMOUNTS if odd_amounts else PLAIN_AMOUNTS))
        db.execute("CREATE TEMP TABLE csv_rows AS " + select, params)
        written = db.execute("SELECT count(*) FROM csv_rows").fetchone()
        target = str(path).replace("'", "''")
        db.execute(f"COPY csv_rows TO '{target}' (FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', NEW_LINE '\\n')")
    shutil.rmtree(spill, ignore_errors=True)
    header = path.open(encoding="utf-8").readline().strip()
    if header != CSV_HEADER:
        raise AssertionError(f"unexpected header {header!r}")
    assert written is not None
    return int(written[0])


def window_id(begin: date, end: date) -> str:
    """The ledger's id of an `api` window (see RebateWindow.window_id)."""
    return f"{BROKER_TYPE}:{begin:%Y%m%d}-{end:%Y%m%d}"


# --- the pipeline's side: a window in the ledger, then parse + load timed phase by phase ---------------------------


def register_file(db_path: Path, begin: date, end: date, csv_path: Path, tag: str) -> tuple[str, str]:
    """Put the window in the ledger (if new) with `csv_path` as its archived file `<window>@<tag>`; returns both ids."""
    ledger = Ledger(db_path, SystemClock())
    window = RebateWindow(BROKER_TYPE, begin, end)
    if window.window_id not in {record.window_id for record in ledger.windows(broker_type=BROKER_TYPE)}:
        ledger.add_windows([(window, WindowKind.DAILY if begin == end else WindowKind.HISTORY)])
    file_id = f"{window.window_id}@{tag}"
    archived = FileRecord(file_id, window.window_id, str(csv_path), csv_path.stat().st_size, tag, "csv")
    ledger.record_archived(ledger.get(window.window_id), archived, "benchmark.local")
    return window.window_id, file_id


def ingest(
    db_path: Path, window: str, csv_path: Path, *, profile: bool = False, refresh: bool = True
) -> dict[str, Any]:
    """Load `csv_path` as `window`'s rows (what `ingest_window` does), timing each phase.

    `total` is file → rebate_details (load_window, which reads the file as it loads it). With `refresh`, the end
    of the pass's rebate_orders refresh then runs and is timed apart, as `refresh`. The ledger reads before the
    clock starts are setup. With `profile`, DuckDB's profiler also records what every table scan of the load read
    (rows and row groups), which costs a little time.
    """
    clock = SystemClock()
    ledger = Ledger(db_path, clock)
    record = ledger.get(window)
    archived = next(item for item in ledger.files(window) if item.file_id == record.file_id)
    settings = Settings()
    phases = Phases({})
    scans: list[dict[str, Any]] = []
    source = parse.RebateFile(
        csv_path,
        tz=settings.rebates_tz,
        max_unzipped_bytes=settings.rebates_max_unzipped_bytes,
        window=(record.begin_date, record.end_date),
    )
    with instrumented(phases, scans if profile else None):
        started = time.perf_counter()
        parsed_at = started  # the file is read inside load_window, batch by batch (or by DuckDB itself)
        result = load.load_window(db_path, record, archived, source, clock)
        finished = time.perf_counter()
    refreshed = 0
    if refresh:
        with connect(db_path) as db:
            refreshed = load.refresh_orders(db)
    return {
        "parse": parsed_at - started,
        "load": finished - parsed_at,
        "total": finished - started,
        "refresh": time.perf_counter() - finished,
        "orders_refreshed": refreshed,
        "rows": result.rows_loaded,
        "replaced": result.rows_replaced,
        "skipped": result.skipped,
        "phases": phases.breakdown(parsed_at - started, finished - parsed_at),
        "scans": scans,
    }


_PARSE_STEPS = {
    "_validate": "parse: validate (regexes, blanks)",
    "_confirm_amounts": "parse: confirm a sample with Decimal",
    "amount_totals": "parse: totals",
    "typed_batch": "parse: casts (rest of typed_batch)",
}
"""Functions timed, each in the module that calls it by name: the row steps in rows, the batch steps in parse."""
_LOAD_STEPS: dict[str, str] = {}


@dataclass
class Phases:
    """Wall time per named phase, summed over repeats of the same phase."""

    seconds: dict[str, float]

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Add the time of the `with` block to `name`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def breakdown(self, parse_total: float, load_total: float) -> dict[str, float]:
        """Exclusive times: `typed_batch` without the validation and sampling it calls, and what is left as `other`."""
        result = dict(self.seconds)
        typed = _PARSE_STEPS["typed_batch"]
        nested = (_PARSE_STEPS["_validate"], _PARSE_STEPS["_confirm_amounts"])
        if typed in result:
            result[typed] -= sum(result.get(name, 0.0) for name in nested)
        parse_known = sum(value for name, value in result.items() if name.startswith("parse:"))
        load_known = sum(value for name, value in result.items() if not name.startswith("parse:"))
        result["parse: other (format detection, header, frame glue)"] = parse_total - parse_known
        result["load: other (Python between statements)"] = load_total - load_known
        return result


@contextmanager
def instrumented(phases: Phases, scans: list[dict[str, Any]] | None) -> Iterator[None]:
    """Time parse's steps, load_window's connection and every statement it runs; undone on exit."""
    saved: list[tuple[Any, str, Any]] = []

    def wrap(module: Any, name: str, label: str) -> None:
        original = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with phases.timed(label):
                return original(*args, **kwargs)

        saved.append((module, name, original))
        setattr(module, name, timed)

    for name, label in _PARSE_STEPS.items():
        wrap(rows if name.startswith("_") else parse, name, label)
    for name, label in _LOAD_STEPS.items():
        wrap(load, name, label)
    original_connect = getattr(load, "connect")  # noqa: B009 - pipeline.store.load imports it; patched below

    @contextmanager
    def timed_connect(path: Path, **kwargs: Any) -> Iterator[TimedConnection]:
        with phases.timed("load: connect (+ schema fingerprint check)"):
            manager = original_connect(path, **kwargs)
            connection = manager.__enter__()
        if scans is not None:
            connection.execute("SET enable_profiling = 'no_output'")
        try:
            yield TimedConnection(connection, phases, scans)
        finally:
            with phases.timed("load: close (checkpoint)"):
                manager.__exit__(None, None, None)

    saved.append((load, "connect", original_connect))
    setattr(load, "connect", timed_connect)  # noqa: B010 - load_window looks it up on the module
    try:
        yield
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)


class TimedConnection:
    """A DuckDB connection that times each statement it runs, labelled by its first SQL line.

    A script of several statements is run statement by statement, as DuckDB would,
    so each gets its own time. With `scans`, the profiler's record of every table scan is kept too.
    """

    def __init__(
        self, connection: duckdb.DuckDBPyConnection, phases: Phases, scans: list[dict[str, Any]] | None
    ) -> None:
        self._connection = connection
        self._phases = phases
        self._scans = scans

    def execute(self, query: str, parameters: object = None) -> Any:
        """Run and time one statement, or each statement of a script without parameters."""
        statements = [query] if parameters is not None else [s.query for s in duckdb.extract_statements(query)]
        result: Any = None
        for statement in statements or [query]:
            label = f"load: sql {statement_label(statement)}"
            with self._phases.timed(label):
                if parameters is None:
                    result = self._connection.execute(statement)
                else:
                    result = self._connection.execute(statement, parameters)
            if self._scans is not None:
                self._record_scans(label)
        return result

    def _record_scans(self, label: str) -> None:
        assert self._scans is not None
        try:
            profile = json.loads(self._connection.get_profiling_information())
        except (duckdb.Error, ValueError):
            return
        for node in _nodes(profile.get("operator", [])):
            extra = node.get("extra_info", {})
            if node.get("type") == "TABLE_SCAN" and node.get("rows_scanned") is not None and "Table" in extra:
                groups = f"{node.get('row_groups_scanned', '?')}/{node.get('total_row_groups_to_scan', '?')}"
                self._scans.append(
                    {
                        "statement": label.removeprefix("load: sql "),
                        "table": str(extra["Table"]).split(".")[-1],
                        "rows_scanned": node["rows_scanned"],
                        "row_groups": groups,
                        "seconds": node.get("timing", 0.0),
                    }
                )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def _nodes(operators: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in operators:
        yield node
        yield from _nodes(node.get("children", []))


def statement_label(query: str) -> str:
    """A short label for a statement: its first line that is not a comment, cut to 60 characters."""
    for line in query.splitlines():
        text = line.strip()
        if text and not text.startswith("--"):
            return text if len(text) <= 60 else text[:57] + "..."
    return "?"


# --- measuring and reporting -------------------------------------------------------------------------------------


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(script: Path, task: dict[str, Any]) -> dict[str, Any]:
    """Run `script --child <task as JSON>` in a fresh interpreter and return the JSON its last line prints.

    Each measurement gets its own process, so its peak RSS is its own and no cache carries over.
    """
    completed = subprocess.run(
        [sys.executable, str(script), "--child", json.dumps(task, default=str)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"child {task.get('kind')} failed:\n{completed.stdout}\n{completed.stderr}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def child_main(run: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """The child side of `run_child`: run the task and print the result (plus peak RSS) as one JSON line."""
    task = json.loads(sys.argv[2])
    result = run(task)
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result, default=str))


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def phase_table(phases: dict[str, float], total: float, *, limit: float = 0.005) -> str:
    """The phases of one run, slowest first, with their share of `total`."""
    rows = [
        (name, f"{value:.3f}", f"{100 * value / total:.0f} %")
        for name, value in sorted(phases.items(), key=lambda item: -item[1])
        if value >= limit
    ]
    return markdown_table(("phase", "seconds", "share"), rows)


def scan_table(scans: Sequence[dict[str, Any]]) -> str:
    """What each table scan of a load read."""
    rows = [
        (scan["statement"], scan["table"], f"{scan['rows_scanned']:,}", scan["row_groups"], f"{scan['seconds']:.3f}")
        for scan in scans
    ]
    return markdown_table(("statement", "table", "rows scanned", "row groups", "scan seconds"), rows)


def disk_free(path: Path) -> str:
    """Free space on the file system holding `path`."""
    usage = shutil.disk_usage(path)
    return f"{usage.free / 1024**3:.1f} GiB free"
