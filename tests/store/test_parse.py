"""Every rebate file shape parses into the same exact, typed frame; every malformed file is rejected with its reason."""

from __future__ import annotations

import codecs
import io
import json
import re
import zipfile
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, localcontext
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

import polars as pl
import pytest
import xlwt
from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

import pipeline.store.containers
import pipeline.store.rows
import pipeline.store.sheets
from pipeline.columns import AMOUNT_COLUMNS
from pipeline.fileformat import OLE2_MAGIC, FileFormat
from pipeline.simulator.files import (
    AMOUNT_COLUMNS as FILE_AMOUNT_COLUMNS,
)
from pipeline.simulator.files import (
    COLUMNS_14,
    COLUMNS_16,
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
from pipeline.store import parse
from pipeline.store.parse import FRAME_SCHEMA, ParsedFile, RejectedFile, parse_rebate_file
from tests.store.conftest import zip_of

UTC8 = timezone(timedelta(hours=8))
SNAKE = dict(zip(FILE_AMOUNT_COLUMNS, AMOUNT_COLUMNS, strict=True))
FORMATS = {
    FileShape.CSV: FileFormat.CSV,
    FileShape.CSV_BOM: FileFormat.CSV,
    FileShape.CSV_CRLF: FileFormat.CSV,
    FileShape.ZIP_CSV: FileFormat.ZIP,
    FileShape.XLSX: FileFormat.XLSX,
    FileShape.XLS: FileFormat.XLS,
}
REAL_ROW = {
    "brokerCode": "656204a3b0e9BCDE",
    "level": "",
    "uid": "",
    "instId": "SOL-USDT-SWAP",
    "ordId": "2877198384625049600",
    "clOrdId": "",
    "spotTradeAmt": "0",
    "derivativeTradeAmt": "24.68",
    "fee": "-0.004936",
    "netFee": "0.0019744",
    "settlementFee": "0.004936",
    "brokerRebate": "0.004936",
    "suBrokerRebate": "0",
    "userRebate": "0",
    "affiliated": "false",
    "ts": "1758250140000",
}
"""The row FACTS.md quotes from a real file (as 16 columns, uid and clOrdId empty)."""


def spec(shape: FileShape = FileShape.CSV, **changes: object) -> FileSpec:
    fields: dict[str, object] = {"shape": shape, "orders_per_day": 6, "seed": 7}
    fields.update(changes)
    return FileSpec(date(2025, 3, 1), date(2025, 3, 2), "api", **fields)  # type: ignore[arg-type]


def write(tmp_path: Path, data: bytes, name: str = "rebates.xls") -> Path:
    """Write under a misleading name: the parser must go by the bytes."""
    path = tmp_path / name
    path.write_bytes(data)
    return path


def parse_file(path: Path, *, max_unzipped_bytes: int = 10**9, tz: timezone | ZoneInfo = UTC8) -> ParsedFile:
    return parse_rebate_file(path, tz=tz, max_unzipped_bytes=max_unzipped_bytes)


def csv_bytes(rows: Sequence[dict[str, str]], columns: Sequence[str] = COLUMNS_16, newline: str = "\n") -> bytes:
    lines = [",".join(columns)] + [",".join(row[column] for column in columns) for row in rows]
    return (newline.join(lines) + newline).encode()


def row(**changes: str) -> dict[str, str]:
    return {**REAL_ROW, **changes}


def rejected(tmp_path: Path, data: bytes, max_unzipped_bytes: int = 10**9) -> str:
    with pytest.raises(RejectedFile) as caught:
        parse_file(write(tmp_path, data), max_unzipped_bytes=max_unzipped_bytes)
    message = str(caught.value)
    assert "\n" not in message
    return message


def exact_sum(values: Sequence[Decimal]) -> Decimal:
    """A sum of decimals with room for every digit (the default context rounds to 28 significant digits)."""
    with localcontext() as context:
        context.prec = 100
        return sum(values, Decimal(0))


def epoch_ms_day(ms: str, tz: timezone) -> date:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(ms))).astimezone(tz).date()


def xlsx_bytes(rows: Sequence[Sequence[object]], sheets: int = 1) -> bytes:
    book = Workbook()
    for index in range(sheets):
        sheet = book.active if index == 0 else book.create_sheet(f"Sheet{index + 1}")
        assert sheet is not None
        for values in rows:
            sheet.append(list(values))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xls_bytes(rows: Sequence[Sequence[object]]) -> bytes:
    book = xlwt.Workbook()
    sheet = book.add_sheet("RebateDetails")
    for row_index, values in enumerate(rows):
        for column_index, value in enumerate(values):
            if value is not None:
                sheet.write(row_index, column_index, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def sheet_rows(rows: Sequence[dict[str, str]], **cells: object) -> list[list[object]]:
    """A header and rows as a real workbook types them: amounts and ts as numbers, the rest text; `cells` override."""
    table: list[list[object]] = [list(COLUMNS_16)]
    for values in rows:
        typed: list[object] = []
        for column in COLUMNS_16:
            text = values[column]
            if column in cells:
                typed.append(cells[column])
            elif column in FILE_AMOUNT_COLUMNS:
                typed.append(float(text))
            elif column == "ts":
                typed.append(int(text))
            else:
                typed.append(text or None)
        table.append(typed)
    return table


MakeWorkbook = Callable[[Sequence[Sequence[object]]], bytes]


# --- every shape, layout and header style -------------------------------------------------------------------------


@pytest.mark.parametrize("header_style", list(HeaderStyle))
@pytest.mark.parametrize("layout", list(Layout))
@pytest.mark.parametrize("shape", list(FileShape))
def test_every_shape_parses_to_the_exact_source_values(
    tmp_path: Path, shape: FileShape, layout: Layout, header_style: HeaderStyle
) -> None:
    file_spec = spec(shape, layout=layout, header_style=header_style)
    rows = generate_rows(file_spec)
    parsed = parse_file(write(tmp_path, render(rows, file_spec)))

    assert parsed.frame.schema == FRAME_SCHEMA
    assert parsed.format is FORMATS[shape]
    assert parsed.rows == len(rows) > 0
    assert parsed.source_columns == tuple(written for _, written in file_columns(layout, header_style))
    assert (parsed.extra_columns, parsed.warnings) == ((), ())
    for column in FILE_AMOUNT_COLUMNS:
        expected = exact_sum([Decimal(values[column]) for values in rows])
        assert parsed.totals[SNAKE[column]] == expected, column
        assert exact_sum(parsed.frame[SNAKE[column]].to_list()) == expected, column
    fee = [Decimal(values["fee"]) for values in rows]
    assert parsed.frame["fee"].to_list() == fee
    frame = parsed.frame
    assert frame["source_row"].to_list() == list(range(1, len(rows) + 1))
    assert frame["ord_id"].to_list() == [values["ordId"] for values in rows]
    assert frame["broker_code"].to_list() == [values["brokerCode"] for values in rows]
    assert frame["inst_id"].to_list() == [values["instId"] for values in rows]
    assert frame["level"].to_list() == [values["level"] or None for values in rows]
    assert frame["affiliated"].to_list() == [values["affiliated"] == "true" for values in rows]
    assert [epoch_ms(ts) for ts in frame["ts"].to_list()] == [int(values["ts"]) for values in rows]
    assert frame["trade_date"].to_list() == [epoch_ms_day(values["ts"], UTC8) for values in rows]
    if layout is Layout.COLUMNS_16:
        assert frame["uid"].to_list() == [values["uid"] for values in rows]
        assert frame["cl_ord_id"].to_list() == [values["clOrdId"] or None for values in rows]
    else:
        assert frame["uid"].null_count() == frame["cl_ord_id"].null_count() == len(rows)
    assert frame["extra"].null_count() == len(rows)


def epoch_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def test_trade_date_follows_the_timezone_setting(tmp_path: Path) -> None:
    # 2025-09-18 23:30 UTC is already 2025-09-19 at UTC+8.
    path = write(tmp_path, csv_bytes([row(ts="1758238200000")]))
    assert parse_file(path, tz=UTC8).frame["trade_date"].to_list() == [date(2025, 9, 19)]
    assert parse_file(path, tz=ZoneInfo("Asia/Shanghai")).frame["trade_date"].to_list() == [date(2025, 9, 19)]
    assert parse_file(path, tz=UTC).frame["trade_date"].to_list() == [date(2025, 9, 18)]


# --- simulator corruptions ----------------------------------------------------------------------------------------


def float_ordid_row(rows: Sequence[dict[str, str]]) -> int:
    """The data row `corrupt(..., float-ordid)` damages: the first from the middle whose id a double cannot hold."""
    middle = len(rows) // 2
    for index in list(range(middle, len(rows))) + list(range(middle)):
        if int(float(rows[index]["ordId"])) != int(rows[index]["ordId"]):
            return index + 1
    return middle + 1


@pytest.mark.parametrize("shape", list(FileShape))
@pytest.mark.parametrize("how", list(Corruption))
def test_every_corruption_of_every_shape_is_rejected_with_its_reason(
    tmp_path: Path, how: Corruption, shape: FileShape
) -> None:
    file_spec = spec(shape)
    rows = generate_rows(file_spec)
    message = rejected(tmp_path, corrupt(render(rows, file_spec), how))
    expected: dict[Corruption, Sequence[str]] = {
        Corruption.GARBAGE: ("not a CSV, zip, xlsx or xls file", "an HTML or XML page", "fresh link"),
        Corruption.BAD_AMOUNT: ("fee in data row", f"row {len(rows) // 2 + 1}", "'abc'"),
        Corruption.FLOAT_ORDID: ("ordId in data row", f"row {float_ordid_row(rows)}"),
        Corruption.MISSING_COLUMN: ("no netFee column",),
        Corruption.TRUNCATE: {
            FileShape.ZIP_CSV: ("cut short",),
            FileShape.XLSX: ("cut short",),
            FileShape.XLS: ("cannot read the xls workbook",),
        }.get(shape, ("in data row", "is empty")),
    }
    for fragment in expected[how]:
        assert fragment in message


def test_a_float_ordid_as_a_spreadsheet_writes_it_is_rejected(tmp_path: Path) -> None:
    message = rejected(tmp_path, csv_bytes([row(), row(ordId="2.87719838462505E+18")]))
    assert message.startswith("ordId in data row 2 is '2.87719838462505E+18', not an order id")


# --- amounts ------------------------------------------------------------------------------------------------------


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


# --- headers ------------------------------------------------------------------------------------------------------


def test_headers_match_in_any_case_order_and_padding(tmp_path: Path) -> None:
    columns = list(reversed(COLUMNS_14))
    header = ",".join(f" {column.upper()} " for column in columns)
    data = (header + "\n" + ",".join(REAL_ROW[column] for column in columns) + "\n").encode()
    parsed = parse_file(write(tmp_path, data))
    assert parsed.frame["derivative_trade_amt"].to_list() == [Decimal("24.68")]
    assert parsed.source_columns == tuple(f" {column.upper()} " for column in columns)


def test_both_spellings_of_the_sub_broker_rebate_are_accepted(tmp_path: Path) -> None:
    for spelling in ("suBrokerRebate", "subBrokerRebate"):
        columns = [spelling if column == "suBrokerRebate" else column for column in COLUMNS_16]
        header = ",".join(columns)
        data = f"{header}\n{','.join(row(suBrokerRebate='0.25').values())}\n".encode()
        assert parse_file(write(tmp_path, data)).totals["sub_broker_rebate"] == Decimal("0.25")


@pytest.mark.parametrize(
    ("columns", "fragment"),
    [
        ([*COLUMNS_16, "fee"], "names column 'fee' twice (columns 9 and 17)"),
        ([*COLUMNS_16, "FEE"], "names column 'fee' and 'FEE' twice"),
        ([*COLUMNS_16, "subBrokerRebate"], "names column 'suBrokerRebate' and 'subBrokerRebate' twice"),
        ([*COLUMNS_16, "note", "Note"], "names column 'note' and 'Note' twice"),
    ],
)
def test_a_duplicated_header_rejects_the_file(tmp_path: Path, columns: list[str], fragment: str) -> None:
    values = {**REAL_ROW, "note": "x", "Note": "y", "FEE": "1", "subBrokerRebate": "0"}
    data = (",".join(columns) + "\n" + ",".join(values[column] for column in columns) + "\n").encode()
    assert fragment in rejected(tmp_path, data)


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    columns = [column for column in COLUMNS_16 if column not in ("netFee", "ts")]
    message = rejected(tmp_path, csv_bytes([row()], columns))
    assert message.startswith("the file has no netFee, ts columns")


def test_an_unknown_column_is_kept_in_extra_and_reported(tmp_path: Path) -> None:
    columns = [*COLUMNS_16, "rebateCcy", "memo"]
    rows = [row(rebateCcy="USDT", memo='say "hi"'), row(rebateCcy="USDC", memo="")]
    data = "\n".join(
        [",".join(columns)] + [",".join(f'"{r[c].replace(chr(34), chr(34) * 2)}"' for c in columns) for r in rows]
    )
    parsed = parse_file(write(tmp_path, data.encode()))
    assert parsed.extra_columns == ("rebateCcy", "memo")
    assert parsed.warnings == ("unknown column 'rebateCcy' kept in extra", "unknown column 'memo' kept in extra")
    assert [json.loads(text) for text in parsed.frame["extra"].to_list()] == [
        {"rebateCcy": "USDT", "memo": 'say "hi"'},
        {"rebateCcy": "USDC", "memo": None},
    ]


def test_a_header_only_file_is_an_empty_frame_with_the_full_schema(tmp_path: Path) -> None:
    for columns in (COLUMNS_14, COLUMNS_16):
        parsed = parse_file(write(tmp_path, (",".join(columns) + "\r\n").encode()))
        assert parsed.frame.schema == FRAME_SCHEMA
        assert parsed.rows == 0
        assert parsed.totals == dict.fromkeys(AMOUNT_COLUMNS, Decimal(0))


def test_blank_lines_are_skipped_and_rows_keep_their_numbers(tmp_path: Path) -> None:
    data = csv_bytes([row(fee="-1")]) + b"\n" + csv_bytes([row(fee="-2")]).split(b"\n", 1)[1] + b"\n"
    parsed = parse_file(write(tmp_path, data))
    assert parsed.frame["source_row"].to_list() == [1, 3]
    assert parsed.totals["fee"] == Decimal(-3)
    assert parsed.warnings == ("skipped 2 blank rows",)


def test_a_row_with_more_fields_than_the_header_rejects_the_file(tmp_path: Path) -> None:
    data = csv_bytes([row()]) + b",".join(value.encode() for value in row().values()) + b",extra\n"
    assert "cannot read the CSV" in rejected(tmp_path, data)


def test_text_that_is_not_utf8_rejects_the_file(tmp_path: Path) -> None:
    latin1 = csv_bytes([row(brokerCode="caf\xe9")]).replace("é".encode(), b"\xe9")
    assert "text, but neither UTF-8, UTF-16 with a byte-order mark, nor GB18030" in rejected(tmp_path, latin1)
    late = csv_bytes([row()] * 40 + [row(brokerCode="caf\xe9")]).replace("é".encode(), b"\xe9")
    offset = late.index(b"\xe9")
    assert f"it is not UTF-8 (byte {offset:,} is not), nor UTF-16" in rejected(tmp_path, late)


def test_a_column_without_header_is_dropped_when_empty_and_rejected_when_not(tmp_path: Path) -> None:
    empty = csv_bytes([{**row(), "": ""}], [*COLUMNS_16, ""])
    assert parse_file(write(tmp_path, empty)).warnings == ("dropped column 17, which has no header and no values",)
    full = csv_bytes([{**row(), "": "1"}], [*COLUMNS_16, ""])
    assert rejected(tmp_path, full).startswith("column 17 in data row 1 is '1', but its column has no header")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01\x02binary", "not a CSV, zip, xlsx or xls file (9 bytes): a damaged or unexpected download"),
        (b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>", "fresh link"),
        (b"PK\x03\x04 cut", "cut short"),
    ],
)
def test_bytes_that_are_no_rebate_file_are_rejected(tmp_path: Path, data: bytes, fragment: str) -> None:
    message = rejected(tmp_path, data)
    assert fragment in message
    assert "binary" not in message and "AccessDenied" not in message, "a payload's bytes are never quoted"


# --- encodings ----------------------------------------------------------------------------------------------------

CHINESE = "经纪商甲"
"""A brokerCode in Chinese: the text that tells a GBK file from a UTF-8 one (OKX's own columns are ASCII)."""


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "gb18030", "gbk"])
def test_text_is_decoded_exactly_whatever_its_encoding(tmp_path: Path, encoding: str) -> None:
    text = csv_bytes([row(brokerCode=CHINESE), row(ordId="2", fee="-0.000000000000000001")]).decode()
    bom = "\ufeff" if encoding in ("utf-16-le", "utf-16-be") else ""  # its byte-order mark ("utf-16" writes one)
    data = (bom + text).encode(encoding)
    parsed = parse_file(write(tmp_path, data))
    assert parsed.format is FileFormat.CSV
    assert parsed.frame["broker_code"].to_list() == [CHINESE, REAL_ROW["brokerCode"]]
    assert parsed.frame["fee"].to_list() == [Decimal(REAL_ROW["fee"]), Decimal("-0.000000000000000001")]
    assert parsed.source_columns == tuple(COLUMNS_16)


def test_gb18030_is_read_only_when_its_header_is_a_rebate_files(tmp_path: Path) -> None:
    data = csv_bytes([row(brokerCode=CHINESE)]).decode().replace("brokerCode", "经纪商").encode("gb18030")
    message = rejected(tmp_path, data)
    assert message.startswith("the file is not UTF-8, and read as GB18030 its header is not a rebate file's")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (csv_bytes([row()] * 50 + [row(instId="SOL\x00USDT")]), "is a NUL character, which no rebate file holds"),
        (("\ufeff" + csv_bytes([row()] * 50 + [row(instId="S\x00")]).decode()).encode("utf-16-le"), "it holds a NUL"),
        (codecs.BOM_UTF16_LE + csv_bytes([row()]).decode().encode("utf-16-le") + b"\x00\xd8,", "as UTF-16LE, byte"),
        (codecs.BOM_UTF8 + csv_bytes([row()] * 50 + [row(brokerCode=CHINESE)]).decode().encode("gbk"), "mark but byte"),
    ],
)
def test_text_that_cannot_be_decoded_exactly_is_refused_saying_where(tmp_path: Path, data: bytes, problem: str) -> None:
    message = rejected(tmp_path, data)
    assert message.startswith("the file is not CSV text that can be read exactly: ") and problem in message


def test_a_zip_whose_parts_differ_in_encoding_is_read_whole(tmp_path: Path) -> None:
    first = csv_bytes([row(fee="-1")])
    gbk = csv_bytes([row(fee="-2", brokerCode=CHINESE)]).decode().encode("gbk")
    utf16 = ("\ufeff" + csv_bytes([row(fee="-4")]).decode()).encode("utf-16-le")
    parsed = parse_file(write(tmp_path, zip_of({"a.csv": first, "b.csv": gbk, "c.csv": utf16})))
    assert [(part.label, part.rows) for part in parsed.parts] == [
        ("zip member 'a.csv'", 1),
        ("zip member 'b.csv'", 1),
        ("zip member 'c.csv'", 1),
    ]
    assert parsed.totals["fee"] == Decimal(-7)
    assert parsed.frame["broker_code"][1] == CHINESE


# --- zip ----------------------------------------------------------------------------------------------------------


def test_a_zip_of_two_csvs_is_one_frame_in_archive_order(tmp_path: Path) -> None:
    first, second = csv_bytes([row(fee="-1"), row(fee="-2")]), csv_bytes([row(fee="-4")], list(reversed(COLUMNS_16)))
    parsed = parse_file(write(tmp_path, zip_of({"b.csv": first, "a.csv": second})))
    assert parsed.format is FileFormat.ZIP
    assert parsed.frame["fee"].to_list() == [Decimal(-1), Decimal(-2), Decimal(-4)]
    assert parsed.frame["source_row"].to_list() == [1, 2, 3]
    assert parsed.totals["fee"] == Decimal(-7)


def test_each_zip_member_has_its_own_rows_and_totals(tmp_path: Path) -> None:
    first, second = csv_bytes([row(fee="-1"), row(fee="-2")]), csv_bytes([row(fee="-4", netFee="0.5")])
    parsed = parse_file(write(tmp_path, zip_of({"b.csv": first, "a.csv": second})))
    assert [(part.label, part.rows, part.totals["fee"]) for part in parsed.parts] == [
        ("zip member 'b.csv'", 2, Decimal(-3)),
        ("zip member 'a.csv'", 1, Decimal(-4)),
    ]
    net_fee = Decimal(REAL_ROW["netFee"])
    assert [part.totals["net_fee"] for part in parsed.parts] == [net_fee * 2, Decimal("0.5")]


def test_a_bad_row_in_a_zip_names_the_member(tmp_path: Path) -> None:
    data = zip_of({"a.csv": csv_bytes([row(), row()]), "b.csv": csv_bytes([row(), row(fee="x")])})
    assert rejected(tmp_path, data).startswith("fee in data row 4 (zip member 'b.csv', its row 2) is 'x'")


def test_zip_members_with_different_columns_are_rejected(tmp_path: Path) -> None:
    data = zip_of({"a.csv": csv_bytes([row()]), "b.csv": csv_bytes([row()], COLUMNS_14)})
    assert "every part of the file must have the same columns" in rejected(tmp_path, data)


def test_a_zip_is_read_safely_whatever_its_member_names(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("folder/", b"")
        archive.writestr("../evil.csv", csv_bytes([row(fee="-1")]))
        archive.writestr("/abs/evil2.csv", csv_bytes([row(fee="-2")]))
    before = sorted(tmp_path.parent.iterdir())
    parsed = parse_file(write(work, out.getvalue(), "rebates.zip"))
    assert parsed.totals["fee"] == Decimal(-3)
    assert (parsed.warnings, parsed.skipped) == ((), ())
    assert sorted(tmp_path.parent.iterdir()) == before
    assert sorted(path.name for path in work.iterdir()) == ["rebates.zip"]


def test_only_macos_packaging_junk_is_skipped_and_each_skip_is_said(tmp_path: Path) -> None:
    data = zip_of(
        {
            "RebateDetails/": b"",
            "RebateDetails/a.csv": csv_bytes([row(fee="-1")]),
            "__MACOSX/RebateDetails/._a.csv": b"\x00\x05\x16\x07 resource fork",
            "RebateDetails/.DS_Store": b"\x00\x00\x00\x01Bud1 finder",
            "RebateDetails/._b.csv": b"\x00\x05\x16\x07 resource fork",
        }
    )
    parsed = parse_file(write(tmp_path, data))
    assert parsed.rows == 1
    assert parsed.skipped == (
        "zip member '__MACOSX/RebateDetails/._a.csv' (macOS metadata folder __MACOSX/)",
        "zip member 'RebateDetails/.DS_Store' (macOS Finder metadata)",
        "zip member 'RebateDetails/._b.csv' (macOS Finder metadata)",
    )


def test_a_dot_file_in_a_zip_is_a_part_like_any_other(tmp_path: Path) -> None:
    data = zip_of({"a.csv": csv_bytes([row()]), "dir/.x.csv": csv_bytes([row(ordId="2")])})
    parsed = parse_file(write(tmp_path, data))
    assert [part.label for part in parsed.parts] == ["zip member 'a.csv'", "zip member 'dir/.x.csv'"]
    assert (parsed.rows, parsed.skipped) == (2, ())


def test_a_member_named_like_junk_is_junk_only_if_its_bytes_say_so(tmp_path: Path) -> None:
    data = zip_of({"a.csv": csv_bytes([row()]), "._b.csv": csv_bytes([row(ordId="2")])})
    assert parse_file(write(tmp_path, data)).rows == 2
    fake = zip_of({"a.csv": csv_bytes([row()]), ".DS_Store": b"not,finder,metadata\n"})
    assert "in zip member '.DS_Store'" in rejected(tmp_path, fake)


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        (b"junk,that,is,not,rebates\n", "has no brokerCode"),
        (csv_bytes([row()]).replace(b"SOL", b"S\x00L"), "is a NUL character"),
        (csv_bytes([row(brokerCode="caf\xe9")]).replace("é".encode(), b"\xe9"), "it is not UTF-8 (byte "),
        (zip_of({"inner.csv": csv_bytes([row()])}), "is a zip or a spreadsheet, not CSV text"),
        (OLE2_MAGIC + b"\x00" * 100, "is a zip or a spreadsheet, not CSV text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not CSV text that can be read exactly"),
    ],
)
def test_one_bad_member_refuses_the_whole_zip_naming_it(tmp_path: Path, member: bytes, problem: str) -> None:
    data = zip_of({"a.csv": csv_bytes([row()]), "b.csv": member, "c.csv": csv_bytes([row(ordId="7")])})
    message = rejected(tmp_path, data)
    assert "zip member 'b.csv'" in message and problem in message


def test_a_symbolic_link_in_a_zip_refuses_it(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.csv", csv_bytes([row()]))
        link = zipfile.ZipInfo("link.csv")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    assert rejected(tmp_path, out.getvalue()).startswith("zip member 'link.csv' is a symbolic link")


def test_a_zip_bomb_is_rejected_before_it_is_read(tmp_path: Path) -> None:
    data = zip_of({"big.csv": csv_bytes([row()] * 1000)})
    message = rejected(tmp_path, data, max_unzipped_bytes=10_000)
    assert "REBATES_MAX_UNZIPPED_BYTES" in message


def test_a_zip_that_lies_about_its_size_is_rejected_while_read(tmp_path: Path) -> None:
    content = csv_bytes([row()] * 1000)
    data = bytearray(zip_of({"big.csv": content}))
    declared = len(content).to_bytes(4, "little")
    assert data.count(declared) == 2  # the local header and the central directory
    data[:] = data.replace(declared, (100).to_bytes(4, "little"))
    message = rejected(tmp_path, bytes(data), max_unzipped_bytes=5_000)
    assert "zip member 'big.csv'" in message


def test_a_member_that_unpacks_to_more_than_the_budget_is_stopped(tmp_path: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(zip_of({"big.csv": csv_bytes([row()] * 100)}))) as archive:
        (info,) = archive.infolist()
        with pytest.raises(RejectedFile, match="unpacks to more than it declares"):
            pipeline.store.containers._copy_member(archive, info, tmp_path / "copy", budget=1000)
    assert (tmp_path / "copy").stat().st_size <= 1000


def test_an_xlsx_that_would_unpack_past_the_cap_is_rejected_before_calamine_reads_it(tmp_path: Path) -> None:
    data = xlsx_bytes(sheet_rows([row()] * 200))
    assert "REBATES_MAX_UNZIPPED_BYTES" in rejected(tmp_path, data, max_unzipped_bytes=20_000)


def test_an_xlsx_that_expands_past_what_it_declares_is_stopped_at_the_cap(tmp_path: Path) -> None:
    data = bytearray(xlsx_bytes(sheet_rows([row()] * 2000)))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        sheet = next(info for info in archive.infolist() if info.filename.startswith("xl/worksheets/"))
        others = sum(info.file_size for info in archive.infolist()) - sheet.file_size
    declared = sheet.file_size.to_bytes(4, "little")
    assert data.count(declared) == 2  # the local header and the central directory
    data[:] = data.replace(declared, (1000).to_bytes(4, "little"))
    cap = others + 50_000  # above every declared size, far below what the sheet really holds
    assert sheet.file_size > cap
    message = rejected(tmp_path, bytes(data), max_unzipped_bytes=cap)  # before calamine inflates it all
    assert "'xl/worksheets/sheet1.xml'" in message and "expands past the sizes it declares" in message


def test_a_payload_that_is_no_rebate_file_is_told_apart_from_bad_data(tmp_path: Path) -> None:
    for payload in (b"", b"<html>502</html>", zip_of({"a.csv": csv_bytes([row()])})[:40]):
        with pytest.raises(parse.NotARebateFile):
            parse_file(write(tmp_path, payload))
    with pytest.raises(RejectedFile) as caught:
        parse_file(write(tmp_path, csv_bytes([row(fee="abc")])))
    assert not isinstance(caught.value, parse.NotARebateFile)


def test_a_zip_without_csv_is_rejected(tmp_path: Path) -> None:
    message = rejected(tmp_path, zip_of({"readme.txt": b"no commas here\n", "logo.png": b"\x89PNG\r\n\x1a\n"}))
    assert "in zip member 'readme.txt' (its columns: no commas here)" in message
    message = rejected(tmp_path, zip_of({"__MACOSX/._a.csv": b"\x00\x05\x16\x07"}))
    assert message.startswith("the zip holds no CSV file (it holds '__MACOSX/._a.csv')")


def test_an_empty_zip_member_is_an_empty_frame(tmp_path: Path) -> None:
    parsed = parse_file(write(tmp_path, zip_of({"RebateDetails0301-0302.csv": b""})))
    assert (parsed.rows, parsed.frame.schema, parsed.source_columns) == (0, FRAME_SCHEMA, ())


# --- spreadsheets -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [xlsx_bytes, xls_bytes])
def test_float_cells_are_read_through_their_shortest_round_trip_text(tmp_path: Path, make: MakeWorkbook) -> None:
    floats = [0.1, 1e-07, 2.5e-10, 123456.789, -0.004936, 1758.0, 1e16, 99999999999999.98, 1 / 3]
    if make is xls_bytes:
        floats.append(0.30000000000000004)  # openpyxl would write this one as 0.3; xlwt keeps the double
    table = sheet_rows([row() for _ in floats])
    fee = COLUMNS_16.index("fee")
    for values, value in zip(table[1:], floats, strict=True):
        values[fee] = value
    parsed = parse_file(write(tmp_path, make(table)))
    assert parsed.frame["fee"].to_list() == [Decimal(repr(value)) for value in floats]


def test_the_float_text_helper_agrees_with_python_repr() -> None:
    values = [
        float(f"{mantissa}e{exponent}") for mantissa in (1, 17, 123456789012345, 3.14159) for exponent in range(-20, 20)
    ]
    values += [0.1 * index for index in range(2000)]
    texts = pipeline.store.sheets._float_cells_as_text(pl.Series(values, dtype=pl.Float64)).to_list()
    assert [Decimal(text) for text in texts] == [Decimal(repr(value)) for value in values]


def test_float_text_that_is_not_the_shortest_round_trip_is_caught() -> None:
    floats = pl.Series([0.1, 1 / 3])
    with pytest.raises(RuntimeError, match="shortest round-trip"):
        pipeline.store.sheets._confirm_float_text(floats, pl.Series(["0.1", "0.333333333"]))


def test_a_float_cell_too_precise_for_decimal_38_18_is_rejected(tmp_path: Path) -> None:
    table = sheet_rows([row(), row()], fee=1e-19)
    assert "more than 18 decimal places" in rejected(tmp_path, xlsx_bytes(table))


def test_text_amount_cells_are_read_as_written(tmp_path: Path) -> None:
    table = sheet_rows([row()], fee="-0.123456789012345678", netFee="1.5E-7")
    parsed = parse_file(write(tmp_path, xlsx_bytes(table)))
    assert (parsed.totals["fee"], parsed.totals["net_fee"]) == (Decimal("-0.123456789012345678"), Decimal("1.5E-7"))


def column_letter(column: str) -> str:
    """The sheet column of a COLUMNS_16 header in `sheet_rows`' tables (A for brokerCode)."""
    return "ABCDEFGHIJKLMNOP"[COLUMNS_16.index(column)]


def with_stored_texts(data: bytes, texts: dict[str, str], member: str = "xl/worksheets/sheet1.xml") -> bytes:
    """The workbook with the `<v>` text of each cell in `texts` (`{"I3": "0.123456789012345678"}`) replaced, as a
    writer of decimal text (not of doubles) would store it.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        parts = {info.filename: source.read(info) for info in source.infolist()}
    sheet = parts[member].decode()
    for cell, text in texts.items():
        sheet, found = re.subn(rf'(<c r="{cell}"[^>]*>)<v>[^<]*</v>', rf"\g<1><v>{text}</v>", sheet)
        assert found == 1, cell
    parts[member] = sheet.encode()
    return zip_of(parts)


def place(sheet: Worksheet, table: Sequence[Sequence[object]], *, top: int, left: int) -> None:
    """Write `table` with its first cell at row `top`, column `left` (from 1)."""
    for row_index, values in enumerate(table, start=top):
        for column_index, value in enumerate(values, start=left):
            sheet.cell(row=row_index, column=column_index, value=cast("float | int | str | None", value))


def test_an_xlsx_number_stored_with_more_digits_than_a_double_loads_exactly(tmp_path: Path) -> None:
    # calamine hands over the nearest double: 0.12345678901234568 and -12345678901234568, totals agreeing with them.
    stored = {"fee": "0.123456789012345678", "netFee": "-12345678901234567.5"}
    texts = {f"{column_letter('fee')}3": stored["fee"], f"{column_letter('netFee')}2": stored["netFee"]}
    parsed = parse_file(write(tmp_path, with_stored_texts(xlsx_bytes(sheet_rows([row(), row(), row()])), texts)))
    fee, net_fee = Decimal(REAL_ROW["fee"]), Decimal(REAL_ROW["netFee"])
    assert parsed.frame["fee"].to_list() == [fee, Decimal(stored["fee"]), fee]
    assert parsed.frame["net_fee"].to_list() == [Decimal(stored["netFee"]), net_fee, net_fee]
    assert parsed.totals["fee"] == exact_sum([fee, Decimal(stored["fee"]), fee])
    assert parsed.totals["net_fee"] == exact_sum([Decimal(stored["netFee"]), net_fee, net_fee])
    assert parsed.warnings == ()


@pytest.mark.parametrize(
    ("stored", "value"),
    [
        ("0.10000000000000001", "0.1"),  # Excel writes a double with 17 significant digits
        ("8.857984825799999", "8.8579848258"),  # openpyxl writes it with 16
        ("0.30000000000000004", "0.30000000000000004"),  # the shortest repr itself
        ("0.12345678901234567", "0.12345678901234567"),  # 17 digits no double is written as: the text is the value
    ],
)
def test_a_number_written_from_a_double_reads_as_the_doubles_shortest_repr(
    tmp_path: Path, stored: str, value: str
) -> None:
    data = with_stored_texts(xlsx_bytes(sheet_rows([row(), row()])), {f"{column_letter('fee')}3": stored})
    parsed = parse_file(write(tmp_path, data))
    assert parsed.frame["fee"].to_list() == [Decimal(REAL_ROW["fee"]), Decimal(value)]
    assert parsed.totals["fee"] == exact_sum([Decimal(REAL_ROW["fee"]), Decimal(value)])


def test_a_stored_number_past_decimal_38_18_is_rejected_rather_than_rounded(tmp_path: Path) -> None:
    data = with_stored_texts(xlsx_bytes(sheet_rows([row(), row()])), {"J3": "0.1234567890123456789"})
    assert rejected(tmp_path, data).startswith(
        "netFee in data row 2 is '0.1234567890123456789', which has more than 18 decimal places"
    )


def test_a_ts_stored_with_a_fraction_a_double_drops_is_rejected(tmp_path: Path) -> None:
    data = with_stored_texts(xlsx_bytes(sheet_rows([row()])), {f"{column_letter('ts')}2": "1758250140000.0000001"})
    assert rejected(tmp_path, data).startswith("ts in data row 1 is '1758250140000.0000001', not epoch milliseconds")


def test_a_stored_number_is_placed_wherever_the_table_starts_and_in_any_sheet(tmp_path: Path) -> None:
    book = Workbook()
    first = book.active
    assert first is not None
    for values in sheet_rows([row()]):
        first.append(values)
    place(book.create_sheet("Rebates 2"), sheet_rows([row(), row()]), top=4, left=3)
    out = io.BytesIO()
    book.save(out)
    cell = f"{'CDEFGHIJKLMNOPQR'[COLUMNS_16.index('userRebate')]}6"  # the table starts at C4
    data = with_stored_texts(out.getvalue(), {cell: "1.000000000000000001"}, member="xl/worksheets/sheet2.xml")
    parsed = parse_file(write(tmp_path, data))
    assert parsed.frame["user_rebate"].to_list() == [Decimal(0), Decimal(0), Decimal("1.000000000000000001")]
    assert parsed.totals["user_rebate"] == Decimal("1.000000000000000001")


def test_a_stored_number_that_cannot_be_placed_rejects_the_file_naming_sheet_cell_and_text(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    place(sheet, sheet_rows([row(), row()]), top=1, left=2)
    sheet["A3"] = 0.5  # left of the header: calamine reads a column without a header, and the origin moves
    out = io.BytesIO()
    book.save(out)
    message = rejected(tmp_path, with_stored_texts(out.getvalue(), {"J3": "0.123456789012345678"}))
    assert message.startswith("the number in cell J3 of sheet 'Sheet' stores '0.123456789012345678', more digits than")
    assert "a double can carry" in message


def test_a_stored_number_without_a_cell_reference_rejects_the_file(tmp_path: Path) -> None:
    data = with_stored_texts(xlsx_bytes(sheet_rows([row(), row()])), {"I3": "0.123456789012345678"})
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        parts = {info.filename: source.read(info) for info in source.infolist()}
    parts["xl/worksheets/sheet1.xml"] = parts["xl/worksheets/sheet1.xml"].replace(b'<c r="I3" ', b"<c ")
    message = rejected(tmp_path, zip_of(parts))
    assert message.startswith("the number in a cell without a cell reference of sheet 'Sheet' stores '0.1234567890123")


@pytest.mark.parametrize("make", [xlsx_bytes, xls_bytes])
def test_an_ordid_column_of_number_cells_is_rejected_even_when_it_prints_19_digits(
    tmp_path: Path, make: MakeWorkbook
) -> None:
    table = sheet_rows([row(), row()], ordId=2877198384625049600)
    message = rejected(tmp_path, make(table))
    assert message.startswith("ordId in data row 1 is a number cell")


@pytest.mark.parametrize("make", [xlsx_bytes, xls_bytes])
@pytest.mark.parametrize("column", ["uid", "brokerCode", "clOrdId"])
def test_one_number_cell_among_text_ids_is_rejected(tmp_path: Path, make: MakeWorkbook, column: str) -> None:
    table = sheet_rows([row(uid="12", clOrdId="a"), row(uid="13", clOrdId="b"), row(uid="14", clOrdId="c")])
    table[2][COLUMNS_16.index(column)] = 123456789012345678
    message = rejected(tmp_path, make(table))
    assert message.startswith(f"{column} in data row 2 is a number or true/false cell")


def test_integer_and_float_cells_of_a_legacy_xls_are_exact(tmp_path: Path) -> None:
    table = sheet_rows([row(), row(), row()], spotTradeAmt=0)
    table[2][COLUMNS_16.index("spotTradeAmt")] = 12345.6789012345
    table[3][COLUMNS_16.index("spotTradeAmt")] = 7
    parsed = parse_file(write(tmp_path, xls_bytes(table)))
    assert parsed.frame["spot_trade_amt"].to_list() == [Decimal(0), Decimal("12345.6789012345"), Decimal(7)]


@pytest.mark.parametrize("make", [xlsx_bytes, xls_bytes])
def test_a_true_false_cell_among_number_cells_is_rejected(tmp_path: Path, make: MakeWorkbook) -> None:
    table = sheet_rows([row(), row(), row()], brokerRebate=0.5)
    table[3][COLUMNS_16.index("brokerRebate")] = True
    table[1][COLUMNS_16.index("spotTradeAmt")] = 1  # an integer cell in xls: forces the mixed-cell path
    message = rejected(tmp_path, make(table))
    assert message.startswith("brokerRebate in data row 3 is a true/false or date cell")


def test_a_number_text_cell_among_number_cells_is_rejected(tmp_path: Path) -> None:
    table = sheet_rows([row(), row(), row()])
    table[2][COLUMNS_16.index("netFee")] = "0.0019744"
    assert rejected(tmp_path, xlsx_bytes(table)).startswith(
        "netFee in data row 2 is a text cell ('0.0019744') among number cells"
    )


def test_a_number_cell_among_text_amount_cells_is_rejected(tmp_path: Path) -> None:
    table = sheet_rows([row(), row(), row()], userRebate="0")
    table[3][COLUMNS_16.index("userRebate")] = 0.25
    assert rejected(tmp_path, xlsx_bytes(table)).startswith("userRebate in data row 3 is a number cell")


def test_boolean_affiliated_cells_and_float_ts_cells_are_read(tmp_path: Path) -> None:
    table = sheet_rows([row(), row()], affiliated=True, ts=1758250140000.0)
    table[2][COLUMNS_16.index("affiliated")] = False
    frame = parse_file(write(tmp_path, xlsx_bytes(table))).frame
    assert frame["affiliated"].to_list() == [True, False]
    assert [epoch_ms(ts) for ts in frame["ts"].to_list()] == [1758250140000] * 2


def test_a_ts_cell_with_a_fraction_of_a_millisecond_is_rejected(tmp_path: Path) -> None:
    message = rejected(tmp_path, xlsx_bytes(sheet_rows([row()], ts=1758250140000.5)))
    assert message.startswith("ts in data row 1 is 1758250140000.5, not whole epoch milliseconds")


def test_a_duplicated_spreadsheet_header_is_rejected(tmp_path: Path) -> None:
    table = sheet_rows([row()])
    table[0][COLUMNS_16.index("fee")] = "netFee"
    assert "names column 'netFee' twice" in rejected(tmp_path, xlsx_bytes(table))


def test_every_sheet_of_a_workbook_is_read(tmp_path: Path) -> None:
    parsed = parse_file(write(tmp_path, xlsx_bytes(sheet_rows([row(), row()]), sheets=2)))
    assert parsed.rows == 4
    assert parsed.totals["fee"] == Decimal("-0.004936") * 4


def test_each_sheet_has_its_own_rows_and_totals_which_add_up_to_the_files(tmp_path: Path) -> None:
    book = Workbook()
    first = book.active
    assert first is not None
    first.title = "January"
    place(first, sheet_rows([row(), row(fee="-1.5")]), top=1, left=1)
    place(book.create_sheet("February"), sheet_rows([row(fee="-0.25", userRebate="0.1")]), top=1, left=1)
    out = io.BytesIO()
    book.save(out)
    parsed = parse_file(write(tmp_path, out.getvalue()))
    assert [(part.label, part.rows) for part in parsed.parts] == [("sheet 'January'", 2), ("sheet 'February'", 1)]
    assert [part.totals["fee"] for part in parsed.parts] == [Decimal("-1.504936"), Decimal("-0.25")]
    assert [part.totals["user_rebate"] for part in parsed.parts] == [Decimal(0), Decimal("0.1")]
    for column in AMOUNT_COLUMNS:
        assert exact_sum([part.totals[column] for part in parsed.parts]) == parsed.totals[column], column


def test_a_plain_csv_is_one_part_with_the_files_totals(tmp_path: Path) -> None:
    parsed = parse_file(write(tmp_path, csv_bytes([row(), row(fee="-2")])))
    assert [(part.label, part.rows, part.totals) for part in parsed.parts] == [("", 2, parsed.totals)]


def test_a_workbook_without_a_header_is_rejected(tmp_path: Path) -> None:
    assert "no header row in any sheet" in rejected(tmp_path, xlsx_bytes([]))


def test_a_large_file_parses_every_row(tmp_path: Path) -> None:
    file_spec = spec(FileShape.CSV_CRLF, orders_per_day=2500)
    rows = generate_rows(file_spec)
    parsed = parse_file(write(tmp_path, build_rebate_file(file_spec)))
    assert parsed.rows == len(rows)
    assert parsed.totals["spot_trade_amt"] == exact_sum([Decimal(values["spotTradeAmt"]) for values in rows])
