"""A run started while an analyst holds the database open waits for them, then finishes, losing nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta

import pytest

from pipeline.clock import FakeClock
from pipeline.config import Settings
from pipeline.db import connect
from pipeline.ledger import Ledger, WindowState
from pipeline.passes import sync
from pipeline.simulator.server import RunningSimulator

pytestmark = pytest.mark.integration

HOLD_SECONDS = 3.0


def test_sync_waits_for_an_analysts_read_only_session_then_loads(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock
) -> None:
    settings = sim_settings.replace(rebates_broker_types="api", rebates_start_date=date(2025, 2, 28))
    sync(settings, fake_clock)  # plans and requests the day; the database now exists
    analyst = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, time
            db = duckdb.connect({str(settings.rebates_db)!r}, read_only=True)
            print(db.execute("SELECT count(*) FROM rebate_windows").fetchone()[0], flush=True)
            time.sleep({HOLD_SECONDS})
            db.close()
        """)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert analyst.stdout is not None
    assert analyst.stdout.readline().strip() == "1"  # the analyst has it open now
    fake_clock.advance(timedelta(hours=2))
    started = time.monotonic()
    report = sync(settings, fake_clock).report
    waited = time.monotonic() - started
    assert analyst.wait(timeout=30) == 0
    assert waited >= HOLD_SECONDS / 2
    assert list(report.loaded) == ["api:20250228-20250228"]
    assert Ledger(settings.rebates_db, fake_clock).get("api:20250228-20250228").state is WindowState.LOADED
    with connect(settings.rebates_db) as db:
        assert db.execute("SELECT count(*) FROM rebate_details").fetchone() == (report.loaded["api:20250228-20250228"],)


def test_an_analyst_reading_the_lake_never_makes_sync_wait_and_sees_the_new_day_next_query(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock
) -> None:
    settings = sim_settings.replace(rebates_broker_types="api", rebates_start_date=date(2025, 2, 28))
    sync(settings, fake_clock)
    fake_clock.advance(timedelta(hours=2))
    sync(settings, fake_clock)  # 28 February is loaded: the lake and its entry point exist
    fake_clock.advance(timedelta(days=1))  # 1 March is over: the next pass asks for it
    analyst = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys
            db = duckdb.connect({str(settings.layout.analysts)!r}, read_only=True)
            query = "SELECT count(DISTINCT trade_date) FROM rebate_details"
            print(db.execute(query).fetchone()[0], flush=True)
            sys.stdin.readline()
            print(db.execute(query).fetchone()[0], flush=True)
        """)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert analyst.stdin is not None and analyst.stdout is not None
    try:
        assert analyst.stdout.readline().strip() == "1"  # the analyst's session is open on the entry point
        for _ in range(4):  # a pass creates the day's file, a later one loads it once OKX has made it
            started = time.monotonic()
            report = sync(settings, fake_clock).report
            assert time.monotonic() - started < settings.rebates_db_lock_timeout / 10, "sync never waits for it"
            if report.loaded:
                break
            fake_clock.advance(timedelta(hours=1))
        assert list(report.loaded) == ["api:20250301-20250301"]
        analyst.stdin.write("\n")
        analyst.stdin.flush()
        assert analyst.stdout.readline().strip() == "2", "the open session reads the new day's partition"
    finally:
        analyst.kill()
        analyst.wait(10)
