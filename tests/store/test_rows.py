"""The row rules: the exact reader names a bad value's row; DuckDB's fast path refuses and takes the same rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

import pipeline.store.containers
import pipeline.store.load
import pipeline.store.rows
import pipeline.store.sheets
from pipeline.archive import archive_local_file
from pipeline.clock import FakeClock
from pipeline.config import Settings
from pipeline.db import connect
from pipeline.ledger import Ledger, WindowState
from pipeline.simulator.files import (
    COLUMNS_16,
    FileSpec,
    generate_rows,
)
from pipeline.sqlfiles import sql_text
from pipeline.store.ingest import IngestOutcome, ingest_window
from pipeline.store.load import LoadResult
from pipeline.store.parse import FRAME_SCHEMA, RebateFile, RejectedFile, parse_rebate_file
from pipeline.store.rows import MAX_TS_MS, MIN_TS_MS, fast_path_sql, fast_path_ts_range
from pipeline.windows import RebateWindow, WindowKind
from tests.store.rebate_files import (
    csv_bytes,
    exact_sum,
    parse_file,
    rejected,
    row,
    write,
)

WINDOW = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 3))
OFFSET = timedelta(hours=8)
"""REBATES_TZ's default, OKX's days."""
BAD_ROW = 3
"""The data row each bad value is written into, after two good rows."""


def ms(moment: datetime) -> str:
    return str((moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1))


WINDOW_FIRST_MS = ms(datetime(2024, 12, 31, 16, tzinfo=UTC))
"""2025-01-01 00:00 at UTC+8: the window's first millisecond."""
WINDOW_LAST_MS = ms(datetime(2025, 1, 3, 16, tzinfo=UTC) - timedelta(milliseconds=1))
"""2025-01-03 23:59:59.999 at UTC+8: its last."""

BAD_VALUES: dict[str, tuple[str, str, str]] = {
    "ordId with a letter": ("ordId", "28771983846250496x0", "not an order id"),
    "ordId as a spreadsheet wrote it": ("ordId", "2.8771983846250496E+18", "not an order id"),
    "ordId empty": ("ordId", "", "every row needs a value"),
    "brokerCode empty": ("brokerCode", "", "every row needs a value"),
    "instId empty": ("instId", "", "every row needs a value"),
    "ts not a number": ("ts", "17356896OO000", "not epoch milliseconds"),
    "ts with a fraction": ("ts", "1735689600000.5", "not epoch milliseconds"),
    "ts in seconds": ("ts", "1735689600", "it looks like seconds"),
    "ts in microseconds": ("ts", "1735689600000000", "it looks like microseconds"),
    "ts empty": ("ts", "", "every row needs a value"),
    "ts before the window": ("ts", str(int(WINDOW_FIRST_MS) - 1), "check REBATES_TZ"),
    "ts after the window": ("ts", str(int(WINDOW_LAST_MS) + 1), "check REBATES_TZ"),
    "ts a month off": ("ts", str(int(WINDOW_FIRST_MS) + 40 * 86_400_000), "is it the right file"),
    "affiliated yes": ("affiliated", "yes", "not true or false"),
    "affiliated 1": ("affiliated", "1", "not true or false"),
    "affiliated empty": ("affiliated", "", "every row needs a value"),
    "an amount with 19 places": ("fee", "0.0000000000000000001", "more than 18 decimal places"),
    "an amount with 21 integer digits": ("netFee", "123456789012345678901", "20 integer digits"),
    "an amount whose exponent needs 19 places": ("brokerRebate", "1.5e-19", "more than 18 decimal places"),
    "an amount with a huge exponent": ("userRebate", "0e61", "more than 18 decimal places"),
    "an amount that is no number": ("spotTradeAmt", "1.2.3", "not a decimal number"),
    "an amount in words": ("derivativeTradeAmt", "NaN", "not a decimal number"),
    "an amount with a comma": ("settlementFee", '"1,5"', "not a decimal number"),
    "an amount empty": ("suBrokerRebate", "", "every row needs a value"),
}
"""column, the text written in data row `BAD_ROW`, and what the exact reader's message says."""

UNUSUAL_VALUES: dict[str, tuple[str, str]] = {
    "affiliated in capitals": ("affiliated", "TRUE"),
    "affiliated capitalised": ("affiliated", "False"),
    "an amount with a +": ("fee", "+1.5"),
    "an amount without a leading zero": ("netFee", "-.5"),
    "an amount ending in a point": ("settlementFee", "5."),
    "an amount padded with zeros": ("brokerRebate", "007.500000000000000000000000"),
    "an amount in scientific notation": ("userRebate", "1.5e-7"),
    "an amount with an exponent in capitals": ("spotTradeAmt", "1E+2"),
    "an amount of every digit DECIMAL(38,18) has": ("derivativeTradeAmt", "12345678901234567890.123456789012345678"),
    "the smallest amount": ("suBrokerRebate", "-0.000000000000000001"),
    "negative zero": ("fee", "-0"),
    "an ordId with leading zeros": ("ordId", "0002877198384625049600"),
    "the window's first millisecond": ("ts", WINDOW_FIRST_MS),
    "the window's last millisecond": ("ts", WINDOW_LAST_MS),
    "empty optional ids": ("clOrdId", ""),
    "a level of its own": ("level", "Lv9"),
}
"""column and a text both readers take, in data row `BAD_ROW`."""


def rebate_csv(tmp_path: Path, column: str, text: str) -> Path:
    """A CSV of the window's generated rows (16 columns) with `text` as `column` of data row `BAD_ROW`."""
    rows = generate_rows(FileSpec(WINDOW.begin, WINDOW.end, "api", orders_per_day=2))
    rows[BAD_ROW - 1] = {**rows[BAD_ROW - 1], column: text}
    lines = [",".join(COLUMNS_16), *(",".join(row[name] for name in COLUMNS_16) for row in rows)]
    path = tmp_path / "rebates.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class Attempt:
    """One reading of the file by the loader: DuckDB's fast path or the exact reader, and the error it ended with."""

    fast: bool
    error: Exception | None


def load_recording_attempts(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[Attempt], IngestOutcome]:
    """Load `path` as the window's file the way a pass does (`ingest_window`), noting each reader the loader tried
    and how it ended."""
    (record,) = ledger.add_windows([(WINDOW, WindowKind.ADOPTED)])
    archived = archive_local_file(path, WINDOW, settings.layout)
    record = ledger.record_archived(record, archived.file_record(WINDOW), "local")
    attempts: list[Attempt] = []
    real_run = pipeline.store.load._Load.run

    def recording(self: pipeline.store.load._Load, source: RebateFile, *, fast: bool) -> LoadResult:
        try:
            result = real_run(self, source, fast=fast)
        except Exception as exc:
            attempts.append(Attempt(fast, exc))
            raise
        attempts.append(Attempt(fast, None))
        return result

    monkeypatch.setattr(pipeline.store.load._Load, "run", recording)
    return attempts, ingest_window(settings, ledger, record, fake_clock)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_both_readers_refuse_the_same_bad_row(
    settings: Settings,
    ledger: Ledger,
    fake_clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    """DuckDB's fast path stops at the bad value (the load falls back) and the exact reader names its row."""
    column, text, problem = BAD_VALUES[case]
    path = rebate_csv(tmp_path, column, text)
    with pytest.raises(RejectedFile) as caught:
        parse_rebate_file(path, tz=settings.rebates_tz, max_unzipped_bytes=10**9, window=(WINDOW.begin, WINDOW.end))
    message = str(caught.value)
    assert message.startswith(f"{column} in data row {BAD_ROW} is ") and problem in message, message

    attempts, outcome = load_recording_attempts(settings, ledger, fake_clock, path, monkeypatch)
    assert [attempt.fast for attempt in attempts] == [True, False], "the fast path was tried, then the exact reader"
    refused = attempts[0].error
    assert isinstance(refused, pipeline.store.load._FastPathRefused), refused
    assert isinstance(refused.__cause__, duckdb.Error), "DuckDB's own check stopped it, not a shape test"
    assert isinstance(attempts[1].error, RejectedFile) and str(attempts[1].error) == message
    assert outcome.state is WindowState.QUARANTINED and outcome.reason is not None and message in outcome.reason
    with connect(settings.rebates_db) as db:
        assert db.execute("SELECT count(*) FROM rebate_details").fetchone() == (0,)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(UNUSUAL_VALUES))
def test_both_readers_take_an_unusual_row_with_the_same_values(
    settings: Settings,
    ledger: Ledger,
    fake_clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    """The fast path loads the file itself, and every value it stored is the one the exact reader reads."""
    column, text = UNUSUAL_VALUES[case]
    path = rebate_csv(tmp_path, column, text)
    exact = parse_rebate_file(path, tz=settings.rebates_tz, max_unzipped_bytes=10**9, window=(WINDOW.begin, WINDOW.end))
    attempts, outcome = load_recording_attempts(settings, ledger, fake_clock, path, monkeypatch)
    assert attempts == [Attempt(True, None)], attempts
    assert outcome.state is WindowState.LOADED and outcome.result is not None
    assert outcome.result.rows_loaded == exact.rows
    columns = [name for name in FRAME_SCHEMA.names() if name != "extra"]
    with connect(settings.rebates_db) as db:
        loaded = db.execute(f"SELECT {', '.join(columns)} FROM rebate_details ORDER BY source_row").fetchall()
    assert loaded == exact.frame.select(columns).rows()


@pytest.mark.slow
def test_a_ts_with_leading_zeros_is_left_to_the_exact_reader_which_loads_it(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the fast path is stricter on purpose (rows.TS.fast), the file still loads, read exactly."""
    path = rebate_csv(tmp_path, "ts", "0" + WINDOW_FIRST_MS)
    attempts, outcome = load_recording_attempts(settings, ledger, fake_clock, path, monkeypatch)
    assert [(attempt.fast, type(attempt.error)) for attempt in attempts] == [
        (True, pipeline.store.load._FastPathRefused),
        (False, type(None)),
    ]
    assert outcome.state is WindowState.LOADED and outcome.result is not None
    assert outcome.result.rows_loaded == len(path.read_text().splitlines()) - 1


def test_the_fast_paths_ts_range_is_the_window_within_the_plausible_times() -> None:
    """One comparison per row holds both ts rules: the window's days at the offset, and 2015..2100."""
    assert fast_path_ts_range((WINDOW.begin, WINDOW.end), OFFSET) == (int(WINDOW_FIRST_MS), int(WINDOW_LAST_MS))
    assert fast_path_ts_range((date(2014, 12, 1), date(2015, 1, 1)), timedelta(0))[0] == MIN_TS_MS
    assert fast_path_ts_range((date(2099, 12, 31), date(2100, 1, 1)), OFFSET)[1] == MAX_TS_MS


@pytest.mark.parametrize("statement", ["load/insert_csv.sql", "load/plain_amount.sql"])
def test_every_rule_placeholder_of_the_fast_path_is_filled(statement: str) -> None:
    """The statements keep no pattern or limit of their own: each is a placeholder the rules fill."""
    template = sql_text(statement)
    assert "{rules." in template
    filled = fast_path_sql(template)
    assert "{rules." not in filled.replace("{rules.<name>}", "")
    assert "[0-9]" not in template, "a pattern written in the SQL rather than taken from store/rows.py"


# --- the exact reader's checks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "0.123456789012345678",
        "-0.000000000000000001",
        "12345678901234567890",
        "-12345678901234567890.123456789012345678",
        "1.50000000000000000000000",
        "000000000000000000000000001.5",
        "+3.25",
        ".5",
        "-.5",
        "5.",
        "1.5E-7",
        "-2e3",
        "1E-18",
        "1e+19",
        "12345678901234567890123456789012345678E-18",
        "0.00000000000000000012345E+5",
        "0e-40",
    ],
)
def test_an_amount_is_read_exactly_as_written(tmp_path: Path, text: str) -> None:
    parsed = parse_file(write(tmp_path, csv_bytes([row(fee=text), row()])))
    assert parsed.frame["fee"].to_list() == [Decimal(text), Decimal("-0.004936")]
    assert parsed.totals["fee"] == exact_sum([Decimal(text), Decimal("-0.004936")])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0.1234567890123456789", "more than 18 decimal places"),
        ("1e-19", "more than 18 decimal places"),
        ("1.5E-18", "more than 18 decimal places"),
        ("123456789012345678901", "20 integer digits"),
        ("1e20", "20 integer digits"),
        ("1e99999999999999999999", "20 integer digits"),
        ("abc", "not a decimal number"),
        ("1.2.3", "not a decimal number"),
        ("1,5", "not a decimal number"),
        (" 1.5", "not a decimal number"),
        ("NaN", "not a decimal number"),
        ("0x10", "not a decimal number"),
        ("", "is empty"),
    ],
)
def test_an_amount_that_cannot_be_held_exactly_rejects_the_file(tmp_path: Path, text: str, problem: str) -> None:
    message = rejected(tmp_path, csv_bytes([row(), row(), row(netFee=f'"{text}"')]))
    assert message.startswith("netFee in data row 3 is ")
    assert problem in message
    if text:
        assert repr(text) in message


def test_the_cast_is_confirmed_against_python_decimal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        pipeline.store.rows, "_cast_amount", lambda text: text.cast(pl.Decimal(38, 2)).cast(pl.Decimal(38, 18))
    )
    with pytest.raises(RuntimeError, match="not exact"):
        parse_file(write(tmp_path, csv_bytes([row()])))


def test_the_first_bad_row_is_named_whatever_its_column(tmp_path: Path) -> None:
    data = csv_bytes([row(), row(ts="later"), row(fee="1e-30"), row(brokerCode="")])
    assert rejected(tmp_path, data).startswith("ts in data row 2 is 'later', not epoch milliseconds")


# --- other values -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["brokerCode", "instId", "ordId", "affiliated", "ts", "fee"])
def test_an_empty_required_value_rejects_the_file(tmp_path: Path, column: str) -> None:
    message = rejected(tmp_path, csv_bytes([row(), row(**{column: ""})]))
    assert message.startswith(f"{column} in data row 2 is empty")


@pytest.mark.parametrize(
    ("column", "text"),
    [("ordId", "28771983846250496O0"), ("ordId", "-1"), ("ts", "1758250140000.5"), ("ts", "-1"), ("affiliated", "yes")],
)
def test_a_malformed_value_rejects_the_file(tmp_path: Path, column: str, text: str) -> None:
    message = rejected(tmp_path, csv_bytes([row(**{column: text})]))
    assert message.startswith(f"{column} in data row 1 is {text!r}")


def test_ids_stay_text_and_empty_optional_values_become_null(tmp_path: Path) -> None:
    values = row(uid="0012345678901234567", clOrdId="00123", level="", brokerCode="007x")
    frame = parse_file(write(tmp_path, csv_bytes([values, row(level="VIP1")]))).frame
    assert frame.select("uid", "cl_ord_id", "level", "broker_code", "ord_id").rows() == [
        ("0012345678901234567", "00123", None, "007x", "2877198384625049600"),
        (None, None, "VIP1", "656204a3b0e9BCDE", "2877198384625049600"),
    ]


def test_affiliated_is_read_in_any_case(tmp_path: Path) -> None:
    rows = [row(affiliated=text) for text in ("TRUE", "False", "true", "fAlSe")]
    assert parse_file(write(tmp_path, csv_bytes(rows))).frame["affiliated"].to_list() == [True, False, True, False]
