"""Prefect flow `build-statements`: a month's commission statement per broker code, with its manifest."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow, task
from prefect.runtime import flow_run

from flows.artifacts import publish_summary
from flows.policy import DATABASE_RETRIES, STATEMENTS_TIMEOUT, STEP_OPTIONS
from flows.runtime import account_names, base_settings, run_clock, show_pipeline_logs
from pipeline.config import SettingsError
from pipeline.report.model import FORMATS, Period, ReportFormat


def statements_period(month: str | None) -> Period:
    """The month named (`YYYY-MM`), else the last month that has ended in REBATES_TZ."""
    if month is not None:
        return Period.parse_month(month)
    return Period.last_ended_month(run_clock().now(), base_settings().rebates_tz)


def statements_run_name() -> str:
    """`statements 2025-03` (`statements 2025-03 of account eu`): what this run writes."""
    try:
        period = statements_period(flow_run.parameters.get("month"))
    except (SettingsError, ValueError):
        return "statements (month or settings malformed)"
    account = flow_run.parameters.get("account")
    return f"statements {period.label}" + (f" of account {account}" if account else "")


@task(name="write-statements", **STEP_OPTIONS, **DATABASE_RETRIES)
def write_month_statements(
    start: date, end: date, account: str | None, out_dir: str | None, formats: tuple[ReportFormat, ...]
) -> tuple[str, list[str]]:
    """Write the period's statements and manifest; returns the artifact's markdown and every path written."""
    # Imported here: the sync flows share this worker and need none of the report writers' libraries.
    from pipeline.report.run import statements_markdown, write_statements

    written = write_statements(
        base_settings(),
        Period(start, end),
        account=account,
        out_dir=Path(out_dir) if out_dir else None,
        formats=formats,
        clock=run_clock(),
    )
    paths = [str(path) for statement in written.statements for path in statement.paths]
    return statements_markdown(written), [*paths, str(written.manifest)]


@flow(
    name="build-statements",
    flow_run_name=statements_run_name,
    persist_result=False,
    timeout_seconds=STATEMENTS_TIMEOUT.total_seconds(),
)
def build_statements(
    month: str | None = None,
    account: str | None = None,
    out_dir: str | None = None,
    formats: tuple[ReportFormat, ...] = FORMATS,
) -> list[str]:
    """Write a commission statement per broker code with activity in a month, and `manifest.csv` beside them.

    month: `YYYY-MM`, default the last month that has ended in REBATES_TZ (the month-end schedule runs on the 2nd,
    once the month's last day is loaded). account: one account's codes (a name in REBATES_ACCOUNTS); default every
    account's. out_dir: default REBATES_DATA_DIR/reports/statements_<month>. formats: any of xlsx, csv, html.
    Publishes the `statements-summary` artifact (`statements-summary-<account>` for one named account).
    """
    show_pipeline_logs()
    if account is not None:
        account = account_names(account)[0]  # an account not configured stops the run here, naming the configured
    period = statements_period(month)
    markdown, paths = write_month_statements(period.start, period.end, account, out_dir, formats)
    publish_summary("statements-summary", "Statements", f"# {flow_run.name or 'statements'}\n\n{markdown}", account)
    return paths
