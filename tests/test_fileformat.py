"""Format detection looks at bytes, never names: CSV (BOM, CRLF), zip of CSV, xlsx, xls, and junk."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from pipeline.fileformat import OLE2_MAGIC, FileFormat, detect_format


def xlsx_bytes() -> bytes:
    book = Workbook()
    book.active.append(["brokerCode", "ordId"])  # type: ignore[union-attr]
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("RebateDetails0101-0101.csv", "brokerCode,ordId\n")
    return out.getvalue()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"brokerCode,level,ordId\nabc,,1\n", FileFormat.CSV),
        (b"\xef\xbb\xbfbrokerCode,level\r\nabc,\r\n", FileFormat.CSV),
        ("\ufeffbrokerCode,level\r\nabc,\r\n".encode("utf-16-le"), FileFormat.CSV),
        ("\ufeffbrokerCode,level\nabc,\n".encode("utf-16-be"), FileFormat.CSV),
        ("brokerCode,level\n经纪商,\n".encode("gbk"), FileFormat.CSV),
        ("brokerCode,level\nabc,\n".encode("utf-16-le"), FileFormat.UNKNOWN),  # UTF-16 without its BOM
        (b"brokerCode,level\nab\x00c,\n", FileFormat.UNKNOWN),
        (b"brokerCode,level\ncaf\xe9,\n", FileFormat.UNKNOWN),  # Latin-1: neither UTF-8 nor GB18030
        (xlsx_bytes(), FileFormat.XLSX),
        (zip_bytes(), FileFormat.ZIP),
        (OLE2_MAGIC + b"\x00" * 100, FileFormat.XLS),
        (b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>", FileFormat.UNKNOWN),
        (b"PK\x03\x04 truncated", FileFormat.UNKNOWN),
        (b"", FileFormat.UNKNOWN),
    ],
)
def test_detects_by_content_whatever_the_name(tmp_path: Path, content: bytes, expected: FileFormat) -> None:
    path = tmp_path / "RebateDetails.xls"  # the name lies, as OKX's links do
    path.write_bytes(content)
    assert detect_format(path) is expected
