"""Build a period's report once and write it in every format asked for: what `rebates report` and the flow call."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

from pipeline.clock import Clock, SystemClock
from pipeline.config import Settings
from pipeline.report.csv_files import write_csvs
from pipeline.report.data import build_report
from pipeline.report.html import write_html
from pipeline.report.model import FORMATS, Period, Report, ReportFormat
from pipeline.report.xlsx import write_xlsx

log = logging.getLogger(__name__)


def parse_formats(text: str) -> tuple[ReportFormat, ...]:
    """`xlsx,csv,html` (any subset, any order) as a tuple; ValueError naming an unknown format."""
    chosen = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    known = [name for name in FORMATS if name in chosen]
    if len(known) != len(chosen) or not chosen:
        raise ValueError(f"formats are {', '.join(FORMATS)}; got {text!r}")
    return tuple(sorted(known, key=chosen.index))


def report_stem(period: Period, broker_code: str | None, account: str | None = None) -> str:
    """The file name every format shares, e.g. `commission_2025-01`, or `commission_eu_2025-01` for account eu.

    A day range reads `commission_2025-01-03_2025-01-09`; one broker code adds `_<code>`.
    """
    name = "commission_" + (f"{_file_safe(account)}_" if account else "") + period.label.replace("..", "_")
    if broker_code:
        name += "_" + _file_safe(broker_code)
    return name


def _file_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def write_reports(
    settings: Settings,
    period: Period,
    *,
    broker_code: str | None = None,
    out_dir: Path | None = None,
    formats: Iterable[ReportFormat] = FORMATS,
    clock: Clock | None = None,
    account: str | None = None,
) -> list[Path]:
    """Query the database once and write the report as xlsx, csv (a folder of tables) and html; returns the paths.

    `account` reports on one OKX broker account (its name is in the file names and the heading); None, on every
    account together, broken down by account when more than one has rows in the period.
    """
    report = make_report(settings, period, broker_code=broker_code, clock=clock, account=account)
    directory = out_dir or settings.layout.reports
    directory.mkdir(parents=True, exist_ok=True)
    stem = report_stem(period, broker_code, account)
    written: list[Path] = []
    for name in formats:
        if name == "xlsx":
            written.append(write_xlsx(report, directory / f"{stem}.xlsx"))
        elif name == "csv":
            written += write_csvs(report, directory / stem)
        elif name == "html":
            written.append(write_html(report, directory / f"{stem}.html"))
        else:
            raise ValueError(f"unknown report format {name!r}")
    log.debug("wrote the %s report: %s", period.label, ", ".join(str(path) for path in written))
    return written


def make_report(
    settings: Settings,
    period: Period,
    *,
    broker_code: str | None = None,
    clock: Clock | None = None,
    account: str | None = None,
) -> Report:
    """The report's content, read from the database (read-only)."""
    now = (clock or SystemClock()).now()
    return build_report(
        settings.rebates_db,
        period,
        broker_code=broker_code,
        tz_label=str(settings.rebates_tz),
        now=now,
        lock_timeout=settings.rebates_db_lock_timeout,
        account=account,
    )
