"""Database connections: schema applied once per change, shipped SQL found, and a held file waited for."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.db import DatabaseLockedError, connect
from pipeline.migrations import duckdb_schema


def test_every_schema_file_applies_and_again_changes_nothing(tmp_path: Path) -> None:
    db_path = tmp_path / "r.duckdb"
    for _ in range(2):
        with connect(db_path) as db:
            tables = {row[0] for row in db.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {"rebate_windows", "rebate_files", "create_attempts", "window_events"} <= tables
    assert duckdb_schema().object_files[0].startswith("ledger/schema/")


def hold_database(db_path: Path, seconds: float) -> subprocess.Popen[str]:
    code = textwrap.dedent(f"""
        import duckdb, sys, time
        db = duckdb.connect({str(db_path)!r})
        print("held", flush=True)
        time.sleep({seconds})
        db.close()
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_write_waits_for_another_process_then_succeeds(tmp_path: Path) -> None:
    db_path = tmp_path / "r.duckdb"
    with connect(db_path):
        pass
    holder = hold_database(db_path, 1.5)
    started = time.monotonic()
    with connect(db_path, lock_timeout=30) as db:
        assert db.execute("SELECT count(*) FROM rebate_windows").fetchone() == (0,)
    assert time.monotonic() - started >= 0.5
    holder.wait(timeout=10)


def test_a_held_database_past_the_timeout_names_the_holder(tmp_path: Path) -> None:
    db_path = tmp_path / "r.duckdb"
    holder = hold_database(db_path, 10)
    try:
        with (
            pytest.raises(DatabaseLockedError, match=rf"held by process {holder.pid}"),
            connect(db_path, lock_timeout=0.3),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
