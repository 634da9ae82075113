"""Analysts query the lake with PyPI's DuckDB 1.x CLI and with `rebates sql` while the pipeline holds its database."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
from filelock import FileLock

from pipeline.clock import FakeClock
from pipeline.columns import AMOUNT_COLUMNS
from pipeline.config import Settings, load_settings
from pipeline.db import connect
from pipeline.ledger import Ledger
from pipeline.simulator.files import FileSpec, build_rebate_file
from pipeline.store.ingest import load_by_hand
from pipeline.windows import RebateWindow

pytestmark = pytest.mark.integration

DUCKDB_CLI = "duckdb-cli>=1.5,<1.6"
"""The newest DuckDB CLI on PyPI when the lake was built: it cannot open the pipeline's DuckDB 2.0 file."""

CLI_VENV = Path(tempfile.gettempdir()) / "okx-rebates-duckdb-cli-1.5"
"""Kept between runs, so only the first run installs."""

TOTALS = "SELECT count(*) AS rows, " + ", ".join(f"sum({column}) AS {column}" for column in AMOUNT_COLUMNS)


def duckdb_cli() -> Path:
    """PyPI's DuckDB CLI 1.5 in a venv of its own (created once), or skip when it cannot be installed here."""
    executable = CLI_VENV / "bin" / "duckdb"
    with FileLock(str(CLI_VENV) + ".lock"):
        if not executable.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(CLI_VENV)], check=True)
            installed = subprocess.run(
                [str(CLI_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", DUCKDB_CLI],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if installed.returncode != 0 or not executable.exists():
                pytest.skip(f"could not pip install {DUCKDB_CLI} (no PyPI?): {installed.stderr.strip()[-300:]}")
    version = subprocess.run([str(executable), "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("v1.5."), version
    return executable


@pytest.fixture
def published(tmp_path: Path, fake_clock: FakeClock) -> Settings:
    """Two broker types' windows loaded (orders across a window boundary included), so the lake is published."""
    settings = load_settings(rebates_data_dir=tmp_path / "data", rebates_db=tmp_path / "data" / "rebates.duckdb")
    ledger = Ledger(settings.rebates_db, fake_clock)
    windows = [
        RebateWindow("api", date(2025, 1, 1), date(2025, 1, 5)),
        RebateWindow("api", date(2025, 1, 6), date(2025, 1, 8)),
        RebateWindow("oauth", date(2025, 1, 1), date(2025, 1, 8)),
    ]
    for window in windows:
        path = tmp_path / f"{window.broker_type}_{window.begin}.csv"
        path.write_bytes(build_rebate_file(FileSpec(window.begin, window.end, window.broker_type, orders_per_day=20)))
        assert load_by_hand(settings, ledger, path, window, fake_clock).result is not None
    return settings


def database_totals(settings: Settings, table: str) -> list[str]:
    """Rows and the eight amount sums of a pipeline table, as exact text."""
    with connect(settings.rebates_db) as db:
        row = db.execute(f"{TOTALS} FROM {table}").fetchone()
    assert row is not None
    return [format(value, "f") if not isinstance(value, int) else str(value) for value in row]


@contextmanager
def pipeline_holding(settings: Settings) -> Iterator[None]:
    """Another process holds the pipeline's database read-write (as a sync pass does) for the block's length."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            db = duckdb.connect({str(settings.rebates_db)!r})
            db.execute("BEGIN TRANSACTION")
            db.execute("UPDATE rebate_windows SET updated_at = updated_at")
            print("held", flush=True)
            sys.stdin.readline()
        """)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)


def test_the_duckdb_1_5_cli_opens_the_entry_point_while_the_pipeline_holds_its_database(
    published: Settings, tmp_path: Path
) -> None:
    executable = duckdb_cli()
    expected = {table: database_totals(published, table) for table in ("rebate_details", "rebate_orders")}
    elsewhere = tmp_path / "analyst"
    elsewhere.mkdir()
    entry_point = Path("..") / published.layout.analysts.relative_to(tmp_path)
    queries = {table: f"{TOTALS} FROM {table}" for table in expected}
    queries["views"] = "SELECT sum(broker_rebate) FROM daily_commission_by_broker_code"
    with pipeline_holding(published):
        refused = subprocess.run(
            [str(executable), "-readonly", str(published.rebates_db), "-c", "SELECT 1"],
            capture_output=True,
            text=True,
            check=False,
        )
        answers = {
            name: subprocess.run(
                [str(executable), "-readonly", "-csv", "-noheader", str(entry_point), "-c", query],
                cwd=elsewhere,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            for name, query in queries.items()
        }
    assert refused.returncode != 0, "the pipeline's own file is one the 1.x CLI cannot open: why the lake exists"
    for table, totals in expected.items():
        assert answers[table].split(",") == totals, table
    assert answers["views"] == expected["rebate_details"][1 + AMOUNT_COLUMNS.index("broker_rebate")]


def rebates_sql(data_dir: Path, *arguments: str, typed: str | None = None) -> subprocess.CompletedProcess[str]:
    """`rebates sql ...` as an analyst runs it, with only REBATES_DATA_DIR set."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "rebates"), "sql", *arguments],
        input=typed,
        env={"REBATES_DATA_DIR": str(data_dir), "PATH": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
        check=typed is not None or ("-c" in arguments and "SELECT 1" not in arguments),
    )


def test_rebates_sql_answers_in_exact_csv_and_json_while_the_pipeline_holds_its_database(
    published: Settings, tmp_path: Path
) -> None:
    expected = database_totals(published, "rebate_details")
    query = f"{TOTALS} FROM rebate_details"
    with pipeline_holding(published):
        as_csv = rebates_sql(published.rebates_data_dir, "-c", query, "--format", "csv")
        as_json = rebates_sql(published.rebates_data_dir, "-c", query, "--format", "json")
        prompt = rebates_sql(published.rebates_data_dir, typed="SELECT count(*) AS windows\nFROM coverage;\n.quit\n")
    for run in (as_csv, as_json, prompt):
        assert run.returncode == 0, run.stderr
    header, row = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert header == ["rows", *AMOUNT_COLUMNS]
    assert row == expected
    (record,) = json.loads(as_json.stdout)
    assert [str(record["rows"]), *(record[column] for column in AMOUNT_COLUMNS)] == expected, "decimals as text"
    assert "16" in prompt.stdout  # 5 + 3 api days and 8 oauth days


def test_rebates_sql_says_what_to_do_before_anything_is_published(tmp_path: Path) -> None:
    run = rebates_sql(tmp_path / "nothing", "-c", "SELECT 1")
    assert run.returncode == 2
    assert "the first load writes it" in run.stderr
