"""Build a period's report or statements once and write them in every format: what the commands and flows call."""

from __future__ import annotations

import csv
import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pipeline.clock import Clock, SystemClock
from pipeline.columns import AMOUNT_COLUMNS
from pipeline.config import Settings
from pipeline.report.csv_files import cell_text, write_csvs
from pipeline.report.data import build_report
from pipeline.report.html import write_html
from pipeline.report.model import FORMATS, Cell, Period, Report, ReportFormat
from pipeline.report.source_files import SourceFiles
from pipeline.report.statement import build_statements
from pipeline.report.text import format_amount
from pipeline.report.words import summary_values
from pipeline.report.xlsx import write_xlsx

log = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
"""The statements' manifest, beside them: one row per statement, with every file's SHA-256."""


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


def statements_folder(period: Period, account: str | None = None) -> str:
    """The folder a period's statements go in: `statements_2025-01`, `statements_eu_2025-01`."""
    return "statements_" + (f"{_file_safe(account)}_" if account else "") + period.label.replace("..", "_")


def statement_stem(report: Report) -> str:
    """A statement's file name, its broker code in it: `statement_2025-01_<code>`."""
    assert report.broker_code is not None
    return f"statement_{report.period.label.replace('..', '_')}_{_file_safe(report.broker_code)}"


def _file_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def sources_of(settings: Settings) -> SourceFiles:
    """Where the archived files are and how the loader read them: what the reconciliation reads again."""
    return SourceFiles(settings.rebates_data_dir, settings.rebates_tz, settings.rebates_max_unzipped_bytes)


def write_report_files(
    report: Report, directory: Path, stem: str, formats: Iterable[ReportFormat] = FORMATS, csv_prefix: str = ""
) -> list[Path]:
    """Write `report` as `<stem>.xlsx`, `<stem>.html` and CSV files (a folder `<stem>/`, or `<csv_prefix><table>.csv`
    beside the others when a prefix is given); returns the paths in that order."""
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in formats:
        if name == "xlsx":
            written.append(write_xlsx(report, directory / f"{stem}.xlsx"))
        elif name == "csv":
            written += write_csvs(report, directory, csv_prefix) if csv_prefix else write_csvs(report, directory / stem)
        elif name == "html":
            written.append(write_html(report, directory / f"{stem}.html"))
        else:
            raise ValueError(f"unknown report format {name!r}")
    return written


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
    return write_report(settings, report, out_dir=out_dir, formats=formats)


def write_report(
    settings: Settings, report: Report, *, out_dir: Path | None = None, formats: Iterable[ReportFormat] = FORMATS
) -> list[Path]:
    """Write a made report's files under its own name (`report_stem`), by default in REBATES_DATA_DIR/reports."""
    stem = report_stem(report.period, report.broker_code, report.account)
    written = write_report_files(report, out_dir or settings.layout.reports, stem, formats)
    log.debug("wrote the %s report: %s", report.period.label, ", ".join(str(path) for path in written))
    return written


def make_report(
    settings: Settings,
    period: Period,
    *,
    broker_code: str | None = None,
    clock: Clock | None = None,
    account: str | None = None,
) -> Report:
    """The report's content, read from the database (read-only) and the archive (read again to reconcile)."""
    return build_report(
        settings.rebates_db,
        period,
        sources_from=sources_of(settings),
        broker_code=broker_code,
        tz_label=str(settings.rebates_tz),
        now=(clock or SystemClock()).now(),
        lock_timeout=settings.rebates_db_lock_timeout,
        account=account,
    )


@dataclass(frozen=True)
class WrittenStatement:
    """One broker code's statement and the files it was written to."""

    report: Report
    paths: tuple[Path, ...]


@dataclass(frozen=True)
class StatementsRun:
    """A period's statements, one per broker code with activity, and the manifest that lists them."""

    period: Period
    directory: Path
    statements: tuple[WrittenStatement, ...]
    manifest: Path


def write_statements(
    settings: Settings,
    period: Period,
    *,
    account: str | None = None,
    broker_code: str | None = None,
    out_dir: Path | None = None,
    formats: Iterable[ReportFormat] = FORMATS,
    clock: Clock | None = None,
) -> StatementsRun:
    """A statement per broker code with activity in `period` (xlsx, html and CSV files, the code in every name), and
    `manifest.csv` beside them; by default in `REBATES_DATA_DIR/reports/statements_<period>/`.

    Each statement holds only its code's rows, totals and reconciliation (`build_statements`). The manifest has one
    row per statement: account, broker code, broker types, period, orders, every amount's total as exact decimal
    text, whether it reconciled, then its file names and each file's SHA-256 (in the same order), so what was sent
    can be proved later.
    """
    reports = build_statements(
        settings.rebates_db,
        period,
        sources_from=sources_of(settings),
        tz_label=str(settings.rebates_tz),
        now=(clock or SystemClock()).now(),
        lock_timeout=settings.rebates_db_lock_timeout,
        account=account,
        broker_code=broker_code,
    )
    directory = out_dir or settings.layout.reports / statements_folder(period, account)
    chosen = tuple(formats)
    written = []
    for report in reports:
        stem = statement_stem(report)
        paths = write_report_files(report, directory, stem, chosen, csv_prefix=f"{stem}_")
        written.append(WrittenStatement(report, tuple(paths)))
    manifest = write_manifest(directory, written)
    log.debug("wrote %d statement(s) of %s and %s", len(written), period.label, manifest)
    return StatementsRun(period, directory, tuple(written), manifest)


def statements_markdown(run: StatementsRun) -> str:
    """The statements run as a markdown table for the flow's artifact: each code's totals, status and files."""
    lines = [
        f"{len(run.statements)} statement(s) of {run.period.words}; manifest: {run.manifest}",
        "",
        "| broker code | orders | net fee (USDT) | broker rebate (USDT) | reconciled | files |",
        "|---|---:|---:|---:|---|---|",
    ]
    for written in run.statements:
        report = written.report
        total = report.table("by_day").total_record()
        lines.append(
            f"| {report.broker_code} | {total['orders']:,} | {format_amount(_decimal(total['net_fee_usdt']))} | "
            f"{format_amount(_decimal(total['broker_rebate_usdt']))} | {'yes' if report.reconciliation_ok else 'NO'} | "
            f"{'<br>'.join(path.name for path in written.paths)} |"
        )
    return "\n".join(lines) + "\n"


def _decimal(value: Cell) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(0)


MANIFEST_COLUMNS = (
    "account",
    "broker_code",
    "broker_type",
    "period_start",
    "period_end",
    "orders",
    *(f"{name}_usdt" for name in AMOUNT_COLUMNS),
    "reconciled",
    "files",
    "sha256",
)


def write_manifest(directory: Path, statements: Iterable[WrittenStatement]) -> Path:
    """`manifest.csv`: a row per statement with its totals (exact text), its files and their SHA-256 (`; `-joined)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MANIFEST
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(MANIFEST_COLUMNS)
        for statement in statements:
            report = statement.report
            totals = summary_values(report)
            facts = dict(report.facts)
            writer.writerow(
                [
                    facts.get("OKX account", report.account or ""),
                    report.broker_code,
                    facts.get("Broker type", ""),
                    report.period.start.isoformat(),
                    report.period.end.isoformat(),
                    cell_text(totals["Orders"]),
                    *(cell_text(_amount_total(report, name)) for name in AMOUNT_COLUMNS),
                    cell_text(report.reconciliation_ok),
                    "; ".join(path.name for path in statement.paths),
                    "; ".join(_sha256(path) for path in statement.paths),
                ]
            )
    partial.replace(path)
    return path


def _amount_total(report: Report, name: str) -> Cell:
    """A statement's total of one amount, from its by-day Total row (the exact sum of its days)."""
    return report.table("by_day").total_record()[f"{name}_usdt"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
