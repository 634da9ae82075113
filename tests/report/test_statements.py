"""Statements per broker code: only that code's rows and totals, exact, reconciled day by day with its files' rows."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, localcontext
from pathlib import Path

import pytest
from openpyxl import load_workbook

from pipeline.clock import FakeClock
from pipeline.config import load_settings
from pipeline.report.data import UnknownBrokerCode
from pipeline.report.model import TOTAL, Missing, Period, Report, exact_text
from pipeline.report.run import MANIFEST, StatementsRun, write_statements
from pipeline.report.text import format_amount
from pipeline.windows import RebateWindow
from tests.report.browser import measure, too_wide
from tests.report.conftest import (
    AMOUNTS,
    JANUARY,
    MISSING_DAY,
    REPORT_NOW,
    REPORT_TZ,
    ReportDatabase,
    amount_name,
    distinct_users,
    load_files,
    make_statements,
    totals,
)

pytestmark = pytest.mark.slow

FEBRUARY = Period.month(2025, 2)

HEADER_14 = ("brokerCode,level,instId,ordId,spotTradeAmt,derivativeTradeAmt,fee,netFee,settlementFee,brokerRebate,"
             "suBrokerRebate,userRebate,affiliated,ts")  # fmt: skip
HEADER_16 = ("brokerCode,level,uid,instId,ordId,clOrdId,spotTradeAmt,derivativeTradeAmt,fee,netFee,settlementFee,"
             "brokerRebate,suBrokerRebate,userRebate,affiliated,ts")  # fmt: skip


def ts(day: int, hour: int = 12) -> str:
    """Epoch milliseconds of `hour` o'clock on 2025-02-`day` in UTC+8."""
    moment = datetime.combine(date(2025, 2, day), time(hour), tzinfo=REPORT_TZ)
    return str(int(moment.timestamp() * 1000))


API_ROWS = [
    # code, level, instId, ordId, spot, derivative, fee, netFee, settlementFee, broker, sub-broker, user, affiliated
    ("APICODE1", "Lv1", "BTC-USDT", "2877198384625049601", "1000", "0", "-1.5", "1.2", "1.5", "0.48", "0", "0",
     "false", ts(3)),
    ("APICODE1", "", "ETH-USDT-SWAP", "2877198384625049602", "0", "24.68", "-0.004936", "0.0019744", "0.004936",
     "0.004936", "0", "0", "false", ts(3, 20)),
    ("APICODE1", "VIP1", "SOL-USDT-SWAP", "2877198384625049603", "0", "500.5", "-0.25", "0.2", "0.25",
     "0.08", "0.01", "0.02", "true", ts(10, 23)),
    ("APICODE1", "VIP1", "SOL-USDT-SWAP", "2877198384625049603", "0", "100.25", "-0.05", "0.04", "0.05",
     "0.016", "0.002", "0.004", "true", ts(11, 1)),  # the same order filling again the next day
    ("APICODE2", "VIP5", "BTC-USD-250328", "2877198384625049604", "0", "98765432109876.123456789012345678",
     "-123456789.123456789012345678", "123456789.000000000000000001", "123456789.123456789012345678",
     "41152263.000000000000000001", "0.000000000000000001", "1", "false", ts(28, 15)),
]  # fmt: skip
OAUTH_ROWS = [
    # code, level, uid, instId, ordId, clOrdId, amounts..., affiliated, ts
    ("OAUTHCODE", "Lv2", "445566778899001", "BTC-USDT", "2877198384625049701", "mine-1", "2000", "0", "-2", "1.9",
     "2", "0.6", "0.05", "0.1", "false", ts(1, 0)),
    ("OAUTHCODE", "Lv2", "445566778899001", "DOGE-USDT", "2877198384625049702", "", "300.3", "0", "-0.3", "0.29",
     "0.3", "0.09", "0", "0", "false", ts(14)),
    ("OAUTHCODE", "VIP2", "112233445566778", "ETH-USDT-SWAP", "2877198384625049703", "", "0", "777.7", "-0.7",
     "0.69", "0.7", "0.2", "0.01", "0.05", "true", ts(27, 23)),
]  # fmt: skip


@dataclass(frozen=True)
class HandMade:
    """A February loaded from hand-written files: an api file of 14 columns, an oauth file of 16."""

    db: Path
    data: Path


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory: pytest.TempPathFactory) -> HandMade:
    files = [
        (RebateWindow(broker_type, FEBRUARY.start, FEBRUARY.end),
         ("\r\n".join([header, *(",".join(row) for row in rows)]) + "\r\n").encode())
        for broker_type, header, rows in (("api", HEADER_14, API_ROWS), ("oauth", HEADER_16, OAUTH_ROWS))
    ]  # fmt: skip
    settings = load_files(tmp_path_factory.mktemp("hand_made"), files)
    return HandMade(settings.rebates_db, settings.rebates_data_dir)


def exact(*values: str) -> Decimal:
    with localcontext() as context:
        context.prec = 80
        return sum((Decimal(value) for value in values), Decimal(0))


def by_code(reports: list[Report]) -> dict[str, Report]:
    return {str(report.broker_code): report for report in reports}


def test_a_month_of_hand_made_files_gives_one_exact_statement_per_code(hand_made: HandMade) -> None:
    statements = by_code(make_statements(hand_made.db, FEBRUARY))
    assert set(statements) == {"APICODE1", "APICODE2", "OAUTHCODE"}
    big = statements["APICODE2"].table("by_day").total_record()
    assert big["derivative_trade_amt_usdt"] == Decimal("98765432109876.123456789012345678")
    assert big["broker_rebate_usdt"] == Decimal("41152263.000000000000000001")
    api = statements["APICODE1"]
    total = api.table("by_day").total_record()
    assert total["broker_rebate_usdt"] == exact("0.48", "0.004936", "0.08", "0.016")
    assert total["fee_usdt"] == exact("-1.5", "-0.004936", "-0.25", "-0.05")
    assert total["orders"] == 3, "the order filling on two days is one order"
    assert "the rows add up to 4 because an order that filled on two days counts on both" in api.table("by_day").note
    summary = {record["metric"]: record["this_period"] for record in api.summary.records()}
    assert summary["Users"] is Missing.NOT_AVAILABLE
    assert "by_user" not in [table.name for table in api.tables], "api files carry no uid: no user table"
    oauth = statements["OAUTHCODE"]
    users = {record["uid"]: record for record in oauth.table("by_user").records()}
    assert set(users) == {"445566778899001", "112233445566778"}
    assert users["445566778899001"]["user_rebate_usdt"] == exact("0.1", "0")
    assert {record["metric"]: record["this_period"] for record in oauth.summary.records()}["Users"] == 2
    assert all(report.reconciliation_ok and not report.missing_days for report in statements.values())


def test_each_day_of_a_statement_is_reconciled_with_its_codes_rows_in_the_files(hand_made: HandMade) -> None:
    api = by_code(make_statements(hand_made.db, FEBRUARY))["APICODE1"]
    days = {record["day"]: record for record in api.table("reconciliation").records()}
    assert list(days) == FEBRUARY.day_list()
    assert days[date(2025, 2, 3)]["rows_in_files"] == days[date(2025, 2, 3)]["rows_in_statement"] == 2
    assert days[date(2025, 2, 11)]["broker_rebate_in_files_usdt"] == Decimal("0.016")
    files = str(days[date(2025, 2, 3)]["files"])
    assert files.startswith("20250201_20250228_") and files.endswith(".csv") and "," not in files
    assert all(record["matches"] for record in days.values())
    total = api.table("reconciliation").total_record()
    assert total["day"] == TOTAL and total["rows_in_files"] == 4 and total["matches"] is True


def test_statements_for_one_code_and_an_unknown_code(hand_made: HandMade) -> None:
    (only,) = make_statements(hand_made.db, FEBRUARY, broker_code="OAUTHCODE")
    assert only.broker_code == "OAUTHCODE"
    with pytest.raises(UnknownBrokerCode, match="APICODE1 \\(api\\)"):
        make_statements(hand_made.db, FEBRUARY, broker_code="NOSUCH")
    assert make_statements(hand_made.db, JANUARY, broker_code="OAUTHCODE") == [], "no rows in January: no statement"


@pytest.fixture(scope="module")
def written(report_db: ReportDatabase, tmp_path_factory: pytest.TempPathFactory) -> StatementsRun:
    """January's statements from the generated database, written in every format."""
    root = tmp_path_factory.mktemp("statements")
    settings = load_settings(rebates_data_dir=report_db.path.parent, rebates_db=report_db.path, rebates_tz=REPORT_TZ)
    return write_statements(settings, JANUARY, out_dir=root / "out", clock=FakeClock(REPORT_NOW))


def file_texts(paths: tuple[Path, ...]) -> str:
    """Everything a statement's files say: the CSV and HTML text, every workbook cell, header and footer."""
    texts = []
    for path in paths:
        if path.suffix == ".xlsx":
            workbook = load_workbook(path)
            for sheet in workbook.worksheets:
                texts += [str(cell.value) for row in sheet.iter_rows() for cell in row if cell.value is not None]
        else:
            texts.append(path.read_text(encoding="utf-8"))
    return "\n".join(texts)


def test_every_file_of_a_statement_names_its_code(written: StatementsRun) -> None:
    assert len(written.statements) == 5
    for statement in written.statements:
        code = str(statement.report.broker_code)
        assert {path.suffix for path in statement.paths} == {".xlsx", ".html", ".csv"}
        assert all(code in path.name and path.parent == written.directory for path in statement.paths)


def test_a_statement_holds_no_other_codes_id_uid_or_total(written: StatementsRun, report_db: ReportDatabase) -> None:
    rows = report_db.rows_in(JANUARY)
    everything = totals(rows)
    for statement in written.statements:
        code = str(statement.report.broker_code)
        text = file_texts(statement.paths)
        mine = [row for row in rows if row.broker_code == code]
        others = [row for row in rows if row.broker_code != code]
        for other in {row.broker_code for row in others}:
            assert other not in text, (code, other)
        for uid in {row.uid for row in others if row.uid is not None}:
            assert uid not in text, (code, uid)
        for ord_id in {row.ord_id for row in rows}:
            assert ord_id not in text, (code, "no order ids at all")
        for other in {row.broker_code for row in others}:
            theirs = totals(row for row in others if row.broker_code == other)
            for key in ("broker_rebate", "net_fee", "user_rebate"):
                assert exact_text(theirs[key]) not in text, (code, other, key)
        for key in ("broker_rebate", "net_fee"):
            assert exact_text(everything[key]) not in text and format_amount(everything[key]) not in text, code
        assert exact_text(totals(mine)["broker_rebate"]) in text


def test_a_statements_totals_are_its_codes_rows_summed_exactly(
    written: StatementsRun, report_db: ReportDatabase
) -> None:
    for statement in written.statements:
        report = statement.report
        mine = [row for row in report_db.rows_in(JANUARY) if row.broker_code == report.broker_code]
        expected = totals(mine)
        for name in ("by_day", "by_instrument_type", "reconciliation"):
            total = report.table(name).total_record()
            assert total[next(iter(total))] == TOTAL
            for key in AMOUNTS:
                for column in (amount_name(key), f"{key}_in_files_usdt", f"{key}_in_statement_usdt"):
                    if column in total:
                        assert total[column] == expected[key], (report.broker_code, name, column)
        assert report.table("by_day").total_record()["orders"] == len({row.ord_id for row in mine})
        if "by_user" in [table.name for table in report.tables]:
            assert report.table("by_user").total_record()["user_rebate_usdt"] == expected["user_rebate"]
            assert len(report.table("by_user").rows) == distinct_users(mine)


def test_a_statement_warns_only_of_the_days_its_own_files_lack(written: StatementsRun) -> None:
    for statement in written.statements:
        report = statement.report
        broker_type = dict(report.facts)["Broker type"]
        if broker_type == "api":
            assert report.missing_days == (MISSING_DAY,)
            assert report.incomplete == (f"{MISSING_DAY}: no api file loaded yet",)
            # Its figures are unknown that day, not zero, although oauth's file holds the day.
            (day,) = [record for record in report.table("by_day").records() if record["day"] == MISSING_DAY]
            assert day["orders"] == day["broker_rebate_usdt"] == Missing.NO_DATA, day
        else:
            assert report.missing_days == () and report.warnings == ()


def test_the_manifest_has_a_row_per_statement_its_exact_totals_and_each_files_sha256(
    written: StatementsRun, report_db: ReportDatabase
) -> None:
    assert written.manifest == written.directory / MANIFEST
    with written.manifest.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["broker_code"] for row in rows] == [str(each.report.broker_code) for each in written.statements]
    for row, statement in zip(rows, written.statements, strict=True):
        mine = [each for each in report_db.rows_in(JANUARY) if each.broker_code == row["broker_code"]]
        assert (row["period_start"], row["period_end"]) == ("2025-01-01", "2025-01-31")
        assert int(row["orders"]) == len({each.ord_id for each in mine})
        for key, value in totals(mine).items():
            assert row[f"{key}_usdt"] == exact_text(value), (row["broker_code"], key)
        assert row["reconciled"] == "true" and row["account"] == "default"
        names, hashes = row["files"].split("; "), row["sha256"].split("; ")
        assert names == [path.name for path in statement.paths]
        for name, digest in zip(names, hashes, strict=True):
            assert hashlib.sha256((written.directory / name).read_bytes()).hexdigest() == digest


@pytest.mark.integration
def test_a_statements_page_fits_a_1280_px_window(written: StatementsRun, tmp_path: Path) -> None:
    page = next(path for path in written.statements[0].paths if path.suffix == ".html")
    layout = measure(page, tmp_path)
    assert len(layout.tables) >= 4
    assert too_wide(layout) == []


def test_a_statement_generated_at_is_shown_in_the_reports_timezone(written: StatementsRun) -> None:
    report = written.statements[0].report
    assert report.shown_generated_at == REPORT_NOW.astimezone(REPORT_TZ)
    assert report.shown_generated_at.utcoffset() == timedelta(hours=8)
    assert report.generated_at.astimezone(UTC) == REPORT_NOW
