"""The `rebates` command line: help, settings display, and one-line configuration errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import CLOCK_FILE_VARIABLE, Exit, app, clock_from_env
from pipeline.clock import FileClock, SystemClock
from pipeline.db import connect

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
