"""`rebates serve`: the three deployments and their schedules in one process, without a work pool or a worker."""

from __future__ import annotations

import os
from datetime import timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from flows.reports import build_reports
from flows.sync import backfill, sync_rebates
from pipeline.config import load_settings

HOURLY_SYNC_CRON = "5 * * * *"
"""Five past every hour: the account's create budget is hourly, and a new day's window exists from 00:00."""

DAILY_REPORTS_CRON = "30 6 * * *"
"""06:30 in REBATES_TZ: the day's window, created after midnight and ready ~2 hours later, is loaded by then."""

SYNC_DEPLOYMENT = "hourly"
BACKFILL_DEPLOYMENT = "on-demand"
REPORTS_DEPLOYMENT = "daily"
"""Deployment names, as in prefect.yaml: `sync-rebates/hourly`, `backfill/on-demand`, `build-reports/daily`."""

TAGS = ["okx-rebates"]

ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)
"""Every deployment runs one flow run at a time; a run that would overlap it is cancelled, never queued.

So late runs after an outage do not replay back to back (prefect.yaml says the same; a test checks they agree)."""


def schedule_timezone(tz: tzinfo) -> str:
    """REBATES_TZ as the IANA name Prefect's cron schedules take (`UTC+8` is `Etc/GMT-8`, POSIX's inverted sign)."""
    if isinstance(tz, ZoneInfo):
        return tz.key
    offset = tz.utcoffset(None) if isinstance(tz, timezone) else None
    if offset == timedelta(0):
        return "UTC"
    if offset is not None and offset % timedelta(hours=1) == timedelta(0):
        hours = offset // timedelta(hours=1)
        return f"Etc/GMT{-hours:+d}"
    raise ValueError(
        f"REBATES_TZ={tz} has no IANA name for the schedules; use a whole-hour offset or a name like Asia/Shanghai"
    )


def deployments(schedule_tz: str) -> list[RunnerDeployment]:
    """The deployments `rebates serve` runs: hourly sync, on-demand backfill, daily reports (cron in `schedule_tz`).

    Each runs one flow run at a time (`ONE_AT_A_TIME`); the flows carry their own timeouts (flows/policy.py).
    """
    module = EntrypointType.MODULE_PATH  # the flows load by module name, wherever the package is installed
    return [
        RunnerDeployment.from_flow(
            sync_rebates,
            SYNC_DEPLOYMENT,
            schedules=[Cron(HOURLY_SYNC_CRON, timezone=schedule_tz)],
            tags=TAGS,
            entrypoint_type=module,
            concurrency_limit=ONE_AT_A_TIME,
        ),
        RunnerDeployment.from_flow(
            backfill, BACKFILL_DEPLOYMENT, tags=TAGS, entrypoint_type=module, concurrency_limit=ONE_AT_A_TIME
        ),
        RunnerDeployment.from_flow(
            build_reports,
            REPORTS_DEPLOYMENT,
            schedules=[Cron(DAILY_REPORTS_CRON, timezone=schedule_tz)],
            tags=TAGS,
            entrypoint_type=module,
            concurrency_limit=ONE_AT_A_TIME,
        ),
    ]


def serve_all(*, limit: int | None = None) -> None:
    """Register the three deployments with the Prefect API (PREFECT_API_URL) and run their flows until stopped.

    Reads the settings first, so a missing or malformed one stops it at once with its one-line reason. The
    pipeline's own log lines go to the Prefect API with each run's (PREFECT_LOGGING_EXTRA_LOGGERS=pipeline).
    """
    settings = load_settings()
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "pipeline")
    serve(*deployments(schedule_timezone(settings.rebates_tz)), limit=limit)
