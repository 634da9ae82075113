"""The worksheet scan finds every number cell a double would change, and nothing else, however the XML is chunked."""

from __future__ import annotations

import io
import threading
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from pipeline.store.xlsx_numbers import (
    SheetNumbers,
    SheetScanner,
    StoredNumber,
    UnreadableSheet,
    changed_by_a_double,
    column_index,
    scan_workbook,
    worksheet_members,
)

SHEET = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="B2:E4"/>'
    b'<cols><col min="1" max="5" width="9"/></cols><sheetData>'
    b'<row r="1"><c r="A1" s="1"/></row>'
    b'<row r="2"><c r="B2" t="s"><v>0</v></c><c r="C2" t="inlineStr"><is><t>fee</t></is></c></row>'
    b'<row r="3"><c r="B3" t="s"><v>1</v></c><c r="C3" s="2"><v>0.123456789012345678</v></c>'
    b'<c r="D3" t="str"><f>A1&amp;"x"</f><v>2877198384625049600</v></c><c r="E3"><v>0.10000000000000001</v></c></row>'
    b'<row r="4"><c r="B4" t="inlineStr"><is><t>2877198384625049600</t></is></c>'
    b'<c r="C4" t="n"><f>C3*1</f><v>-1.2345678901234567890E+2</v></c><c r="E4"><v>8.857984825799999</v></c></row>'
    b"</sheetData><pageMargins/></worksheet>"
)
"""Header in row 2 from column B; two changed numbers (C3, C4, the second a formula's result); text cells with long
digits (a shared string, a formula string, an inline string); and two doubles as Excel and openpyxl write them."""
FOUND = SheetNumbers(
    first_row=2,
    first_column=1,
    changed=[
        StoredNumber("C3", 3, 2, "0.123456789012345678"),
        StoredNumber("C4", 4, 2, "-1.2345678901234567890E+2"),
    ],
)


def scan(data: bytes, chunk: int) -> tuple[SheetScanner, SheetNumbers]:
    scanner = SheetScanner()
    for start in range(0, len(data), chunk):
        scanner.feed(data[start : start + chunk])
    return scanner, scanner.finish()


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096, 1 << 20])
def test_a_scan_finds_the_changed_numbers_and_the_tables_origin_whatever_the_chunks(chunk: int) -> None:
    scanner, found = scan(SHEET, chunk)
    assert scanner.is_worksheet
    assert found == FOUND


def test_a_scan_reads_a_worksheet_written_with_a_namespace_prefix() -> None:
    prefixed = SHEET.replace(b"<worksheet xmlns=", b"<x:worksheet xmlns:x=").replace(b"</worksheet>", b"</x:worksheet>")
    for tag in (b"sheetData", b"row", b"c", b"v", b"f", b"is", b"t"):
        prefixed = prefixed.replace(b"<" + tag + b">", b"<x:" + tag + b">").replace(
            b"<" + tag + b" ", b"<x:" + tag + b" "
        )
        prefixed = prefixed.replace(b"</" + tag + b">", b"</x:" + tag + b">")
    assert scan(prefixed, 50)[1] == FOUND


def test_a_member_that_is_no_worksheet_is_ignored() -> None:
    scanner, found = scan(b'<sst xmlns="x"><si><t><v>0.123456789012345678</v></t></si></sst>', 7)
    assert not scanner.is_worksheet
    assert scanner.done
    assert found == SheetNumbers()


def test_a_changed_number_without_a_cell_reference_is_kept_unplaced() -> None:
    found = scan(SHEET.replace(b'<c r="C3" s="2">', b'<c s="2">'), 4096)[1]
    assert found.unplaced == ["0.123456789012345678"]
    assert [number.cell for number in found.changed] == ["C4"]


def test_a_sheet_with_megabytes_and_no_cell_is_refused_rather_than_held() -> None:
    scanner = SheetScanner()
    scanner.feed(SHEET[: SHEET.index(b"<sheetData>")])
    with pytest.raises(UnreadableSheet, match="without a cell"):
        for _ in range(10):
            scanner.feed(b"<extLst>" + b"x" * (1 << 20))


@pytest.mark.parametrize(
    ("stored", "changed"),
    [
        ("0.123456789012345678", True),  # 18 significant digits: no double writes them
        ("-12345678901234567.5", True),
        ("9007199254740993", True),  # 2**53 + 1
        ("0.12345678901234567", True),  # 17 digits, but not the 17-digit rendering of its double
        ("1758250140000.0000001", True),
        ("0.10000000000000001", False),  # Excel's rendering of the double 0.1
        ("8.857984825799999", False),  # openpyxl's (%.16g) rendering of 8.8579848258
        ("0.30000000000000004", False),  # a shortest repr
        ("1.5000000000000000000", False),  # trailing zeros carry nothing
        ("123456789012345", False),
        ("0.0000000000000001", False),
        ("not a number", False),
    ],
)
def test_a_stored_text_is_changed_by_a_double_only_when_no_double_writes_it(stored: str, changed: bool) -> None:
    assert changed_by_a_double(stored) is changed


def test_every_rendering_of_a_double_reads_back_as_that_double() -> None:
    doubles = [index / 7 * 10.0**exponent for index in range(1, 200) for exponent in range(-12, 12)]
    for value in doubles:
        for text in (repr(value), format(value, ".15g"), format(value, ".16g"), format(value, ".17g")):
            assert not changed_by_a_double(text), text


@pytest.mark.parametrize(("letters", "index"), [("A", 0), ("Z", 25), ("AA", 26), ("AZ", 51), ("XFD", 16383)])
def test_column_letters_count_from_zero(letters: str, index: int) -> None:
    assert column_index(letters) == index


def workbook(*titles: str) -> zipfile.ZipFile:
    book = Workbook()
    assert book.active is not None
    book.active.title = titles[0]
    for title in titles[1:]:
        book.create_sheet(title)
    out = io.BytesIO()
    book.save(out)
    return zipfile.ZipFile(io.BytesIO(out.getvalue()))


def test_each_sheet_name_maps_to_its_worksheet_member() -> None:
    with workbook("Rebates", "More rebates") as archive:
        assert worksheet_members(archive) == {
            "Rebates": "xl/worksheets/sheet1.xml",
            "More rebates": "xl/worksheets/sheet2.xml",
        }


def test_a_workbook_part_that_declares_entities_is_not_parsed() -> None:
    with workbook("Rebates") as archive:
        parts = {info.filename: archive.read(info) for info in archive.infolist()}
    parts["xl/workbook.xml"] = b'<!DOCTYPE lol [<!ENTITY lol "lol">]>' + parts["xl/workbook.xml"]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name, content in parts.items():
            target.writestr(name, content)
    with zipfile.ZipFile(out) as archive:
        assert worksheet_members(archive) == {}


def test_a_workbook_scan_finds_each_sheets_numbers_by_name_and_stops_when_told(tmp_path: Path) -> None:
    with workbook("Rebates", "More rebates") as archive:
        parts = {info.filename: archive.read(info) for info in archive.infolist()}
    parts["xl/worksheets/sheet2.xml"] = SHEET
    path = tmp_path / "book.xlsx"
    with zipfile.ZipFile(path, "w") as target:
        for name, content in parts.items():
            target.writestr(name, content)
    found = scan_workbook(path, threading.Event())
    assert found == {"Rebates": SheetNumbers(), "More rebates": FOUND}
    stopped = threading.Event()
    stopped.set()
    assert scan_workbook(path, stopped) == {}
