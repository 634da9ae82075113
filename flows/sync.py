"""Prefect flows over the acquisition pass: `sync_rebates` (hourly) and `backfill` (a date range, until loaded)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from prefect import State, Task, flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.blocks.system import Secret
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.runtime import flow_run

from pipeline.clock import SystemClock
from pipeline.config import BrokerType, Settings, SettingsError, load_settings
from pipeline.db import DatabaseLockedError
from pipeline.ingest import IngestOutcome, ingest_due
from pipeline.ledger import Ledger, WindowState
from pipeline.okx.limits import CREATE_INTERVAL
from pipeline.sync import SyncReport, broker_scope, syncer_for
from pipeline.windows import DEFAULT_SCOPE, yesterday

CREDENTIALS_BLOCK_VARIABLE = "REBATES_CREDENTIALS_BLOCK"
"""Names a Prefect Secret block holding the OKX credentials, used instead of OKX_API_KEY & co. when set."""

CREDENTIAL_FIELDS = {
    "okx_api_key": "OKX_API_KEY",
    "okx_secret_key": "OKX_SECRET_KEY",
    "okx_passphrase": "OKX_PASSPHRASE",
}
"""Settings field → the key it has in the Secret block's JSON object (the same names as the variables)."""

DONE_STATES = frozenset({WindowState.LOADED, WindowState.QUARANTINED})
"""A backfill stops waiting for a window in these states (a quarantined file needs a person, not another pass)."""

BACKFILL_IDLE_PAUSE = timedelta(minutes=5)
"""How long a backfill pauses when nothing can move sooner (say, a failed download waiting for its retry time)."""

BACKFILL_MIN_PAUSE = timedelta(seconds=10)
"""The shortest pause between two backfill passes, so a backfill can never spin."""

LOAD_RETRY_DELAYS: list[float] = [30, 120, 300]
"""Seconds before each retry of a task that found the database held by another process past its own wait."""


def run_settings() -> Settings:
    """The settings from the worker's environment (and `.env`); the OKX credentials from a Secret block if one is named.

    With REBATES_CREDENTIALS_BLOCK=<name>, the block must hold a JSON object with OKX_API_KEY, OKX_SECRET_KEY and
    OKX_PASSPHRASE; it wins over the variables. Nothing read here is ever passed on as a parameter.
    """
    settings = load_settings()
    block_name = os.environ.get(CREDENTIALS_BLOCK_VARIABLE, "").strip()
    if not block_name:
        return settings
    try:
        value: Any = Secret.load(block_name).get()  # type: ignore[union-attr]
    except ValueError:
        raise SettingsError(
            f"{CREDENTIALS_BLOCK_VARIABLE}={block_name}: no Prefect Secret block has that name (docs/operations.md "
            "shows how to create it)"
        ) from None
    keys = list(CREDENTIAL_FIELDS.values())
    if not isinstance(value, dict) or not all(isinstance(value.get(key), str) and value[key] for key in keys):
        raise SettingsError(
            f"{CREDENTIALS_BLOCK_VARIABLE}={block_name}: the Secret block must hold a JSON object with "
            f"{', '.join(keys)}"
        )
    return settings.replace(**{name: value[key] for name, key in CREDENTIAL_FIELDS.items()})


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


# ---------------------------------------------------------------------------------------------------------- tasks


@task(name="acquisition-pass", retries=0, cache_policy=NO_CACHE, persist_result=False)
def run_acquisition_pass(
    begin: date | None, end: date | None, broker_type: BrokerType | None, wait_until: datetime | None = None
) -> SyncReport:
    """Discover OKX's files, plan windows, spend the hourly create, poll, download and load: one `rebates sync`.

    Never retried by Prefect: it may spend the account's one create an hour (the client already retries transient
    GETs, and the ledger resumes whatever a failed pass left). With `wait_until`, keeps polling requested files
    within OKX's limits until they are loaded or that time comes.
    """
    logger = get_run_logger()
    settings = run_settings()
    settings.require_credentials()
    clock = SystemClock()
    wait_for = max(wait_until - clock.now(), timedelta(0)) if wait_until is not None else timedelta(0)
    syncer = syncer_for(settings, clock, progress=lambda message: logger.info("%s", message))
    try:
        return syncer.run(
            begin=begin, end=end, broker_type=broker_type, wait=wait_for > timedelta(0), deadline=wait_for
        )
    finally:
        syncer.close()


@task(
    name="load-archived-files",
    retries=len(LOAD_RETRY_DELAYS),
    retry_delay_seconds=LOAD_RETRY_DELAYS,
    retry_condition_fn=retry_if_database_locked,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def load_archived_files(broker_type: BrokerType | None) -> list[IngestOutcome]:
    """Load every archived file not loaded yet (one a failed pass left behind, or a failed load now due again)."""
    settings = load_settings()
    clock = SystemClock()
    ledger = Ledger(settings.rebates_db, clock, lock_timeout=settings.rebates_db_lock_timeout)
    scopes = {broker_scope(broker_type)} if broker_type is not None else None
    return ingest_due(settings, ledger, clock, scopes=scopes)


@task(
    name="list-unfinished-windows",
    retries=len(LOAD_RETRY_DELAYS),
    retry_delay_seconds=LOAD_RETRY_DELAYS,
    retry_condition_fn=retry_if_database_locked,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def list_unfinished_windows(begin: date, end: date, broker_type: BrokerType | None) -> dict[str, WindowState]:
    """The ledger's windows overlapping begin..end that are neither loaded nor quarantined, with their state."""
    settings = load_settings()
    if broker_type is not None:
        scopes = [broker_scope(broker_type)]
    else:
        scopes = [broker_scope(item) for item in settings.rebates_broker_types] or [DEFAULT_SCOPE]
    ledger = Ledger(settings.rebates_db, SystemClock(), lock_timeout=settings.rebates_db_lock_timeout)
    return {
        record.window_id: record.state
        for record in ledger.windows()
        if record.broker_type in scopes
        and record.begin_date <= end
        and record.end_date >= begin
        and record.state not in DONE_STATES
    }


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
            settings = load_settings()
        except SettingsError:
            settings = None
        if first is None:
            first = settings.rebates_start_date if settings and settings.rebates_start_date else "start"
        if last is None:
            last = yesterday(SystemClock().now(), settings.rebates_tz) if settings else "yesterday"
    prefix = f"{BrokerType(str(broker_type)).value} " if broker_type else ""
    return f"{prefix}{first}..{last}"


@flow(name="sync-rebates", flow_run_name=sync_run_name, persist_result=False)
def sync_rebates(
    begin: date | None = None, end: date | None = None, broker_type: BrokerType | None = None
) -> SyncReport:
    """One acquisition pass (what the hourly schedule runs), then load anything archived but not loaded.

    begin: first day; default REBATES_START_DATE. end: last day; default yesterday in REBATES_TZ.
    broker_type: only `api` or `oauth`; default every type in REBATES_BROKER_TYPES.
    Publishes the `sync-summary` artifact, also when a step fails (the run then fails with that step's error).
    """
    show_pipeline_logs()
    passed = run_acquisition_pass(begin, end, broker_type, return_state=True)
    loaded = load_archived_files(broker_type, return_state=True)
    summary = RunSummary(flow_run_name())
    summary.add_pass(passed)
    summary.add_loads(loaded)
    summary.publish("sync-summary", "What this sync pass did")
    summary.raise_failure()
    return summary.reports[0]


@flow(name="backfill", flow_run_name=backfill_run_name, persist_result=False)
def backfill(
    begin: date, end: date, broker_type: BrokerType | None = None, max_hours: float = 24.0
) -> list[SyncReport]:
    """Collect begin..end until every window of it is loaded, one create an hour, or until `max_hours` pass.

    Safe beside the hourly `sync-rebates`: both share the account's create hour and the database through the
    ledger. Between creates it keeps polling the files already requested. Publishes the `backfill-summary` artifact.
    """
    if end < begin:
        raise ValueError(f"backfill: end {end} is before begin {begin}")
    if max_hours < 0:
        raise ValueError(f"backfill: max_hours must be 0 or more, got {max_hours}")
    show_pipeline_logs()
    clock = SystemClock()
    give_up_at = clock.now() + timedelta(hours=max_hours)
    summary = RunSummary(flow_run_name())
    next_slot: datetime | None = None
    while True:
        now = clock.now()
        # Poll what is requested until the next create slot: an hour from now if this pass can create.
        next_create_at = next_slot if next_slot is not None and next_slot > now else now + CREATE_INTERVAL
        wait_until = min(next_create_at, give_up_at)
        passed = run_acquisition_pass(begin, end, broker_type, wait_until, return_state=True)
        if not summary.add_pass(passed):
            break
        summary.unfinished = list_unfinished_windows(begin, end, broker_type)
        if not summary.unfinished or clock.now() >= give_up_at:
            break
        next_slot = summary.reports[-1].create_next_at
        clock.sleep(backfill_pause(clock.now(), next_slot, summary.unfinished, give_up_at).total_seconds())
    summary.publish("backfill-summary", f"Backfill of {begin}..{end}")
    summary.raise_failure()
    return summary.reports


def backfill_pause(
    now: datetime, next_slot: datetime | None, unfinished: dict[str, WindowState], give_up_at: datetime
) -> timedelta:
    """Until the next create slot; briefly when a planned window can be created now; else the idle pause."""
    if next_slot is not None and next_slot > now:
        pause = next_slot - now
    elif WindowState.PLANNED in unfinished.values():
        pause = BACKFILL_MIN_PAUSE
    else:
        pause = BACKFILL_IDLE_PAUSE
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
    loads: list[IngestOutcome] = field(default_factory=list)
    unfinished: dict[str, WindowState] | None = None
    failures: list[BaseException] = field(default_factory=list)

    def add_pass(self, state: State[SyncReport]) -> bool:
        """Record a pass's report, or its failure (False)."""
        result = state.result(raise_on_failure=False)
        if isinstance(result, SyncReport):
            self.reports.append(result)
            return True
        self.failures.append(result if isinstance(result, BaseException) else RuntimeError(str(state.message)))
        return False

    def add_loads(self, state: State[list[IngestOutcome]]) -> None:
        """Record what the catch-up load did, or its failure."""
        result = state.result(raise_on_failure=False)
        if isinstance(result, list):
            self.loads += result
        else:
            self.failures.append(result if isinstance(result, BaseException) else RuntimeError(str(state.message)))

    def raise_failure(self) -> None:
        """Fail the run with the first step's error, once the artifact is out."""
        if self.failures:
            raise self.failures[0]

    def publish(self, key: str, description: str) -> None:
        """Create the run's markdown artifact (nothing in it is secret: window ids, counts, reasons, times)."""
        create_markdown_artifact(markdown=self.markdown(SystemClock().now()), key=key, description=description)

    def markdown(self, now: datetime) -> str:
        """The summary as a markdown table, one row per step, then the warnings."""
        reports = self.reports
        loaded = {window: rows for report in reports for window, rows in report.loaded.items()}
        quarantined = {window: reason for report in reports for window, reason in report.quarantined.items()}
        failed = {window: reason for report in reports for window, reason in report.failed.items()}
        polled = {window: answer for report in reports for window, answer in report.polled.items()}
        for outcome in self.loads:
            if outcome.result is not None:
                loaded[outcome.window_id] = outcome.result.rows_loaded
            elif outcome.state is WindowState.QUARANTINED:
                quarantined[outcome.window_id] = outcome.reason or ""
            else:
                failed[outcome.window_id] = outcome.reason or ""
        last = reports[-1] if reports else None
        rows: list[tuple[str, Sequence[str] | str]] = [
            ("passes", f"{len(reports)} completed" + (f", then: {self.failures[0]}" if self.failures else "")),
            ("adopted (files OKX already had)", [window for report in reports for window in report.adopted]),
            ("planned", [window for report in reports for window in report.planned]),
            (
                "created",
                [f"{report.created} ({report.create_outcome})" for report in reports if report.created is not None],
            ),
            ("polled", [f"{window}: {answer}" for window, answer in polled.items()]),
            ("downloaded", [window for report in reports for window in report.downloaded]),
            ("loaded (rows)", [f"{window}: {rows:,}" for window, rows in loaded.items()]),
            ("quarantined", [f"{window}: {reason}" for window, reason in quarantined.items()]),
            ("failed", [f"{window}: {reason}" for window, reason in failed.items()]),
            ("pending (waiting for OKX)", last.pending if last else []),
        ]
        if self.unfinished is not None:
            rows.append(("unfinished in range", [f"{window}: {state}" for window, state in self.unfinished.items()]))
        rows.append(("next create allowed", next_create(last.create_next_at if last else None, now)))
        lines = [f"# {self.title}", "", "| step | result |", "|---|---|"]
        lines += [f"| {label} | {cell(value)} |" for label, value in rows]
        warnings = list(dict.fromkeys(warning for report in reports for warning in report.warnings))
        if warnings:
            lines += ["", "## Warnings", "", *(f"- {one_line(warning)}" for warning in warnings)]
        return "\n".join(lines) + "\n"


def next_create(moment: datetime | None, now: datetime) -> str:
    """When the account's next create is allowed, in UTC."""
    if moment is None or moment <= now:
        return "now"
    return f"{moment:%Y-%m-%d %H:%M} UTC (in {round((moment - now).total_seconds() / 60)} min)"


def cell(value: Sequence[str] | str) -> str:
    """A table cell: items joined by line breaks, `-` when empty, pipes escaped."""
    if isinstance(value, str):
        return one_line(value) or "-"
    return "<br>".join(one_line(item) for item in value) or "-"


def one_line(text: str) -> str:
    """Text safe inside a markdown table row."""
    return " ".join(str(text).split()).replace("|", "\\|")
