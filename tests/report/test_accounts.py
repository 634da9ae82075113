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
from pipeline.report.model import Report
from pipeline.report.run import write_reports
from pipeline.simulator.files import FileSpec
from pipeline.windows import RebateWindow
from tests.report.conftest import (
    JANUARY,
    REPORT_NOW,
    REPORT_TZ,
    ReportDatabase,
    SourceRow,
    make_report,
    make_statements,
    simulated_database,
    totals,
)

EU_MISSING_DAY = date(2025, 1, 20)
"""No eu window holds this day; the default account's does."""

ACCOUNT_WINDOWS = (
    RebateWindow("api", date(2025, 1, 1), date(2025, 1, 31)),
    RebateWindow("api", date(2025, 1, 1), date(2025, 1, 19), account="eu"),
    RebateWindow("api", date(2025, 1, 21), date(2025, 1, 31), account="eu"),
)

pytestmark = pytest.mark.slow
SEEDS = {"default": 0, "eu": 7}
"""The eu account's files come from other users, so other broker codes (OKX gives each account its own)."""


def account_of(row: SourceRow) -> str:
    return RebateWindow.parse(row.window_id).account


def rows_of(database: ReportDatabase, account: str | None = None) -> list[SourceRow]:
    return [row for row in database.rows_in(JANUARY) if account in (None, account_of(row))]


def summary_values(report: Report) -> dict[str, object]:
    """The summary's this-period value per metric label."""
    return {str(record["metric"]): record["this_period"] for record in report.summary.records()}


def by_name(report: Report) -> list[str]:
    return [table.name for table in report.tables]


@pytest.fixture(scope="module")
def accounts_db(tmp_path_factory: pytest.TempPathFactory) -> ReportDatabase:
    """January 2025 of api rebates for account default and account eu (eu without 20 January), loaded by hand."""
    specs = [
        FileSpec(window.begin, window.end, "api", orders_per_day=4, day_tz=REPORT_TZ, seed=SEEDS[window.account])
        for window in ACCOUNT_WINDOWS
    ]
    return simulated_database(tmp_path_factory.mktemp("accounts_db"), zip(ACCOUNT_WINDOWS, specs, strict=True))


def broker_rebate(rows: Iterable[SourceRow]) -> Decimal:
    return totals(rows)["broker_rebate"]


def test_the_report_of_every_account_breaks_its_totals_down_by_account_exactly(accounts_db: ReportDatabase) -> None:
    report = make_report(accounts_db.path)
    assert by_name(report)[:3] == ["trend", "by_day", "by_account"]
    table = report.table("by_account")
    records = {str(record["account"]): record for record in table.records()}
    assert set(records) == {"default", "eu"}
    for account, record in records.items():
        rows = rows_of(accounts_db, account)
        assert record["broker_rebate_usdt"] == broker_rebate(rows)
        assert record["net_fee_usdt"] == totals(rows)["net_fee"]
        assert record["orders"] == len({row.ord_id for row in rows})
    parts = [record["broker_rebate_usdt"] for record in records.values()]
    assert sum((part for part in parts if isinstance(part, Decimal)), Decimal(0)) == broker_rebate(rows_of(accounts_db))
    assert table.total_record()["broker_rebate_usdt"] == broker_rebate(rows_of(accounts_db))
    assert summary_values(report)["Broker rebate (USDT)"] == broker_rebate(rows_of(accounts_db))
    assert report.account is None and "account" not in report.title


def test_the_report_of_one_account_holds_only_its_rows_and_windows(accounts_db: ReportDatabase) -> None:
    report = make_report(accounts_db.path, account="eu")
    eu_rows = rows_of(accounts_db, "eu")
    assert summary_values(report)["Broker rebate (USDT)"] == broker_rebate(eu_rows)
    assert summary_values(report)["Orders"] == len({row.ord_id for row in eu_rows})
    assert "by_account" not in by_name(report)
    assert report.title == "OKX broker commission report 2025-01, account eu"
    assert report.sources == ("account eu, api: 2 files (2025-01-01..2025-01-19, 2025-01-21..2025-01-31)",)
    reconciliation = report.table("reconciliation")
    assert reconciliation.column("file") == [
        "account eu, api file 2025-01-01 to 2025-01-19",
        "account eu, api file 2025-01-21 to 2025-01-31",
    ]
    assert report.reconciliation_ok and all(reconciliation.column("matches"))
    by_code = report.table("by_broker_code")
    assert set(by_code.column("broker_code")) == {row.broker_code for row in eu_rows}
    default = make_report(accounts_db.path, account="default")
    assert summary_values(default)["Broker rebate (USDT)"] == broker_rebate(rows_of(accounts_db, "default"))


def test_a_day_is_covered_when_every_account_it_is_reported_for_has_it(accounts_db: ReportDatabase) -> None:
    everyone = make_report(accounts_db.path)
    assert everyone.missing_days == (EU_MISSING_DAY,)
    assert everyone.incomplete == (f"{EU_MISSING_DAY}: no account eu's api file loaded yet",), (
        "the line names the account and broker type that lack the day"
    )
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
    assert "<h1>OKX broker commission report 2025-01, account eu</h1>" in html
    workbook = load_workbook(tmp_path / "eu" / "commission_eu_2025-01.xlsx")
    assert workbook["Summary"]["A1"].value == "OKX broker commission report 2025-01, account eu"
    assert "By account" not in workbook.sheetnames

    every = write_reports(settings, JANUARY, out_dir=tmp_path / "all", formats=("xlsx", "csv"), clock=clock)
    assert (tmp_path / "all" / "commission_2025-01" / "by_account.csv") in every
    assert "By account" in load_workbook(tmp_path / "all" / "commission_2025-01.xlsx").sheetnames


def test_a_report_of_a_single_account_database_has_no_account_breakdown(january_report: Report) -> None:
    assert "by_account" not in by_name(january_report)


def test_statements_of_one_account_hold_its_codes_only(accounts_db: ReportDatabase) -> None:
    eu_codes = {row.broker_code for row in rows_of(accounts_db, "eu")}
    statements = make_statements(accounts_db.path, account="eu")
    assert {report.broker_code for report in statements} == eu_codes
    for report in statements:
        mine = [row for row in rows_of(accounts_db, "eu") if row.broker_code == report.broker_code]
        assert report.table("by_day").total_record()["broker_rebate_usdt"] == broker_rebate(mine)
        assert report.reconciliation_ok
        assert dict(report.facts)["OKX account"] == "eu"
