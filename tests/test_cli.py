"""The `rebates` command line: help, settings display, and one-line configuration errors."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import Exit, app, clock_from_env, console
from pipeline.cli.base import exit_code_for
from pipeline.clock import FileClock, SystemClock
from pipeline.clock_file import CLOCK_FILE_VARIABLE
from pipeline.config import SettingsError
from pipeline.db import DatabaseLockedError, connect
from pipeline.ledger import OverlapError
from pipeline.okx.errors import OkxAuthError, OkxError
from pipeline.pg import StateUnavailableError
from pipeline.simulator.files import FileSpec, build_rebate_file
from pipeline.state import MigrationConflictError

pytestmark = pytest.mark.slow

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "settings" in result.output


def test_settings_shows_secrets_only_as_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKX_SECRET_KEY", "very-secret-value")
    result = runner.invoke(app, ["settings"])
    assert result.exit_code == 0
    assert "very-secret-value" not in result.output
    assert "OKX_SECRET_KEY" in result.output


def test_a_malformed_setting_exits_with_the_config_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REBATES_TZ", "nowhere")
    result = runner.invoke(app, ["settings"])
    assert result.exit_code == Exit.CONFIG
    assert "REBATES_TZ: expected" in result.output


def test_the_system_clock_unless_a_clock_file_is_named() -> None:
    assert isinstance(clock_from_env(), SystemClock)


def test_a_clock_file_sets_every_commands_time_against_a_loopback_simulator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    FileClock.create(tmp_path / "clock", datetime(2025, 3, 1, 2, tzinfo=UTC))
    monkeypatch.setenv(CLOCK_FILE_VARIABLE, str(tmp_path / "clock"))
    monkeypatch.setenv("OKX_BASE_URL", "http://127.0.0.1:8765")
    monkeypatch.setenv("REBATES_DB", str(tmp_path / "rebates.duckdb"))
    with connect(tmp_path / "rebates.duckdb"):
        pass
    assert isinstance(clock_from_env(), FileClock)
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["now"].startswith("2025-03-01 02:00:00")


@pytest.mark.parametrize(
    ("variable", "url"),
    [("OKX_BASE_URL", "https://www.okx.com"), ("OKX_BASE_URL_ASIA", "https://www.okx.com")],
)
def test_a_clock_file_is_refused_when_any_account_could_reach_the_real_okx(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, url: str
) -> None:
    FileClock.create(tmp_path / "clock", datetime(2025, 3, 1, 2, tzinfo=UTC))
    monkeypatch.setenv(CLOCK_FILE_VARIABLE, str(tmp_path / "clock"))
    monkeypatch.setenv("REBATES_ACCOUNTS", "eu,asia")
    monkeypatch.setenv("OKX_BASE_URL", "http://127.0.0.1:8765")
    monkeypatch.setenv(variable, url)
    result = runner.invoke(app, ["sync"])
    assert result.exit_code == Exit.CONFIG
    assert f"{variable}={url} is not loopback" in result.output


def test_settings_show_each_accounts_variables_as_set_or_not_and_never_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REBATES_ACCOUNTS", "eu,asia")
    monkeypatch.setenv("OKX_API_KEY_EU", "eu-key-never-shown")
    monkeypatch.setenv("OKX_SECRET_KEY_EU", "eu-secret-never-shown")
    monkeypatch.setenv("OKX_BASE_URL_ASIA", "https://us.okx.com")
    monkeypatch.setenv("REBATES_BROKER_TYPES", "api")
    monkeypatch.setenv("REBATES_CREDENTIALS_BLOCK_ASIA", "okx-asia")
    monkeypatch.setattr(console, "width", 200)  # wide enough for every cell on one line, whatever the terminal
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 0, result.output
    rows = {
        cells[1]: (cells[0], cells[2], cells[3])
        for line in result.output.splitlines()
        if len(cells := [cell.strip() for cell in line.strip("│ ").split("│")]) == 4
    }
    assert rows["OKX_API_KEY_EU"] == ("eu", "yes", "set")
    assert rows["OKX_PASSPHRASE_EU"] == ("eu", "no", "not set")
    assert rows["OKX_API_KEY_ASIA"] == ("asia", "no", "from the Secret block")
    assert rows["OKX_BASE_URL_ASIA"] == ("asia", "yes", "https://us.okx.com")
    assert rows["OKX_BASE_URL_EU"] == ("eu", "no", "https://www.okx.com (from OKX_BASE_URL)")
    assert rows["REBATES_BROKER_TYPES_EU"] == ("eu", "no", "api (from REBATES_BROKER_TYPES)")
    assert rows["REBATES_CREDENTIALS_BLOCK_ASIA"] == ("asia", "yes", "Secret block okx-asia")
    assert "eu-key-never-shown" not in result.output and "eu-secret-never-shown" not in result.output


def test_settings_show_the_state_url_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REBATES_STATE_URL", "postgresql://rebates:pw-never-shown@db.example:5433/rebates")
    monkeypatch.setattr(console, "width", 200)  # wide enough for every cell on one line, whatever the terminal
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 0, result.output
    assert "set (postgresql://rebates@db.example:5433/rebates)" in result.output
    assert "pw-never-shown" not in result.output and "rebates:" not in result.output
    assert "Accounts" not in result.output  # one account: no accounts table


def test_load_says_what_it_skipped_and_refuses_a_zip_with_a_bad_part(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REBATES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REBATES_DB", str(tmp_path / "data" / "rebates.duckdb"))
    rows = build_rebate_file(FileSpec(date(2025, 1, 1), date(2025, 1, 2), "api", orders_per_day=3))
    with zipfile.ZipFile(tmp_path / "good.zip", "w") as archive:
        archive.writestr("RebateDetails.csv", rows)
        archive.writestr("__MACOSX/._RebateDetails.csv", b"\x00\x05\x16\x07")
    result = runner.invoke(app, ["load", str(tmp_path / "good.zip"), "--window", "api:20250101-20250102"])
    assert result.exit_code == 0, result.output
    assert "skipped zip member '__MACOSX/._RebateDetails.csv' (macOS metadata folder __MACOSX/)" in result.output
    later = build_rebate_file(FileSpec(date(2025, 1, 3), date(2025, 1, 4), "api", orders_per_day=3))
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as archive:
        archive.writestr("RebateDetails.csv", later)
        archive.writestr("more/.RebateDetails2.csv", later.replace(b",", b"\x00,", 1))
    result = runner.invoke(app, ["load", str(tmp_path / "bad.zip"), "--window", "api:20250103-20250104"])
    assert result.exit_code == Exit.REJECTED, result.output
    assert "zip member 'more/.RebateDetails2.csv'" in result.output and "NUL" in result.output


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (SettingsError("OKX_API_KEY is not set"), Exit.CONFIG),
        (StateUnavailableError("PostgreSQL at postgresql://u@h:5432/d is not reachable"), Exit.CONFIG),
        (MigrationConflictError("nothing was copied"), Exit.CONFIG),
        (OverlapError("api:20250101-20250105 overlaps api:20250103-20250110"), Exit.CONFIG),
        (OkxAuthError("50113: check OKX_SECRET_KEY"), Exit.OKX_REFUSED),
        (DatabaseLockedError("held by process 7"), Exit.DATABASE_LOCKED),
        (OkxError("an answer it cannot read"), Exit.UNEXPECTED),
    ],
)
def test_each_pipeline_error_maps_to_its_exit_code_by_type(error: Exception, code: Exit) -> None:
    found, message = exit_code_for(error)
    assert found is code
    assert message is not None and str(error) in message


def test_an_error_of_no_known_type_is_unexpected_and_left_to_the_traceback() -> None:
    assert exit_code_for(KeyError("window")) == (Exit.UNEXPECTED, None)
