"""Reports per OKX broker account or all of them: filtered, broken down by account, named, exact to the last digit."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from pipeline.clock import FakeClock
from pipeline.config import load_settings
from pipeline.ledger import Ledger, WindowState
from pipeline.report.model import Report
from pipeline.report.run import write_reports
from pipeline.simulator.files import FileSpec, build_rebate_file
from pipeline.store.ingest import load_by_hand
from pipeline.windows import RebateWindow
from tests.report.conftest import (
    JANUARY,
    REPORT_NOW,
    REPORT_TZ,
    ReportDatabase,
    SourceRow,
    make_report,
    totals,
)

EU_MISSING_DAY = date(2025, 1, 20)
"""No eu window holds this day; the default account's does."""

ACCOUNT_WINDOWS = (
    RebateWindow("api", date(2025, 1, 1), date(2025, 1, 31)),
    RebateWindow("api", date(2025, 1, 1), date(2025, 1, 19), account="eu"),
    RebateWindow("api", date(2025, 1, 21), date(2025, 1, 31), account="eu"),
)
SEEDS = {"default": 0, "eu": 7}
"""The eu account's files come from other users, so other broker codes (OKX gives each account its own)."""


def account_of(row: SourceRow) -> str:
    return RebateWindow.parse(row.window_id).account


def rows_of(database: ReportDatabase, account: str | None = None) -> list[SourceRow]:
    return [row for row in database.rows_in(JANUARY) if account in (None, account_of(row))]


def summary_values(report: Report) -> dict[str, object]:
    """The summary's this-period value per metric label."""
    return {str(row[0]): row[2] for row in report.summary.rows}


def by_name(report: Report) -> list[str]:
    return [table.name for table in report.tables]


@pytest.fixture(scope="module")
def accounts_db(tmp_path_factory: pytest.TempPathFactory) -> ReportDatabase:
    """January 2025 of api rebates for account default and account eu (eu without 20 January), loaded by hand."""
    root = tmp_path_factory.mktemp("accounts_db")
    settings = load_settings(rebates_data_dir=root / "data", rebates_db=root / "data" / "rebates.duckdb",
                             rebates_tz=REPORT_TZ)  # fmt: skip
    clock = FakeClock(REPORT_NOW)
    files = []
    for window in ACCOUNT_WINDOWS:
        ledger = Ledger(settings.rebates_db, clock, account=window.account)
        spec = FileSpec(window.begin, window.end, "api", orders_per_day=4, day_tz=REPORT_TZ, seed=SEEDS[window.account])
        source = root / f"{window.window_id.replace(':', '_')}.csv"
        source.write_bytes(build_rebate_file(spec))
        outcome = load_by_hand(settings, ledger, source, window, clock)
        assert outcome.state is WindowState.LOADED, outcome.reason
        files.append((window, spec))
    return ReportDatabase(settings.rebates_db, tuple(files))


def broker_rebate(rows: Iterable[SourceRow]) -> Decimal:
    return totals(rows)["broker_rebate"]


def test_the_report_of_every_account_breaks_its_totals_down_by_account_exactly(accounts_db: ReportDatabase) -> None:
    report = make_report(accounts_db.path)
    assert by_name(report)[:2] == ["by_day", "by_account"]
    table = report.table("by_account")
    records = {
        str(row[0]): dict(zip((column.name for column in table.columns), row, strict=True)) for row in table.rows
    }
    assert set(records) == {"default", "eu"}
    for account, record in records.items():
        rows = rows_of(accounts_db, account)
        assert record["broker_rebate"] == broker_rebate(rows)
        assert record["net_fee"] == totals(rows)["net_fee"]
        assert record["orders"] == len({row.ord_id for row in rows})
    parts = [record["broker_rebate"] for record in records.values()]
    assert sum((part for part in parts if isinstance(part, Decimal)), Decimal(0)) == broker_rebate(rows_of(accounts_db))
    assert summary_values(report)["Broker rebate"] == broker_rebate(rows_of(accounts_db))
    assert report.account is None and "account" not in report.title


def test_the_report_of_one_account_holds_only_its_rows_and_windows(accounts_db: ReportDatabase) -> None:
    report = make_report(accounts_db.path, account="eu")
    eu_rows = rows_of(accounts_db, "eu")
    assert summary_values(report)["Broker rebate"] == broker_rebate(eu_rows)
    assert summary_values(report)["Orders"] == len({row.ord_id for row in eu_rows})
    assert "by_account" not in by_name(report)
    assert report.title == "OKX broker commission 2025-01, account eu"
    assert all("Account eu only." in table.note for table in report.tables if table.name != "reconciliation")
    assert report.windows_covered == ("eu:api:20250101-20250119", "eu:api:20250121-20250131")
    reconciliation = report.table("reconciliation")
    assert reconciliation.column("window_id") == list(report.windows_covered)
    assert report.reconciliation_ok and all(reconciliation.column("matches"))
    by_code = report.table("by_broker_code")
    assert set(by_code.column("broker_code")) == {row.broker_code for row in eu_rows}
    default = make_report(accounts_db.path, account="default")
    assert summary_values(default)["Broker rebate"] == broker_rebate(rows_of(accounts_db, "default"))


def test_a_day_is_covered_when_every_account_it_is_reported_for_has_it(accounts_db: ReportDatabase) -> None:
    everyone = make_report(accounts_db.path)
    assert everyone.missing_days == (EU_MISSING_DAY,)
    assert f"have no loaded api window of account eu, so their figures are incomplete: {EU_MISSING_DAY}" in " ".join(
        everyone.warnings
    ), "the warning names the account and broker type that lack the day"
    assert make_report(accounts_db.path, account="eu").missing_days == (EU_MISSING_DAY,)
    assert make_report(accounts_db.path, account="default").missing_days == ()


def test_a_report_of_one_account_names_it_in_its_files_and_headings(
    accounts_db: ReportDatabase, tmp_path: Path
) -> None:
    settings = load_settings(rebates_data_dir=tmp_path / "data", rebates_db=accounts_db.path, rebates_tz=REPORT_TZ)
    clock = FakeClock(REPORT_NOW)
    written = write_reports(settings, JANUARY, account="eu", out_dir=tmp_path / "eu", clock=clock)
    names = {path.relative_to(tmp_path / "eu").parts[0] for path in written}
    assert names == {"commission_eu_2025-01.xlsx", "commission_eu_2025-01", "commission_eu_2025-01.html"}
    html = (tmp_path / "eu" / "commission_eu_2025-01.html").read_text()
    assert "<h1>OKX broker commission 2025-01, account eu</h1>" in html
    workbook = load_workbook(tmp_path / "eu" / "commission_eu_2025-01.xlsx")
    assert workbook["Summary"]["A1"].value == "OKX broker commission 2025-01, account eu"
    assert "By account" not in workbook.sheetnames

    every = write_reports(settings, JANUARY, out_dir=tmp_path / "all", formats=("xlsx", "csv"), clock=clock)
    assert (tmp_path / "all" / "commission_2025-01" / "by_account.csv") in every
    assert "By account" in load_workbook(tmp_path / "all" / "commission_2025-01.xlsx").sheetnames


def test_a_report_of_a_single_account_database_has_no_account_breakdown(january_report: Report) -> None:
    assert "by_account" not in by_name(january_report)
