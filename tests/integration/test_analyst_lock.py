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
