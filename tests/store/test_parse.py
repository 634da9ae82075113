"""Every rebate file shape parses into the same exact, typed frame; every corruption is rejected with its reason."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.simulator.files import (
    AMOUNT_COLUMNS as FILE_AMOUNT_COLUMNS,
)
from pipeline.simulator.files import (
    Corruption,
    FileShape,
    HeaderStyle,
    Layout,
    corrupt,
    file_columns,
    generate_rows,
    render,
)
from pipeline.store.parse import FRAME_SCHEMA
from tests.store.rebate_files import (
    FORMATS,
    SNAKE,
    UTC8,
    csv_bytes,
    epoch_ms,
    epoch_ms_day,
    exact_sum,
    parse_file,
    rejected,
    row,
    spec,
    write,
)

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
