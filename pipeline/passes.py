"""The one pass runner: a pass's steps in order, what a failed step skips, and how long to wait between rounds.

`rebates sync [--wait]`, the `sync-rebates` flow and the `backfill` flow all drive their passes through `drive`;
they differ only in how a step is run (a direct call, or a Prefect task) and in what they wait for (`Until`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from pipeline.acquire.steps import Syncer, broker_scope, syncer_for
from pipeline.clock import Clock
from pipeline.config import Settings, SettingsError, UsageError, check_writable_paths, select_accounts
from pipeline.db import connect
from pipeline.domain import OVERDUE_AFTER, BrokerType
from pipeline.ledger import Ledger, WindowRecord, WindowState, open_ledger
from pipeline.pass_types import PassScope, SyncReport
from pipeline.state import duckdb_writes
from pipeline.store.ingest import ingest_due
from pipeline.windows import DEFAULT_SCOPE, RebateWindow, yesterday

log = logging.getLogger(__name__)

DEFAULT_WAIT_DEADLINE = OVERDUE_AFTER
"""How long `sync --wait` keeps waiting by default: until OKX would say to contact support (3 hours)."""

MIN_PAUSE = timedelta(seconds=10)
"""The shortest pause between two rounds, so a waiting run can never spin."""

IDLE_PAUSE = timedelta(minutes=5)
"""The pause when nothing can move sooner (say, a failed load waiting for its retry time)."""


class Step(StrEnum):
    """The steps of one pass, in the order they run."""

    DISCOVER = "discover"
    CREATE = "create"
    POLL = "poll"
    DOWNLOAD = "download"
    LOAD = "load"
    FINISH = "what-is-pending"


OKX_STEPS = (Step.DISCOVER, Step.CREATE, Step.POLL, Step.DOWNLOAD)
"""The steps that talk to OKX: after one fails the later ones are skipped (a create must not run blind)."""

POLL_STEPS = (Step.POLL, Step.DOWNLOAD)
"""What a `sync --wait` round repeats after the first pass: no new discovery, no new create."""

LOCAL_STEPS = (Step.LOAD, Step.FINISH)
"""The steps that always run, whatever OKX said: files archived earlier are loaded anyway."""


class Until(StrEnum):
    """What a run waits for before it stops (or until its deadline)."""

    SINGLE = "single pass"
    """The hourly pass: one round, no waiting."""
    ARCHIVED = "requested files archived"
    """`sync --wait`: poll and download until no requested file is still at OKX."""
    LOADED = "range loaded"
    """`backfill`: whole passes, one create an hour, until every window of the range is loaded or quarantined."""


class Steps(Protocol):
    """How a driver runs a step: a direct call (the CLI) or a Prefect task (the flows)."""

    def run(self, step: Step, scope: PassScope) -> SyncReport:
        """Run one step over `scope`; returns what it did, or raises what stopped it."""
        ...

    def forget_answers(self) -> None:
        """Drop the links and answers OKX gave (between rounds: links age)."""
        ...


@dataclass
class PassRun:
    """What a run did: a report per pass, and the failures of its steps (the first is what the run failed with)."""

    scope: PassScope
    reports: list[SyncReport] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)

    @property
    def report(self) -> SyncReport:
        """The last pass's report."""
        return self.reports[-1]

    def raise_failure(self) -> None:
        """Raise the first step's error, if a step failed."""
        if self.failures:
            raise self.failures[0]

    def _step(self, steps: Steps, step: Step) -> bool:
        try:
            done = steps.run(step, self.scope)
        except Exception as exc:
            log.debug("step %s failed", step, exc_info=True)
            self.failures.append(exc)
            return False
        self.report.merge(done)
        if step is Step.FINISH:
            self.report.note_status(done)
        return True


def drive(
    scope: PassScope,
    steps: Steps,
    clock: Clock,
    *,
    until: Until = Until.SINGLE,
    deadline: timedelta = DEFAULT_WAIT_DEADLINE,
    progress: Callable[[str], None] | None = None,
) -> PassRun:
    """Run a pass over `scope`, then more rounds until `until` holds, a step fails, or `deadline` has passed.

    Each round runs the OKX steps (all of them in a whole pass, `POLL_STEPS` in a `sync --wait` round) until one
    fails, then always loads what is archived and notes what is pending. Between rounds it sleeps on `clock`
    until `next_pause` says something can move.
    """
    say = progress or (lambda message: None)
    give_up_at = clock.now() + deadline
    run = PassRun(scope, [scope.report()])
    okx_steps: tuple[Step, ...] = OKX_STEPS
    while True:
        for step in okx_steps:
            if not run._step(steps, step):
                break
        for step in LOCAL_STEPS:
            run._step(steps, step)
        if run.failures or finished(run.report, until) or clock.now() >= give_up_at:
            return run
        pause = next_pause(clock.now(), run.report, until, give_up_at)
        say(f"waiting {pause.total_seconds():.0f} s for OKX ({len(run.report.unfinished)} window(s) unfinished)")
        clock.sleep(pause.total_seconds())
        steps.forget_answers()
        if until is Until.LOADED:
            run.reports.append(scope.report())
        else:
            okx_steps = POLL_STEPS


def finished(report: SyncReport, until: Until) -> bool:
    """Whether a run waiting for `until` can stop after a round that ended with `report`."""
    if until is Until.SINGLE:
        return True
    if until is Until.ARCHIVED:
        return not report.pending
    return not report.unfinished


def next_pause(now: datetime, report: SyncReport, until: Until, give_up_at: datetime) -> timedelta:
    """How long to sleep before the next round: until the next poll is due or, in a backfill, the next create slot.

    Never less than `MIN_PAUSE` (no spinning), never past `give_up_at`, and `IDLE_PAUSE` when nothing is due.
    """
    wakes = [report.next_poll_at] if report.next_poll_at is not None else []
    if until is Until.LOADED and WindowState.PLANNED.value in report.unfinished.values():
        slot = report.create_next_at
        wakes.append(slot if slot is not None and slot > now else now)
    wake = min(wakes, default=now + IDLE_PAUSE)
    return max(min(wake - now, give_up_at - now), MIN_PAUSE)


# ------------------------------------------------------------------------------------------ the defaults


def pass_days(settings: Settings | None, clock: Clock, begin: date | None, end: date | None) -> tuple[date, date]:
    """The days a pass covers: `begin` (default REBATES_START_DATE) .. `end` (default yesterday in REBATES_TZ).

    A day given by hand must be a whole day that is over in REBATES_TZ, and `begin` not after `end`: a day still
    running would be collected incomplete and then counted as covered forever (UsageError).
    """
    first_day = begin or (settings.rebates_start_date if settings else None)
    if first_day is None:
        raise SettingsError("REBATES_START_DATE is not set: the first day of history to collect (or pass --begin)")
    if settings is None:
        if end is None:
            raise SettingsError("the settings did not load: no REBATES_TZ to tell yesterday by")
        return first_day, end
    last_whole_day = yesterday(clock.now(), settings.rebates_tz)
    for flag, day in (("--begin", begin), ("--end", end)):
        if day is not None and day > last_whole_day:
            raise UsageError(
                f"{flag} {day} is not over yet in REBATES_TZ={settings.rebates_tz}: OKX's file for it would be "
                f"incomplete; the last whole day is {last_whole_day}"
            )
    last_day = end or last_whole_day
    if begin is not None and first_day > last_day:
        raise UsageError(f"--begin {first_day} is after --end {last_day}: nothing to collect")
    return first_day, last_day


def pass_scope(
    settings: Settings, clock: Clock, begin: date | None, end: date | None, broker_type: BrokerType | None
) -> PassScope:
    """The days (`pass_days`) and the ledger's broker scopes a pass covers (every configured type by default)."""
    first_day, last_day = pass_days(settings, clock, begin, end)
    configured = settings.rebates_broker_types
    if broker_type is not None:
        if configured and broker_type not in configured:
            raise UsageError(
                f"REBATES_BROKER_TYPES is {','.join(configured)}: --broker-type {broker_type} is not one of them"
            )
        scopes = [broker_scope(broker_type)]
    else:
        scopes = [broker_scope(item) for item in configured] or [DEFAULT_SCOPE]
    return PassScope(first_day, last_day, tuple(scopes), settings.rebates_account)


def describe_range(
    settings: Settings | None, clock: Clock, begin: date | None, end: date | None, broker_type: BrokerType | None
) -> str:
    """`[type ]begin..end` with the defaults resolved (`start` / `yesterday` when the settings cannot say)."""
    first: object = begin
    last: object = end
    try:
        first, last = pass_days(settings, clock, begin, end)
    except SettingsError:
        first = begin or "start"
        last = end or "yesterday"
    prefix = f"{BrokerType(broker_type).value} " if broker_type else ""
    return f"{prefix}{first}..{last}"


# ------------------------------------------------------------------------------------------ running a step


def run_step(syncer: Syncer, step: Step, scope: PassScope) -> SyncReport:
    """Run one step with `syncer` (the CLI calls this directly; each flow task calls it once)."""
    report = scope.report()
    STEP_FUNCTIONS[step](syncer, scope, report)
    return report


def load_archived(syncer: Syncer, scope: PassScope, report: SyncReport) -> None:
    """Load what was archived (now, or by an earlier pass that stopped before loading); note each outcome."""
    for outcome in ingest_due(syncer.settings, syncer.ledger, syncer.clock, scopes=set(scope.scopes)):
        if outcome.result is not None:
            report.loaded[outcome.window_id] = outcome.result.rows_loaded
            for part in outcome.result.skipped_parts:
                report.warn(f"{outcome.window_id}: loaded every part of its file but skipped {part}")
        elif outcome.state is WindowState.QUARANTINED:
            report.quarantined[outcome.window_id] = outcome.reason or ""
        else:
            report.failed[outcome.window_id] = outcome.reason or ""


STEP_FUNCTIONS: dict[Step, Callable[[Syncer, PassScope, SyncReport], None]] = {
    Step.DISCOVER: Syncer.discover,
    Step.CREATE: Syncer.create,
    Step.POLL: Syncer.poll,
    Step.DOWNLOAD: Syncer.download,
    Step.LOAD: load_archived,
    Step.FINISH: Syncer.finish,
}
"""What each step calls: the Syncer's acquisition steps, and the store's load."""


@dataclass
class DirectSteps:
    """Steps run in this process with one Syncer (what `rebates sync` uses)."""

    syncer: Syncer

    def run(self, step: Step, scope: PassScope) -> SyncReport:
        """Run the step now."""
        return run_step(self.syncer, step, scope)

    def forget_answers(self) -> None:
        """Drop the Syncer's links."""
        self.syncer.forget_answers()


def prepare(settings: Settings) -> None:
    """What every pass checks before its first OKX call: credentials set, paths writable, the database opens."""
    settings.require_credentials()
    check_writable_paths(settings)
    with duckdb_writes(settings), connect(settings.rebates_db, lock_timeout=settings.rebates_db_lock_timeout):
        pass  # a file that is not a DuckDB database (or is locked past the wait) stops the pass here


def retry_windows(settings: Settings, clock: Clock, window_ids: Iterable[str]) -> list[str]:
    """Send failed or quarantined windows back to be downloaded and loaded again (`rebates retry`).

    A window id names its account (`eu:api:…`; none for `default`). Every id is checked before any window moves:
    a malformed id, an account not configured, an unknown window, or one that is neither failed nor quarantined is
    a UsageError naming it.
    """
    wanted = list(dict.fromkeys(window_ids))
    with ExitStack() as held:
        ledgers: dict[str, Ledger] = {}
        checked = []
        for window_id in wanted:
            try:
                window = RebateWindow.parse(window_id)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            if window.account not in ledgers:
                ledger = open_ledger(settings.for_account(window.account), clock)
                ledgers[window.account] = held.enter_context(ledger)
            ledger = ledgers[window.account]
            record = _find(settings, ledger, window_id)
            if record is None:
                raise UsageError(f"{window_id} is not in the ledger (`rebates status` lists the windows)")
            if not record.retryable(clock.now()):
                raise UsageError(f"{window_id} is {record.state.value}: {record.retry_refusal()}")
            checked.append((ledger, window_id))
        for ledger, window_id in checked:
            ledger.retry(window_id)
            log.info("%s will be downloaded and loaded again", window_id)
    return wanted


def _find(settings: Settings, ledger: Ledger, window_id: str) -> WindowRecord | None:
    """The window, or None when the ledger does not know it (asking never creates an embedded ledger's file)."""
    if settings.rebates_state_url is None and not settings.rebates_db.exists():
        return None
    try:
        return ledger.get(window_id)
    except KeyError:
        return None


def sync(
    settings: Settings,
    clock: Clock,
    *,
    begin: date | None = None,
    end: date | None = None,
    broker_type: BrokerType | None = None,
    wait: bool = False,
    deadline: timedelta = DEFAULT_WAIT_DEADLINE,
    progress: Callable[[str], None] | None = None,
) -> PassRun:
    """One pass for the account `settings` speak for (with `wait`, rounds until its requested files are archived)."""
    return sync_accounts(
        settings,
        clock,
        account=settings.rebates_account,
        begin=begin,
        end=end,
        broker_type=broker_type,
        wait=wait,
        deadline=deadline,
        progress=progress,
    )[0]


def sync_accounts(
    settings: Settings,
    clock: Clock,
    *,
    account: str | None = None,
    begin: date | None = None,
    end: date | None = None,
    broker_type: BrokerType | None = None,
    wait: bool = False,
    deadline: timedelta = DEFAULT_WAIT_DEADLINE,
    progress: Callable[[str], None] | None = None,
) -> list[PassRun]:
    """`rebates sync`: one pass per account in this process, one account after another (default: every account).

    With `wait`, each account's rounds go on until its requested files are archived. Everything a person could
    have mistyped (account, days, broker type, paths) is checked for every account before the first OKX call. A
    failed account does not stop the next: each run carries its own failures.
    """
    planned = [
        (chosen, pass_scope(chosen, clock, begin, end, broker_type)) for chosen in select_accounts(settings, account)
    ]
    for chosen, _ in planned:
        prepare(chosen)
    runs = []
    for chosen, scope in planned:
        syncer = syncer_for(chosen, clock, progress=progress)
        try:
            runs.append(
                drive(
                    scope,
                    DirectSteps(syncer),
                    clock,
                    until=Until.ARCHIVED if wait else Until.SINGLE,
                    deadline=deadline,
                    progress=progress,
                )
            )
        finally:
            syncer.close()
    return runs
