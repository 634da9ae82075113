"""Trust at the edges: every mistyped setting, flag or path ends in one line and its exit code before any OKX call.

Each row of the matrix is one input a careful user or an attacker could give (a setting, a flag, a path), the
exit code it must end with, and a fragment of the one line that says what to fix. For every row: OKX was never
called, nothing was written to the database, and no secret appears in the output.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from pipeline.cli import Exit, app
from pipeline.clock import FakeClock
from pipeline.clock_file import CLOCK_FILE_VARIABLE
from pipeline.config import Settings, parse_timezone
from pipeline.domain import CREATE_INTERVAL
from pipeline.passes import sync
from pipeline.simulator.files import Corruption
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import DEFAULT_API_KEY, DEFAULT_PASSPHRASE, DEFAULT_SECRET_KEY, Fault
from pipeline.windows import yesterday
from tests.now import TESTS_NOW, clock_at_tests_now

pytestmark = pytest.mark.slow

TODAY = yesterday(TESTS_NOW, parse_timezone("UTC+8")) + timedelta(days=1)  # the commands' clock reads TESTS_NOW too
runner = CliRunner()


@dataclass(frozen=True)
class Row:
    """One bad input: the command, what to change in the environment, and what must come out."""

    name: str
    args: list[str]
    exit_code: Exit
    says: str
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[Path], dict[str, str]] | None = None
    """Makes files the row needs under the test's directory; returns more variables."""


def a_directory(tmp: Path) -> dict[str, str]:
    (tmp / "dir.duckdb").mkdir()
    return {"REBATES_DB": str(tmp / "dir.duckdb")}


def not_a_database(tmp: Path) -> dict[str, str]:
    (tmp / "notes.duckdb").write_text("my notes, not a database\n")
    return {"REBATES_DB": str(tmp / "notes.duckdb")}


def data_dir_under_a_file(tmp: Path) -> dict[str, str]:
    (tmp / "a-file").write_text("x")
    return {"REBATES_DATA_DIR": str(tmp / "a-file" / "data"), "REBATES_DB": str(tmp / "db" / "r.duckdb")}


def a_rebate_file(tmp: Path) -> dict[str, str]:
    (tmp / "file.csv").write_text("brokerCode,ordId\n")
    return {}


def out_under_a_file(tmp: Path) -> dict[str, str]:
    (tmp / "a-file").write_text("x")
    return {}


MATRIX = [
    Row("passphrase with a pasted newline", ["sync"], Exit.CONFIG, "OKX_PASSPHRASE", {"OKX_PASSPHRASE": "pass\n"}),
    Row("api key with a trailing CR", ["sync"], Exit.CONFIG, "OKX_API_KEY", {"OKX_API_KEY": "key-123\r"}),
    Row("secret key with a leading space", ["sync"], Exit.CONFIG, "OKX_SECRET_KEY", {"OKX_SECRET_KEY": " s3cr3t"}),
    Row("secret key with a tab inside", ["status"], Exit.CONFIG, "control character", {"OKX_SECRET_KEY": "a\tb"}),
    Row("--end today", ["sync", "--end", TODAY.isoformat()], Exit.CONFIG, "is not over yet"),
    Row("--end next year", ["sync", "--end", f"{TODAY.year + 1}-01-01"], Exit.CONFIG, "is not over yet"),
    Row("--begin after --end", ["sync", "--begin", "2025-02-01", "--end", "2025-01-01"], Exit.CONFIG, "is after"),
    Row("--begin today", ["sync", "--begin", TODAY.isoformat()], Exit.CONFIG, "is not over yet"),
    Row("a day that is no date", ["sync", "--end", "2025-02-30"], Exit.CONFIG, "not a date"),
    Row("a broker type not configured", ["sync", "--broker-type", "oauth"], Exit.CONFIG, "REBATES_BROKER_TYPES"),
    Row("REBATES_DB is a directory", ["sync"], Exit.CONFIG, "is a directory", setup=a_directory),
    Row("REBATES_DB is not a database", ["sync"], Exit.CONFIG, "cannot be opened", setup=not_a_database),
    Row("REBATES_DATA_DIR under a file", ["sync"], Exit.CONFIG, "REBATES_DATA_DIR", setup=data_dir_under_a_file),
    Row("a malformed --window", ["load", "file.csv", "--window", "x"], Exit.CONFIG, "window", setup=a_rebate_file),
    Row("--out under a file", ["report", "--out", "a-file/x"], Exit.CONFIG, "--out", setup=out_under_a_file),
    Row("a report of an account not configured", ["report", "--account", "asia"], Exit.CONFIG, "asia"),
    Row("retry of an unknown window", ["retry", "api:20250101-20250131"], Exit.CONFIG, "not in the ledger"),
    Row("retry of a malformed id", ["retry", "api:2025"], Exit.CONFIG, "not a window id"),
]


@pytest.mark.parametrize("row", MATRIX, ids=[row.name for row in MATRIX])
def test_a_bad_input_ends_in_one_line_and_its_exit_code_before_any_okx_call(
    row: Row, simulator: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "OKX_API_KEY": DEFAULT_API_KEY,
        "OKX_SECRET_KEY": DEFAULT_SECRET_KEY,
        "OKX_PASSPHRASE": DEFAULT_PASSPHRASE,
        "OKX_BASE_URL": simulator.base_url,
        "REBATES_BROKER_TYPES": "api",
        "REBATES_START_DATE": "2025-01-01",
        "REBATES_DATA_DIR": str(tmp_path / "data"),
        "REBATES_DB": str(tmp_path / "data" / "rebates.duckdb"),
        CLOCK_FILE_VARIABLE: str(clock_at_tests_now(tmp_path / "clock").path),
        **row.env,
        **(row.setup(tmp_path) if row.setup else {}),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if row.args[0] == "report":  # a report needs a database to read
        from pipeline.config import load_settings
        from pipeline.db import connect

        with connect(load_settings().rebates_db):
            pass
    result = runner.invoke(app, row.args)
    output = result.output
    assert result.exit_code == row.exit_code, output
    assert row.says in output
    assert "unexpected" not in output
    assert simulator.state.calls() == [], "OKX was called before the input was checked"
    for secret in (DEFAULT_SECRET_KEY, DEFAULT_PASSPHRASE, row.env.get("OKX_PASSPHRASE", DEFAULT_PASSPHRASE)):
        assert secret not in output


def test_an_overlapping_window_loaded_by_hand_is_a_usage_error(
    simulator: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.clock import SystemClock
    from pipeline.config import load_settings
    from pipeline.ledger import Ledger
    from pipeline.windows import RebateWindow, WindowKind

    data = tmp_path / "data"
    monkeypatch.setenv("REBATES_DATA_DIR", str(data))
    monkeypatch.setenv("REBATES_DB", str(data / "rebates.duckdb"))
    settings = load_settings()
    Ledger(settings.rebates_db, SystemClock()).add_windows(
        [(RebateWindow("api", date(2025, 1, 1), date(2025, 1, 31)), WindowKind.HISTORY)]
    )
    a_rebate_file(tmp_path)
    result = runner.invoke(app, ["load", str(tmp_path / "file.csv"), "--window", "api:20250115-20250215"])
    assert result.exit_code == Exit.CONFIG, result.output
    assert "overlaps api:20250101-20250131" in result.output
    assert "unexpected" not in result.output


def test_through_every_okx_and_file_host_fault_no_secret_or_signed_link_is_kept_anywhere(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=date(2025, 1, 1))
    simulator.state.seed_file(DEFAULT_API_KEY, "api", date(2025, 1, 1), date(2025, 1, 31))
    simulator.state.faults.inject(Fault.SERVER_ERROR, times=1)
    simulator.state.faults.inject(Fault.EXPIRED_LINK, times=1)
    simulator.state.faults.inject(Fault.TRUNCATED_DOWNLOAD, times=1)
    simulator.state.faults.inject(Fault.MALFORMED_FILE, times=1, how=Corruption.BAD_AMOUNT)
    outputs = []
    for _ in range(4):
        run = sync(settings, fake_clock)
        outputs.append(repr(run.report) + "".join(map(str, run.failures)))
        fake_clock.advance(CREATE_INTERVAL)
    states = ledger_states(settings)
    assert set(states) == {"api:20250101-20250131", "api:20250201-20250228"}
    assert "loaded" in states.values() and set(states.values()) <= {"loaded", "quarantined"}, states
    assert simulator.state.count(status=403) and simulator.state.count(status=503), "a fault was never hit"
    with duckdb.connect(str(settings.rebates_db), read_only=True) as db:
        tables = [row[0] for row in db.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        stored = [str(db.execute(f"SELECT * FROM {table}").fetchall()) for table in tables]
    for text in [*stored, caplog.text, *outputs]:
        for leak in (DEFAULT_SECRET_KEY, DEFAULT_PASSPHRASE, "Signature=", "OSSAccessKeyId="):
            assert leak not in text


def ledger_states(settings: Settings) -> dict[str, str]:
    with duckdb.connect(str(settings.rebates_db), read_only=True) as db:
        return dict(db.execute("SELECT window_id, state FROM rebate_windows").fetchall())
