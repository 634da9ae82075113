"""The flows run on the worker's settings and the system clock, or on what the demo pins or a test names."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.runtime import base_settings, pinned, run_clock, run_settings
from pipeline.clock import FakeClock, FileClock, SystemClock
from pipeline.clock_file import CLOCK_FILE_VARIABLE
from pipeline.config import SettingsError, load_settings


def test_pinned_settings_and_clock_hold_only_inside_the_block(tmp_path: Path) -> None:
    settings = load_settings(rebates_data_dir=tmp_path / "pinned")
    clock = FakeClock(datetime(2025, 3, 1, tzinfo=UTC))
    with pinned(settings, clock):
        assert run_settings() is settings and base_settings() is settings
        assert run_clock() is clock
        with pytest.raises(RuntimeError, match="already pinned"), pinned(settings, clock):
            pass
    assert isinstance(run_clock(), SystemClock)
    assert run_settings().rebates_data_dir != tmp_path / "pinned"


def test_the_flows_read_the_shared_test_clock_as_every_command_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moment = datetime(2026, 1, 10, 15, 59, 59, tzinfo=UTC)  # a second before midnight in UTC+8
    FileClock.create(tmp_path / "clock", moment)
    monkeypatch.setenv(CLOCK_FILE_VARIABLE, str(tmp_path / "clock"))
    monkeypatch.setenv("OKX_BASE_URL", "http://127.0.0.1:8765")
    assert run_clock().now() == moment
    monkeypatch.setenv("OKX_BASE_URL", "https://www.okx.com")
    with pytest.raises(SettingsError, match="is not loopback: unset REBATES_CLOCK_FILE"):
        run_clock()
