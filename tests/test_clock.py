"""Clocks: the fake one moves only when told, never backwards; epoch milliseconds round-trip exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.clock import FakeClock, epoch_ms, from_epoch_ms


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
