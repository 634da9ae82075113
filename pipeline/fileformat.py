"""Tell a rebate file's format from its first bytes, never from its name."""

from __future__ import annotations

import zipfile
from enum import StrEnum
from pathlib import Path

ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
UTF8_BOM = b"\xef\xbb\xbf"


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
    body = head.removeprefix(UTF8_BOM)
    if not body or b"\x00" in body:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The 4 KiB cut may split a multi-byte character at the very end.
        if exc.start < len(body) - 3:
            return False
    first_line = body.split(b"\n", 1)[0]
    return b"," in first_line and not first_line.lstrip().startswith(b"<")
