"""Shared state in PostgreSQL: one hour per account across processes, shared limiters, migrate, healing, no leaks."""

from __future__ import annotations

import logging
import multiprocessing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.clock import FakeClock
from pipeline.config import Settings, load_settings
from pipeline.db import connect
from pipeline.doctor import check_shared_paths, check_state
from pipeline.domain import REBATE_PATH
from pipeline.ledger import CreateOutcome, FileRecord, Ledger, WindowState, open_ledger
from pipeline.okx.throttle import GetLimiter, open_limiter
from pipeline.pg import StateUnavailableError, open_connection
from pipeline.simulator.files import FileSpec, build_rebate_file
from pipeline.state import MigrationConflictError, copy_ledger_to_duckdb, describe_state, migrate
from pipeline.store.ingest import ingest_due, load_by_hand
from pipeline.windows import RebateWindow, WindowKind

pytestmark = pytest.mark.slow

START = datetime(2025, 1, 10, 1, tzinfo=UTC)
PASSWORD = "Pa55-never-shown-9f3c"
SPEC = FileSpec(date(2025, 1, 1), date(2025, 1, 10), "api", orders_per_day=12)
WINDOW = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 10))


def with_password(url: str) -> str:
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


def settings_for(tmp_path: Path, url: str, **extra: Any) -> Settings:
    return load_settings(
        rebates_data_dir=tmp_path / "data",
        rebates_db=tmp_path / "data" / "rebates.duckdb",
        rebates_state_url=url,
        **extra,
    )


def rows(url: str, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(row) for row in conn.execute(statement.encode()).fetchall()]


def _race_for_the_hour(url: str, db: str, account: str, window_id: str, barrier: Any, results: Any) -> None:
    ledger = Ledger(Path(db), FakeClock(START), account=account, state_url=url)
    barrier.wait()
    results.put(ledger.reserve_create(window_id))


@pytest.mark.parametrize(("accounts", "expected"), [(("default", "default"), 1), (("default", "eu"), 2)])
def test_processes_racing_for_an_hour_spend_it_once_per_account(
    state_url: str, tmp_path: Path, accounts: tuple[str, str], expected: int
) -> None:
    clock = FakeClock(START)
    ids = []
    for index, account in enumerate(accounts):
        window = RebateWindow("api", date(2025, 1, 1 + 5 * index), date(2025, 1, 5 + 5 * index), account)
        Ledger(tmp_path / "r.duckdb", clock, account=account, state_url=state_url).add_windows(
            [(window, WindowKind.HISTORY)]
        )
        ids.append(window.window_id)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(
            target=_race_for_the_hour, args=(state_url, str(tmp_path / "r.duckdb"), account, ids[i], barrier, results)
        )
        for i, account in enumerate(accounts)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    reserved = [result for result in (results.get(timeout=5) for _ in workers) if result is not None]
    assert len(reserved) == expected
    assert len(rows(state_url, "SELECT * FROM create_attempts")) == expected


def _take_slots(url: str, count: int) -> None:
    from pipeline.clock import SystemClock

    limiter = GetLimiter(Path("/nonexistent"), SystemClock(), limit=2, window=timedelta(seconds=1), state_url=url)
    for _ in range(count):
        limiter.before_request("GET", REBATE_PATH)


def test_the_get_limiter_is_shared_by_processes_through_postgresql(state_url: str) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_take_slots, args=(state_url, 2)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    granted = [row[0] for row in rows(state_url, "SELECT granted_at FROM limiter_slots ORDER BY granted_at")]
    assert len(granted) >= 2  # older slots are forgotten as new ones are taken
    stamps = sorted(granted)
    assert all(later - earlier >= timedelta(seconds=1) for earlier, later in zip(stamps, stamps[2:], strict=False))


def test_a_penalty_fills_the_minute_for_every_worker_of_the_account(state_url: str, tmp_path: Path) -> None:
    clock = FakeClock(START)
    settings = settings_for(tmp_path, state_url)
    open_limiter(settings, clock).penalize()
    other = open_limiter(settings, clock)
    other.acquire()
    assert other.granted == [START + other.window]
    eu_settings = settings_for(tmp_path, state_url, rebates_accounts="default,eu").for_account("eu")
    assert_fresh = open_limiter(eu_settings, clock)
    assert_fresh.acquire()
    assert assert_fresh.granted == [clock.now()]


def embedded_ledger_with_history(tmp_path: Path, clock: FakeClock) -> Ledger:
    ledger = Ledger(tmp_path / "data" / "rebates.duckdb", clock)
    (record,) = ledger.add_windows([(WINDOW, WindowKind.HISTORY)])
    ledger.add_windows([(RebateWindow("api", date(2025, 1, 11), date(2025, 1, 12)), WindowKind.DAILY)])
    attempt = ledger.reserve_create(record.window_id)
    assert attempt is not None
    ledger.record_create(attempt, CreateOutcome.CREATED, server_ts=clock.now())
    ledger.requested(record.window_id, CreateOutcome.CREATED, clock.now())
    archived = FileRecord(f"{record.window_id}@abc", record.window_id, "raw/api/x.csv", 10, "abc", "csv")
    ledger.record_archived(ledger.get(record.window_id), archived, "127.0.0.1")
    return ledger


def test_migrate_copies_the_ledger_once_and_refuses_conflicts(state_url: str, tmp_path: Path) -> None:
    clock = FakeClock(START)
    embedded = embedded_ledger_with_history(tmp_path, clock)
    settings = settings_for(tmp_path, state_url)
    first = {result.name: (result.copied, result.already_there) for result in migrate(settings)}
    assert first == {
        "rebate_windows": (2, 0),
        "rebate_files": (1, 0),
        "create_attempts": (1, 0),
        "window_events": (5, 0),
    }
    again = {result.name: (result.copied, result.already_there) for result in migrate(settings)}
    assert again == {name: (0, copied) for name, (copied, _) in first.items()}
    shared = open_ledger(settings, clock)
    assert shared.windows() == embedded.windows()
    assert shared.files() == embedded.files()
    assert shared.create_budget_next_at() == embedded.create_budget_next_at()
    shared.quarantine(shared.get(WINDOW.window_id), "a person looks")  # a new event takes an id past the copied ones
    assert rows(state_url, "SELECT max(event_id) FROM window_events") == [(6,)]
    with pytest.raises(MigrationConflictError, match="rebate_windows rows with the same window_id"):
        migrate(settings)
    assert rows(state_url, "SELECT count(*) FROM window_events") == [(6,)]


def test_migrate_from_the_cli_prints_what_it_copied(state_url: str, tmp_path: Path, monkeypatch: Any) -> None:
    embedded_ledger_with_history(tmp_path, FakeClock(START))
    monkeypatch.setenv("REBATES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REBATES_DB", str(tmp_path / "data" / "rebates.duckdb"))
    monkeypatch.setenv("REBATES_STATE_URL", with_password(state_url))
    runner = CliRunner()
    done = runner.invoke(app, ["state", "migrate"])
    assert done.exit_code == 0, done.output
    assert "rebate_windows: copied 2, already there 0" in done.output
    again = runner.invoke(app, ["state", "migrate"])
    assert "rebate_windows: copied 0, already there 2" in again.output
    shown = runner.invoke(app, ["state"])
    assert shown.exit_code == 0 and "PostgreSQL at postgresql://postgres@127.0.0.1" in shown.output
    assert PASSWORD not in done.output + again.output + shown.output


def test_a_publish_copies_the_ledger_into_duckdb_only_when_it_changed(
    state_url: str, tmp_path: Path, fake_clock: FakeClock
) -> None:
    """An idle pass on PostgreSQL state writes nothing to DuckDB either: the ledger copy is skipped when equal."""
    settings = settings_for(tmp_path, state_url)
    ledger = open_ledger(settings, fake_clock)
    source = tmp_path / "file.csv"
    source.write_bytes(build_rebate_file(SPEC))
    assert load_by_hand(settings, ledger, source, WINDOW, fake_clock).state is WindowState.LOADED
    with connect(settings.rebates_db) as db:
        assert copy_ledger_to_duckdb(settings, db) == 0, "the pass's publish copied it already"
    before = {path.name: path.stat().st_mtime_ns for path in settings.rebates_db.parent.glob("rebates.duckdb*")}
    ingest_due(settings, ledger, fake_clock)
    after = {path.name: path.stat().st_mtime_ns for path in settings.rebates_db.parent.glob("rebates.duckdb*")}
    assert after == before
    ledger.add_windows([(RebateWindow("api", date(2025, 1, 11), date(2025, 1, 11)), WindowKind.DAILY)])
    with connect(settings.rebates_db) as db:
        assert copy_ledger_to_duckdb(settings, db) > 0
        assert db.execute("SELECT count(*) FROM rebate_windows").fetchone() == (2,)


def test_doctor_checks_postgresql_and_the_shared_paths(state_url: str, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, with_password(state_url))
    state = check_state(settings)
    assert state.ok and "the state schema is current" in state.detail
    assert check_shared_paths(settings).ok
    down = settings_for(tmp_path, f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/nowhere")
    refused = check_state(down)
    assert not refused.ok and "127.0.0.1:1/nowhere" in refused.detail
    assert PASSWORD not in refused.detail


def test_the_password_never_leaks(
    state_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    url = with_password(state_url)
    clock = FakeClock(START)
    settings = settings_for(tmp_path, url)
    ledger = open_ledger(settings, clock)
    source = tmp_path / "file.csv"
    source.write_bytes(build_rebate_file(SPEC))
    assert load_by_hand(settings, ledger, source, WINDOW, clock).state is WindowState.LOADED
    texts = [caplog.text, describe_state(settings), repr(settings), str(settings)]
    with pytest.raises(StateUnavailableError) as refused:
        open_connection(url.replace(state_url.rsplit(":", 1)[1].split("/")[0], "1", 1))
    texts.append(str(refused.value))
    with pytest.raises(StateUnavailableError) as malformed:
        open_connection(f"postgresql://postgres:{PASSWORD}@127.0.0.1:notaport/db")
    texts.append(str(malformed.value))
    monkeypatch.setenv("REBATES_STATE_URL", url)
    monkeypatch.setenv("REBATES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REBATES_DB", str(tmp_path / "data" / "rebates.duckdb"))
    for argv in (["state"], ["status"], ["settings"]):
        texts.append(CliRunner().invoke(app, argv).output)
    for text in texts:
        assert PASSWORD not in text
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
