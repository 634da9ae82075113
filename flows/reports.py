"""Prefect flow `build_reports`: the day's commission report, and on the 1st the previous month's report."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from prefect import flow, task
from prefect.runtime import flow_run

from flows.artifacts import publish_summary
from flows.policy import DATABASE_RETRIES, REPORTS_TIMEOUT, STEP_OPTIONS
from flows.runtime import account_names, base_settings, run_clock, show_pipeline_logs
from pipeline.config import SettingsError
from pipeline.report.model import FORMATS, Period, ReportFormat
from pipeline.summary import one_line
from pipeline.windows import yesterday


def report_periods(day: date) -> list[Period]:
    """The day itself; when it ends a month (the run on the 1st), that whole month too."""
    periods = [Period(day, day)]
    if (day + timedelta(days=1)).day == 1:
        periods.append(Period.month(day.year, day.month))
    return periods


@task(name="write-commission-reports", **STEP_OPTIONS, **DATABASE_RETRIES)
def write_commission_reports(
    start: date,
    end: date,
    broker_code: str | None,
    out_dir: str | None,
    formats: tuple[ReportFormat, ...],
    account: str | None = None,
) -> list[str]:
    """Query the database once for start..end (one account, or all) and write each format; returns the paths."""
    # Imported here: the sync flows share this worker and need none of the report writers' libraries.
    from pipeline.report.run import write_reports

    settings = base_settings()
    written = write_reports(
        settings,
        Period(start, end),
        broker_code=broker_code,
        out_dir=Path(out_dir) if out_dir else None,
        formats=formats,
        account=account,
        clock=run_clock(),
    )
    return [str(path) for path in written]


def period_name(period: Period) -> str:
    """`2025-03-31` for one day, `2025-03` for a month, `2025-03-01..2025-03-07` otherwise."""
    return str(period.start) if period.days == 1 else period.label


def reports_day(day: date | None) -> date:
    """The report's day: the one given, else yesterday in REBATES_TZ."""
    if day is not None:
        return day
    return yesterday(run_clock().now(), base_settings().rebates_tz)


def reports_run_name() -> str:
    """`reports 2025-03-31 + month 2025-03`: what this run writes."""
    day = flow_run.parameters.get("day")
    try:
        periods = report_periods(reports_day(day))
    except SettingsError:
        return "reports (settings incomplete)"
    names = [period_name(periods[0])] + [f"month {period_name(period)}" for period in periods[1:]]
    code = flow_run.parameters.get("broker_code")
    account = flow_run.parameters.get("account")
    return (
        "reports "
        + " + ".join(names)
        + (f" for {code}" if code else "")
        + (f" of account {account}" if account else "")
    )


@flow(
    name="build-reports",
    flow_run_name=reports_run_name,
    persist_result=False,
    timeout_seconds=REPORTS_TIMEOUT.total_seconds(),
)
def build_reports(
    day: date | None = None,
    broker_code: str | None = None,
    out_dir: str | None = None,
    formats: tuple[ReportFormat, ...] = FORMATS,
    account: str | None = None,
) -> list[str]:
    """Write the day's commission report; on the last day of a month, that month's report as well.

    day: default yesterday in REBATES_TZ (the daily schedule runs after that day's window is loaded).
    broker_code: only this broker code. out_dir: default REBATES_DATA_DIR/reports. formats: any of xlsx, csv, html.
    account: one account's report (a name in REBATES_ACCOUNTS); default one report over every account.
    Publishes the `reports-summary` artifact (`reports-summary-<account>` for one named account) listing the files.
    """
    show_pipeline_logs()
    if account is not None:
        account = account_names(account)[0]  # an account not configured stops the run here, naming the configured
    periods = report_periods(reports_day(day))
    written = {
        period_name(period): write_commission_reports(period.start, period.end, broker_code, out_dir, formats, account)
        for period in periods
    }
    lines = [f"# {flow_run.name or 'reports'}", "", "| period | files written |", "|---|---|"]
    lines += [
        f"| {label} | {'<br>'.join(one_line(path) for path in paths) or '-'} |" for label, paths in written.items()
    ]
    publish_summary("reports-summary", "Reports", "\n".join(lines) + "\n", account)
    return [path for paths in written.values() for path in paths]
