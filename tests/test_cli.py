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
