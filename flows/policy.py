"""The flows' retry and timeout policy, in one place: which failures Prefect retries, how often, how long runs last."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect import State, Task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun

from pipeline.db import DatabaseLockedError
from pipeline.okx.errors import OkxTransientError

LOAD_RETRY_DELAYS: list[float] = [30, 120, 300]
"""Seconds before each retry of a task that found the database held by another process past its own wait."""

OKX_RETRY_DELAYS: list[float] = [60, 300]
"""Seconds before each retry of a GET step that OKX kept failing (the client already retried it within seconds)."""


def retry_if_database_locked(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect's retry condition: retry only when another process held the database past its wait."""
    return isinstance(state.result(raise_on_failure=False), DatabaseLockedError)


def retry_if_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect's retry condition for the GET steps: OKX or the network failing for now, or the database held.

    Never a refusal (credentials, permissions, a bad request): retrying those would only repeat the refusal.
    """
    return isinstance(state.result(raise_on_failure=False), OkxTransientError | DatabaseLockedError)


STEP_OPTIONS: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}
"""Every task: never cached (each run must act on the ledger as it is now), results kept in memory only."""

OKX_GET_RETRIES: dict[str, Any] = {
    "retries": len(OKX_RETRY_DELAYS),
    "retry_delay_seconds": OKX_RETRY_DELAYS,
    "retry_condition_fn": retry_if_transient,
}
"""The GET steps (discover, poll, download): retried when OKX or the database is failing for now."""

DATABASE_RETRIES: dict[str, Any] = {
    "retries": len(LOAD_RETRY_DELAYS),
    "retry_delay_seconds": LOAD_RETRY_DELAYS,
    "retry_condition_fn": retry_if_database_locked,
}
"""The steps that only use the database (load, what-is-pending, the reports): retried while it is held."""

NO_RETRIES: dict[str, Any] = {"retries": 0}
"""The create: never retried, since a retry could spend the next hour's create."""

SYNC_TIMEOUT = timedelta(minutes=50)
"""An hourly pass that has not finished in 50 minutes is stopped (failed as TimedOut), before the next one is due.

The deployments drop a run that would overlap a running one, so a hung pass must end to let the next hours run."""

BACKFILL_MAX_HOURS = 48.0
"""The longest `max_hours` a backfill accepts (two days of hourly creates: 96 windows of up to 180 days)."""

BACKFILL_TIMEOUT = timedelta(hours=BACKFILL_MAX_HOURS + 1)
"""A backfill stops itself at `max_hours`; this stops one that hangs, an hour after the longest allowed."""

REPORTS_TIMEOUT = timedelta(minutes=30)
"""The daily reports query one day (or one month) once; half an hour means something hangs."""

STATEMENTS_TIMEOUT = timedelta(hours=1)
"""The month-end statements read the month's rows once per broker code and each of its files again; an hour means
something hangs."""
