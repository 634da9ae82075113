"""The GET limiter: never more than 2 GETs in any rolling minute, shared by processes through the data dir."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.clock import FakeClock
from pipeline.domain import GET_LIMIT, GET_WINDOW, REBATE_PATH
from pipeline.okx.throttle import GetLimiter


def max_in_any_window(stamps: list[datetime], window: timedelta) -> int:
    return max(sum(1 for other in stamps if start <= other < start + window) for start in stamps)


def test_slots_never_exceed_two_in_any_minute(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2025, 1, 1, tzinfo=UTC))
    limiter = GetLimiter(tmp_path, clock)
    for _ in range(9):
        limiter.acquire()
        clock.advance(7)
    assert len(limiter.granted) == 9
    assert max_in_any_window(limiter.granted, GET_WINDOW) <= GET_LIMIT
    assert clock.now() - limiter.granted[0] >= timedelta(minutes=4)


def test_a_free_slot_costs_no_wait_and_a_full_minute_does(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2025, 1, 1, tzinfo=UTC))
    limiter = GetLimiter(tmp_path, clock)
    start = clock.now()
    limiter.acquire()
    limiter.acquire()
    assert clock.now() == start
    limiter.acquire()
    assert timedelta(seconds=60) <= clock.now() - start <= timedelta(seconds=61)


def test_only_rebate_gets_take_a_slot(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2025, 1, 1, tzinfo=UTC))
    limiter = GetLimiter(tmp_path, clock)
    assert limiter.before_request("POST", REBATE_PATH) is None
    assert limiter.before_request("GET", "/api/v5/account/balance") is None
    granted = limiter.before_request("GET", REBATE_PATH + "?type=true")
    assert limiter.granted == [granted] == [clock.now()]  # the moment the client signs the request with


def test_a_rate_limit_answer_fills_the_minute(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2025, 1, 1, tzinfo=UTC))
    limiter = GetLimiter(tmp_path, clock)
    limiter.penalize()
    start = clock.now()
    limiter.acquire()
    assert clock.now() - start >= timedelta(seconds=60)


def test_two_processes_share_one_budget(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        from pathlib import Path
        from pipeline.clock import SystemClock
        from pipeline.okx.throttle import GetLimiter
        from datetime import timedelta
        limiter = GetLimiter(Path({str(tmp_path)!r}), SystemClock(), limit=2, window=timedelta(seconds=2))
        for _ in range(3):
            limiter.acquire()
            print(limiter.granted[-1].isoformat(), flush=True)
    """)
    workers = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    stamps = sorted(
        datetime.fromisoformat(line) for worker in workers for line in worker.communicate(timeout=60)[0].split()
    )
    assert len(stamps) == 6
    assert max_in_any_window(stamps, timedelta(seconds=2)) <= 2
