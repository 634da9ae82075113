"""Clocks: the system's, and ones tests, the demo and the simulator move forward without waiting (one shared)."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from filelock import FileLock

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    """Where the pipeline and the simulator read the time and wait."""

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that stands still until told to move; `sleep` moves it instead of waiting. Thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2025, 1, 1, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The clock's current time."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by `delta` (a timedelta or seconds) and return the new time."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += step
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (not before the current time)."""
        with self._lock:
            if moment < self._now:
                raise ValueError("a clock does not go backwards")
            self._now = moment

    def sleep(self, seconds: float) -> None:
        """Advance instead of waiting."""
        if seconds > 0:
            self.advance(seconds)


class FileClock:
    """A fake clock several processes share: the time is a line of text in a file, moved under a file lock.

    For tests and demos that run workers in separate processes over simulated hours (see `REBATES_CLOCK_FILE`).
    `sleep(s)` moves the time to at least the moment the sleep began plus `s`, never by `s` on top of another
    process's sleep: two workers waiting for the same slot both wake at it, as on a real clock.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = FileLock(str(self.path) + ".lock")

    @classmethod
    def create(cls, path: Path | str, start: datetime) -> FileClock:
        """A new shared clock at `start` (timezone-aware), written to `path`."""
        if start.tzinfo is None:
            raise ValueError("FileClock needs a timezone-aware start")
        clock = cls(path)
        clock.path.parent.mkdir(parents=True, exist_ok=True)
        with clock._lock:
            clock._write(start)
        return clock

    def now(self) -> datetime:
        """The time the file holds."""
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise FileNotFoundError(f"the shared clock file {self.path} does not exist (FileClock.create it)") from None
        return datetime.fromisoformat(text).astimezone(UTC)

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by `delta` (a timedelta or seconds) and return the new time."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError("a clock does not go backwards")
        with self._lock:
            moved = self.now() + step
            self._write(moved)
            return moved

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (not before the current time)."""
        with self._lock:
            if moment < self.now():
                raise ValueError("a clock does not go backwards")
            self._write(moment)

    def sleep(self, seconds: float) -> None:
        """Move the time to at least (the time this call began + `seconds`) instead of waiting."""
        if seconds <= 0:
            return
        wake = self.now() + timedelta(seconds=seconds)
        with self._lock:
            if wake > self.now():
                self._write(wake)

    def _write(self, moment: datetime) -> None:
        temp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        temp.write_text(moment.astimezone(UTC).isoformat() + "\n", encoding="utf-8")
        temp.replace(self.path)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch, as OKX writes times."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(value: int | str) -> datetime:
    """The UTC datetime for an OKX millisecond timestamp."""
    return EPOCH + timedelta(milliseconds=int(value))
