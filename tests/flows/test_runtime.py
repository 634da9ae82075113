"""The flows run on the worker's settings and the system clock, or on what the demo pins for a while."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.runtime import base_settings, pinned, run_clock, run_settings
from pipeline.clock import FakeClock, SystemClock
from pipeline.config import load_settings


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
