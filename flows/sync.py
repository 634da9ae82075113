"""Prefect flows over the acquisition steps: `sync_rebates` (hourly) and `backfill` (a date range, until loaded)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from prefect import State, Task, flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.runtime import flow_run

from flows.runtime import base_settings, run_clock, run_settings
from pipeline.config import BrokerType, SettingsError
from pipeline.db import DatabaseLockedError
from pipeline.ledger import WAITING_FOR_OKX, Ledger, WindowState
from pipeline.okx.errors import OkxTransientError
from pipeline.summary import summary_markdown
from pipeline.sync import OkxAnswers, PassScope, Syncer, SyncReport, pass_scope, syncer_for
from pipeline.windows import yesterday

DONE_STATES = frozenset({WindowState.LOADED, WindowState.QUARANTINED})
"""A backfill stops waiting for a window in these states (a quarantined file needs a person, not another pass)."""

BACKFILL_IDLE_PAUSE = timedelta(minutes=5)
"""How long a backfill pauses when nothing can move sooner (say, a failed download waiting for its retry time)."""

BACKFILL_MIN_PAUSE = timedelta(seconds=10)
"""The shortest pause between two backfill passes, so a backfill can never spin."""

LOAD_RETRY_DELAYS: list[float] = [30, 120, 300]
"""Seconds before each retry of a task that found the database held by another process past its own wait."""

OKX_RETRY_DELAYS: list[float] = [60, 300]
"""Seconds before each retry of a GET step that OKX kept failing (the client already retried it within seconds)."""


def show_pipeline_logs() -> None:
    """Let the pipeline's INFO lines through; with PREFECT_LOGGING_EXTRA_LOGGERS=pipeline they reach the run's logs.

    Prefect gives an extra logger its handlers but not a level, so it would inherit the root's WARNING.
    """
    logger = logging.getLogger("pipeline")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def retry_if_database_locked(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect's retry condition: retry only when another process held the database past its wait."""
    return isinstance(state.result(raise_on_failure=False), DatabaseLockedError)


def retry_if_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect's retry condition for the GET steps: OKX or the network failing for now, or the database held.

    Never a refusal (credentials, permissions, a bad request): retrying those would only repeat the refusal.
    """
    return isinstance(state.result(raise_on_failure=False), OkxTransientError | DatabaseLockedError)


_answers: dict[str, OkxAnswers] = {}
"""What each flow run in this process learnt from OKX (fresh download links), shared by its tasks, by run id.

A link is a bearer URL to the broker's data, so it never travels as a task parameter or result; a task that runs
elsewhere (a retry in another process) just asks OKX again.
"""


def step_syncer() -> Syncer:
    """A Syncer for one step of this flow run: its settings and clock, its logger, and the run's OKX answers."""
    logger = get_run_logger()
    settings = run_settings()
    answers = _answers.setdefault(str(flow_run.id), OkxAnswers())
    return syncer_for(settings, run_clock(), progress=lambda message: logger.info("%s", message), answers=answers)


def run_step(scope: PassScope, step: Callable[[Syncer, PassScope, SyncReport], None]) -> SyncReport:
    """Run one of the Syncer's steps over `scope`; returns what it did."""
    report = scope.report()
    syncer = step_syncer()
    try:
        step(syncer, scope, report)
    finally:
        syncer.close()
    return report


# ---------------------------------------------------------------------------------------------------------- tasks

STEP_OPTIONS: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}
OKX_GET_RETRIES: dict[str, Any] = {
    "retries": len(OKX_RETRY_DELAYS),
    "retry_delay_seconds": OKX_RETRY_DELAYS,
    "retry_condition_fn": retry_if_transient,
}
DATABASE_RETRIES: dict[str, Any] = {
    "retries": len(LOAD_RETRY_DELAYS),
    "retry_delay_seconds": LOAD_RETRY_DELAYS,
    "retry_condition_fn": retry_if_database_locked,
}


@task(name="resolve-days", **STEP_OPTIONS)
def resolve_days(begin: date | None, end: date | None, broker_type: BrokerType | None) -> PassScope:
    """The days (default REBATES_START_DATE .. yesterday in REBATES_TZ) and broker scopes of this pass.

    Also where missing credentials are named, before any step calls OKX.
    """
    settings = run_settings()
    settings.require_credentials()
    return pass_scope(settings, run_clock(), begin, end, broker_type)


@task(name="discover", **STEP_OPTIONS, **OKX_GET_RETRIES)
def discover(scope: PassScope) -> SyncReport:
    """List OKX's files (GETs, no create spent), adopt those that fit, plan windows for the days still missing."""
    return run_step(scope, Syncer.discover)


@task(name="create", retries=0, **STEP_OPTIONS)
def create(scope: PassScope) -> SyncReport:
    """Spend the account's one create an hour, if the hour allows. Never retried: a retry could spend the next."""
    return run_step(scope, Syncer.create)


@task(name="poll", **STEP_OPTIONS, **OKX_GET_RETRIES)
def poll(scope: PassScope) -> SyncReport:
    """Ask OKX about every requested window due a poll (2 GETs a minute, shared by every process)."""
    return run_step(scope, Syncer.poll)


@task(name="download", **STEP_OPTIONS, **OKX_GET_RETRIES)
def download(scope: PassScope) -> SyncReport:
    """Download and archive every finished file; a 403 or a cut transfer asks for a fresh link, a failure backs off."""
    return run_step(scope, Syncer.download)


@task(name="load", **STEP_OPTIONS, **DATABASE_RETRIES)
def load(scope: PassScope) -> SyncReport:
    """Parse and load every archived file not loaded yet; quarantine a broken one; refresh rebate_orders."""
    return run_step(scope, Syncer.load)


@task(name="what-is-pending", **STEP_OPTIONS, **DATABASE_RETRIES)
def what_is_pending(scope: PassScope) -> SyncReport:
    """Windows still waiting for OKX, when the next create is allowed, and files overdue."""
    return run_step(scope, Syncer.finish)


@task(name="list-unfinished-windows", **STEP_OPTIONS, **DATABASE_RETRIES)
def list_unfinished_windows(scope: PassScope) -> dict[str, WindowState]:
    """The ledger's windows of the pass's days and scopes that are neither loaded nor quarantined, with their state."""
    settings = base_settings()
    ledger = Ledger(settings.rebates_db, run_clock(), lock_timeout=settings.rebates_db_lock_timeout)
    return {
        record.window_id: record.state
        for record in ledger.windows()
        if record.broker_type in scope.scopes
        and record.begin_date <= scope.end
        and record.end_date >= scope.begin
        and record.state not in DONE_STATES
    }


def sync_pass(
    summary: RunSummary, begin: date | None, end: date | None, broker_type: BrokerType | None
) -> tuple[PassScope, SyncReport] | None:
    """Discover → create → poll → download → load → what is pending, each a task; the pass, or None if a step failed.

    After a failed OKX step the later OKX steps are skipped (a create must not run blind), but the load still runs:
    files archived earlier are loaded whatever OKX says today. The failure is kept in `summary`.
    """
    scope = summary.result_of(resolve_days(begin, end, broker_type, return_state=True))
    if not isinstance(scope, PassScope):
        return None
    report = scope.report()
    for step in (discover, create, poll, download):
        if not summary.add_step(report, step(scope, return_state=True)):
            break
    summary.add_step(report, load(scope, return_state=True))
    summary.add_step(report, what_is_pending(scope, return_state=True))
    summary.reports.append(report)
    return None if summary.failures else (scope, report)


# ---------------------------------------------------------------------------------------------------------- flows


def sync_run_name() -> str:
    """`sync 2025-01-01..2025-03-01` (or `sync api ...`): the days this run covers, defaults resolved."""
    parameters = flow_run.parameters
    return "sync " + describe_range(parameters.get("begin"), parameters.get("end"), parameters.get("broker_type"))


def backfill_run_name() -> str:
    """`backfill api 2024-01-01..2024-06-30`."""
    parameters = flow_run.parameters
    return "backfill " + describe_range(parameters["begin"], parameters["end"], parameters.get("broker_type"))


def describe_range(begin: object, end: object, broker_type: object) -> str:
    """`[type ]begin..end`; a missing begin is REBATES_START_DATE, a missing end yesterday in REBATES_TZ."""
    first, last = begin, end
    if first is None or last is None:
        try:
            settings = base_settings()
        except SettingsError:
            settings = None
        if first is None:
            first = settings.rebates_start_date if settings and settings.rebates_start_date else "start"
        if last is None:
            last = yesterday(run_clock().now(), settings.rebates_tz) if settings else "yesterday"
    prefix = f"{BrokerType(str(broker_type)).value} " if broker_type else ""
    return f"{prefix}{first}..{last}"


@flow(name="sync-rebates", flow_run_name=sync_run_name, persist_result=False)
def sync_rebates(
    begin: date | None = None, end: date | None = None, broker_type: BrokerType | None = None
) -> SyncReport:
    """One acquisition pass (what the hourly schedule runs): discover → create → poll → download → load.

    begin: first day; default REBATES_START_DATE. end: last day; default yesterday in REBATES_TZ.
    broker_type: only `api` or `oauth`; default every type in REBATES_BROKER_TYPES.
    Publishes the `sync-summary` artifact, also when a step fails (the run then fails with that step's error).
    """
    show_pipeline_logs()
    summary = RunSummary(flow_run_name())
    try:
        sync_pass(summary, begin, end, broker_type)
    finally:
        _answers.pop(str(flow_run.id), None)
    summary.publish("sync-summary", "What this sync pass did")
    summary.raise_failure()
    return summary.reports[0]


@flow(name="backfill", flow_run_name=backfill_run_name, persist_result=False)
def backfill(
    begin: date, end: date, broker_type: BrokerType | None = None, max_hours: float = 24.0
) -> list[SyncReport]:
    """Collect begin..end until every window of it is loaded, one create an hour, or until `max_hours` pass.

    Safe beside the hourly `sync-rebates`: both share the account's create hour and the GET budget through the
    ledger and the limiter. Between creates it polls the files already requested every REBATES_POLL_INTERVAL.
    Publishes the `backfill-summary` artifact.
    """
    if end < begin:
        raise ValueError(f"backfill: end {end} is before begin {begin}")
    if max_hours < 0:
        raise ValueError(f"backfill: max_hours must be 0 or more, got {max_hours}")
    show_pipeline_logs()
    clock = run_clock()
    poll_every = timedelta(seconds=base_settings().rebates_poll_interval)
    give_up_at = clock.now() + timedelta(hours=max_hours)
    summary = RunSummary(flow_run_name())
    try:
        while True:
            done = sync_pass(summary, begin, end, broker_type)
            if done is None:
                break
            scope, report = done
            summary.unfinished = list_unfinished_windows(scope)
            if not summary.unfinished or clock.now() >= give_up_at:
                break
            pause = backfill_pause(clock.now(), report.create_next_at, summary.unfinished, give_up_at, poll_every)
            clock.sleep(pause.total_seconds())
            _answers.pop(str(flow_run.id), None)  # links age: each pass asks afresh
    finally:
        _answers.pop(str(flow_run.id), None)
    summary.publish("backfill-summary", f"Backfill of {begin}..{end}")
    summary.raise_failure()
    return summary.reports


def backfill_pause(
    now: datetime,
    next_slot: datetime | None,
    unfinished: dict[str, WindowState],
    give_up_at: datetime,
    poll_every: timedelta = BACKFILL_IDLE_PAUSE,
) -> timedelta:
    """Until the next create slot, or the next poll when a file is awaited; briefly when a window can be created now."""
    if next_slot is not None and next_slot > now:
        pause = next_slot - now
    elif WindowState.PLANNED in unfinished.values():
        pause = BACKFILL_MIN_PAUSE
    else:
        pause = BACKFILL_IDLE_PAUSE
    if any(state in WAITING_FOR_OKX for state in unfinished.values()):
        pause = min(pause, poll_every)
    return max(min(pause, give_up_at - now), BACKFILL_MIN_PAUSE)


def flow_run_name() -> str:
    """This run's name (what the artifact's title repeats)."""
    return str(flow_run.name or flow_run.flow_name)


# ---------------------------------------------------------------------------------------------------------- summary


@dataclass
class RunSummary:
    """What a sync or backfill run did, gathered from its task states, for its markdown artifact."""

    title: str
    reports: list[SyncReport] = field(default_factory=list)
    unfinished: dict[str, WindowState] | None = None
    failures: list[BaseException] = field(default_factory=list)

    def result_of(self, state: State[Any]) -> object:
        """A task's result, or None with its failure recorded."""
        result = state.result(raise_on_failure=False)
        if state.is_completed():
            return result
        self.failures.append(result if isinstance(result, BaseException) else RuntimeError(str(state.message)))
        return None

    def add_step(self, report: SyncReport, state: State[SyncReport]) -> bool:
        """Merge a step's report into its pass's; False (its failure recorded) when the step failed."""
        result = self.result_of(state)
        if isinstance(result, SyncReport):
            report.merge(result)
            return True
        return False

    def raise_failure(self) -> None:
        """Fail the run with the first step's error, once the artifact is out."""
        if self.failures:
            raise self.failures[0]

    def publish(self, key: str, description: str) -> None:
        """Create the run's markdown artifact (nothing in it is secret: window ids, counts, reasons, times)."""
        create_markdown_artifact(markdown=self.markdown(run_clock().now()), key=key, description=description)

    def markdown(self, now: datetime) -> str:
        """The summary as a markdown table, one row per step, then the warnings."""
        failure = str(self.failures[0]) if self.failures else None
        unfinished = None if self.unfinished is None else {k: str(v) for k, v in self.unfinished.items()}
        return summary_markdown(self.title, self.reports, now, failure=failure, unfinished=unfinished)
