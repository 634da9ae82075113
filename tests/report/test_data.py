"""The report's figures: equal to the files summed independently, consistent across tables, honest about gaps."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.clock import FakeClock
from pipeline.config import load_settings
from pipeline.db import connect
from pipeline.ledger import Ledger, WindowState
from pipeline.report.data import METRICS, TOP_INSTRUMENTS, ratio
from pipeline.report.model import Cell, Kind, Period, Report, Table, cell_kind
from pipeline.simulator.files import Corruption, FileSpec, build_rebate_file, corrupt, generate_rows
from pipeline.store.ingest import load_by_hand
from pipeline.windows import RebateWindow, WindowKind
from tests.report.conftest import (
    AMOUNTS,
    JANUARY,
    MISSING_DAY,
    REPORT_TZ,
    ReportDatabase,
    SourceRow,
    make_report,
    totals,
)

LABELS = {key: label for key, label, _ in METRICS}


def summary_row(report: Report, key: str) -> dict[str, Cell]:
    """The summary's row for one metric, by column name."""
    names = [column.name for column in report.summary.columns]
    (row,) = [row for row in report.summary.rows if row[0] == LABELS[key]]
    return dict(zip(names, row, strict=True))


def records(table: Table) -> list[dict[str, Any]]:
    names = [column.name for column in table.columns]
    return [dict(zip(names, row, strict=True)) for row in table.rows]


def column_sum(table: Table, name: str) -> Any:
    return sum((value for value in table.column(name) if value is not None), Decimal(0))


def expected_summary(rows: list[SourceRow]) -> dict[str, Any]:
    expected: dict[str, Any] = dict(totals(rows))
    expected["effective_rate"] = ratio(expected["broker_rebate"], expected["net_fee"])
    expected["orders"] = len({row.ord_id for row in rows})
    expected["broker_codes"] = len({row.broker_code for row in rows})
    expected["users"] = len({row.uid for row in rows})
    return expected


def test_summary_equals_the_files_summed_independently_to_the_last_digit(
    report_db: ReportDatabase, january_report: Report
) -> None:
    expected = expected_summary(report_db.rows_in(JANUARY))
    assert expected["broker_rebate"] > 0 and expected["orders"] > 100
    for key, _, _ in METRICS:
        assert summary_row(january_report, key)["this_period"] == expected[key], key


def test_by_day_lists_every_day_with_each_days_sums_from_the_files(
    report_db: ReportDatabase, january_report: Report
) -> None:
    by_day = {row["trade_date"]: row for row in records(january_report.table("by_day"))}
    assert list(by_day) == JANUARY.day_list()
    source: dict[date, list[SourceRow]] = defaultdict(list)
    for row in report_db.rows_in(JANUARY):
        source[row.trade_date].append(row)
    for day in JANUARY.day_list():
        sums = totals(source[day])
        for name in ("fee", "net_fee", "broker_rebate", "sub_broker_rebate", "user_rebate"):
            assert by_day[day][name] == sums[name], (day, name)
        assert by_day[day]["orders"] == len({row.ord_id for row in source[day]})


def test_by_broker_code_sums_each_code_from_the_files(report_db: ReportDatabase, january_report: Report) -> None:
    rows = report_db.rows_in(JANUARY)
    by_code = {row["broker_code"]: row for row in records(january_report.table("by_broker_code"))}
    assert sorted(by_code) == sorted({row.broker_code for row in rows})
    for code, reported in by_code.items():
        mine = [row for row in rows if row.broker_code == code]
        sums = totals(mine)
        for name in ("spot_trade_amt", "derivative_trade_amt", "fee", "net_fee", "broker_rebate"):
            assert reported[name] == sums[name], (code, name)
        assert reported["orders"] == len({row.ord_id for row in mine})
        assert reported["users"] == len({row.uid for row in mine})
        assert reported["broker_type"] == mine[0].broker_type
        assert reported["effective_rate"] == ratio(sums["broker_rebate"], sums["net_fee"])


def test_every_table_adds_up_to_the_summary(january_report: Report) -> None:
    summary = {key: summary_row(january_report, key)["this_period"] for key, _, _ in METRICS}
    checks = {
        "by_day": ("fee", "net_fee", "broker_rebate", "sub_broker_rebate", "user_rebate"),
        "by_broker_code": ("orders", "spot_trade_amt", "derivative_trade_amt", "fee", "net_fee", "broker_rebate"),
        "by_instrument_type": ("orders", "spot_trade_amt", "derivative_trade_amt", "net_fee", "broker_rebate"),
        "by_user_level": ("net_fee", "broker_rebate"),
        "affiliated": ("net_fee", "broker_rebate", "user_rebate"),
    }
    for name, columns in checks.items():
        table = january_report.table(name)
        for column in columns:
            assert column_sum(table, column) == summary[column], (name, column)
        if "share" in [each.name for each in table.columns]:
            shares = column_sum(table, "share")
            assert abs(shares - 1) <= Decimal("1E-10") * len(table.rows), name
    assert len(january_report.table("by_broker_code").rows) == summary["broker_codes"]


def test_top_instruments_are_the_biggest_earners_in_order(report_db: ReportDatabase, january_report: Report) -> None:
    earned: dict[str, Decimal] = defaultdict(Decimal)
    for row in report_db.rows_in(JANUARY):
        earned[row.inst_id] += row.amounts["broker_rebate"]
    assert len(earned) > TOP_INSTRUMENTS
    expected = sorted(earned.items(), key=lambda item: (-item[1], item[0]))[:TOP_INSTRUMENTS]
    table = january_report.table("top_instruments")
    assert list(zip(table.column("inst_id"), table.column("broker_rebate"), strict=True)) == expected


def test_the_previous_period_and_the_change_are_computed_from_the_files(
    report_db: ReportDatabase, january_report: Report
) -> None:
    december = Period.month(2024, 12)
    assert january_report.previous == december
    this = expected_summary(report_db.rows_in(JANUARY))
    before = expected_summary(report_db.rows_in(december))
    assert before["broker_rebate"] > 0
    for key, _, _ in METRICS:
        row = summary_row(january_report, key)
        assert row["previous_period"] == before[key], key
        assert row["change"] == this[key] - before[key], key
        with localcontext() as context:
            context.prec = 60
            change = Decimal(this[key]) - Decimal(before[key])
            expected_pct = (change / abs(Decimal(before[key]))).quantize(Decimal("1E-10"))
        assert row["change_pct"] == expected_pct, key


def test_without_a_previous_value_there_is_no_change_percent(report_db: ReportDatabase) -> None:
    report = make_report(report_db.path, Period(date(2024, 12, 26), date(2024, 12, 31)))
    assert report.previous == Period(date(2024, 12, 20), date(2024, 12, 25))
    broker_rebate = summary_row(report, "broker_rebate")
    assert broker_rebate["previous_period"] == 0 and broker_rebate["change"] == broker_rebate["this_period"]
    assert broker_rebate["change_pct"] is None
    rate = summary_row(report, "effective_rate")
    assert rate["previous_period"] is None and rate["change"] is None and rate["change_pct"] is None
    assert report.missing_days == ()


def test_a_day_without_a_loaded_window_for_every_broker_type_is_missing(january_report: Report) -> None:
    assert january_report.missing_days == (MISSING_DAY,)
    by_day = january_report.table("by_day")
    uncovered = [day for day, covered in zip(by_day.column("trade_date"), by_day.column("covered"), strict=True)
                 if not covered]  # fmt: skip
    assert uncovered == [MISSING_DAY]
    assert "1 day(s) of 2025-01 have no loaded api window, so their figures are incomplete: 2025-01-15" in (
        january_report.warnings
    ), "the warning names what is missing: oauth's window holds the day"
    assert not any("oauth" in warning for warning in january_report.warnings)
    assert any("previous period 2024-12" in warning for warning in january_report.warnings)


def test_windows_covered_are_the_loaded_windows_overlapping_the_period(january_report: Report) -> None:
    assert january_report.windows_covered == (
        "api:20250101-20250114",
        "oauth:20250101-20250131",
        "api:20250116-20250131",
    )


def test_each_window_reconciles_its_whole_file_with_the_database(
    report_db: ReportDatabase, january_report: Report
) -> None:
    assert january_report.reconciliation_ok
    reconciliation = {row["window_id"]: row for row in records(january_report.table("reconciliation"))}
    assert set(reconciliation) == set(january_report.windows_covered)
    for window, spec in report_db.files:
        if window.window_id not in reconciliation:
            continue
        row = reconciliation[window.window_id]
        source = [one for one in report_db.source_rows if one.window_id == window.window_id]
        assert row["rows_in_file"] == row["rows_in_db"] == len(generate_rows(spec))
        for name, total in totals(source).items():
            assert row[f"file_{name}"] == row[f"db_{name}"] == total, (window, name)
        assert row["matches"] is True and row["differences"] is None
        assert str(row["file_name"]).endswith(".csv") and "/" not in str(row["file_name"])
        assert len(str(row["sha256"])) == 64


@pytest.mark.parametrize(
    ("change", "differences"),
    [
        (
            "UPDATE rebate_details SET broker_rebate = broker_rebate + 0.000000000000000001 "
            "WHERE (ord_id, trade_date) = (SELECT (ord_id, trade_date) FROM rebate_details WHERE window_id = $window "
            "ORDER BY ord_id, trade_date LIMIT 1)",
            "broker_rebate",
        ),
        (
            "DELETE FROM rebate_details WHERE (ord_id, trade_date) = (SELECT (ord_id, trade_date) FROM rebate_details "
            "WHERE window_id = $window AND fee <> 0 ORDER BY ord_id, trade_date LIMIT 1)",
            "rows",
        ),
    ],
)
def test_a_row_changed_after_loading_is_flagged_by_the_reconciliation(
    report_db: ReportDatabase, tmp_path: Path, change: str, differences: str
) -> None:
    path = report_db.copy_to(tmp_path)
    tampered = "api:20250116-20250131"
    with connect(path) as db:
        db.execute(change, {"window": tampered})
    report = make_report(path)
    assert not report.reconciliation_ok
    rows = {row["window_id"]: row for row in records(report.table("reconciliation"))}
    assert rows[tampered]["matches"] is False
    assert str(rows[tampered]["differences"]).startswith(differences)
    assert all(row["matches"] for window_id, row in rows.items() if window_id != tampered)
    assert any(tampered in warning and "no longer matches" in warning for warning in report.warnings)


def test_a_broker_code_filters_every_table_but_the_reconciliation(
    report_db: ReportDatabase, january_report: Report
) -> None:
    code = report_db.broker_codes[0]
    report = make_report(report_db.path, broker_code=code)
    rows = report_db.rows_in(JANUARY, code)
    expected = expected_summary(rows)
    for key, _, _ in METRICS:
        assert summary_row(report, key)["this_period"] == expected[key], key
    assert report.table("by_broker_code").column("broker_code") == [code]
    assert column_sum(report.table("by_day"), "broker_rebate") == expected["broker_rebate"]
    assert column_sum(report.table("by_instrument_type"), "broker_rebate") == expected["broker_rebate"]
    assert column_sum(report.table("by_user_level"), "net_fee") == expected["net_fee"]
    assert column_sum(report.table("affiliated"), "user_rebate") == expected["user_rebate"]
    assert report.table("reconciliation").rows == january_report.table("reconciliation").rows
    assert "every broker code" in report.table("reconciliation").note
    assert all(code in table.note for table in report.tables if table.name != "reconciliation")
    assert code in report.title


def test_quarantined_and_failed_windows_are_warned_about(tmp_path: Path, fake_clock: FakeClock) -> None:
    settings = load_settings(rebates_data_dir=tmp_path / "data", rebates_db=tmp_path / "data" / "r.duckdb",
                             rebates_tz=REPORT_TZ)  # fmt: skip
    ledger = Ledger(settings.rebates_db, fake_clock)
    window = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 3))
    broken = tmp_path / "broken.csv"
    spec = FileSpec(window.begin, window.end, "api", orders_per_day=3, day_tz=REPORT_TZ)
    broken.write_bytes(corrupt(build_rebate_file(spec), Corruption.BAD_AMOUNT))
    assert load_by_hand(settings, ledger, broken, window, fake_clock).state is WindowState.QUARANTINED
    ledger.add_windows([(RebateWindow("oauth", date(2025, 1, 5), date(2025, 1, 9)), WindowKind.HISTORY)])
    finished = ledger.transition("oauth:20250105-20250109", WindowState.PLANNED, WindowState.FINISHED)
    ledger.fail(finished, "OKX said no")
    report = make_report(settings.rebates_db)
    assert any("api:20250101-20250103 is quarantined" in warning for warning in report.warnings)
    assert any("oauth:20250105-20250109 is failed: OKX said no" in warning for warning in report.warnings)
    assert report.missing_days == tuple(JANUARY.day_list())
    assert report.windows_covered == ()
    assert report.table("reconciliation").rows == ()


def test_a_database_not_created_yet_gives_an_empty_report_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "data" / "rebates.duckdb"
    report = make_report(path)
    assert not path.exists() and not path.parent.exists()
    assert summary_row(report, "broker_rebate")["this_period"] == 0
    assert summary_row(report, "orders")["this_period"] == 0
    assert report.missing_days == tuple(JANUARY.day_list())
    assert len(report.table("by_day").rows) == 31
    assert any("does not exist" in warning for warning in report.warnings)


def test_the_database_is_opened_read_only(report_db: ReportDatabase) -> None:
    analyst = duckdb.connect(str(report_db.path), read_only=True)  # a writer could not open it alongside
    try:
        report = make_report(report_db.path)
    finally:
        analyst.close()
    assert report.reconciliation_ok


def test_rates_are_exact_decimals_quantized_and_undefined_over_zero() -> None:
    assert ratio(Decimal("1"), Decimal("3")) == Decimal("0.3333333333")
    assert ratio(Decimal("2"), Decimal("3")) == Decimal("0.6666666667")
    assert ratio(Decimal("5"), 0) is None
    assert ratio(Decimal("1E+19"), Decimal("1E-18")) == Decimal("1E+37")  # quantizing it needs 48 digits
    assert ratio(3, 4) == Decimal("0.7500000000")


def test_summary_values_take_the_kind_of_their_row(january_report: Report) -> None:
    summary = january_report.summary
    kinds = {
        str(row[0]): {column.name: cell_kind(summary, column, row) for column in summary.columns}
        for row in summary.rows
    }
    assert kinds[LABELS["effective_rate"]]["this_period"] is Kind.RATE
    assert kinds[LABELS["orders"]]["change"] is Kind.INTEGER
    assert kinds[LABELS["fee"]]["previous_period"] is Kind.AMOUNT
    assert all(each["change_pct"] is Kind.RATE and each["metric"] is Kind.TEXT for each in kinds.values())
    assert isinstance(summary_row(january_report, "orders")["this_period"], int)
    by_day = january_report.table("by_day")
    assert cell_kind(by_day, by_day.columns[0], by_day.rows[0]) is Kind.DATE
    assert [key for key, _, kind in METRICS if kind is Kind.AMOUNT] == list(AMOUNTS)
