"""Headers map to columns in any case, order and padding; a duplicated, missing or nameless column is refused."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.columns import AMOUNT_COLUMNS
from pipeline.simulator.files import (
    COLUMNS_14,
    COLUMNS_16,
)
from pipeline.store.parse import FRAME_SCHEMA
from tests.store.rebate_files import (
    REAL_ROW,
    csv_bytes,
    parse_file,
    rejected,
    row,
    write,
)

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
