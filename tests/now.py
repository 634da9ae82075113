"""The one moment the tests that follow the calendar start at: now, or REBATES_TESTS_NOW to replay any hour.

Days the tests compute at import ("yesterday" in UTC+8) come from TESTS_NOW, and so does the clock the commands,
flows and simulator of those tests read (a `FileClock` that REBATES_CLOCK_FILE names): the test and the code it
runs agree on the day whatever the hour, also when a run crosses 16:00 UTC, midnight in UTC+8. To replay the
minutes around that midnight: `REBATES_TESTS_NOW=2026-01-10T15:59:59Z pytest tests/flows` (and T16:00:00Z).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from pipeline.clock import FileClock

TESTS_NOW_VARIABLE = "REBATES_TESTS_NOW"


def read_tests_now() -> datetime:
    """REBATES_TESTS_NOW (ISO 8601 with an offset), else the system's time."""
    text = os.environ.get(TESTS_NOW_VARIABLE, "").strip()
    if not text:
        return datetime.now(UTC)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{TESTS_NOW_VARIABLE}={text} needs an offset, e.g. 2026-01-10T15:59:59Z")
    return moment.astimezone(UTC)


TESTS_NOW = read_tests_now()
"""Read once per test process, so every test of a session agrees on its days."""


def clock_at_tests_now(path: Path) -> FileClock:
    """A shared clock at TESTS_NOW in `path`, for REBATES_CLOCK_FILE and the simulator."""
    return FileClock.create(path, TESTS_NOW)
