"""The `rebates` command line: help, settings display, and one-line configuration errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipeline.cli import Exit, app

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


def test_settings_show_each_accounts_variables_as_set_or_not_and_never_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REBATES_ACCOUNTS", "eu,asia")
    monkeypatch.setenv("OKX_API_KEY_EU", "eu-key-never-shown")
    monkeypatch.setenv("OKX_SECRET_KEY_EU", "eu-secret-never-shown")
    monkeypatch.setenv("OKX_BASE_URL_ASIA", "https://us.okx.com")
    monkeypatch.setenv("REBATES_BROKER_TYPES", "api")
    monkeypatch.setenv("REBATES_CREDENTIALS_BLOCK_ASIA", "okx-asia")
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["settings"])
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
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["settings"])
    assert result.exit_code == 0, result.output
    assert "set (db.example:5433/rebates)" in result.output
    assert "pw-never-shown" not in result.output and "rebates:" not in result.output
    assert "Accounts" not in result.output  # one account: no accounts table
