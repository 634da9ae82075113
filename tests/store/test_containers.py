"""CSV text in every encoding read exactly, zips (junk skipped, bombs stopped), payloads that are no file."""

from __future__ import annotations

import codecs
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

import pipeline.store.containers
import pipeline.store.rows
import pipeline.store.sheets
from pipeline.fileformat import OLE2_MAGIC, FileFormat
from pipeline.simulator.files import (
    COLUMNS_14,
    COLUMNS_16,
)
from pipeline.store import parse
from pipeline.store.parse import FRAME_SCHEMA, RejectedFile
from tests.store.conftest import zip_of
from tests.store.rebate_files import (
    REAL_ROW,
    csv_bytes,
    parse_file,
    rejected,
    row,
    sheet_rows,
    write,
    xlsx_bytes,
)

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
    assert "'xl/worksheets/sheet1.xml'" in message and "more than its sizes declare: a zip bomb" in message


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
