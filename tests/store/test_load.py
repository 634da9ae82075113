"""Loading: every amount lands exactly, once; reloads change nothing; a crash or a mismatch leaves the old state."""

from __future__ import annotations

import gc
import hashlib
import io
import random
import re
import signal
import subprocess
import sys
import textwrap
import weakref
import zipfile
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal, localcontext
from pathlib import Path

import duckdb
import polars as pl
import pytest

import pipeline.db
import pipeline.sqlfiles
import pipeline.store.containers
import pipeline.store.csv_ranges
import pipeline.store.load
import pipeline.store.parse
import pipeline.store.rows
from pipeline.archive import archive_local_file
from pipeline.clock import FakeClock
from pipeline.config import Settings
from pipeline.db import connect
from pipeline.ledger import Ledger, WindowState
from pipeline.simulator.files import (
    AMOUNT_COLUMNS,
    Corruption,
    FileShape,
    FileSpec,
    Layout,
    build_rebate_file,
    corrupt,
    generate_rows,
)
from pipeline.store.csv_ranges import RowRange
from pipeline.store.ingest import ingest_due, load_by_hand
from pipeline.store.load import LoadMismatchError, load_window
from pipeline.store.parse import FilePart, RebateFile
from pipeline.store.rows import fast_path_sql
from pipeline.windows import RebateWindow, WindowKind
from tests.store.conftest import Digests, zip_of

pytestmark = pytest.mark.slow

SNAKE = {
    "spotTradeAmt": "spot_trade_amt",
    "derivativeTradeAmt": "derivative_trade_amt",
    "fee": "fee",
    "netFee": "net_fee",
    "settlementFee": "settlement_fee",
    "brokerRebate": "broker_rebate",
    "suBrokerRebate": "sub_broker_rebate",
    "userRebate": "user_rebate",
}


@pytest.fixture
def used(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SQL file pipeline.store.load reads during the test, in order."""
    used: list[str] = []
    real_sql_text = pipeline.sqlfiles.sql_text

    def recording(relative: str) -> str:
        used.append(relative)
        return real_sql_text(relative)

    monkeypatch.setattr(pipeline.store.load, "sql_text", recording)
    return used


def write_file(tmp_path: Path, spec: FileSpec, *, name: str = "RebateDetails.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(build_rebate_file(spec))
    return path


def independent_totals(spec: FileSpec) -> tuple[int, dict[str, Decimal]]:
    """Rows and amount totals summed with Decimal straight from the generator's source text."""
    rows = generate_rows(spec)
    totals = {SNAKE[column]: sum((Decimal(row[column]) for row in rows), Decimal(0)) for column in AMOUNT_COLUMNS}
    return len(rows), totals


def table_totals(db_path: Path, where: str = "true") -> tuple[int, dict[str, Decimal]]:
    columns = list(SNAKE.values())
    with connect(db_path) as db:
        row = db.execute(
            f"SELECT count(*), {', '.join(f'coalesce(sum({c}), 0)' for c in columns)} FROM rebate_details WHERE {where}"
        ).fetchone()
    assert row is not None
    return int(row[0]), dict(zip(columns, (Decimal(value) for value in row[1:]), strict=True))


def table_digest(db_path: Path) -> str:
    """A hash of every row of the data tables, to prove a reload changed nothing."""
    with connect(db_path) as db:
        details = db.execute("SELECT * FROM rebate_details ORDER BY ord_id, broker_code, trade_date").fetchall()
        orders = db.execute("SELECT * FROM rebate_orders ORDER BY ord_id, broker_code").fetchall()
    return hashlib.sha256(repr((details, orders)).encode()).hexdigest()


SPEC = FileSpec(date(2025, 1, 1), date(2025, 1, 10), "api", orders_per_day=12)
WINDOW = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 10))


@pytest.mark.parametrize("shape", list(FileShape))
def test_every_amount_lands_exactly_as_the_source_text_says(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, shape: FileShape
) -> None:
    spec = FileSpec(SPEC.begin, SPEC.end, "api", shape=shape, orders_per_day=12)
    outcome = load_by_hand(settings, ledger, write_file(tmp_path, spec), WINDOW, fake_clock)
    assert outcome.state is WindowState.LOADED, outcome.reason
    expected_rows, expected = independent_totals(spec)
    assert table_totals(settings.rebates_db) == (expected_rows, expected)
    assert ledger.get(WINDOW.window_id).rows_loaded == expected_rows


def test_every_row_traces_to_its_archived_file_and_source_row(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path
) -> None:
    load_by_hand(settings, ledger, write_file(tmp_path, SPEC), WINDOW, fake_clock)
    (archived,) = ledger.files(WINDOW.window_id)
    with connect(settings.rebates_db) as db:
        lineage = db.execute(
            "SELECT DISTINCT window_id, file_id FROM rebate_details UNION ALL "
            "SELECT 'rows', count(DISTINCT source_row)::VARCHAR FROM rebate_details"
        ).fetchall()
    assert ("api:20250101-20250110", archived.file_id) in lineage
    assert ("rows", str(len(generate_rows(SPEC)))) in lineage
    assert (settings.rebates_data_dir / archived.path).exists()


def test_a_zip_whose_parts_differ_in_encoding_loads_every_row(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path
) -> None:
    header, *lines = build_rebate_file(SPEC).decode().splitlines(keepends=True)
    third = len(lines) // 3
    chinese = [line.replace(",", "甲,", 1) for line in lines[third : 2 * third]]  # each brokerCode gets a suffix
    data = zip_of(
        {
            "RebateDetails/1.csv": (header + "".join(lines[:third])).encode(),
            "RebateDetails/2.csv": (header + "".join(chinese)).encode("gbk"),
            "RebateDetails/3.csv": ("\ufeff" + header + "".join(lines[2 * third :])).encode("utf-16-le"),
            "__MACOSX/RebateDetails/._1.csv": b"\x00\x05\x16\x07",
        }
    )
    (tmp_path / "mixed.zip").write_bytes(data)
    outcome = load_by_hand(settings, ledger, tmp_path / "mixed.zip", WINDOW, fake_clock)
    assert outcome.state is WindowState.LOADED, outcome.reason
    assert outcome.result is not None
    assert outcome.result.skipped_parts == (
        "zip member '__MACOSX/RebateDetails/._1.csv' (macOS metadata folder __MACOSX/)",
    )
    assert table_totals(settings.rebates_db) == independent_totals(SPEC)
    assert table_totals(settings.rebates_db, "broker_code LIKE '%甲'")[0] == len(chinese)
    with connect(settings.rebates_db) as db:
        recorded = db.execute("SELECT warnings FROM rebate_loads").fetchone()
    assert recorded is not None and recorded[0] == [f"skipped {outcome.result.skipped_parts[0]}"]


@pytest.mark.parametrize(
    "bad",
    [b"brokerCode,ordId\x00\n", b"\xff\xfe\x00\xd8", b"not,a,rebate,file\n"],
    ids=["nul", "utf-16 cut", "other columns"],
)
def test_a_zip_with_one_bad_part_loads_nothing_and_is_quarantined_naming_it(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, bad: bytes
) -> None:
    good = build_rebate_file(SPEC)
    (tmp_path / "bad.zip").write_bytes(zip_of({"a.csv": good, "b.csv": bad}))
    outcome = load_by_hand(settings, ledger, tmp_path / "bad.zip", WINDOW, fake_clock)
    assert outcome.state is WindowState.QUARANTINED
    assert outcome.reason is not None and "zip member 'b.csv'" in outcome.reason
    assert table_totals(settings.rebates_db)[0] == 0


def test_loading_the_same_file_again_changes_nothing(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path
) -> None:
    path = write_file(tmp_path, SPEC)
    load_by_hand(settings, ledger, path, WINDOW, fake_clock)
    before = table_digest(settings.rebates_db)
    fake_clock.advance(3600)
    outcome = load_by_hand(settings, ledger, path, WINDOW, fake_clock)
    assert outcome.result is not None and outcome.result.skipped
    assert table_digest(settings.rebates_db) == before


def test_a_redownload_of_the_window_in_another_shape_replaces_its_rows_with_the_same_totals(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path
) -> None:
    load_by_hand(settings, ledger, write_file(tmp_path, SPEC), WINDOW, fake_clock)
    first = table_totals(settings.rebates_db)
    again = FileSpec(SPEC.begin, SPEC.end, "api", shape=FileShape.XLSX, orders_per_day=12)
    outcome = load_by_hand(settings, ledger, write_file(tmp_path, again, name="again.xlsx"), WINDOW, fake_clock)
    assert outcome.result is not None
    assert outcome.result.rows_replaced == first[0]
    assert table_totals(settings.rebates_db) == first
    assert len(ledger.files(WINDOW.window_id)) == 2  # both downloads stay archived


def test_an_order_straddling_two_windows_is_one_order_with_both_parts(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path
) -> None:
    first = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 5))
    second = RebateWindow("api", date(2025, 1, 6), date(2025, 1, 10))
    for window in (first, second):
        spec = FileSpec(window.begin, window.end, "api", orders_per_day=12)
        load_by_hand(settings, ledger, write_file(tmp_path, spec, name=f"{window.begin}.csv"), window, fake_clock)
    with connect(settings.rebates_db) as db:
        straddling = db.execute(
            "SELECT ord_id, broker_code, fill_days, windows, fee FROM rebate_orders WHERE windows = 2"
        ).fetchall()
        assert straddling, "the generator puts orders across 5→6 January"
        ord_id, code, days, _, fee = straddling[0]
        parts = db.execute(
            "SELECT window_id, fee FROM rebate_details WHERE ord_id = ? AND broker_code = ? ORDER BY trade_date",
            [ord_id, code],
        ).fetchall()
        duplicates = db.execute(
            "SELECT count(*) FROM (SELECT ord_id, broker_code FROM rebate_orders GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()
    assert days == 2
    assert [part[0] for part in parts] == [first.window_id, second.window_id]
    assert fee == parts[0][1] + parts[1][1]
    assert duplicates == (0,)
    rows_total = table_totals(settings.rebates_db)[1]["fee"]
    with connect(settings.rebates_db) as db:
        orders_total = db.execute("SELECT sum(fee) FROM rebate_orders").fetchone()
    assert orders_total == (rows_total,)


LOAD_TRANSACTION_STATEMENTS = [
    "load/collect_window_range.sql",
    "load/delete_window.sql",
    "load/insert_details.sql",
    "load/window_totals.sql",
    "load/repeated_key_hashes.sql",
]
"""Every statement file load_window runs inside its transaction when it replaces a window's rows, in order."""


def orders_mismatch(db_path: Path) -> list[tuple[object, ...]]:
    """Orders whose rebate_orders row differs from one recomputed from scratch out of rebate_details (both ways)."""
    recomputed = """
        SELECT account, ord_id, broker_code, sum(fee) AS fee, sum(broker_rebate) AS broker_rebate,
               count(*) AS fill_days, count(DISTINCT window_id) AS windows, min(ts) AS first_ts, max(ts) AS last_ts
        FROM rebate_details GROUP BY account, ord_id, broker_code
    """
    stored = (
        "SELECT account, ord_id, broker_code, fee, broker_rebate, fill_days, windows, first_ts, last_ts "
        "FROM rebate_orders"
    )
    with connect(db_path) as db:
        return db.execute(f"({recomputed} EXCEPT ALL {stored}) UNION ALL ({stored} EXCEPT ALL {recomputed})").fetchall()


def pending_orders(db_path: Path) -> int:
    with connect(db_path) as db:
        row = db.execute("SELECT count(*) FROM pending_order_ranges").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("statement", LOAD_TRANSACTION_STATEMENTS)
def test_a_crash_mid_load_leaves_the_previous_state(
    settings: Settings,
    ledger: Ledger,
    fake_clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    statement: str,
) -> None:
    load_by_hand(settings, ledger, write_file(tmp_path, SPEC), WINDOW, fake_clock)
    before = table_digest(settings.rebates_db)
    real_sql_text = pipeline.sqlfiles.sql_text

    def dying(relative: str) -> str:
        if relative == statement:
            raise KeyboardInterrupt
        return real_sql_text(relative)

    again = FileSpec(SPEC.begin, SPEC.end, "api", shape=FileShape.XLS, orders_per_day=12)
    monkeypatch.setattr(pipeline.store.load, "sql_text", dying)
    with pytest.raises(KeyboardInterrupt):
        load_by_hand(settings, ledger, write_file(tmp_path, again, name="again.xls"), WINDOW, fake_clock)
    monkeypatch.undo()
    assert table_digest(settings.rebates_db) == before
    assert pending_orders(settings.rebates_db) == 0
    assert ledger.get(WINDOW.window_id).state is WindowState.DOWNLOADED  # the new file waits to be loaded


def test_a_process_killed_while_duckdb_reads_the_ranges_leaves_the_previous_state(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path
) -> None:
    """SIGKILL a quarter of a second into the insert of ~400k rows on two threads: nothing of it survives."""
    load_by_hand(settings, ledger, write_file(tmp_path, SPEC), WINDOW, fake_clock)
    before = table_digest(settings.rebates_db)
    header, *rows = build_rebate_file(SPEC).decode().splitlines()
    at = header.split(",").index("ordId")

    def renumbered(copy: int) -> Iterator[str]:
        for row in rows:
            cells = row.split(",")
            cells[at] = str(int(cells[at]) * 10_000 + copy)  # digits, and unique per copy
            yield ",".join(cells)

    large = tmp_path / "large.csv"
    large.write_text("\n".join([header, *(line for copy in range(3_000) for line in renumbered(copy))]) + "\n")
    script = textwrap.dedent("""
        import os, signal, threading
        import pipeline.store.csv_ranges
        import pipeline.store.load
        pipeline.store.csv_ranges.MIN_RANGE_ROWS = 1_000
        real = pipeline.store.load._insert_csv_text
        def dying(ranges):
            assert len(ranges) == 2, ranges
            threading.Timer(0.25, os.kill, (os.getpid(), signal.SIGKILL)).start()
            return real(ranges)
        pipeline.store.load._insert_csv_text = dying
    """)
    load_and_get_killed(settings, script, large, WINDOW)
    assert table_digest(settings.rebates_db) == before
    assert pending_orders(settings.rebates_db) == 0


KILL_BEFORE_REFRESH_COMMIT = "the refresh's COMMIT"
"""kill_during's other place: every refresh statement ran (the pending list is empty), the COMMIT did not."""


def kill_during(
    settings: Settings, statement: str, source: Path, window: RebateWindow, *, min_range_rows: int | None = None
) -> None:
    """Run `load_by_hand` in a child that SIGKILLs itself at `statement` (or at KILL_BEFORE_REFRESH_COMMIT).

    `min_range_rows` makes the child read even a small CSV in row ranges side by side (csv_ranges.MIN_RANGE_ROWS).
    """
    script = textwrap.dedent(f"""
        import contextlib, os, signal
        from pathlib import Path
        import pipeline.store.csv_ranges
        import pipeline.store.load
        if {min_range_rows!r} is not None:
            pipeline.store.csv_ranges.MIN_RANGE_ROWS = {min_range_rows!r}
        @contextlib.contextmanager
        def transaction(db):
            db.execute("BEGIN TRANSACTION")
            try:
                yield
            except BaseException:
                db.execute("ROLLBACK")
                raise
            drained = db.execute("SELECT count(*) FROM pending_order_ranges").fetchone() == (0,)
            if drained and {statement!r} == {KILL_BEFORE_REFRESH_COMMIT!r}:
                os.kill(os.getpid(), signal.SIGKILL)
            db.execute("COMMIT")
        pipeline.store.load.transaction = transaction
        real = pipeline.store.load.sql_text
        def dying(relative):
            if relative == {statement!r}:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(relative)
        pipeline.store.load.sql_text = dying
    """)
    load_and_get_killed(settings, script, source, window)


def load_and_get_killed(settings: Settings, setup: str, source: Path, window: RebateWindow) -> None:
    """Run `setup` (Python that arranges a SIGKILL) then `load_by_hand` of `source` in a child; it must be killed."""
    script = setup + textwrap.dedent(f"""
        from pathlib import Path
        from pipeline.clock import SystemClock
        from pipeline.config import load_settings
        from pipeline.ledger import Ledger
        from pipeline.store.ingest import load_by_hand
        from pipeline.windows import RebateWindow
        data = Path({str(settings.rebates_data_dir)!r})
        settings = load_settings(rebates_data_dir=data, rebates_db=data / "rebates.duckdb")
        ledger = Ledger(settings.rebates_db, SystemClock())
        load_by_hand(settings, ledger, Path({str(source)!r}), RebateWindow.parse({window.window_id!r}), SystemClock())
    """)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr


def test_a_process_killed_mid_load_leaves_the_previous_state(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path
) -> None:
    load_by_hand(settings, ledger, write_file(tmp_path, SPEC), WINDOW, fake_clock)
    before = table_digest(settings.rebates_db)
    again = write_file(tmp_path, FileSpec(SPEC.begin, SPEC.end, "api", shape=FileShape.ZIP_CSV, orders_per_day=12))
    kill_during(settings, "load/window_totals.sql", again, WINDOW)
    assert table_digest(settings.rebates_db) == before
    assert pending_orders(settings.rebates_db) == 0


def test_a_process_killed_after_a_load_on_both_threads_leaves_the_previous_state(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path
) -> None:
    """The rows two ranges wrote side by side (each thread its own row groups) go with the transaction they were in."""
    load_by_hand(settings, ledger, write_file(tmp_path, SPEC), WINDOW, fake_clock)
    before = table_digest(settings.rebates_db)
    again = write_file(tmp_path, FileSpec(SPEC.begin, SPEC.end, "api", orders_per_day=40), name="again.csv")
    kill_during(settings, "load/window_totals.sql", again, WINDOW, min_range_rows=100)
    assert table_digest(settings.rebates_db) == before
    assert pending_orders(settings.rebates_db) == 0
    outcome = load_by_hand(settings, ledger, again, WINDOW, fake_clock)
    assert outcome.state is WindowState.LOADED, outcome.reason
    assert table_totals(settings.rebates_db) == independent_totals(
        FileSpec(SPEC.begin, SPEC.end, "api", orders_per_day=40)
    )


@pytest.mark.parametrize("killed", [False, True], ids=["before the refresh", "during the refresh"])
def test_a_pass_killed_after_its_load_recomputes_the_orders_on_the_next_pass(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, killed: bool, digests: Digests
) -> None:
    first = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 5))
    second = RebateWindow("api", date(2025, 1, 6), date(2025, 1, 10))
    spec = FileSpec(first.begin, first.end, "api", orders_per_day=12)
    load_by_hand(settings, ledger, write_file(tmp_path, spec, name="first.csv"), first, fake_clock)
    lake_before = digests.lake(settings)
    source = write_file(tmp_path, FileSpec(second.begin, second.end, "api", orders_per_day=12), name="second.csv")
    # The load commits; the process dies inside the refresh (its deletes and a grouping done), or before its COMMIT.
    inside = "load/insert_orders_filled_twice.sql"
    kill_during(settings, KILL_BEFORE_REFRESH_COMMIT if killed else inside, source, second)
    assert ledger.get(second.window_id).state is WindowState.LOADED
    assert pending_orders(settings.rebates_db) > 0
    assert orders_mismatch(settings.rebates_db), "the straddling orders are stale until the next pass"
    assert digests.lake(settings) == lake_before, "analysts never see the stale orders"
    assert ingest_due(settings, ledger, fake_clock) == []  # nothing left to load, but the pass finishes the refresh
    assert pending_orders(settings.rebates_db) == 0
    assert orders_mismatch(settings.rebates_db) == []
    assert digests.lake(settings) == digests.database(settings), "the next pass published what the killed one did not"
    with duckdb.connect(str(settings.layout.analysts), read_only=True) as analyst:
        assert analyst.execute("SELECT count(*) FROM rebate_orders WHERE windows = 2").fetchone() != (0,)


def test_what_landed_must_equal_what_was_parsed_or_nothing_is_kept(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_by_hand(settings, ledger, write_file(tmp_path, SPEC), WINDOW, fake_clock)
    before = table_digest(settings.rebates_db)
    second = write_file(tmp_path, FileSpec(SPEC.begin, SPEC.end, "api", shape=FileShape.XLSX, orders_per_day=12))
    archived = archive_local_file(second, WINDOW, settings.layout)
    record = archived.file_record(WINDOW)
    ledger.record_archived(ledger.get(WINDOW.window_id), record, "local")
    source = RebateFile(archived.path, tz=settings.rebates_tz, max_unzipped_bytes=10**9)
    real_totals = pipeline.store.rows.amount_totals

    def lying(frame: pl.DataFrame) -> dict[str, Decimal]:
        totals = real_totals(frame)
        return {**totals, "fee": totals["fee"] + Decimal("1E-18")}

    monkeypatch.setattr(pipeline.store.parse, "amount_totals", lying)
    with pytest.raises(LoadMismatchError, match="fee"):
        load_window(settings.rebates_db, ledger.get(WINDOW.window_id), record, source, fake_clock)
    assert table_digest(settings.rebates_db) == before
    assert ledger.get(WINDOW.window_id).state is WindowState.DOWNLOADED, "the failed load moved nothing"


def test_a_file_with_the_same_order_twice_on_one_day_is_rejected(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, used: list[str]
) -> None:
    """The keys are grouped to find the one held twice only when their hashes say one may be: not on a clean load."""
    load_by_hand(settings, ledger, write_file(tmp_path, SPEC), WINDOW, fake_clock)
    assert "load/repeated_key_hashes.sql" in used and "load/duplicate_keys.sql" not in used
    text = build_rebate_file(SPEC).decode()
    header, first, *rest = text.splitlines()
    path = tmp_path / "twice.csv"
    path.write_text("\n".join([header, first, first, *rest]) + "\n")
    outcome = load_by_hand(settings, ledger, path, WINDOW, fake_clock)
    assert outcome.state is WindowState.QUARANTINED
    assert outcome.reason is not None and "appears 2 times" in outcome.reason


@pytest.mark.parametrize("how", [Corruption.BAD_AMOUNT, Corruption.MISSING_COLUMN])
def test_a_broken_file_is_quarantined_with_its_reason_and_nothing_loaded(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, how: Corruption
) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes(corrupt(build_rebate_file(SPEC), how))
    outcome = load_by_hand(settings, ledger, path, WINDOW, fake_clock)
    record = ledger.get(WINDOW.window_id)
    assert (outcome.state, record.state) == (WindowState.QUARANTINED, WindowState.QUARANTINED)
    assert record.last_error and record.last_error.startswith("raw/api/")
    assert table_totals(settings.rebates_db)[0] == 0
    (archived,) = ledger.files(WINDOW.window_id)
    assert (settings.rebates_data_dir / archived.path).read_bytes() == path.read_bytes()


def test_the_views_add_up_to_the_table(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path
) -> None:
    spec = FileSpec(SPEC.begin, SPEC.end, "api", layout=Layout.COLUMNS_14, orders_per_day=12)
    load_by_hand(settings, ledger, write_file(tmp_path, spec), WINDOW, fake_clock)
    total = table_totals(settings.rebates_db)[1]["broker_rebate"]
    with connect(settings.rebates_db) as db:
        for view in ("broker_code", "instrument_type", "user_level"):
            row = db.execute(f"SELECT sum(broker_rebate) FROM daily_commission_by_{view}").fetchone()
            assert row == (total,), view
        types = {row[0] for row in db.execute("SELECT DISTINCT inst_type FROM rebate_details").fetchall()}
    assert types == {"SPOT", "SWAP", "FUTURES", "OPTION"}


def test_a_load_publishes_the_lake_and_an_entry_point_analysts_open_read_only(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, digests: Digests
) -> None:
    load_by_hand(settings, ledger, write_file(tmp_path, SPEC), WINDOW, fake_clock)
    analyst = duckdb.connect(str(settings.layout.analysts), read_only=True)
    try:
        row = analyst.execute("SELECT count(*), sum(fee) FROM rebate_details").fetchone()
    finally:
        analyst.close()
    rows, totals = table_totals(settings.rebates_db)
    assert row == (rows, totals["fee"])
    assert digests.lake(settings) == digests.database(settings)


def test_a_file_whose_orders_are_already_loaded_by_another_window_is_rejected(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path
) -> None:
    """The key holds across windows: the api file loaded again under an oauth window (a slip by hand) is refused."""
    path = write_file(tmp_path, SPEC, name="api.csv")
    load_by_hand(settings, ledger, path, WINDOW, fake_clock)
    before = table_digest(settings.rebates_db)
    wrong = RebateWindow("oauth", SPEC.begin, SPEC.end)
    outcome = load_by_hand(settings, ledger, path, wrong, fake_clock)
    assert outcome.state is WindowState.QUARANTINED
    assert outcome.reason is not None and f"is already loaded from {WINDOW.window_id}" in outcome.reason
    assert table_digest(settings.rebates_db) == before
    assert pending_orders(settings.rebates_db) == 0
    assert ledger.get(wrong.window_id).last_error == outcome.reason


def test_every_load_leaves_rebate_orders_equal_to_a_recomputation_from_scratch(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path
) -> None:
    """Loads, a reload in another shape, and a window whose new file lost orders: rebate_orders follows each one."""
    first = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 5))
    second = RebateWindow("api", date(2025, 1, 6), date(2025, 1, 10))
    for window in (first, second):
        spec = FileSpec(window.begin, window.end, "api", orders_per_day=12)
        load_by_hand(settings, ledger, write_file(tmp_path, spec, name=f"{window.begin}.csv"), window, fake_clock)
        assert orders_mismatch(settings.rebates_db) == []
    header, *rows = (
        build_rebate_file(FileSpec(second.begin, second.end, "api", orders_per_day=12)).decode().splitlines()
    )
    shorter = tmp_path / "shorter.csv"
    shorter.write_text("\n".join([header, *rows[: len(rows) // 2]]) + "\n")
    outcome = load_by_hand(settings, ledger, shorter, second, fake_clock)
    assert outcome.result is not None and outcome.result.rows_replaced == len(rows)
    assert orders_mismatch(settings.rebates_db) == []
    assert pending_orders(settings.rebates_db) == 0


def full_regroup_mismatch(db_path: Path) -> list[tuple[object, ...]]:
    """rebate_orders rows that differ, in any column, from one GROUP BY of all of rebate_details (both ways)."""
    regrouped = """
        SELECT ord_id, broker_code,
               arg_max(broker_type, ts), arg_max(uid, ts), arg_max(level, ts), arg_max(inst_id, ts),
               arg_max(inst_type, ts), arg_max(cl_ord_id, ts),
               sum(spot_trade_amt), sum(derivative_trade_amt), sum(fee), sum(net_fee), sum(settlement_fee),
               sum(broker_rebate), sum(sub_broker_rebate), sum(user_rebate), bool_or(affiliated),
               min(ts), max(ts), min(trade_date), max(trade_date), count(*), count(DISTINCT window_id), account
        FROM rebate_details GROUP BY account, ord_id, broker_code
    """
    stored = "SELECT * FROM rebate_orders"
    with connect(db_path) as db:
        return db.execute(f"({regrouped} EXCEPT ALL {stored}) UNION ALL ({stored} EXCEPT ALL {regrouped})").fetchall()


def test_a_refresh_in_many_slices_equals_one_regroup_of_every_row(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slices cut between ordIds: orders filling on several days, and in an older window too, come out whole."""
    monkeypatch.setattr(pipeline.store.load, "ORDER_SLICE_ROWS", 7)
    older = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 5))
    newer = RebateWindow("api", date(2025, 1, 6), date(2025, 1, 12))
    for window in (older, newer):
        spec = FileSpec(window.begin, window.end, "api", orders_per_day=12)
        load_by_hand(settings, ledger, write_file(tmp_path, spec, name=f"{window.begin}.csv"), window, fake_clock)
    with connect(settings.rebates_db) as db:
        spans = db.execute(
            "SELECT max(fill_days), max(windows), count(*) FILTER (WHERE windows = 2 AND first_trade_date < ?) "
            "FROM rebate_orders",
            [newer.begin],
        ).fetchone()
        details = db.execute("SELECT count(*) FROM rebate_details").fetchone()
    assert spans is not None and spans[0] >= 2 and spans[1] == 2 and spans[2] > 0, spans
    assert details is not None and details[0] > 10 * 7, "the refresh ran in many slices"
    assert full_regroup_mismatch(settings.rebates_db) == []
    assert pending_orders(settings.rebates_db) == 0


# --- the bad-input matrix: one pass over many windows, each file settles only its own window -----------------------


def _day_csv(day: date, *, orders: int = 6) -> bytes:
    return build_rebate_file(FileSpec(day, day, "api", orders_per_day=orders))


def _edit_lines(data: bytes, edit: Callable[[list[str]], list[str]]) -> bytes:
    header, *rows = data.decode().splitlines()
    return "\n".join([header, *edit(rows)]).encode() + b"\n"


def _with_ts(data: bytes, change: Callable[[int], int]) -> bytes:
    def edit(rows: list[str]) -> list[str]:
        first = rows[0].split(",")
        first[-1] = str(change(int(first[-1])))
        return [",".join(first), *rows[1:]]

    return _edit_lines(data, edit)


def _cut_zip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("RebateDetails.csv", data)
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


BAD_INPUTS: dict[str, tuple[Callable[[date], bytes], WindowState, str]] = {
    "an HTML error page": (
        lambda day: b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
        WindowState.FAILED,
        "error page",
    ),
    "an empty payload": (lambda day: b"", WindowState.FAILED, "the file is empty"),
    "a zip cut short": (lambda day: _cut_zip(_day_csv(day)), WindowState.FAILED, "cut short"),
    "a bad amount": (lambda day: corrupt(_day_csv(day), Corruption.BAD_AMOUNT), WindowState.QUARANTINED, "'abc'"),
    "ts in seconds": (
        lambda day: _with_ts(_day_csv(day), lambda ms: ms // 1000),
        WindowState.QUARANTINED,
        "ts in data row 1 is '",
    ),
    "an absurd ts": (
        lambda day: _with_ts(_day_csv(day), lambda ms: ms * 100_000),
        WindowState.QUARANTINED,
        "not a plausible time in epoch milliseconds",
    ),
    "rows of other days": (
        lambda day: _day_csv(day + timedelta(days=30)),
        WindowState.QUARANTINED,
        "outside the window",
    ),
    "a row just past midnight": (
        lambda day: _with_ts(_day_csv(day), lambda ms: ms - 86_400_000),
        WindowState.QUARANTINED,
        "check REBATES_TZ",
    ),
    "an order twice": (
        lambda day: _edit_lines(_day_csv(day), lambda rows: [rows[0], *rows]),
        WindowState.QUARANTINED,
        "appears 2 times",
    ),
}


def _archive(settings: Settings, ledger: Ledger, tmp_path: Path, window: RebateWindow, data: bytes) -> None:
    (record,) = ledger.add_windows([(window, WindowKind.ADOPTED)])
    source = tmp_path / f"{window.begin}.bin"
    source.write_bytes(data)
    archived = archive_local_file(source, window, settings.layout)
    ledger.record_archived(record, archived.file_record(window), "local")


def test_each_bad_file_settles_only_its_own_window_and_the_others_load_exactly(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path
) -> None:
    good = RebateWindow("api", date(2025, 3, 1), date(2025, 3, 1))
    _archive(settings, ledger, tmp_path, good, _day_csv(good.begin, orders=40))
    bad: dict[str, RebateWindow] = {}
    for offset, (name, (make, _, _)) in enumerate(BAD_INPUTS.items(), start=1):
        window = RebateWindow("api", good.begin + timedelta(days=offset), good.begin + timedelta(days=offset))
        _archive(settings, ledger, tmp_path, window, make(window.begin))
        bad[name] = window
    outcomes = {outcome.window_id: outcome for outcome in ingest_due(settings, ledger, fake_clock)}
    for name, (_, state, fragment) in BAD_INPUTS.items():
        outcome, record = outcomes[bad[name].window_id], ledger.get(bad[name].window_id)
        assert (name, outcome.state, record.state) == (name, state, state)
        assert outcome.reason is not None and fragment in outcome.reason, (name, outcome.reason)
        if state is WindowState.FAILED:
            assert record.file_id is None, "a payload that is no rebate file is downloaded again"
    assert outcomes[good.window_id].state is WindowState.LOADED
    expected = independent_totals(FileSpec(good.begin, good.end, "api", orders_per_day=40))
    assert table_totals(settings.rebates_db) == expected


def test_a_panic_in_native_code_fails_only_its_window(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = RebateWindow("api", date(2025, 3, 1), date(2025, 3, 1))
    second = RebateWindow("api", date(2025, 3, 2), date(2025, 3, 2))
    _archive(settings, ledger, tmp_path, first, _day_csv(first.begin))
    _archive(settings, ledger, tmp_path, second, _day_csv(second.begin))
    real_parts = RebateFile.parts

    def panicking(self: RebateFile) -> Iterator[FilePart]:
        if "20250301" in self.path.name:
            raise pl.exceptions.PanicException("index out of bounds")
        yield from real_parts(self)

    monkeypatch.setattr(RebateFile, "parts", panicking)
    outcomes = {outcome.window_id: outcome for outcome in ingest_due(settings, ledger, fake_clock)}
    assert outcomes[first.window_id].state is WindowState.FAILED
    assert "PanicException: index out of bounds" in (outcomes[first.window_id].reason or "")
    assert ledger.get(first.window_id).next_attempt_at is not None, "retried after a backoff"
    assert outcomes[second.window_id].state is WindowState.LOADED


def test_an_interrupt_still_stops_the_pass(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = RebateWindow("api", date(2025, 3, 1), date(2025, 3, 1))
    _archive(settings, ledger, tmp_path, window, _day_csv(window.begin))

    def interrupted(self: RebateFile) -> Iterator[FilePart]:
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(RebateFile, "parts", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ingest_due(settings, ledger, fake_clock)
    assert ledger.get(window.window_id).state is WindowState.DOWNLOADED


def test_a_large_file_loads_in_batches_exactly_and_a_kill_inside_leaves_the_previous_state(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline.store.containers, "BATCH_ROWS", 50)
    spec = FileSpec(SPEC.begin, SPEC.end, "api", shape=FileShape.XLSX, orders_per_day=40)
    outcome = load_by_hand(settings, ledger, write_file(tmp_path, spec, name="big.xlsx"), WINDOW, fake_clock)
    assert outcome.state is WindowState.LOADED, outcome.reason
    assert table_totals(settings.rebates_db) == independent_totals(spec)
    before = table_digest(settings.rebates_db)
    again = write_file(tmp_path, FileSpec(SPEC.begin, SPEC.end, "api", shape=FileShape.XLS, orders_per_day=40))
    calls = 0
    real_sql_text = pipeline.sqlfiles.sql_text

    def dying_on_third_batch(relative: str) -> str:
        nonlocal calls
        if relative == "load/insert_details.sql":
            calls += 1
            if calls == 3:
                raise KeyboardInterrupt
        return real_sql_text(relative)

    monkeypatch.setattr(pipeline.store.load, "sql_text", dying_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        load_by_hand(settings, ledger, again, WINDOW, fake_clock)
    monkeypatch.undo()
    assert calls == 3
    assert table_digest(settings.rebates_db) == before
    assert pending_orders(settings.rebates_db) == 0


def test_a_batched_load_lets_go_of_each_batch_once_it_is_inserted(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory does not grow with the file inside the load's one transaction: no earlier batch is still held.

    (A batch handed to DuckDB by `register` stayed alive until the COMMIT, even once unregistered: 4.5 GiB at 10M.)
    """
    monkeypatch.setattr(pipeline.store.containers, "BATCH_ROWS", 50)
    handed: list[weakref.ref[object]] = []
    still_held: list[int] = []

    class Watched(pipeline.db.ArrowStream):
        def __init__(self, frame: pl.DataFrame) -> None:
            gc.collect()
            still_held.append(sum(1 for earlier in handed if earlier() is not None))
            super().__init__(frame)
            handed.append(weakref.ref(self))

    monkeypatch.setattr(pipeline.store.load, "ArrowStream", Watched)
    spec = FileSpec(SPEC.begin, SPEC.end, "api", shape=FileShape.XLSX, orders_per_day=40)
    outcome = load_by_hand(settings, ledger, write_file(tmp_path, spec, name="big.xlsx"), WINDOW, fake_clock)
    assert outcome.state is WindowState.LOADED, outcome.reason
    assert len(still_held) > 5, "the file was read in many batches"
    assert max(still_held) == 0, still_held


def test_a_process_killed_inside_a_batched_load_leaves_the_previous_state(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path
) -> None:
    load_by_hand(settings, ledger, write_file(tmp_path, SPEC), WINDOW, fake_clock)
    before = table_digest(settings.rebates_db)
    again = write_file(tmp_path, FileSpec(SPEC.begin, SPEC.end, "api", shape=FileShape.XLS, orders_per_day=12))
    kill_during(settings, "load/insert_details.sql", again, WINDOW)
    assert table_digest(settings.rebates_db) == before
    assert pending_orders(settings.rebates_db) == 0


def test_a_csv_loads_through_duckdb_exactly_and_an_unusual_value_through_the_exact_reader(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, used: list[str]
) -> None:
    load_by_hand(settings, ledger, write_file(tmp_path, SPEC, name="plain.csv"), WINDOW, fake_clock)
    assert "load/insert_csv.sql" in used and "load/insert_details.sql" not in used
    assert table_totals(settings.rebates_db) == independent_totals(SPEC)
    with connect(settings.rebates_db) as db:
        rows = db.execute("SELECT source_row, fee FROM rebate_details ORDER BY source_row").fetchall()
    source_fees = [Decimal(row["fee"]) for row in generate_rows(SPEC)]
    assert rows == list(enumerate(source_fees, start=1)), "each row keeps its number in the file"
    used.clear()

    def padded(rows: list[str]) -> list[str]:
        first = rows[0].split(",")
        first[-1] = "0" + first[-1]  # ts: the same time with a leading zero, which DuckDB's path refuses
        return [",".join(first), *rows[1:]]

    unusual = tmp_path / "padded.csv"
    unusual.write_bytes(_edit_lines(build_rebate_file(SPEC), padded))
    outcome = load_by_hand(settings, ledger, unusual, WINDOW, fake_clock)
    assert outcome.state is WindowState.LOADED, outcome.reason
    assert "load/insert_csv.sql" in used and "load/insert_details.sql" in used
    assert table_totals(settings.rebates_db) == independent_totals(SPEC)


ODD_FORMS: dict[str, Callable[[str], str]] = {
    "scientific notation": lambda text: f"{Decimal(text):e}",  # -0.0123 as -1.23e-2
    "a leading +": lambda text: text if text.startswith("-") else "+" + text,
    "no leading zero": lambda text: text.replace("0.", ".", 1) if text.lstrip("-").startswith("0.") else text,
    "zeros at both ends": lambda text: (
        ("-" if text.startswith("-") else "") + "00" + text.lstrip("-") + ("" if "." in text else ".") + "0" * 25
    ),
}
"""Ways other exporters write the same amount, each a value DECIMAL(38,18) holds exactly."""


def test_amounts_written_in_other_forms_load_through_duckdb_exactly(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, used: list[str]
) -> None:
    """A few amounts in scientific notation, with a `+` or without a leading zero keep the file on DuckDB's path."""

    def rewritten(rows: list[str]) -> list[str]:
        edited = []
        for number, row in enumerate(rows):
            cells = row.split(",")
            form = list(ODD_FORMS.values())[number % len(ODD_FORMS)]
            for column in range(6, 14):  # the eight amounts
                cells[column] = form(cells[column])
            edited.append(",".join(cells))
        return edited

    odd = tmp_path / "odd.csv"
    odd.write_bytes(_edit_lines(build_rebate_file(SPEC), rewritten))
    assert "e-" in odd.read_text() and ",+" in odd.read_text() and ",." in odd.read_text()
    outcome = load_by_hand(settings, ledger, odd, WINDOW, fake_clock)
    assert outcome.state is WindowState.LOADED, outcome.reason
    assert "load/insert_csv.sql" in used and "load/insert_details.sql" not in used
    assert table_totals(settings.rebates_db) == independent_totals(SPEC)


def _amount_the_exact_reader_takes(text: str) -> Decimal | None:
    """The value parse.py loads for an amount's text, decided here independently: any decimal text, maybe with an
    exponent (at most 60), whose value has at most 20 integer digits and 18 places; else None (refused)."""
    match = re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE]([+-]?[0-9]+))?", text)
    if match is None or (match.group(3) is not None and abs(int(match.group(3))) > 60):
        return None
    with localcontext() as context:
        context.prec = 200
        value = Decimal(text)
        fits = value == value.quantize(Decimal("1e-18")) and abs(value) < Decimal(10) ** 20
    return value if fits else None


def test_duckdbs_amount_cast_takes_the_values_the_exact_reader_does_and_rounds_none() -> None:
    """plain_amount (sql/load/plain_amount.sql) against a Decimal oracle, on edge cases and random texts."""
    generator = random.Random(22)

    def digits(most: int) -> str:
        return "".join(generator.choice("0123456789") for _ in range(generator.randint(0, most)))

    texts = [
        "7.7395e-05", "+1.5", ".5", "-.5", "5.", "007.50", "1e-18", "1e-19", "1.5e-18", "1e20", "9.9e19", "-0", "0e60",
        "0e61", "1e-60", "99999999999999999999.999999999999999999", "100000000000000000000", "1" + "0" * 40 + "e-30",
        "0." + "0" * 17 + "1", "0." + "0" * 18 + "1", "", ".", "e5", "1e", "1e+", "--1", "+-1", " 1", "1.2.3", "0x10",
    ]  # fmt: skip
    for _ in range(3_000):
        fraction = digits(22)
        exponent = generator.choice(["", "", f"e{generator.randint(-25, 25)}", f"E+{generator.randint(0, 25):02d}"])
        sign = generator.choice(["", "", "-", "+"])
        texts.append(sign + digits(22) + ("." + fraction if fraction else "") + exponent)
    with duckdb.connect() as db:
        db.execute(fast_path_sql(pipeline.sqlfiles.sql_text("load/plain_amount.sql")))
        for text in texts:
            try:
                cast = db.execute("SELECT plain_amount(?)", [text]).fetchone()
            except duckdb.InvalidInputException as exc:
                assert "amount" in str(exc)
                cast = None
            assert (cast[0] if cast else None) == _amount_the_exact_reader_takes(text), text


@pytest.mark.parametrize("overshoot", [False, True], ids=["ranges", "a-range-past-the-end"])
def test_a_large_csv_is_read_in_ranges_on_both_threads_and_every_row_keeps_its_number(
    settings: Settings,
    ledger: Ledger,
    fake_clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    overshoot: bool,
) -> None:
    """The ranges' rows land once each, numbered as in the file; a range past the end sends the file to parse.py."""
    spec = FileSpec(SPEC.begin, SPEC.end, "api", orders_per_day=40)
    monkeypatch.setattr(pipeline.store.csv_ranges, "MIN_RANGE_ROWS", 100)
    statements: list[str] = []
    real_text = pipeline.store.load._insert_csv_text

    def recording(ranges: tuple[RowRange, ...]) -> str:
        if overshoot:
            ranges = (*ranges[:-1], RowRange(10 * len(generate_rows(spec)), None))
        statements.append(real_text(ranges))
        return statements[-1]

    monkeypatch.setattr(pipeline.store.load, "_insert_csv_text", recording)
    outcome = load_by_hand(settings, ledger, write_file(tmp_path, spec, name="large.csv"), WINDOW, fake_clock)
    assert outcome.state is WindowState.LOADED, outcome.reason
    assert len(statements) == 1 and statements[0].count("read_csv(") == 2, "two ranges, one per thread"
    assert table_totals(settings.rebates_db) == independent_totals(spec)
    with connect(settings.rebates_db) as db:
        rows = db.execute("SELECT source_row, ord_id, fee FROM rebate_details ORDER BY source_row").fetchall()
    source = [(row["ordId"], Decimal(row["fee"])) for row in generate_rows(spec)]
    assert rows == [(number, *values) for number, values in enumerate(source, start=1)]


@pytest.mark.parametrize("line_end", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_a_csv_with_a_blank_line_is_read_exactly_and_its_rows_keep_their_numbers(
    settings: Settings,
    ledger: Ledger,
    fake_clock: FakeClock,
    tmp_path: Path,
    used: list[str],
    line_end: str,
) -> None:
    """DuckDB's reader would skip the blank line and renumber the rows after it: the file goes to parse.py."""
    header, *rows = build_rebate_file(SPEC).decode().splitlines()
    blank = tmp_path / "blank.csv"
    blank.write_bytes(line_end.join([header, *rows[:3], "", *rows[3:]]).encode() + line_end.encode())
    outcome = load_by_hand(settings, ledger, blank, WINDOW, fake_clock)
    assert outcome.state is WindowState.LOADED, outcome.reason
    assert "load/insert_csv.sql" not in used and "load/insert_details.sql" in used
    assert table_totals(settings.rebates_db) == independent_totals(SPEC)
    with connect(settings.rebates_db) as db:
        numbers = [row[0] for row in db.execute("SELECT source_row FROM rebate_details ORDER BY source_row").fetchall()]
    assert numbers == [1, 2, 3, *range(5, len(rows) + 2)], "the blank line keeps its number"


# --- several OKX broker accounts in one database --------------------------------------------------------------------

EU_SEED = 7
"""The eu account's files: another broker's users, so other broker codes (OKX gives each account its own)."""


def load_two_accounts(settings: Settings, fake_clock: FakeClock, tmp_path: Path) -> dict[str, FileSpec]:
    """The same days of api rebates loaded for account default and for account eu, each through its own ledger."""
    specs = {"default": SPEC, "eu": FileSpec(SPEC.begin, SPEC.end, "api", orders_per_day=12, seed=EU_SEED)}
    for account, spec in specs.items():
        window = RebateWindow("api", spec.begin, spec.end, account=account)
        ledger = Ledger(settings.rebates_db, fake_clock, account=account)
        outcome = load_by_hand(settings, ledger, write_file(tmp_path, spec, name=f"{account}.csv"), window, fake_clock)
        assert outcome.state is WindowState.LOADED, outcome.reason
    return specs


def test_each_accounts_rows_carry_its_account_with_its_files_exact_totals(
    settings: Settings, fake_clock: FakeClock, tmp_path: Path
) -> None:
    specs = load_two_accounts(settings, fake_clock, tmp_path)
    for account, spec in specs.items():
        assert table_totals(settings.rebates_db, f"account = '{account}'") == independent_totals(spec)
    with connect(settings.rebates_db) as db:
        windows = db.execute("SELECT DISTINCT account, window_id FROM rebate_details ORDER BY ALL").fetchall()
        loads = db.execute("SELECT account, window_id, rows_loaded FROM rebate_loads ORDER BY ALL").fetchall()
        codes = db.execute(
            "SELECT broker_code FROM rebate_details GROUP BY broker_code HAVING count(DISTINCT account) > 1"
        ).fetchall()
    assert windows == [("default", "api:20250101-20250110"), ("eu", "eu:api:20250101-20250110")]
    assert loads == [
        ("default", "api:20250101-20250110", independent_totals(specs["default"])[0]),
        ("eu", "eu:api:20250101-20250110", independent_totals(specs["eu"])[0]),
    ]
    assert codes == [], "the fixture's accounts have broker codes of their own, as OKX's do"


def test_rebate_orders_are_recomputed_per_account_with_exact_sums(
    settings: Settings, fake_clock: FakeClock, tmp_path: Path
) -> None:
    """Two accounts' orders share ordId ranges; a refresh recomputes both, each from its own account's rows only."""
    specs = load_two_accounts(settings, fake_clock, tmp_path)
    assert orders_mismatch(settings.rebates_db) == []
    assert pending_orders(settings.rebates_db) == 0
    with connect(settings.rebates_db) as db:
        per_account = dict(
            db.execute("SELECT account, sum(broker_rebate) FROM rebate_orders GROUP BY account").fetchall()
        )
        unique = db.execute("SELECT count(*) = count(DISTINCT (ord_id, broker_code)) FROM rebate_orders").fetchone()
    assert per_account == {account: independent_totals(spec)[1]["broker_rebate"] for account, spec in specs.items()}
    assert unique == (True,), "(ord_id, broker_code) stays unique across accounts"

    # Reloading eu's window with half its file changes eu's orders only.
    before = table_totals(settings.rebates_db, "account = 'default'")
    header, *rows = build_rebate_file(specs["eu"]).decode().splitlines()
    half = tmp_path / "eu-half.csv"
    half.write_text("\n".join([header, *rows[: len(rows) // 2]]) + "\n")
    eu_window = RebateWindow("api", SPEC.begin, SPEC.end, account="eu")
    outcome = load_by_hand(settings, Ledger(settings.rebates_db, fake_clock, account="eu"), half, eu_window, fake_clock)
    assert outcome.result is not None and outcome.result.rows_loaded == len(rows) // 2
    assert orders_mismatch(settings.rebates_db) == []
    assert table_totals(settings.rebates_db, "account = 'default'") == before


def make_rebate_orders_a_table(db: duckdb.DuckDBPyConnection) -> None:
    """Turn the database back to before rebate_orders was a view: a table holding every order, one-row ones too."""
    db.execute("CREATE TABLE every_order AS FROM rebate_orders")
    db.execute("DROP VIEW rebate_orders")
    db.execute("DROP TABLE summed_orders")
    db.execute("ALTER TABLE every_order RENAME TO rebate_orders")
    db.execute("DELETE FROM schema_migrations WHERE scope = 'duckdb' AND name = 'rebate_orders_view'")  # not taken
    db.execute("DELETE FROM schema_fingerprint")  # the DDL changed since: apply it again


def test_a_database_whose_rebate_orders_is_a_table_keeps_its_orders_and_copies_one_row_orders_no_more(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, digests: Digests
) -> None:
    """rebate_orders became a view: one-row orders read from rebate_details, the others summed in summed_orders."""
    first = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 5))
    spec = FileSpec(first.begin, first.end, "api", orders_per_day=12)
    load_by_hand(settings, ledger, write_file(tmp_path, spec, name="first.csv"), first, fake_clock)
    before = table_digest(settings.rebates_db)
    with connect(settings.rebates_db) as db:
        make_rebate_orders_a_table(db)
    with connect(settings.rebates_db) as db:
        kinds = db.execute(
            "SELECT table_name, 'table' FROM duckdb_tables() WHERE table_name LIKE '%orders%' "
            "UNION ALL SELECT view_name, 'view' FROM duckdb_views() WHERE view_name LIKE '%orders%' ORDER BY 1"
        ).fetchall()
        summed = db.execute("SELECT min(fill_days), count(*) FROM summed_orders").fetchone()
        single = db.execute("SELECT count(*) FROM rebate_orders WHERE fill_days = 1").fetchone()
        migrated = db.execute("SELECT ran FROM schema_migrations WHERE name = 'rebate_orders_view'").fetchall()
    assert migrated == [(True,)]
    assert kinds == [("rebate_orders", "view"), ("summed_orders", "table")]
    assert summed is not None and summed[0] == 2 and summed[1] > 0, "only orders of several rows are stored"
    assert single is not None and single[0] > 0
    assert table_digest(settings.rebates_db) == before
    second = RebateWindow("api", date(2025, 1, 6), date(2025, 1, 10))
    later = FileSpec(second.begin, second.end, "api", orders_per_day=12)
    load_by_hand(settings, ledger, write_file(tmp_path, later, name="second.csv"), second, fake_clock)
    assert orders_mismatch(settings.rebates_db) == []
    assert full_regroup_mismatch(settings.rebates_db) == []
    assert digests.lake(settings) == digests.database(settings)


def test_a_database_from_before_accounts_gets_the_account_columns_and_loads_on(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path
) -> None:
    """The DDL adds `account` to an old database's tables: 'default' for its rows, except those of another account's
    windows (loaded before the column existed), which take their window's account; loads then go on exactly."""
    load_by_hand(settings, ledger, write_file(tmp_path, SPEC, name="old.csv"), WINDOW, fake_clock)
    eu_spec = FileSpec(SPEC.begin, SPEC.end, "api", orders_per_day=12, seed=EU_SEED)
    eu_window = RebateWindow("api", SPEC.begin, SPEC.end, account="eu")
    eu_ledger = Ledger(settings.rebates_db, fake_clock, account="eu")
    load_by_hand(settings, eu_ledger, write_file(tmp_path, eu_spec, name="eu.csv"), eu_window, fake_clock)
    tables = ("rebate_details", "rebate_orders", "rebate_loads")
    with connect(settings.rebates_db) as db:
        make_rebate_orders_a_table(db)  # as it was then
        for table in tables:
            db.execute(f"ALTER TABLE {table} DROP COLUMN account")  # as the table was before accounts
        db.execute("ALTER TABLE lake_publishes DROP COLUMN layout")
        db.execute("DELETE FROM schema_migrations WHERE scope = 'duckdb' AND version = 2")  # nor was this taken
        db.execute("DELETE FROM schema_fingerprint")  # the DDL changed since: apply it again
    with connect(settings.rebates_db) as db:
        accounts = {
            table: db.execute(f"SELECT DISTINCT account FROM {table} ORDER BY 1").fetchall()
            for table in (*tables, "summed_orders")
        }
        layouts = db.execute("SELECT DISTINCT layout FROM lake_publishes").fetchall()
    assert accounts == {
        "rebate_details": [("default",), ("eu",)],
        "rebate_orders": [("default",), ("eu",)],  # an order of one row is its row, with its row's account
        "summed_orders": [("default",)],  # until the next refresh, which the migration listed eu's orders for
        "rebate_loads": [("default",), ("eu",)],
    }
    assert pending_orders(settings.rebates_db) > 0
    assert layouts == [(1,)], "an old lake is taken as the layout without account folders"
    later = FileSpec(date(2025, 1, 11), date(2025, 1, 12), "api", orders_per_day=12)
    window = RebateWindow("api", later.begin, later.end)
    outcome = load_by_hand(settings, ledger, write_file(tmp_path, later, name="new.csv"), window, fake_clock)
    assert outcome.state is WindowState.LOADED, outcome.reason
    assert table_totals(settings.rebates_db, f"window_id = '{window.window_id}'") == independent_totals(later)
    assert table_totals(settings.rebates_db, "account = 'eu'") == independent_totals(eu_spec)
    assert orders_mismatch(settings.rebates_db) == []
