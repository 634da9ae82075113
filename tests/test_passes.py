"""The one pass runner: step order, what a failure skips, when a run stops, and how long it waits between rounds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import cast

import pytest

from pipeline import passes
from pipeline.acquire.steps import Syncer
from pipeline.clock import FakeClock
from pipeline.config import load_settings
from pipeline.domain import BrokerType
from pipeline.ledger import WindowState
from pipeline.okx.errors import OkxTransientError
from pipeline.pass_types import PassScope, SyncReport
from pipeline.passes import (
    IDLE_PAUSE,
    MIN_PAUSE,
    Step,
    Until,
    describe_range,
    drive,
    next_pause,
    pass_scope,
)
from pipeline.store.ingest import IngestOutcome
from pipeline.store.load import LoadResult

pytestmark = pytest.mark.slow

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FAR = NOW + timedelta(hours=10)
SCOPE = PassScope(date(2025, 12, 1), date(2025, 12, 31), ("api",))


def status(
    *,
    unfinished: dict[str, str] | None = None,
    next_poll_at: datetime | None = None,
    create_next_at: datetime | None = None,
    pending: list[str] | None = None,
) -> SyncReport:
    report = SCOPE.report()
    report.unfinished = unfinished or {}
    report.next_poll_at, report.create_next_at, report.pending = next_poll_at, create_next_at, pending or []
    return report


def test_a_backfill_pauses_until_the_next_create_slot_and_never_spins() -> None:
    planned = {"api:1": "planned"}
    slot = NOW + timedelta(minutes=40)
    assert next_pause(NOW, status(unfinished=planned, create_next_at=slot), Until.LOADED, FAR) == timedelta(minutes=40)
    assert next_pause(NOW, status(unfinished=planned, create_next_at=NOW), Until.LOADED, FAR) == MIN_PAUSE
    assert next_pause(NOW, status(unfinished={"api:1": "failed"}), Until.LOADED, FAR) == IDLE_PAUSE
    assert next_pause(
        NOW, status(unfinished=planned, create_next_at=FAR), Until.LOADED, NOW + timedelta(minutes=2)
    ) == (timedelta(minutes=2))
    assert next_pause(NOW, status(), Until.LOADED, NOW) == MIN_PAUSE


def test_an_awaited_file_is_polled_between_creates_and_wait_ignores_the_create_slot() -> None:
    poll = NOW + timedelta(minutes=5)
    slot = NOW + timedelta(minutes=40)
    waiting = status(unfinished={"api:1": "requested", "api:2": "planned"}, next_poll_at=poll, create_next_at=slot)
    assert next_pause(NOW, waiting, Until.LOADED, FAR) == timedelta(minutes=5)
    later = status(unfinished={"api:2": "planned"}, next_poll_at=slot + timedelta(hours=1), create_next_at=slot)
    assert next_pause(NOW, later, Until.LOADED, FAR) == timedelta(minutes=40)
    assert next_pause(NOW, later, Until.ARCHIVED, FAR) == timedelta(hours=1, minutes=40)


@dataclass
class ScriptedSteps:
    """Steps that record their order, fail where told, and end each round with a scripted status."""

    fail: set[Step] = field(default_factory=set)
    rounds: list[SyncReport] = field(default_factory=list)
    ran: list[Step] = field(default_factory=list)
    forgotten: int = 0

    def run(self, step: Step, scope: PassScope) -> SyncReport:
        self.ran.append(step)
        if step in self.fail:
            raise OkxTransientError(f"{step} failed")
        if step is Step.FINISH:
            return self.rounds.pop(0) if self.rounds else scope.report()
        return scope.report()

    def forget_answers(self) -> None:
        self.forgotten += 1


def test_after_a_failed_okx_step_the_later_ones_are_skipped_but_archived_files_still_load() -> None:
    steps = ScriptedSteps(fail={Step.CREATE})
    run = drive(SCOPE, steps, FakeClock(NOW))
    assert steps.ran == [Step.DISCOVER, Step.CREATE, Step.LOAD, Step.FINISH]
    with pytest.raises(OkxTransientError, match="create failed"):
        run.raise_failure()


def test_wait_repeats_only_poll_and_download_until_nothing_is_pending() -> None:
    clock = FakeClock(NOW)
    pending = status(pending=["api:1"], next_poll_at=NOW + timedelta(minutes=5))
    steps = ScriptedSteps(rounds=[pending, status()])
    run = drive(SCOPE, steps, clock, until=Until.ARCHIVED)
    assert steps.ran == [*Step.__members__.values(), Step.POLL, Step.DOWNLOAD, Step.LOAD, Step.FINISH]
    assert clock.now() == NOW + timedelta(minutes=5)
    assert (len(run.reports), run.report.pending, steps.forgotten) == (1, [], 1)


def test_a_backfill_runs_whole_passes_until_the_range_is_loaded_or_its_deadline() -> None:
    clock = FakeClock(NOW)
    hours = [status(unfinished={"api:1": "planned"}, create_next_at=NOW + timedelta(hours=n)) for n in (1, 2)]
    unfinished = hours[0]
    steps = ScriptedSteps(rounds=[*hours, status()])
    run = drive(SCOPE, steps, clock, until=Until.LOADED)
    assert len(run.reports) == 3 and steps.ran.count(Step.CREATE) == 3
    assert clock.now() == NOW + timedelta(hours=2)
    stopped = drive(SCOPE, ScriptedSteps(rounds=[unfinished] * 5), clock, until=Until.LOADED, deadline=timedelta(0))
    assert len(stopped.reports) == 1 and stopped.report.unfinished


def test_the_defaults_are_worked_out_once() -> None:
    settings = load_settings(rebates_start_date="2025-01-01", rebates_broker_types="api,oauth")
    clock = FakeClock(datetime(2025, 3, 1, 2, tzinfo=UTC))  # 10:00 at UTC+8
    scope = pass_scope(settings, clock, None, None, None)
    assert (scope.begin, scope.end, scope.scopes) == (date(2025, 1, 1), date(2025, 2, 28), ("api", "oauth"))
    assert describe_range(settings, clock, None, None, BrokerType.API) == "api 2025-01-01..2025-02-28"
    assert describe_range(None, clock, None, date(2025, 2, 1), None) == "start..2025-02-01"


def test_a_load_that_skipped_packaging_junk_says_so_in_the_pass_report(monkeypatch: pytest.MonkeyPatch) -> None:
    result = LoadResult("api:20251201-20251231", "f", 3, 0, {}, skipped=False, skipped_parts=("zip member 'x' (why)",))
    loaded = IngestOutcome("api:20251201-20251231", WindowState.LOADED, result=result)
    monkeypatch.setattr(passes, "ingest_due", lambda *args, **kwargs: [loaded])
    syncer = SimpleNamespace(settings=None, ledger=None, clock=None)
    report = SCOPE.report()
    passes.load_archived(cast(Syncer, syncer), SCOPE, report)
    assert report.loaded == {"api:20251201-20251231": 3}
    assert report.warnings == ["api:20251201-20251231: loaded every part of its file but skipped zip member 'x' (why)"]
