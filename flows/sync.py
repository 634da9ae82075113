"""Prefect flows over the pass runner: `sync_rebates` (hourly) and `backfill` (a date range, until loaded)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from flows.artifacts import BackfillProgress, account_key, publish_window_states
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
from flows.runtime import account_names, base_settings, run_clock, run_settings, show_pipeline_logs
from pipeline.acquire.steps import OkxAnswers, syncer_for
from pipeline.alerts import alerts_for
from pipeline.config import DEFAULT_ACCOUNT, Settings, SettingsError, UsageError
from pipeline.domain import BrokerType
from pipeline.pass_types import PassScope, SyncReport
from pipeline.passes import PassRun, Step, Until, describe_range, drive, pass_scope, prepare, retry_windows, run_step
from pipeline.summary import summary_markdown
from pipeline.windows import RebateWindow

_answers: dict[str, OkxAnswers] = {}
"""What each flow run in this process learnt from OKX (fresh download links), shared by its tasks, by run and account.

A link is a bearer URL to the broker's data, so it never travels as a task parameter or result; a task that runs
elsewhere (a retry in another process) just asks OKX again.
"""


def run_in_task(step: Step, scope: PassScope) -> SyncReport:
    """One step of this flow run, with its settings, clock and logger, and the run's OKX answers."""
    logger = get_run_logger()
    answers = _answers.setdefault(answers_key(str(flow_run.id), scope.account), OkxAnswers())
    syncer = syncer_for(
        run_settings(scope.account), run_clock(), progress=lambda message: logger.info("%s", message), answers=answers
    )
    try:
        return run_step(syncer, step, scope)
    finally:
        syncer.close()


def answers_key(run_id: str, account: str) -> str:
    """Where a run's answers for one account are kept: an account's links are never another's."""
    return f"{run_id}/{account}"


# ---------------------------------------------------------------------------------------------------------- tasks


@task(name="resolve-days", **STEP_OPTIONS, **DATABASE_RETRIES)
def resolve_days(
    begin: date | None,
    end: date | None,
    broker_type: BrokerType | None,
    retry: list[str] | None = None,
    account: str = DEFAULT_ACCOUNT,
) -> PassScope:
    """The account's days (default its REBATES_START_DATE .. yesterday in REBATES_TZ) and broker scopes of this pass.

    Also where a mistyped day, missing credentials (the account's variables or Secret block) or an unwritable path
    are named, before any step calls OKX, and where the account's windows asked for in `retry` are sent back to be
    downloaded and loaded again.
    """
    settings = run_settings(account)
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
    account: str
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
        _answers.pop(answers_key(self.run_id, self.account), None)


def run_passes(
    begin: date | None,
    end: date | None,
    broker_type: BrokerType | None,
    account: str,
    retry: list[str] | None = None,
    after_status: Callable[[PassScope], None] | None = None,
    **drive_options: Any,
) -> PassRun:
    """Resolve one account's days (a task), then drive its pass through the tasks; failures are kept, never raised."""
    state = resolve_days(begin, end, broker_type, retry, account, return_state=True)
    scope = state.result(raise_on_failure=False)
    if not isinstance(scope, PassScope):
        failure = scope if isinstance(scope, Exception) else RuntimeError(str(state.message))
        fallback = PassScope(begin or date.min, end or date.min, (), account)
        return PassRun(fallback, [fallback.report()], [failure])
    steps = TaskSteps(str(flow_run.id), account, after_status)
    try:
        return drive(scope, steps, run_clock(), **drive_options)
    finally:
        steps.forget_answers()


class AccountsFailedError(RuntimeError):
    """Some accounts' passes failed (the others ran to the end); the message names each with its first error."""


def retry_by_account(retry: list[str] | None, names: list[str]) -> dict[str, list[str]]:
    """The window ids of `retry` by the account each names; a malformed id, or another account's, is a UsageError."""
    grouped: dict[str, list[str]] = {name: [] for name in names}
    for window_id in retry or []:
        try:
            account = RebateWindow.parse(window_id).account
        except ValueError as exc:
            raise UsageError(f"retry: {exc}") from None
        if account not in grouped:
            raise UsageError(
                f"retry: {window_id} is a window of account {account}, and this run covers {', '.join(names)}"
            )
        grouped[account].append(window_id)
    return grouped


def raise_failures(runs: dict[str, PassRun]) -> None:
    """Fail the flow run when any account failed: with its own error for one account, else naming every one."""
    failed = {name: run for name, run in runs.items() if run.failures}
    if not failed:
        return
    if len(runs) == 1:
        next(iter(failed.values())).raise_failure()
    reasons = "; ".join(f"{name}: {run.failures[0]}" for name, run in failed.items())
    raise AccountsFailedError(f"{len(failed)} of {len(runs)} accounts failed ({', '.join(failed)}): {reasons}")


# ---------------------------------------------------------------------------------------------------------- flows


def sync_run_name() -> str:
    """`sync 2025-01-01..2025-03-01` (or `sync api ...`): the days this run covers, defaults resolved."""
    return "sync " + run_range()


def backfill_run_name() -> str:
    """`backfill api 2024-01-01..2024-06-30`."""
    return "backfill " + run_range()


def run_range() -> str:
    """This run's accounts (when named), days and broker type: `eu api 2024-01-01..2024-06-30`."""
    parameters = flow_run.parameters
    account = parameters.get("account")
    try:
        names = account_names(account)
        settings: Settings | None = base_settings(names[0])
    except SettingsError:
        names, settings = [str(account or DEFAULT_ACCOUNT)], None
    prefix = "" if names == [DEFAULT_ACCOUNT] else "+".join(names) + " "
    broker_type = parameters.get("broker_type")
    return prefix + describe_range(
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
    account: str | None = None,
) -> SyncReport | dict[str, SyncReport]:
    """One acquisition pass per account (what the hourly schedule runs): discover → create → poll → download → load.

    begin: first day; default the account's REBATES_START_DATE. end: last day; default yesterday in REBATES_TZ.
    broker_type: only `api` or `oauth`; default every type in REBATES_BROKER_TYPES.
    retry: failed or quarantined window ids to download and load again in this pass (as `rebates retry`).
    account: only this account (a name in REBATES_ACCOUNTS); default every account, one after another.
    Publishes each account's `sync-summary` and `window-states` artifacts (`…-<account>` for a named account) and
    the alerts' events, also when a step fails. A failed account does not stop the next; the run then fails with
    its error (naming every failed account when there are several). Returns the report, or each account's.
    Times out after SYNC_TIMEOUT, before the next hour's run is due.
    """
    show_pipeline_logs()
    names = account_names(account)
    retries = retry_by_account(retry, names)
    runs: dict[str, PassRun] = {}
    for name in names:
        runs[name] = run_passes(begin, end, broker_type, name, retry=retries[name], until=Until.SINGLE)
        publish(runs[name], "sync-summary", "What this sync pass did", unfinished=False)
    raise_failures(runs)
    reports = {name: run.report for name, run in runs.items()}
    return reports[names[0]] if len(names) == 1 else reports


@flow(
    name="backfill",
    flow_run_name=backfill_run_name,
    persist_result=False,
    timeout_seconds=BACKFILL_TIMEOUT.total_seconds(),
)
def backfill(
    begin: date,
    end: date,
    broker_type: BrokerType | None = None,
    max_hours: float = 24.0,
    account: str | None = None,
) -> list[SyncReport] | dict[str, list[SyncReport]]:
    """Collect begin..end until every window of it is loaded, one create an hour, or until `max_hours` pass.

    account: only this account; default every account, one after another, all within `max_hours` (a backfill
    per account, at once, is each account's own deployment: `backfill/on-demand-<account>`).
    Safe beside the hourly `sync-rebates`: both share the account's create hour and the GET budget through the
    ledger and the limiter. Between creates it polls the files already requested every REBATES_POLL_INTERVAL.
    Publishes each account's `backfill-summary`, `window-states` and `backfill-progress` (after each pass)
    artifacts (`…-<account>` for a named account). A failed account does not stop the next.
    """
    if not 0 <= max_hours <= BACKFILL_MAX_HOURS:
        raise ValueError(
            f"backfill: max_hours must be 0 to {BACKFILL_MAX_HOURS} (the flow's timeout is an hour more), got "
            f"{max_hours}; run another backfill afterwards for the rest"
        )
    show_pipeline_logs()
    names = account_names(account)
    clock = run_clock()
    stop_at = clock.now() + timedelta(hours=max_hours)
    runs: dict[str, PassRun] = {}
    for name in names:
        progress = BackfillProgress(begin, end, name)
        runs[name] = run_passes(
            begin,
            end,
            broker_type,
            name,
            after_status=progress.update,
            until=Until.LOADED,
            deadline=max(stop_at - clock.now(), timedelta(0)),
        )
        publish(runs[name], "backfill-summary", f"Backfill of {begin}..{end}", unfinished=True)
    raise_failures(runs)
    reports = {name: run.reports for name, run in runs.items()}
    return reports[names[0]] if len(names) == 1 else reports


def publish(run: PassRun, key: str, description: str, *, unfinished: bool) -> None:
    """One account's artifacts and its alerts' events (nothing secret in them: window ids, counts, reasons, times)."""
    account = run.scope.account
    title = str(flow_run.name or flow_run.flow_name)
    if account != DEFAULT_ACCOUNT:
        title += f" (account {account})"
        description = f"Account {account}: {description[0].lower()}{description[1:]}"
    completed = [report for report in run.reports if report.begin != date.min]
    failure = str(run.failures[0]) if run.failures else None
    markdown = summary_markdown(
        title,
        completed,
        run_clock().now(),
        failure=failure,
        unfinished=(completed[-1].unfinished if completed else {}) if unfinished else None,
    )
    create_markdown_artifact(markdown=markdown, key=account_key(key, account), description=description)
    emit_alerts(alerts_for(completed, run.failures, flow_run.flow_name or "sync", account))
    if run.scope.scopes:
        publish_window_states(run.scope)
