"""Prefect flows over the pass runner: `sync_rebates` (hourly) and `backfill` (a date range, until loaded)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from flows.artifacts import BackfillProgress, publish_window_states
from flows.events import emit_alerts
from flows.policy import (
    BACKFILL_MAX_HOURS,
    BACKFILL_TIMEOUT,
    DATABASE_RETRIES,
    NO_RETRIES,
    OKX_GET_RETRIES,
    STEP_OPTIONS,
    SYNC_TIMEOUT,
)
from flows.runtime import base_settings, run_clock, run_settings, show_pipeline_logs
from pipeline.acquire.steps import OkxAnswers, PassScope, SyncReport, syncer_for
from pipeline.alerts import alerts_for
from pipeline.config import SettingsError
from pipeline.okx.limits import BrokerType
from pipeline.passes import PassRun, Step, Until, describe_range, drive, pass_scope, prepare, retry_windows, run_step
from pipeline.summary import summary_markdown

_answers: dict[str, OkxAnswers] = {}
"""What each flow run in this process learnt from OKX (fresh download links), shared by its tasks, by run id.

A link is a bearer URL to the broker's data, so it never travels as a task parameter or result; a task that runs
elsewhere (a retry in another process) just asks OKX again.
"""


def run_in_task(step: Step, scope: PassScope) -> SyncReport:
    """One step of this flow run, with its settings, clock and logger, and the run's OKX answers."""
    logger = get_run_logger()
    answers = _answers.setdefault(str(flow_run.id), OkxAnswers())
    syncer = syncer_for(
        run_settings(), run_clock(), progress=lambda message: logger.info("%s", message), answers=answers
    )
    try:
        return run_step(syncer, step, scope)
    finally:
        syncer.close()


# ---------------------------------------------------------------------------------------------------------- tasks


@task(name="resolve-days", **STEP_OPTIONS, **DATABASE_RETRIES)
def resolve_days(
    begin: date | None, end: date | None, broker_type: BrokerType | None, retry: list[str] | None = None
) -> PassScope:
    """The days (default REBATES_START_DATE .. yesterday in REBATES_TZ) and broker scopes of this pass.

    Also where a mistyped day, missing credentials or an unwritable path are named, before any step calls OKX,
    and where the windows asked for in `retry` are sent back to be downloaded and loaded again.
    """
    settings = run_settings()
    scope = pass_scope(settings, run_clock(), begin, end, broker_type)
    prepare(settings)
    if retry:
        retry_windows(settings, run_clock(), retry)
    return scope


@task(name="discover", **STEP_OPTIONS, **OKX_GET_RETRIES)
def discover(scope: PassScope) -> SyncReport:
    """List OKX's files (GETs, no create spent), adopt those that fit, plan windows for the days still missing."""
    return run_in_task(Step.DISCOVER, scope)


@task(name="create", **STEP_OPTIONS, **NO_RETRIES)
def create(scope: PassScope) -> SyncReport:
    """Spend the account's one create an hour, if the hour allows. Never retried: a retry could spend the next."""
    return run_in_task(Step.CREATE, scope)


@task(name="poll", **STEP_OPTIONS, **OKX_GET_RETRIES)
def poll(scope: PassScope) -> SyncReport:
    """Ask OKX about every requested window due a poll (2 GETs a minute, shared by every process)."""
    return run_in_task(Step.POLL, scope)


@task(name="download", **STEP_OPTIONS, **OKX_GET_RETRIES)
def download(scope: PassScope) -> SyncReport:
    """Download and archive every finished file; a 403 or a cut transfer asks for a fresh link, a failure backs off."""
    return run_in_task(Step.DOWNLOAD, scope)


@task(name="load", **STEP_OPTIONS, **DATABASE_RETRIES)
def load(scope: PassScope) -> SyncReport:
    """Parse and load every archived file not loaded yet; quarantine a broken one; refresh rebate_orders."""
    return run_in_task(Step.LOAD, scope)


@task(name="what-is-pending", **STEP_OPTIONS, **DATABASE_RETRIES)
def what_is_pending(scope: PassScope) -> SyncReport:
    """Windows still waiting for OKX or unfinished, when the next create and poll are due, and files overdue."""
    return run_in_task(Step.FINISH, scope)


TASKS = {
    Step.DISCOVER: discover,
    Step.CREATE: create,
    Step.POLL: poll,
    Step.DOWNLOAD: download,
    Step.LOAD: load,
    Step.FINISH: what_is_pending,
}


@dataclass
class TaskSteps:
    """The pass runner's steps as this flow run's Prefect tasks."""

    run_id: str
    after_status: Callable[[PassScope], None] | None = None
    """Called after each what-is-pending step (the backfill moves its progress bar)."""

    def run(self, step: Step, scope: PassScope) -> SyncReport:
        """Run the step's task; its failure (after Prefect's retries) is raised here."""
        result: SyncReport = TASKS[step](scope, return_state=True).result()
        if step is Step.FINISH and self.after_status is not None:
            self.after_status(scope)
        return result

    def forget_answers(self) -> None:
        """Links age: the next round asks OKX afresh."""
        _answers.pop(self.run_id, None)


def run_passes(
    begin: date | None,
    end: date | None,
    broker_type: BrokerType | None,
    retry: list[str] | None = None,
    after_status: Callable[[PassScope], None] | None = None,
    **drive_options: Any,
) -> PassRun:
    """Resolve the pass's days (a task), then drive it through the tasks; the run is published, never raised here."""
    state = resolve_days(begin, end, broker_type, retry, return_state=True)
    scope = state.result(raise_on_failure=False)
    if not isinstance(scope, PassScope):
        failure = scope if isinstance(scope, Exception) else RuntimeError(str(state.message))
        fallback = PassScope(begin or date.min, end or date.min, ())
        return PassRun(fallback, [fallback.report()], [failure])
    steps = TaskSteps(str(flow_run.id), after_status)
    try:
        return drive(scope, steps, run_clock(), **drive_options)
    finally:
        steps.forget_answers()


# ---------------------------------------------------------------------------------------------------------- flows


def sync_run_name() -> str:
    """`sync 2025-01-01..2025-03-01` (or `sync api ...`): the days this run covers, defaults resolved."""
    return "sync " + run_range()


def backfill_run_name() -> str:
    """`backfill api 2024-01-01..2024-06-30`."""
    return "backfill " + run_range()


def run_range() -> str:
    """This run's days and broker type, as `describe_range` writes them."""
    parameters = flow_run.parameters
    try:
        settings = base_settings()
    except SettingsError:
        settings = None
    broker_type = parameters.get("broker_type")
    return describe_range(
        settings,
        run_clock(),
        _day(parameters.get("begin")),
        _day(parameters.get("end")),
        BrokerType(str(broker_type)) if broker_type else None,
    )


def _day(value: object) -> date | None:
    return value if isinstance(value, date) else (date.fromisoformat(value) if isinstance(value, str) else None)


@flow(
    name="sync-rebates",
    flow_run_name=sync_run_name,
    persist_result=False,
    timeout_seconds=SYNC_TIMEOUT.total_seconds(),
)
def sync_rebates(
    begin: date | None = None,
    end: date | None = None,
    broker_type: BrokerType | None = None,
    retry: list[str] | None = None,
) -> SyncReport:
    """One acquisition pass (what the hourly schedule runs): discover → create → poll → download → load.

    begin: first day; default REBATES_START_DATE. end: last day; default yesterday in REBATES_TZ.
    broker_type: only `api` or `oauth`; default every type in REBATES_BROKER_TYPES.
    retry: failed or quarantined window ids to download and load again in this pass (as `rebates retry`).
    Publishes the `sync-summary` and `window-states` artifacts and the alerts' events, also when a step fails (the
    run then fails with that step's error). Times out after SYNC_TIMEOUT, before the next hour's run is due.
    """
    show_pipeline_logs()
    run = run_passes(begin, end, broker_type, retry=retry, until=Until.SINGLE)
    publish(run, "sync-summary", "What this sync pass did", unfinished=False)
    run.raise_failure()
    return run.report


@flow(
    name="backfill",
    flow_run_name=backfill_run_name,
    persist_result=False,
    timeout_seconds=BACKFILL_TIMEOUT.total_seconds(),
)
def backfill(
    begin: date, end: date, broker_type: BrokerType | None = None, max_hours: float = 24.0
) -> list[SyncReport]:
    """Collect begin..end until every window of it is loaded, one create an hour, or until `max_hours` pass.

    Safe beside the hourly `sync-rebates`: both share the account's create hour and the GET budget through the
    ledger and the limiter. Between creates it polls the files already requested every REBATES_POLL_INTERVAL.
    Publishes the `backfill-summary`, `window-states` and `backfill-progress` (after each pass) artifacts.
    """
    if not 0 <= max_hours <= BACKFILL_MAX_HOURS:
        raise ValueError(
            f"backfill: max_hours must be 0 to {BACKFILL_MAX_HOURS} (the flow's timeout is an hour more), got "
            f"{max_hours}; run another backfill afterwards for the rest"
        )
    show_pipeline_logs()
    progress = BackfillProgress(begin, end)
    run = run_passes(
        begin, end, broker_type, after_status=progress.update, until=Until.LOADED, deadline=timedelta(hours=max_hours)
    )
    publish(run, "backfill-summary", f"Backfill of {begin}..{end}", unfinished=True)
    run.raise_failure()
    return run.reports


def publish(run: PassRun, key: str, description: str, *, unfinished: bool) -> None:
    """The run's artifacts and its alerts' events (nothing in them is secret: window ids, counts, reasons, times)."""
    title = str(flow_run.name or flow_run.flow_name)
    completed = [report for report in run.reports if report.begin != date.min]
    failure = str(run.failures[0]) if run.failures else None
    markdown = summary_markdown(
        title,
        completed,
        run_clock().now(),
        failure=failure,
        unfinished=(completed[-1].unfinished if completed else {}) if unfinished else None,
    )
    create_markdown_artifact(markdown=markdown, key=key, description=description)
    emit_alerts(alerts_for(completed, run.failures, flow_run.flow_name or "sync"))
    if run.scope.scopes:
        publish_window_states(run.scope)
