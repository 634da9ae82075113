"""The flows' retry policy, in one place: which failures Prefect retries, how often, and after how long."""

from __future__ import annotations

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
