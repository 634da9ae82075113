"""`rebates serve`: the deployments and their schedules in one process, without a work pool or a worker."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from prefect import Flow, serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from flows.deployments import COLLISION_STRATEGY, CONCURRENCY_LIMIT, TAGS, deployment_specs, schedule_timezone
from flows.reports import build_reports
from flows.statements import build_statements
from flows.sync import backfill, sync_rebates
from pipeline.config import load_settings

__all__ = ["ONE_AT_A_TIME", "deployments", "schedule_timezone", "serve_all"]

ONE_AT_A_TIME = ConcurrencyLimitConfig(
    limit=CONCURRENCY_LIMIT, collision_strategy=ConcurrencyLimitStrategy(COLLISION_STRATEGY)
)
"""Every deployment runs one flow run at a time; a run that would overlap it is cancelled, never queued.

So late runs after an outage do not replay back to back (prefect.yaml says the same; a test checks they agree)."""

FLOWS: dict[str, Flow[..., Any]] = {
    flow.name: flow for flow in (sync_rebates, backfill, build_reports, build_statements)
}


def deployments(schedule_tz: str, accounts: Sequence[str] = ()) -> list[RunnerDeployment]:
    """The deployments `rebates serve` runs (`flows/deployments.py`), cron schedules in `schedule_tz`.

    Without accounts: hourly sync, on-demand backfill, daily reports, month-end statements. With REBATES_ACCOUNTS: an
    hourly sync and an on-demand backfill per account (`hourly-eu`, parameter account=eu), then the daily reports and
    the month-end statements. Each runs one flow
    run at a time (`ONE_AT_A_TIME`); the flows carry their own timeouts (flows/policy.py).
    """
    module = EntrypointType.MODULE_PATH  # the flows load by module name, wherever the package is installed
    return [
        RunnerDeployment.from_flow(
            FLOWS[spec.flow_name],
            spec.name,
            schedules=[Cron(spec.cron, timezone=schedule_tz)] if spec.cron else None,
            parameters=spec.parameters or None,
            description=spec.description,
            tags=TAGS,
            entrypoint_type=module,
            concurrency_limit=ONE_AT_A_TIME,
        )
        for spec in deployment_specs(accounts)
    ]


def serve_all(*, limit: int | None = None) -> None:
    """Register the deployments with the Prefect API (PREFECT_API_URL) and run their flows until stopped.

    Reads the settings first, so a missing or malformed one stops it at once with its one-line reason. With
    REBATES_ACCOUNTS, one hourly sync and one backfill deployment per account. The pipeline's own log lines go to
    the Prefect API with each run's (PREFECT_LOGGING_EXTRA_LOGGERS=pipeline).
    """
    settings = load_settings()
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "pipeline")
    serve(*deployments(schedule_timezone(settings.rebates_tz), settings.rebates_accounts), limit=limit)
