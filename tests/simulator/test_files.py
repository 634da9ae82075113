"""The simulator's rebate files: deterministic, realistic per FACTS.md, in every shape, and damaged on request."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import subprocess
import sys
import time
import zipfile
from collections import Counter, defaultdict
from datetime import UTC, date, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastexcel
import polars as pl
import pytest

from pipeline.clock import from_epoch_ms
from pipeline.simulator.files import (
    AMOUNT_COLUMNS,
    COLUMNS_14,
    COLUMNS_16,
    XLS_MAX_ROWS,
    Corruption,
    FileShape,
    FileSpec,
    HeaderStyle,
    Layout,
    build_rebate_file,
    corrupt,
    file_columns,
    generate_rows,
    render,
)

REPO = Path(__file__).resolve().parents[3]
TEXT_SHAPES = (FileShape.CSV, FileShape.CSV_BOM, FileShape.CSV_CRLF)
SPREADSHEETS = (FileShape.XLSX, FileShape.XLS)
UTC8 = timezone(timedelta(hours=8))


def spec(**overrides: Any) -> FileSpec:
    """Four days of a small api broker, unless told otherwise."""
    values: dict[str, Any] = {"begin": date(2025, 5, 10), "end": date(2025, 5, 13), "broker_type": "api"}
    values["orders_per_day"] = 10
    return FileSpec(**{**values, **overrides})


BIG = spec(begin=date(2025, 5, 1), end=date(2025, 5, 6), orders_per_day=40)
"""Enough rows (about 250) for the ~5-10 % features to appear."""


@pytest.fixture(scope="module")
def big_rows() -> list[dict[str, str]]:
    return generate_rows(BIG)


def csv_table(data: bytes) -> tuple[list[str], list[list[str]]]:
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    return lines[0], lines[1:]


def as_dicts(header: list[str], table: list[list[str]], layout: Layout, style: HeaderStyle) -> list[dict[str, str]]:
    canonical = {written: name for name, written in file_columns(layout, style)}
    return [{canonical[column]: value for column, value in zip(header, row, strict=True)} for row in table]


def projected(rows: list[dict[str, str]], layout: Layout) -> list[dict[str, str]]:
    names = COLUMNS_16 if layout is Layout.COLUMNS_16 else COLUMNS_14
    return [{name: row[name] for name in names} for row in rows]


def zip_member(data: bytes) -> tuple[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        (name,) = archive.namelist()
        return name, archive.read(name)


def row_day(row: dict[str, str], tz: timezone = UTC8) -> date:
    return from_epoch_ms(row["ts"]).astimezone(tz).date()


# --- determinism ----------------------------------------------------------------------------------------------


_HASH_SCRIPT = """
import hashlib, sys
from datetime import date
from pipeline.simulator.files import FileShape, FileSpec, build_rebate_file
for shape in FileShape:
    data = build_rebate_file(FileSpec(date(2025, 5, 10), date(2025, 5, 13), "oauth", shape=shape, orders_per_day=10))
    print(shape.value, hashlib.sha256(data).hexdigest())
"""


def test_the_same_spec_gives_the_same_bytes_in_every_shape_at_any_time_and_in_every_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def digests() -> dict[str, str]:
        return {
            shape.value: hashlib.sha256(build_rebate_file(spec(broker_type="oauth", shape=shape))).hexdigest()
            for shape in FileShape
        }

    here = digests()
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 10 * 86_400)
    assert digests() == here
    monkeypatch.undo()
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", _HASH_SCRIPT], capture_output=True, text=True, check=True, env=env, cwd=REPO
    )
    there = dict(line.split() for line in result.stdout.splitlines())
    assert there == here


@pytest.mark.parametrize("shape", [FileShape.ZIP_CSV, FileShape.XLSX])
def test_zip_entry_times_and_workbook_dates_are_pinned_not_the_clock(shape: FileShape) -> None:
    with zipfile.ZipFile(io.BytesIO(build_rebate_file(spec(shape=shape)))) as archive:
        assert {info.date_time for info in archive.infolist()} == {(2025, 1, 1, 0, 0, 0)}
        if shape is FileShape.XLSX:
            core = archive.read("docProps/core.xml").decode()
            stamps = re.findall(r"<dcterms:(created|modified)[^>]*>([^<]+)<", core)
            assert sorted(stamps) == [("created", "2025-01-01T00:00:00Z"), ("modified", "2025-01-01T00:00:00Z")]


def test_a_different_seed_or_broker_type_gives_different_rows() -> None:
    rows = generate_rows(spec())
    assert generate_rows(spec(seed=1)) != rows
    assert generate_rows(spec(broker_type="oauth")) != rows
    assert {row["ordId"] for row in generate_rows(spec(broker_type="oauth"))}.isdisjoint(r["ordId"] for r in rows)


def test_adjacent_windows_together_hold_exactly_the_rows_of_the_covering_window() -> None:
    first = generate_rows(spec(begin=date(2025, 5, 10), end=date(2025, 5, 12)))
    second = generate_rows(spec(begin=date(2025, 5, 13), end=date(2025, 5, 15)))
    union = generate_rows(spec(begin=date(2025, 5, 10), end=date(2025, 5, 15)))
    assert {row["ordId"] for row in first} & {row["ordId"] for row in second}, "no order crosses the boundary"
    assert Counter(tuple(row.values()) for row in first + second) == Counter(tuple(row.values()) for row in union)


def test_the_generator_uses_its_own_decimal_precision_not_the_callers() -> None:
    import decimal

    expected = generate_rows(spec())
    with decimal.localcontext(decimal.Context(prec=6)):
        assert generate_rows(spec()) == expected


# --- realism --------------------------------------------------------------------------------------------------


def test_order_ids_are_19_digit_text_and_one_row_per_order_per_day(big_rows: list[dict[str, str]]) -> None:
    assert all(re.fullmatch(r"[1-9]\d{18}", row["ordId"]) for row in big_rows)
    keys = [(row["ordId"], row_day(row)) for row in big_rows]
    assert len(keys) == len(set(keys))


def test_some_orders_fill_on_two_consecutive_days_with_each_ts_inside_its_day(big_rows: list[dict[str, str]]) -> None:
    by_order: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in big_rows:
        by_order[row["ordId"]].append(row)
    multi = [parts for parts in by_order.values() if len(parts) == 2]
    assert len(multi) >= 5
    assert all(len(parts) <= 2 for parts in by_order.values())
    for first, second in multi:
        assert row_day(second) == row_day(first) + timedelta(days=1)
        assert (first["uid"], first["instId"], first["clOrdId"]) == (second["uid"], second["instId"], second["clOrdId"])
        assert [first[name] for name in AMOUNT_COLUMNS] != [second[name] for name in AMOUNT_COLUMNS]
        assert first["ts"] != second["ts"]
    assert all(BIG.begin <= row_day(row) <= BIG.end for row in big_rows)


def test_ts_days_follow_the_day_timezone_setting() -> None:
    utc = spec(day_tz=UTC)
    rows = generate_rows(utc)
    assert {row_day(row, UTC) for row in rows} == {utc.begin + timedelta(days=n) for n in range(4)}
    assert any(row_day(row, UTC8) != row_day(row, UTC) for row in rows)


def test_amounts_are_plain_decimals_of_at_most_10_decimals_and_15_significant_digits(
    big_rows: list[dict[str, str]],
) -> None:
    plain = re.compile(r"-?(0|[1-9]\d*)(\.\d*[1-9])?")
    for row in big_rows:
        for name in AMOUNT_COLUMNS:
            text = row[name]
            assert plain.fullmatch(text) and text != "-0", (name, text)
            value = Decimal(text)
            assert value.as_tuple().exponent >= -10, (name, text)  # type: ignore[operator]
            assert len(value.normalize().as_tuple().digits) <= 15, (name, text)
    amounts = [Decimal(row[name]) for row in big_rows for name in AMOUNT_COLUMNS]
    assert any(0 < abs(value) < Decimal("0.000001") for value in amounts), "no tiny amounts"
    assert any(Decimal(100_000) <= value <= Decimal(1_000_000) for value in amounts), "no large trade amounts"
    assert "0" in {row[name] for row in big_rows for name in AMOUNT_COLUMNS}


def test_fee_is_negative_and_net_fee_is_a_positive_part_of_it(big_rows: list[dict[str, str]]) -> None:
    for row in big_rows:
        fee, net, settlement = (Decimal(row[name]) for name in ("fee", "netFee", "settlementFee"))
        assert fee <= 0 <= net <= settlement <= -fee
        assert 0 <= Decimal(row["brokerRebate"]) <= net
    assert sum(Decimal(row["fee"]) < 0 for row in big_rows) > len(big_rows) * 0.8
    assert any(Decimal(row["netFee"]) < Decimal(row["settlementFee"]) for row in big_rows)
    assert any(Decimal(row["userRebate"]) > 0 for row in big_rows)
    assert sum(row["suBrokerRebate"] == "0" for row in big_rows) > len(big_rows) / 2


def test_instruments_cover_four_kinds_with_volume_in_the_matching_column(big_rows: list[dict[str, str]]) -> None:
    kinds = {
        "SPOT": re.compile(r"[A-Z]+-USDT?"),
        "SWAP": re.compile(r"[A-Z]+-USDT?-SWAP"),
        "FUTURES": re.compile(r"[A-Z]+-USDT?-\d{6}"),
        "OPTION": re.compile(r"[A-Z]+-USD-\d{6}-\d+-[CP]"),
    }
    seen = set()
    for row in big_rows:
        (kind,) = [kind for kind, pattern in kinds.items() if pattern.fullmatch(row["instId"])]
        seen.add(kind)
        spot, derivative = Decimal(row["spotTradeAmt"]), Decimal(row["derivativeTradeAmt"])
        assert (spot > 0 and derivative == 0) if kind == "SPOT" else (spot == 0 and derivative > 0), row
    assert seen == set(kinds)


def test_users_codes_levels_and_client_ids_look_like_okx(big_rows: list[dict[str, str]]) -> None:
    assert all(re.fullmatch(r"[1-9]\d{14,17}", row["uid"]) for row in big_rows)
    assert all(re.fullmatch(r"[0-9a-f]{12}[A-Z]{4}", row["brokerCode"]) for row in big_rows)
    assert len({row["brokerCode"] for row in big_rows}) == 3
    oauth_codes = {row["brokerCode"] for row in generate_rows(spec(broker_type="oauth", orders_per_day=40))}
    assert len(oauth_codes) == 2
    levels = Counter(row["level"] for row in big_rows)
    assert set(levels) <= {"", *(f"Lv{n}" for n in range(1, 6)), *(f"VIP{n}" for n in range(1, 9))}
    assert levels[""] > 0 and any(level.startswith("Lv") for level in levels)
    assert any(level.startswith("VIP") for level in levels)
    client_ids = [row["clOrdId"] for row in big_rows]
    assert 0.3 < client_ids.count("") / len(client_ids) < 0.7
    assert all(re.fullmatch(r"[a-z][A-Za-z0-9]{8,20}", value) for value in client_ids if value)
    assert {row["affiliated"] for row in big_rows} == {"true", "false"}


# --- layouts, header styles, shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "style", "expected"),
    [
        (Layout.COLUMNS_16, HeaderStyle.DOCS, list(COLUMNS_16)),
        (Layout.COLUMNS_14, HeaderStyle.DOCS, list(COLUMNS_14)),
        (
            Layout.COLUMNS_16,
            HeaderStyle.TITLE,
            [
                *("BrokerCode", "Level", "Uid", "InstId", "OrdId", "ClOrdId", "SpotTradeAmt", "DerivativeTradeAmt"),
                *("Fee", "BrokerRebate", "NetFee", "SettlementFee", "SuBrokerRebate", "UserRebate", "Affiliated", "Ts"),
            ],
        ),
        (
            Layout.COLUMNS_14,
            HeaderStyle.SUB_BROKER,
            [name.replace("suBroker", "subBroker") for name in COLUMNS_14],
        ),
    ],
)
def test_header_row_follows_layout_and_header_style(layout: Layout, style: HeaderStyle, expected: list[str]) -> None:
    header, table = csv_table(build_rebate_file(spec(layout=layout, header_style=style)))
    assert header == expected
    assert as_dicts(header, table, layout, style) == projected(generate_rows(spec()), layout)


def test_docs_columns_are_the_14_plus_uid_and_clordid() -> None:
    assert len(COLUMNS_14) == 14 and len(COLUMNS_16) == 16
    assert [name for name in COLUMNS_16 if name not in {"uid", "clOrdId"}] == list(COLUMNS_14)
    assert COLUMNS_16.index("uid") == COLUMNS_16.index("level") + 1
    assert COLUMNS_16.index("clOrdId") == COLUMNS_16.index("ordId") + 1


@pytest.mark.parametrize("shape", list(FileShape))
def test_each_shape_is_told_apart_by_its_first_bytes(shape: FileShape) -> None:
    data = build_rebate_file(spec(shape=shape))
    if shape in TEXT_SHAPES:
        assert data.startswith(b"\xef\xbb\xbf") is (shape is FileShape.CSV_BOM)
        body = data.removeprefix(b"\xef\xbb\xbf")
        assert body.startswith(b"brokerCode,")
        if shape is FileShape.CSV_CRLF:
            assert body.count(b"\r\n") == body.count(b"\n") > 1
        else:
            assert b"\r" not in body
    elif shape is FileShape.XLS:
        assert data.startswith(b"\xd0\xcf\x11\xe0")
    else:
        assert data.startswith(b"PK\x03\x04")
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert ("[Content_Types].xml" in archive.namelist()) is (shape is FileShape.XLSX)


@pytest.mark.parametrize("shape", TEXT_SHAPES)
def test_every_text_shape_holds_the_generated_rows(shape: FileShape) -> None:
    header, table = csv_table(build_rebate_file(spec(shape=shape)))
    assert as_dicts(header, table, Layout.COLUMNS_16, HeaderStyle.DOCS) == generate_rows(spec())


def test_zip_holds_one_csv_named_for_the_window_with_the_plain_csv_bytes() -> None:
    name, inner = zip_member(build_rebate_file(spec(shape=FileShape.ZIP_CSV)))
    assert name == "RebateDetails0510-0513.csv"
    assert inner == build_rebate_file(spec(shape=FileShape.CSV))


@pytest.mark.parametrize(
    ("shape", "layout", "style"),
    [
        (FileShape.XLSX, Layout.COLUMNS_16, HeaderStyle.DOCS),
        (FileShape.XLS, Layout.COLUMNS_16, HeaderStyle.DOCS),
        (FileShape.XLSX, Layout.COLUMNS_14, HeaderStyle.TITLE),
        (FileShape.XLS, Layout.COLUMNS_14, HeaderStyle.SUB_BROKER),
    ],
)
def test_spreadsheets_read_back_with_calamine_to_the_same_values(
    shape: FileShape, layout: Layout, style: HeaderStyle
) -> None:
    frame = pl.read_excel(
        build_rebate_file(spec(shape=shape, layout=layout, header_style=style)),
        engine="calamine",
        infer_schema_length=None,
    )
    columns = file_columns(layout, style)
    assert frame.columns == [written for _, written in columns]
    expected = projected(generate_rows(spec()), layout)
    assert frame.height == len(expected)
    for cells, row in zip(frame.rows(named=True), expected, strict=True):
        for name, written in columns:
            value = cells[written]
            if name in AMOUNT_COLUMNS:
                assert isinstance(value, float) and Decimal(repr(value)) == Decimal(row[name]), (name, value)
            elif name == "ts":
                assert value == int(row[name])
            else:
                assert isinstance(value, str | None) and (value or "") == row[name], (name, value)


def test_xls_refuses_more_rows_than_a_sheet_holds() -> None:
    row = generate_rows(spec(end=date(2025, 5, 10), orders_per_day=1))[0]
    with pytest.raises(ValueError, match="65,536 rows"):
        render([row] * XLS_MAX_ROWS, spec(shape=FileShape.XLS))


@pytest.mark.parametrize("shape", list(FileShape))
def test_an_empty_window_is_a_valid_file_with_only_the_header(shape: FileShape) -> None:
    empty = spec(shape=shape, orders_per_day=0)
    assert generate_rows(empty) == []
    data = build_rebate_file(empty)
    if shape in SPREADSHEETS:
        frame = pl.read_excel(data, engine="calamine")
        assert (frame.height, frame.columns) == (0, list(COLUMNS_16))
        return
    text = zip_member(data)[1] if shape is FileShape.ZIP_CSV else data
    assert csv_table(text) == (list(COLUMNS_16), [])


def test_spec_checks_its_fields_and_takes_plain_strings() -> None:
    with pytest.raises(ValueError, match="before begin"):
        spec(begin=date(2025, 5, 2), end=date(2025, 5, 1))
    with pytest.raises(ValueError, match="broker_type"):
        spec(broker_type="dma")
    with pytest.raises(ValueError, match="orders_per_day"):
        spec(orders_per_day=-1)
    loose = spec(shape="xlsx", layout="14", header_style="title")
    assert (loose.shape, loose.layout, loose.header_style) == (FileShape.XLSX, Layout.COLUMNS_14, HeaderStyle.TITLE)
    assert loose == spec(shape=FileShape.XLSX, layout=Layout.COLUMNS_14, header_style=HeaderStyle.TITLE)


# --- corruptions ----------------------------------------------------------------------------------------------


def read_any(data: bytes) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of a text, zip or spreadsheet file; spreadsheet cells as the text calamine makes of them."""
    if data.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if "[Content_Types].xml" not in archive.namelist():
                return csv_table(zip_member(data)[1])
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        frame = fastexcel.read_excel(data).load_sheet(0, dtypes="string").to_polars()
        return frame.columns, [list(row) for row in frame.rows()]
    return csv_table(data)


def changed_cells(good: list[list[Any]], bad: list[list[Any]]) -> list[tuple[int, int]]:
    assert len(bad) == len(good)
    return [
        (index, column)
        for index, (before, after) in enumerate(zip(good, bad, strict=True))
        for column, (was, now) in enumerate(zip(before, after, strict=True))
        if was != now
    ]


@pytest.mark.parametrize("shape", list(FileShape))
def test_truncate_cuts_the_file_short(shape: FileShape) -> None:
    data = build_rebate_file(spec(shape=shape))
    cut = corrupt(data, Corruption.TRUNCATE)
    assert len(cut) < len(data) and data.startswith(cut)
    if shape in TEXT_SHAPES:
        header, table = csv_table(cut)
        assert len(table[-1]) < len(header)
    else:
        with pytest.raises((zipfile.BadZipFile, fastexcel.FastExcelError)):
            read_any(cut)


@pytest.mark.parametrize("shape", list(FileShape))
def test_garbage_is_an_error_page_in_no_known_format(shape: FileShape) -> None:
    page = corrupt(build_rebate_file(spec(shape=shape)), Corruption.GARBAGE)
    assert page.startswith(b"<!DOCTYPE html>") and b"brokerCode" not in page


@pytest.mark.parametrize("shape", list(FileShape))
def test_bad_amount_puts_text_in_the_middle_rows_fee(shape: FileShape) -> None:
    data = build_rebate_file(spec(shape=shape))
    damaged = corrupt(data, Corruption.BAD_AMOUNT)
    assert damaged[:4] == data[:4] and (b"\r\n" in damaged) == (b"\r\n" in data)
    header, good = read_any(data)
    damaged_header, bad = read_any(damaged)
    assert damaged_header == header
    middle, fee = len(good) // 2, header.index("fee")
    assert changed_cells(good, bad) == [(middle, fee)]
    assert bad[middle][fee] == "abc"


@pytest.mark.parametrize("shape", [*TEXT_SHAPES, FileShape.ZIP_CSV])
def test_float_ordid_in_text_is_written_as_a_spreadsheet_shows_it(shape: FileShape) -> None:
    data = build_rebate_file(spec(shape=shape))
    header, good = read_any(data)
    _, bad = read_any(corrupt(data, Corruption.FLOAT_ORDID))
    ((row, column),) = changed_cells(good, bad)
    assert column == header.index("ordId")
    shown = bad[row][column]
    assert re.fullmatch(r"\d\.\d{1,14}E\+18", shown), shown
    assert Decimal(shown) == Decimal(f"{Decimal(good[row][column]):.14E}")


@pytest.mark.parametrize("shape", SPREADSHEETS)
def test_float_ordid_in_a_spreadsheet_is_one_numeric_cell_that_lost_digits(shape: FileShape) -> None:
    data = build_rebate_file(spec(shape=shape))
    damaged = corrupt(data, Corruption.FLOAT_ORDID)
    header, good = read_any(data)
    _, bad = read_any(damaged)
    ((row, column),) = changed_cells(good, bad)
    assert column == header.index("ordId")
    assert int(bad[row][column]) == int(float(good[row][column])) != int(good[row][column])

    def load_ord_ids_strictly(workbook: bytes) -> None:
        reader = fastexcel.read_excel(workbook)
        reader.load_sheet(0, use_columns=["ordId"], dtype_coercion="strict", schema_sample_rows=None)

    load_ord_ids_strictly(data)
    with pytest.raises(fastexcel.UnsupportedColumnTypeCombinationError):
        load_ord_ids_strictly(damaged)


@pytest.mark.parametrize(
    ("shape", "style"),
    [(shape, HeaderStyle.DOCS) for shape in FileShape] + [(FileShape.CSV, HeaderStyle.TITLE)],
)
def test_missing_column_drops_net_fee_whatever_its_spelling(shape: FileShape, style: HeaderStyle) -> None:
    data = build_rebate_file(spec(shape=shape, header_style=style))
    header, good = read_any(data)
    damaged_header, bad = read_any(corrupt(data, Corruption.MISSING_COLUMN))
    drop = [name.lower() for name in header].index("netfee")
    assert damaged_header == header[:drop] + header[drop + 1 :]
    assert bad == [row[:drop] + row[drop + 1 :] for row in good]


def test_corrupt_refuses_what_does_not_apply() -> None:
    data = build_rebate_file(spec())
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(data, "shuffle")
    empty = build_rebate_file(spec(orders_per_day=0, shape=FileShape.XLSX))
    with pytest.raises(ValueError, match="needs a data row"):
        corrupt(empty, Corruption.BAD_AMOUNT)
    with pytest.raises(ValueError, match="not a rebate file"):
        corrupt(corrupt(data, Corruption.GARBAGE), Corruption.FLOAT_ORDID)
    assert corrupt(empty, Corruption.MISSING_COLUMN) != empty
