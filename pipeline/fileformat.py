"""Tell a rebate file's format from its first bytes, never from its name."""

from __future__ import annotations

import codecs
import zipfile
from enum import StrEnum
from pathlib import Path

ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
UTF8_BOM = codecs.BOM_UTF8
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class FileFormat(StrEnum):
    """What a downloaded file is; also the archived file's extension."""

    CSV = "csv"
    ZIP = "zip"
    XLSX = "xlsx"
    XLS = "xls"
    UNKNOWN = "bin"


def detect_format(path: Path) -> FileFormat:
    """CSV text (maybe with a BOM), a zip of CSVs, an xlsx (a zip with [Content_Types].xml), legacy xls, or unknown."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            return FileFormat.UNKNOWN
        return FileFormat.XLSX if "[Content_Types].xml" in names else FileFormat.ZIP
    if head.startswith(OLE2_MAGIC):
        return FileFormat.XLS
    return FileFormat.CSV if _looks_like_text(head) else FileFormat.UNKNOWN


def _looks_like_text(head: bytes) -> bool:
    """Whether the file's first bytes are CSV text: UTF-8 (maybe with a BOM), UTF-16 with its BOM, or GB18030.

    Only the head is seen here; pipeline/store/text.py decides the encoding from the whole file.
    """
    if head.startswith(UTF16_BOMS):
        text = decoded_head(head, "utf-16")
    elif head.startswith(UTF8_BOM):
        text = decoded_head(head.removeprefix(UTF8_BOM), "utf-8")
    else:
        text = decoded_head(head, "utf-8") or decoded_head(head, "gb18030")
    if not text or "\x00" in text:
        return False
    first_line = text.split("\n", 1)[0]
    return "," in first_line and not first_line.lstrip().startswith("<")


def decoded_head(head: bytes, codec: str) -> str | None:
    """`head` decoded as `codec`, allowing a character cut by the end of the head; None if it does not decode."""
    try:
        return codecs.getincrementaldecoder(codec)().decode(head)
    except UnicodeDecodeError:
        return None
