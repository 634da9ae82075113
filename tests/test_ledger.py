"""The ledger, in DuckDB and in PostgreSQL: no overlaps, transitions commit with their event, the hour holds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

import pipeline.pg
from pipeline.clock import FakeClock
from pipeline.db import connect
from pipeline.ledger import (
    TRANSITIONS,
    CreateOutcome,
    FileRecord,
    Ledger,
    OverlapError,
    StaleStateError,
    WindowState,
)
from pipeline.windows import RebateWindow, WindowKind

START = datetime(2025, 1, 10, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(params=["duckdb", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Ledger:
    """The same behaviour from both backends: the embedded DuckDB ledger and the shared PostgreSQL one."""
    url = request.getfixturevalue("state_url") if request.param == "postgres" else None
    return Ledger(tmp_path / "r.duckdb", clock, state_url=url)


def query(ledger: Ledger, statement: str) -> list[tuple[Any, ...]]:
    """Rows of `statement` from wherever the ledger keeps its tables."""
    if ledger.state_url is not None:
        with psycopg.connect(ledger.state_url) as conn:
            return [tuple(row) for row in conn.execute(statement.encode()).fetchall()]
    with connect(ledger.db_path) as db:
        return db.execute(statement).fetchall()


def window(begin: int, end: int, broker_type: str = "api") -> RebateWindow:
    return RebateWindow(broker_type, date(2025, 1, begin), date(2025, 1, end))


def test_added_windows_start_planned_and_overlaps_are_refused(ledger: Ledger) -> None:
    (record,) = ledger.add_windows([(window(1, 5), WindowKind.HISTORY)])
    assert record.state is WindowState.PLANNED
    assert record.window == window(1, 5)
    with pytest.raises(OverlapError, match="overlaps api:20250101-20250105"):
        ledger.add_windows([(window(6, 7), WindowKind.DAILY), (window(5, 6), WindowKind.HISTORY)])
    assert [w.window_id for w in ledger.windows()] == ["api:20250101-20250105"]
    ledger.add_windows([(window(1, 5, "oauth"), WindowKind.HISTORY)])
    assert len(ledger.windows(broker_type="oauth")) == 1


def test_a_transition_is_committed_with_its_event(ledger: Ledger, clock: FakeClock) -> None:
    ledger.add_windows([(window(1, 5), WindowKind.HISTORY)])
    clock.advance(60)
    record = ledger.transition(
        "api:20250101-20250105", WindowState.PLANNED, WindowState.ONGOING, requested_at=clock.now()
    )
    assert record.state is WindowState.ONGOING
    assert record.requested_at == clock.now()
    events = query(ledger, "SELECT from_state, to_state FROM window_events ORDER BY event_id")
    assert events == [(None, "planned"), ("planned", "ongoing")]


def test_a_transition_refuses_unknown_columns(ledger: Ledger) -> None:
    ledger.add_windows([(window(1, 5), WindowKind.HISTORY)])
    with pytest.raises(ValueError, match="not ledger columns"):
        ledger.transition(
            "api:20250101-20250105", WindowState.PLANNED, WindowState.ONGOING, begin_date=date(2020, 1, 1)
        )


def test_the_create_budget_is_one_per_hour(ledger: Ledger, clock: FakeClock) -> None:
    ledger.add_windows([(window(1, 5), WindowKind.HISTORY), (window(6, 9), WindowKind.HISTORY)])
    assert ledger.create_budget_next_at() is None
    first = ledger.reserve_create("api:20250101-20250105")
    assert first is not None
    assert ledger.get("api:20250101-20250105").state is WindowState.REQUESTING
    assert ledger.reserve_create("api:20250106-20250109") is None
    clock.advance(timedelta(minutes=59, seconds=59))
    assert ledger.reserve_create("api:20250106-20250109") is None
    clock.advance(1)
    assert ledger.reserve_create("api:20250106-20250109") is not None
    outcomes = query(ledger, "SELECT outcome FROM create_attempts ORDER BY attempt_id")
    assert outcomes == [(CreateOutcome.RESERVED.value,)] * 2


def test_a_rate_limited_create_pushes_the_budget(ledger: Ledger, clock: FakeClock) -> None:
    ledger.add_windows([(window(1, 5), WindowKind.HISTORY)])
    attempt = ledger.reserve_create("api:20250101-20250105")
    assert attempt is not None
    until = clock.now() + timedelta(minutes=90)
    ledger.record_create(attempt, CreateOutcome.RATE_LIMITED, budget_until=until, detail="50011")
    assert ledger.create_budget_next_at() == until


def test_the_same_file_recorded_twice_is_one_row_counted_twice(ledger: Ledger) -> None:
    (planned,) = ledger.add_windows([(window(1, 5), WindowKind.HISTORY)])
    record = FileRecord("api:20250101-20250105@abc", "api:20250101-20250105", "raw/api/x.csv", 10, "abc", "csv")
    first = ledger.record_archived(planned, record, "127.0.0.1")
    downloaded = ledger.record_archived(first, record, "127.0.0.1")
    assert ledger.files() == [record]
    assert (downloaded.state, downloaded.file_id) == (WindowState.DOWNLOADED, record.file_id)
    assert query(ledger, "SELECT downloads FROM rebate_files") == [(2,)]


def test_a_download_recorded_on_a_stale_read_is_kept_but_moves_nothing(ledger: Ledger) -> None:
    (planned,) = ledger.add_windows([(window(1, 5), WindowKind.HISTORY)])
    ledger.quarantine(planned, "a person looks")
    record = FileRecord("api:20250101-20250105@abc", "api:20250101-20250105", "raw/api/x.csv", 10, "abc", "csv")
    with pytest.raises(StaleStateError, match="is quarantined, not planned"):
        ledger.record_archived(planned, record, "127.0.0.1")
    assert ledger.files() == [record]
    assert ledger.get(planned.window_id).state is WindowState.QUARANTINED


def test_a_stale_move_is_refused_and_retry_resets(ledger: Ledger) -> None:
    (planned,) = ledger.add_windows([(window(1, 5), WindowKind.HISTORY)])
    with pytest.raises(StaleStateError, match="is planned, not requesting"):
        ledger.replan(planned.window_id, "never sent")
    finished = ledger.transition(planned.window_id, WindowState.PLANNED, WindowState.FINISHED)
    failed = ledger.fail(finished, "boom")
    assert (failed.state, failed.attempts, failed.last_error) == (WindowState.FAILED, 1, "boom")
    retried = ledger.retry(planned.window_id)
    assert (retried.state, retried.attempts, retried.next_attempt_at) == (WindowState.PLANNED, 0, None)


def test_planning_fills_only_the_days_not_covered(ledger: Ledger) -> None:
    ledger.add_windows([(window(10, 12), WindowKind.HISTORY)])
    planned = ledger.plan("api", date(2025, 1, 1), date(2025, 1, 20))
    spans = sorted((record.begin_date.day, record.end_date.day) for record in ledger.windows())
    assert (10, 12) in spans
    assert all(record.state is WindowState.PLANNED for record in planned)
    days = sorted(day for begin, end in spans for day in range(begin, end + 1))
    assert days == list(range(1, 21))
    assert ledger.plan("api", date(2025, 1, 1), date(2025, 1, 20)) == []


def test_each_account_has_its_own_windows_and_hour(ledger: Ledger, clock: FakeClock) -> None:
    eu = Ledger(ledger.db_path, clock, account="eu", state_url=ledger.state_url)
    ledger.add_windows([(window(1, 5), WindowKind.HISTORY)])
    eu.add_windows([(RebateWindow("api", date(2025, 1, 1), date(2025, 1, 5), "eu"), WindowKind.HISTORY)])
    assert ledger.reserve_create("api:20250101-20250105") is not None
    assert eu.reserve_create("eu:api:20250101-20250105") is not None
    assert [record.window_id for record in eu.windows()] == ["eu:api:20250101-20250105"]


LATE = (WindowState.FINISHED, WindowState.DOWNLOADED, WindowState.LOADED)
WAITING = (WindowState.PLANNED, WindowState.REQUESTING, WindowState.REQUESTED, WindowState.ONGOING)


@pytest.mark.parametrize("late", LATE)
@pytest.mark.parametrize("back", WAITING)
def test_no_move_takes_a_window_from_finished_or_later_back_to_waiting_for_okx(
    late: WindowState, back: WindowState
) -> None:
    assert back not in TRANSITIONS[late]


def test_every_state_has_its_moves_and_a_move_outside_them_is_refused(ledger: Ledger) -> None:
    assert set(TRANSITIONS) == {None, *WindowState}
    (planned,) = ledger.add_windows([(window(1, 5), WindowKind.HISTORY)])
    with pytest.raises(ValueError, match="never moves from planned to loaded"):
        ledger.transition(planned.window_id, WindowState.PLANNED, WindowState.LOADED)
    assert ledger.get(planned.window_id).state is WindowState.PLANNED


def test_a_stale_writer_gets_an_error_and_moves_nothing(ledger: Ledger, clock: FakeClock) -> None:
    (planned,) = ledger.add_windows([(window(1, 5), WindowKind.HISTORY)])
    assert ledger.reserve_create(planned.window_id) is not None
    ledger.requested(planned.window_id, CreateOutcome.CREATED, clock.now())
    requested = ledger.get(planned.window_id)
    ledger.observe(requested, finished=True, server_requested_at=clock.now(), detail="another pass")
    finished = ledger.get(planned.window_id)
    file = FileRecord("api:20250101-20250105@abc", "api:20250101-20250105", "raw/api/x.csv", 10, "abc", "csv")
    ledger.record_archived(finished, file, "127.0.0.1")
    stale_moves: list[tuple[str, Callable[[], object]]] = [
        ("requested", lambda: ledger.mark_polled(requested)),
        ("requested", lambda: ledger.unlisted(requested)),
        ("requested", lambda: ledger.observe(requested, finished=False, server_requested_at=None, detail="late")),
        ("finished", lambda: ledger.fail(finished, "boom")),
        ("finished", lambda: ledger.quarantine(finished, "broken")),
        ("finished", lambda: ledger.record_archived(finished, file, "127.0.0.1")),
    ]
    for read, stale_move in stale_moves:
        with pytest.raises(StaleStateError, match=f"is downloaded, not {read}: another process moved it first"):
            stale_move()
    assert ledger.get(planned.window_id).state is WindowState.DOWNLOADED
    spent_until = ledger.create_budget_next_at()
    clock.advance(timedelta(hours=2))
    with pytest.raises(StaleStateError, match="is downloaded, not planned"):
        ledger.reserve_create(planned.window_id)
    assert ledger.create_budget_next_at() == spent_until, "the refused reserve spent no hour"


def test_a_file_okx_never_lists_plans_its_window_again_with_a_growing_wait(ledger: Ledger, clock: FakeClock) -> None:
    (planned,) = ledger.add_windows([(window(1, 5), WindowKind.HISTORY)])
    waits = []
    for _ in range(5):
        attempt = ledger.reserve_create(planned.window_id)
        assert attempt is not None
        ledger.record_create(attempt, CreateOutcome.CREATED, server_ts=clock.now())
        ledger.requested(planned.window_id, CreateOutcome.CREATED, clock.now())
        clock.advance(timedelta(hours=4))
        again = ledger.unlisted(ledger.get(planned.window_id))
        assert again.state is WindowState.PLANNED and again.next_attempt_at is not None
        waits.append(again.next_attempt_at - clock.now())
        clock.set(again.next_attempt_at)
    assert [wait // timedelta(hours=1) for wait in waits] == [2, 4, 8, 16, 24]


def test_a_postgresql_ledger_holds_one_connection_for_its_life(
    state_url: str, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_open = pipeline.pg.open_connection

    def counted(url: str, **options: Any) -> Any:
        opened.append(url)
        return real_open(url, **options)

    monkeypatch.setattr(pipeline.pg, "open_connection", counted)
    with Ledger(tmp_path / "r.duckdb", clock, state_url=state_url) as ledger:
        (planned,) = ledger.add_windows([(window(1, 5), WindowKind.HISTORY)])
        assert ledger.reserve_create(planned.window_id) is not None
        ledger.requested(planned.window_id, CreateOutcome.CREATED, clock.now())
        assert [record.state for record in ledger.windows()] == [WindowState.REQUESTED]
    assert opened == [state_url], "one connection for every call of the ledger's life"
    ledger.windows()  # a closed ledger opens its connection again when used
    assert len(opened) == 2
    ledger.close()
