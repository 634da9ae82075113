"""Clocks: the fake ones move only when told, never backwards, the file one across processes; epoch ms exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.clock import FakeClock, FileClock, epoch_ms, from_epoch_ms

START = datetime(2025, 3, 1, tzinfo=UTC)


def test_fake_clock_sleep_advances_instead_of_waiting() -> None:
    clock = FakeClock(datetime(2025, 3, 1, tzinfo=UTC))
    clock.sleep(3600)
    assert clock.now() == datetime(2025, 3, 1, 1, tzinfo=UTC)


def test_fake_clock_refuses_to_go_backwards() -> None:
    clock = FakeClock(datetime(2025, 3, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="backwards"):
        clock.set(datetime(2025, 2, 1, tzinfo=UTC))


def test_epoch_ms_round_trips_the_docs_example() -> None:
    moment = from_epoch_ms("1671638400000")
    assert moment == datetime(2022, 12, 21, 16, tzinfo=UTC)
    assert epoch_ms(moment) == 1671638400000
    assert epoch_ms(from_epoch_ms(1758250140123)) == 1758250140123


def test_file_clocks_on_one_file_share_the_time(tmp_path: Path) -> None:
    first = FileClock.create(tmp_path / "clock", START)
    second = FileClock(tmp_path / "clock")
    first.advance(timedelta(hours=1))
    assert second.now() == START + timedelta(hours=1)
    second.set(START + timedelta(hours=3))
    assert first.now() == START + timedelta(hours=3)
    with pytest.raises(ValueError, match="backwards"):
        first.set(START)


def test_a_file_clock_sleep_moves_to_its_wake_time_not_past_another_sleepers(tmp_path: Path) -> None:
    clock = FileClock.create(tmp_path / "clock", START)
    clock.sleep(60)
    assert clock.now() == START + timedelta(seconds=60)
    clock.set(START + timedelta(seconds=100))
    clock.sleep(0)
    assert clock.now() == START + timedelta(seconds=100)


def test_a_missing_clock_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="shared clock file"):
        FileClock(tmp_path / "none").now()
