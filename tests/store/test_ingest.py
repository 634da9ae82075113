"""Ingest: the step after a download loads a window's file, then marks it loaded the same way in either ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.clock import FakeClock
from pipeline.config import load_settings
from pipeline.db import connect
from pipeline.ledger import Ledger, WindowState, open_ledger
from pipeline.simulator.files import FileSpec, build_rebate_file
from pipeline.store.ingest import ingest_due, load_by_hand
from pipeline.windows import RebateWindow

START = datetime(2025, 1, 10, 1, tzinfo=UTC)
SPEC = FileSpec(date(2025, 1, 1), date(2025, 1, 10), "api", orders_per_day=12)
WINDOW = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 10))


@pytest.mark.parametrize("backend", ["duckdb", "postgres"])
def test_a_crash_between_load_and_mark_is_healed_by_the_next_pass(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The load commits in DuckDB, then the ledger marks the window: a worker dying in between loses nothing and
    loads nothing twice, whichever ledger it keeps."""
    clock = FakeClock(START)
    settings = load_settings(
        rebates_data_dir=tmp_path / "data",
        rebates_db=tmp_path / "data" / "rebates.duckdb",
        rebates_state_url=request.getfixturevalue("state_url") if backend == "postgres" else None,
    )
    ledger = open_ledger(settings, clock)
    source = tmp_path / "file.csv"
    source.write_bytes(build_rebate_file(SPEC))

    def crash(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # the worker dies right after DuckDB committed the load

    monkeypatch.setattr(Ledger, "mark_loaded", crash)
    with pytest.raises(KeyboardInterrupt):
        load_by_hand(settings, ledger, source, WINDOW, clock)
    monkeypatch.undo()
    assert ledger.get(WINDOW.window_id).state is WindowState.DOWNLOADED
    with connect(settings.rebates_db) as db:
        committed = db.execute("SELECT count(*) FROM rebate_details").fetchone()
    assert committed is not None and committed[0] > 0, "the load committed before the worker died"
    (outcome,) = ingest_due(settings, ledger, clock)
    healed = ledger.get(WINDOW.window_id)
    assert (outcome.state, healed.state) == (WindowState.LOADED, WindowState.LOADED)
    assert outcome.result is not None and outcome.result.skipped
    assert healed.rows_loaded == committed[0]
    with connect(settings.rebates_db) as db:
        loads = db.execute("SELECT count(*), max(rows_loaded) FROM rebate_loads").fetchone()
        copied = db.execute("SELECT state, rows_loaded FROM rebate_windows").fetchall()
    assert loads == (1, healed.rows_loaded)
    assert copied == [("loaded", healed.rows_loaded)]  # the ledger, or its copy the lake and reports read
    assert ingest_due(settings, ledger, clock) == []
    ledger.close()
