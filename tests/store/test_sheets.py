"""Spreadsheet cells read exactly: floats by their shortest text, stored numbers as stored, mixed cells refused."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import cast

import polars as pl
import pytest
from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

import pipeline.store.containers
import pipeline.store.rows
import pipeline.store.sheets
from pipeline.columns import AMOUNT_COLUMNS
from pipeline.simulator.files import (
    COLUMNS_16,
    FileShape,
    build_rebate_file,
    generate_rows,
)
from tests.store.conftest import zip_of
from tests.store.rebate_files import (
    REAL_ROW,
    MakeWorkbook,
    csv_bytes,
    epoch_ms,
    exact_sum,
    parse_file,
    rejected,
    row,
    sheet_rows,
    spec,
    write,
    xls_bytes,
    xlsx_bytes,
)

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
