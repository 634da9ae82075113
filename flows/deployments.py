"""The deployments, named once: what `rebates serve` runs, and the prefect.yaml `rebates deployments` writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

HOURLY_SYNC_CRON = "5 * * * *"
"""Five past every hour: the account's create budget is hourly, and a new day's window exists from 00:00."""

DAILY_REPORTS_CRON = "30 6 * * *"
"""06:30 in REBATES_TZ: the day's window, created after midnight and ready ~2 hours later, is loaded by then."""

MONTH_END_STATEMENTS_CRON = "0 9 2 * *"
"""09:00 on the 2nd in REBATES_TZ: the month's last day's window is created after midnight on the 1st and loaded by the
daily run; a day later leaves room for a late file (the statements warn about any day still missing)."""

SYNC_DEPLOYMENT = "hourly"
BACKFILL_DEPLOYMENT = "on-demand"
REPORTS_DEPLOYMENT = "daily"
STATEMENTS_DEPLOYMENT = "month-end"
"""Deployment names, as in prefect.yaml: `sync-rebates/hourly`, `backfill/on-demand`, `build-reports/daily`,
`build-statements/month-end`.

With REBATES_ACCOUNTS, the sync and the backfill are deployed once per account: `sync-rebates/hourly-eu`."""

TAGS = ["okx-rebates"]
"""Every deployment's tag: the crash / time-out automation (`rebates alerts install`) matches it."""

POOL = "rebates-process"
"""The process work pool prefect.yaml names (`prefect work-pool create rebates-process --type process`)."""

BACKFILL_MAX_HOURS_DEFAULT = 24
"""The on-demand backfill's `max_hours` parameter as deployed (the flow accepts up to 48)."""

CONCURRENCY_LIMIT = 1
COLLISION_STRATEGY = "CANCEL_NEW"
"""Every deployment: one flow run at a time, and a run that would overlap it is cancelled, never queued."""

PULL_STEPS = [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $REBATES_HOME }}"}}]
"""Each run starts in the checkout on the worker's machine (REBATES_HOME, read by the worker when the run starts)."""

JOB_VARIABLES = {"env": {"PREFECT_LOGGING_EXTRA_LOGGERS": "pipeline"}}
"""The pipeline's own log lines go to each run's logs."""


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment: its flow, name, entrypoint (file path form), description, schedule and parameters."""

    flow_name: str
    name: str
    entrypoint: str
    description: str
    cron: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def module_entrypoint(self) -> str:
        """`flows.sync.sync_rebates`: how `rebates serve` loads the flow, wherever the package is installed."""
        path, _, function = self.entrypoint.partition(":")
        return path.removesuffix(".py").replace("/", ".") + "." + function


def deployment_specs(accounts: Sequence[str] = ()) -> list[DeploymentSpec]:
    """The deployments for these accounts (REBATES_ACCOUNTS; empty: today's single account, as in prefect.yaml).

    Each account gets its own hourly sync and its own on-demand backfill, with `account` as a parameter: each has its
    own concurrency limit, so two accounts never wait on each other and one account's runs never overlap. The daily
    reports and the month-end statements stay one deployment each, over every account.
    """
    specs: list[DeploymentSpec] = []
    named: list[str | None] = list(accounts) or [None]
    for account in named:
        suffix = f"-{account}" if account else ""
        whose = f"Account {account}: " if account else ""
        chosen: dict[str, Any] = {"account": account} if account else {}
        specs += [
            DeploymentSpec(
                "sync-rebates",
                SYNC_DEPLOYMENT + suffix,
                "flows/sync.py:sync_rebates",
                whose + "One acquisition pass an hour: discover OKX's files, plan windows, spend the hourly create, "
                "poll, download, load. Publishes the sync-summary artifact.",
                HOURLY_SYNC_CRON,
                dict(chosen),
            ),
            DeploymentSpec(
                "backfill",
                BACKFILL_DEPLOYMENT + suffix,
                "flows/sync.py:backfill",
                whose + "Collect a date range until every window of it is loaded (one create an hour, shared with the "
                f"hourly sync). Run with: prefect deployment run backfill/{BACKFILL_DEPLOYMENT}{suffix} "
                "-p begin=2024-01-01 -p end=2024-06-30 [-p broker_type=api]",
                None,
                {"max_hours": BACKFILL_MAX_HOURS_DEFAULT} | chosen,
            ),
        ]
    specs.append(
        DeploymentSpec(
            "build-reports",
            REPORTS_DEPLOYMENT,
            "flows/reports.py:build_reports",
            "Yesterday's commission report (xlsx, csv, html) after its window is loaded; on the 1st, last month's "
            "report too. Publishes the reports-summary artifact.",
            DAILY_REPORTS_CRON,
        )
    )
    specs.append(
        DeploymentSpec(
            "build-statements",
            STATEMENTS_DEPLOYMENT,
            "flows/statements.py:build_statements",
            "Last month's commission statement per broker code (xlsx, csv, html) and manifest.csv, on the 2nd. "
            "Publishes the statements-summary artifact.",
            MONTH_END_STATEMENTS_CRON,
        )
    )
    return specs


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


YAML_HEADER = """\
# okx-rebates deployments for REBATES_ACCOUNTS={accounts}, written by `rebates deployments` (docs/operations.md).
# Deploy from the repository root: prefect deploy --all --prefect-file {file}
#
# One hourly sync and one on-demand backfill per account, each with its own concurrency limit (one run at a time,
# an overlapping run cancelled, never queued): two accounts never wait on each other. The daily reports and the
# month-end statements cover every account. No build or push steps; each run starts in REBATES_HOME on the worker's
# machine, whose environment (or .env, or a Secret block per account: REBATES_CREDENTIALS_BLOCK_<NAME>) holds each
# account's credentials. Nothing secret is written here. Schedules in {tz}. Generated again, it replaces the same names.

"""


SECRET_VARIABLES = ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE", "REBATES_STATE_URL")
"""Variables (and their `_<NAME>` forms) that never go into a deployment: a job variable is stored on the server."""


@dataclass(frozen=True)
class JobOptions:
    """What the work pool's jobs need beyond the defaults: an image and volumes (Docker, Kubernetes), more env.

    `prefect deploy --all` ignores `--job-variable` on its command line, so they are written into the file.
    """

    image: str | None = None
    volumes: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.env:
            if name.upper().startswith(SECRET_VARIABLES):
                raise ValueError(
                    f"{name} is a secret: a job variable is stored in the deployment on the Prefect server. Give it "
                    "through the worker's environment, a Secret block (REBATES_CREDENTIALS_BLOCK_<NAME>) or a "
                    "Kubernetes Secret (docs/operations.md#work-pools)"
                )

    def job_variables(self) -> dict[str, Any]:
        """The deployment's `job_variables`: the pipeline's log lines in the run's logs, plus these."""
        found: dict[str, Any] = {"env": dict(JOB_VARIABLES["env"]) | self.env}
        if self.image:
            found["image"] = self.image
        if self.volumes:
            found["volumes"] = list(self.volumes)
        return found


def deployments_document(
    accounts: Sequence[str], schedule_tz: str, pool: str = POOL, jobs: JobOptions | None = None
) -> dict[str, Any]:
    """The prefect.yaml document for these accounts' deployments (`prefect deploy --all --prefect-file FILE`)."""
    jobs = jobs or JobOptions()
    entries = []
    for spec in deployment_specs(accounts):
        entry: dict[str, Any] = {
            "name": spec.name,
            "entrypoint": spec.entrypoint,
            "description": spec.description,
            "tags": list(TAGS),
            "parameters": dict(spec.parameters),
        }
        if spec.cron:
            entry["schedules"] = [{"cron": spec.cron, "timezone": schedule_tz}]
        entry["concurrency_limit"] = {"limit": CONCURRENCY_LIMIT, "collision_strategy": COLLISION_STRATEGY}
        entry["work_pool"] = {"name": pool, "job_variables": jobs.job_variables()}
        entries.append(entry)
    return {
        "name": "okx-rebates",
        "prefect-version": "3.9.1",
        "build": None,
        "push": None,
        "pull": [dict(step) for step in PULL_STEPS],
        "deployments": entries,
    }


def deployments_yaml(
    accounts: Sequence[str], schedule_tz: str, pool: str = POOL, jobs: JobOptions | None = None, file: str = "FILE"
) -> str:
    """`deployments_document` as YAML text, with a header saying what it is and how to deploy it."""
    import yaml  # type: ignore[import-untyped]  # no stubs in the locked dev set; only this command needs it

    header = YAML_HEADER.format(accounts=",".join(accounts) or "(not set)", file=file, tz=schedule_tz)
    body: str = yaml.safe_dump(
        deployments_document(accounts, schedule_tz, pool, jobs), sort_keys=False, width=118, allow_unicode=True
    )
    return header + body
