"""The report's figures: equal to the files summed independently, Total rows exact, comparisons honest about gaps."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.clock import FakeClock
from pipeline.config import load_settings
from pipeline.db import connect
from pipeline.ledger import Ledger, WindowState
from pipeline.report.data import METRICS, TOP_INSTRUMENTS, TOP_USERS, UnknownBrokerCode, build_report
from pipeline.report.model import TOTAL, Cell, Kind, Missing, Period, Report, Table, cell_kind
from pipeline.report.tables import ratio
from pipeline.simulator.files import Corruption, FileSpec, build_rebate_file, corrupt
from pipeline.store.ingest import load_by_hand
from pipeline.windows import RebateWindow, WindowKind
from tests.report.conftest import (
    AMOUNTS,
    JANUARY,
    MISSING_DAY,
    REPORT_TZ,
    REPORT_TZ_LABEL,
    ReportDatabase,
    SourceRow,
    amount_name,
    distinct_users,
    make_report,
    sources_in,
    totals,
)

pytestmark = pytest.mark.slow

LABELS = {key: label for key, label, _ in METRICS}
DECEMBER = Period.month(2024, 12)


def summary_row(report: Report, key: str) -> dict[str, Cell]:
    """The summary's row for one metric, by column name."""
    (row,) = [record for record in report.summary.records() if record["metric"] == LABELS[key]]
    return row


def by_key(table: Table, key: str) -> dict[Any, dict[str, Cell]]:
    return {record[key]: record for record in table.records()}


def expected_summary(rows: list[SourceRow]) -> dict[str, Any]:
    expected: dict[str, Any] = dict(totals(rows))
    expected["effective_rate"] = ratio(expected["broker_rebate"], expected["net_fee"])
    expected["fee_paid"] = -expected["fee"]
    expected["orders"] = len({row.ord_id for row in rows})
    expected["broker_codes"] = len({row.broker_code for row in rows})
    expected["users"] = distinct_users(rows)
    return expected


def test_summary_equals_the_files_summed_independently_to_the_last_digit(
    report_db: ReportDatabase, january_report: Report
) -> None:
    expected = expected_summary(report_db.rows_in(JANUARY))
    assert expected["broker_rebate"] > 0 and expected["orders"] > 100 and expected["users"] > 0
    for key, _, _ in METRICS:
        assert summary_row(january_report, key)["this_period"] == expected[key], key
    fee_paid = summary_row(january_report, "fee_paid")["this_period"]
    assert isinstance(fee_paid, Decimal) and fee_paid > 0  # the fee, its sign turned
    assert "API broker files carry no uid" in january_report.summary.note


def test_by_day_lists_every_day_with_each_days_sums_from_the_files(
    report_db: ReportDatabase, january_report: Report
) -> None:
    by_day = by_key(january_report.table("by_day"), "day")
    assert list(by_day) == JANUARY.day_list()
    source: dict[date, list[SourceRow]] = defaultdict(list)
    for row in report_db.rows_in(JANUARY):
        source[row.trade_date].append(row)
    for day in JANUARY.day_list():
        sums = totals(source[day])
        for name in ("fee", "net_fee", "settlement_fee", "broker_rebate", "sub_broker_rebate", "user_rebate"):
            assert by_day[day][amount_name(name)] == sums[name], (day, name)
        assert by_day[day]["orders"] == len({row.ord_id for row in source[day]})
        assert by_day[day]["data_complete"] == ("No" if day == MISSING_DAY else "Yes")


def test_a_day_no_file_holds_reads_no_data_not_zero(report_db: ReportDatabase) -> None:
    report = make_report(report_db.path, Period(date(2024, 12, 20), date(2024, 12, 31)))
    by_day = by_key(report.table("by_day"), "day")
    assert by_day[date(2024, 12, 25)]["broker_rebate_usdt"] is Missing.NO_DATA
    assert by_day[date(2024, 12, 25)]["orders"] is Missing.NO_DATA
    assert isinstance(by_day[date(2024, 12, 26)]["broker_rebate_usdt"], Decimal)
    total = report.table("by_day").total_record()
    assert total["broker_rebate_usdt"] == totals(report_db.rows_in(DECEMBER))["broker_rebate"]
    assert report.incomplete == ("2024-12-20..2024-12-25: no api or oauth file loaded yet",)


def test_by_broker_code_has_every_amount_and_users_only_where_files_carry_a_uid(
    report_db: ReportDatabase, january_report: Report
) -> None:
    rows = report_db.rows_in(JANUARY)
    table = january_report.table("by_broker_code")
    by_code = by_key(table, "broker_code")
    assert sorted(by_code) == sorted({row.broker_code for row in rows})
    for code, reported in by_code.items():
        mine = [row for row in rows if row.broker_code == code]
        for name, total in totals(mine).items():
            assert reported[amount_name(name)] == total, (code, name)
        assert reported["orders"] == len({row.ord_id for row in mine})
        assert reported["broker_type"] == mine[0].broker_type
        expected_users = Missing.NOT_AVAILABLE if mine[0].broker_type == "api" else distinct_users(mine)
        assert reported["users"] == expected_users, code
        assert reported["effective_rate_pct"] == ratio(totals(mine)["broker_rebate"], totals(mine)["net_fee"])
    assert "n/a where the files carry no uid" in table.note


def test_every_total_row_is_the_exact_sum_of_the_files_rows(report_db: ReportDatabase, january_report: Report) -> None:
    rows = report_db.rows_in(JANUARY)
    expected = totals(rows)
    orders = len({row.ord_id for row in rows})
    with_amounts = ("by_day", "by_broker_code", "by_user", "by_instrument_type", "top_instruments",
                    "by_user_level", "affiliated")  # fmt: skip
    for name in with_amounts:
        table = january_report.table(name)
        total = table.total_record()
        assert table.total is not None and table.total[0] == TOTAL, name
        for key in AMOUNTS:
            column = amount_name(key)
            if column in total:
                assert total[column] == expected[key], (name, key)
                with localcontext() as context:
                    context.prec = 80
                    added = sum((value for value in table.column(column) if isinstance(value, Decimal)), Decimal(0))
                assert added == expected[key], (name, key, "the rows add up to the Total")
        assert total["orders"] == orders, name
        if "users" in total:
            assert total["users"] == distinct_users(rows), name
        if "share_pct" in total:
            assert total["share_pct"] == 1
    reconciliation = january_report.table("reconciliation").total_record()
    assert reconciliation["rows_in_file"] == reconciliation["rows_in_database"] == len(rows)
    assert reconciliation["broker_rebate_in_file_usdt"] == expected["broker_rebate"]


def test_where_rows_overlap_the_total_counts_each_once_and_the_note_says_so(january_report: Report) -> None:
    by_day = january_report.table("by_day")
    days_add_up_to = sum(value for value in by_day.column("orders") if isinstance(value, int))
    total = by_day.total_record()["orders"]
    assert isinstance(total, int) and days_add_up_to > total
    assert f"The Total counts each order once ({total:,}); the rows add up to {days_add_up_to:,}" in by_day.note
    by_code = january_report.table("by_broker_code")
    assert "counts each" not in by_code.note.split("Users read")[0]  # an order has one code: they add up


def test_top_instruments_are_the_biggest_earners_then_the_rest_in_one_row(
    report_db: ReportDatabase, january_report: Report
) -> None:
    earned: dict[str, Decimal] = defaultdict(Decimal)
    for row in report_db.rows_in(JANUARY):
        earned[row.inst_id] += row.amounts["broker_rebate"]
    assert len(earned) > TOP_INSTRUMENTS
    ranked = sorted(earned.items(), key=lambda item: (-item[1], item[0]))
    table = january_report.table("top_instruments")
    shown = list(zip(table.column("instrument"), table.column("broker_rebate_usdt"), strict=True))
    assert shown[:TOP_INSTRUMENTS] == ranked[:TOP_INSTRUMENTS]
    rest = ranked[TOP_INSTRUMENTS:]
    assert shown[TOP_INSTRUMENTS] == (f"{len(rest)} other instruments", sum(value for _, value in rest))
    assert len(shown) == TOP_INSTRUMENTS + 1


def test_by_user_lists_every_uid_and_one_row_for_files_without_uid(
    report_db: ReportDatabase, january_report: Report
) -> None:
    rows = report_db.rows_in(JANUARY)
    table = january_report.table("by_user")
    users = {record["uid"]: record for record in table.records()}
    with_uid = {row.uid for row in rows if row.uid is not None}
    assert set(users) == with_uid | {Missing.NOT_AVAILABLE}
    for uid in with_uid:
        mine = [row for row in rows if row.uid == uid]
        assert users[uid]["broker_rebate_usdt"] == totals(mine)["broker_rebate"]
        assert users[uid]["broker_codes"] == ", ".join(sorted({row.broker_code for row in mine}))
    api_rows = [row for row in rows if row.uid is None]
    assert users[Missing.NOT_AVAILABLE]["user_rebate_usdt"] == totals(api_rows)["user_rebate"]
    assert table.short_rows is not None and len(table.short_rows) == TOP_USERS + 2  # the others, then n/a
    assert str(table.short_rows[TOP_USERS][0]).endswith("other users")
    with localcontext() as context:
        context.prec = 80
        shown = sum((row[4] for row in table.short_rows if isinstance(row[4], Decimal)), Decimal(0))
    assert shown == totals(rows)["broker_rebate"], "the page's short list still adds up to the period"


def test_the_previous_period_and_the_change_are_computed_from_the_files(
    report_db: ReportDatabase, january_report: Report
) -> None:
    assert january_report.previous == DECEMBER
    this = expected_summary(report_db.rows_in(JANUARY))
    before = expected_summary(report_db.rows_in(DECEMBER))
    assert before["broker_rebate"] > 0
    for key, _, kind in METRICS:
        row = summary_row(january_report, key)
        assert row["previous_period"] == before[key], key
        assert row["change"] == this[key] - before[key], key
        if kind is Kind.RATE:
            assert row["change_pct"] is None, "a rate's change is in percentage points, not a %"
            continue
        with localcontext() as context:
            context.prec = 60
            change = Decimal(this[key]) - Decimal(before[key])
            expected_pct = (change / abs(Decimal(before[key]))).quantize(Decimal("1E-10"))
        assert row["change_pct"] == expected_pct, key


def test_less_fee_paid_reads_as_a_fall(report_db: ReportDatabase) -> None:
    report = make_report(report_db.path, Period(date(2025, 1, 27), date(2025, 1, 31)))
    row = summary_row(report, "fee_paid")
    now, before = row["this_period"], row["previous_period"]
    assert isinstance(now, Decimal) and isinstance(before, Decimal) and now > 0 and before > 0
    change_pct = row["change_pct"]
    assert isinstance(change_pct, Decimal) and (change_pct < 0) == (now < before)
    fee = totals(report_db.rows_in(report.period))["fee"]
    assert now == -fee, "the fee paid is OKX's negative fee with its sign turned"


def test_without_a_loaded_previous_period_comparisons_read_no_data(report_db: ReportDatabase) -> None:
    report = make_report(report_db.path, Period(date(2024, 12, 26), date(2024, 12, 31)))
    assert report.previous == Period(date(2024, 12, 20), date(2024, 12, 25))
    for key, _, _ in METRICS:
        row = summary_row(report, key)
        assert row["previous_period"] is Missing.NO_DATA, key
        assert row["change"] is Missing.NO_DATA and row["change_pct"] in (Missing.NO_DATA, None), key
    assert all(figure.change is Missing.NO_DATA for figure in report.key_figures)
    changes = report.table("change_by_broker_code")
    assert set(changes.column("broker_rebate_previous_usdt")) == {Missing.NO_DATA}
    assert any("previous period 2024-12-20..2024-12-25 is loaded" in warning for warning in report.warnings)
    assert report.missing_days == ()


def test_change_per_broker_code_and_instrument_type_is_exact(report_db: ReportDatabase, january_report: Report) -> None:
    for name, key, attribute in (
        ("change_by_broker_code", "broker_code", "broker_code"),
        ("change_by_instrument_type", "instrument_type", "inst_id"),
    ):
        table = january_report.table(name)
        for record in table.records():
            item = record[key]

            def part(period: Period, item: Cell = item, attribute: str = attribute) -> Decimal:
                rows = report_db.rows_in(period)
                if attribute == "broker_code":
                    return totals(row for row in rows if row.broker_code == item)["broker_rebate"]
                return totals(row for row in rows if _inst_type(row.inst_id) == item)["broker_rebate"]

            assert record["broker_rebate_usdt"] == part(JANUARY), (name, item)
            assert record["broker_rebate_previous_usdt"] == part(DECEMBER), (name, item)
            assert record["broker_rebate_change_usdt"] == part(JANUARY) - part(DECEMBER), (name, item)
        total = table.total_record()
        assert total["net_fee_usdt"] == totals(report_db.rows_in(JANUARY))["net_fee"]
        assert total["net_fee_previous_usdt"] == totals(report_db.rows_in(DECEMBER))["net_fee"]


def _inst_type(inst_id: str) -> str:
    parts = inst_id.split("-")
    if inst_id.endswith("-SWAP"):
        return "SWAP"
    if len(parts) == 5:
        return "OPTION"
    return "FUTURES" if len(parts) == 3 else "SPOT"


def test_the_trend_has_each_month_with_data_and_its_sums(report_db: ReportDatabase, january_report: Report) -> None:
    trend = january_report.table("trend")
    months = by_key(trend, "month")
    assert list(months) == [date(2024, 12, 1), date(2025, 1, 1)], "months before the first loaded file are left out"
    for period in (DECEMBER, JANUARY):
        record, rows = months[period.start], report_db.rows_in(period)
        assert record["broker_rebate_usdt"] == totals(rows)["broker_rebate"]
        assert record["user_rebate_usdt"] == totals(rows)["user_rebate"]
        assert record["active_users"] == distinct_users(rows)
        assert record["effective_rate_pct"] == ratio(totals(rows)["broker_rebate"], totals(rows)["net_fee"])
    assert months[DECEMBER.start]["data"] == "6 of 31 days"
    assert months[JANUARY.start]["data"] == "30 of 31 days"
    assert [chart.table for chart in january_report.charts].count("trend") == 1


def test_a_missing_day_is_said_once_as_a_range_naming_what_it_lacks(january_report: Report) -> None:
    assert january_report.missing_days == (MISSING_DAY,)
    assert january_report.incomplete == ("2025-01-15: no api file loaded yet",)
    assert not any("2025-01-15" in warning for warning in january_report.warnings), "said once, in `incomplete`"
    assert any("previous period 2024-12" in warning for warning in january_report.warnings)
    words = " ".join(january_report.warnings)
    for developer_word in ("window", "trade_date", "REBATES_TZ", "api:2025"):
        assert developer_word not in words


def test_days_not_over_yet_are_not_called_missing(report_db: ReportDatabase) -> None:
    now = datetime(2025, 1, 20, 3, tzinfo=UTC)  # 11:00 on 20 January in UTC+8: the 20th is not over
    report = build_report(report_db.path, JANUARY, sources_from=report_db.sources, tz_label=REPORT_TZ_LABEL, now=now)
    assert report.freshness.not_over == tuple(day for day in JANUARY.day_list() if day >= date(2025, 1, 20))
    assert report.missing_days == (MISSING_DAY,)
    by_day = by_key(report.table("by_day"), "day")
    assert by_day[date(2025, 1, 25)]["data_complete"] == "Not over yet"
    assert report.local_generated_at == now.astimezone(REPORT_TZ)


def test_freshness_and_sources_say_what_is_loaded(january_report: Report) -> None:
    assert january_report.freshness.latest_complete_day == date(2025, 1, 31)
    assert january_report.freshness.last_load is not None
    assert january_report.sources == (
        "api: 2 files (2025-01-01..2025-01-14, 2025-01-16..2025-01-31)",
        "oauth: 1 file (2025-01-01..2025-01-31)",
    )
    files = january_report.table("source_files")
    assert [str(name).endswith(".csv") for name in files.column("file_name")] == [True] * 3
    assert all(len(str(sha)) == 64 for sha in files.column("sha256"))


def test_each_window_reconciles_the_periods_part_of_its_file_read_again(
    report_db: ReportDatabase, january_report: Report
) -> None:
    assert january_report.reconciliation_ok
    reconciliation = january_report.table("reconciliation")
    assert reconciliation.cards
    records = reconciliation.records()
    assert [record["file"] for record in records] == [
        "api file 2025-01-01 to 2025-01-14",
        "oauth file 2025-01-01 to 2025-01-31",
        "api file 2025-01-16 to 2025-01-31",
    ]
    for record in records:
        assert record["matches"] is True and record["unchanged_since_load"] is True and record["differences"] is None


def test_a_weeks_reconciliation_holds_the_weeks_rows_not_the_whole_files(report_db: ReportDatabase) -> None:
    week = Period(date(2025, 1, 3), date(2025, 1, 9))
    report = make_report(report_db.path, week)
    by_file = by_key(report.table("reconciliation"), "file")
    oauth = by_file["oauth file 2025-01-01 to 2025-01-31"]
    mine = [row for row in report_db.rows_in(week) if row.broker_type == "oauth"]
    assert oauth["rows_in_file"] == oauth["rows_in_database"] == len(mine)
    assert oauth["broker_rebate_in_file_usdt"] == totals(mine)["broker_rebate"]
    assert oauth["days"] == "2025-01-03..2025-01-09"
    assert (
        report.table("reconciliation").total_record()["net_fee_in_file_usdt"]
        == totals(report_db.rows_in(week))["net_fee"]
    )


@pytest.mark.parametrize(
    ("change", "differences"),
    [
        (
            "UPDATE rebate_details SET broker_rebate = broker_rebate + 0.000000000000000001 "
            "WHERE (ord_id, trade_date) = (SELECT (ord_id, trade_date) FROM rebate_details WHERE window_id = $window "
            "ORDER BY ord_id, trade_date LIMIT 1)",
            "broker rebate",
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
    report = make_report(path, sources=report_db.sources)
    assert not report.reconciliation_ok
    rows = by_key(report.table("reconciliation"), "file")
    assert rows["api file 2025-01-16 to 2025-01-31"]["matches"] is False
    assert rows["api file 2025-01-16 to 2025-01-31"]["unchanged_since_load"] is False
    assert str(rows["api file 2025-01-16 to 2025-01-31"]["differences"]).startswith(differences)
    assert all(row["matches"] for file, row in rows.items() if file != "api file 2025-01-16 to 2025-01-31")
    assert any("api file 2025-01-16 to 2025-01-31 does not match" in warning for warning in report.warnings)


def test_a_file_that_cannot_be_read_again_leaves_the_report_not_reconciled(
    report_db: ReportDatabase, tmp_path: Path
) -> None:
    report = make_report(report_db.path, sources=sources_in(tmp_path / "elsewhere"))
    assert not report.reconciliation_ok
    (first, *_) = report.table("reconciliation").records()
    assert "could not be read again" in str(first["differences"]) and "not in the archive" in str(first["differences"])


def test_a_broker_code_limits_every_table_and_the_reconciliation_to_it(
    report_db: ReportDatabase, january_report: Report
) -> None:
    code = report_db.broker_codes[0]
    report = make_report(report_db.path, broker_code=code)
    rows = report_db.rows_in(JANUARY, code)
    expected = expected_summary(rows)
    for key, _, _ in METRICS:
        assert summary_row(report, key)["this_period"] == expected[key], key
    assert report.table("by_broker_code").column("broker_code") == [code]
    assert report.table("by_day").total_record()["broker_rebate_usdt"] == expected["broker_rebate"]
    reconciliation = report.table("reconciliation").total_record()
    assert reconciliation["rows_in_file"] == len(rows), "the files' rows of this code only"
    assert reconciliation["broker_rebate_in_file_usdt"] == expected["broker_rebate"]
    assert code in report.title


def test_an_unknown_broker_code_is_refused_naming_the_known_ones(report_db: ReportDatabase) -> None:
    with pytest.raises(UnknownBrokerCode) as refused:
        make_report(report_db.path, broker_code="NOSUCH")
    message = str(refused.value)
    assert "'NOSUCH'" in message and all(code in message for code in report_db.broker_codes)


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
    assert any("api file 2025-01-01 to 2025-01-03 was set aside (quarantined)" in warning
               for warning in report.warnings)  # fmt: skip
    assert any("oauth file 2025-01-05 to 2025-01-09 failed: OKX said no" in warning for warning in report.warnings)
    assert report.missing_days == tuple(JANUARY.day_list())
    assert report.sources == ()
    assert report.table("reconciliation").rows == ()


def test_a_database_not_created_yet_gives_an_empty_report_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "data" / "rebates.duckdb"
    report = make_report(path)
    assert not path.exists() and not path.parent.exists()
    assert summary_row(report, "broker_rebate")["this_period"] == 0
    assert summary_row(report, "orders")["this_period"] == 0
    assert report.missing_days == tuple(JANUARY.day_list())
    assert len(report.table("by_day").rows) == 31
    assert any("there is no database" in warning for warning in report.warnings)


def test_the_database_is_opened_read_only(report_db: ReportDatabase) -> None:
    analyst = duckdb.connect(str(report_db.path), read_only=True)  # a writer could not open it alongside
    try:
        report = make_report(report_db.path)
        macros = analyst.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name = 'details_in_scope'")
        assert macros.fetchone() == (0,), "the report's macro is TEMP, on its own connection, never in the file"
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
        str(row[0]): {column.name: cell_kind(summary, column, index) for column in summary.columns}
        for index, row in enumerate(summary.rows)
    }
    assert kinds[LABELS["effective_rate"]]["this_period"] is Kind.RATE
    assert kinds[LABELS["effective_rate"]]["change"] is Kind.RATE_POINTS
    assert kinds[LABELS["orders"]]["change"] is Kind.INTEGER
    assert kinds[LABELS["fee_paid"]]["previous_period"] is Kind.AMOUNT
    assert all(each["change_pct"] is Kind.RATE and each["metric"] is Kind.TEXT for each in kinds.values())
    assert isinstance(summary_row(january_report, "orders")["this_period"], int)
    assert {str(record["unit"]) for record in summary.records()} == {"USDT", "%", "count"}
