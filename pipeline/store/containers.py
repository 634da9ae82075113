"""The file's containers: a CSV's text, a zip's members (packaging junk skipped), size caps, batches of text."""

from __future__ import annotations

import csv
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import polars as pl

from pipeline.fileformat import OLE2_MAGIC, UTF8_BOM, ZIP_MAGIC, decoded_head
from pipeline.logs import first_line
from pipeline.store.headers import FilePart, column_names, file_part
from pipeline.store.inflate import ENCRYPTED, member_chunks
from pipeline.store.rejection import (
    DAMAGED,
    NOT_AN_OKX_FILE,
    NotARebateFile,
    RejectedFile,
    in_part,
)
from pipeline.store.text import GB18030, UndecodableText, utf8_text

BATCH_ROWS = 200_000
"""Rows validated and typed at a time: bounds the memory a load needs, whatever the file's size."""


def csv_part(path: Path, label: str, *, many: bool, workdir: Path) -> FilePart:
    """A CSV file, its header read and checked; LF or CRLF line ends.

    Its text is UTF-8 (maybe with a BOM), UTF-16 with a BOM, or GB18030, each told by a check that cannot guess
    (pipeline/store/text.py); text that is not UTF-8 is copied out as UTF-8 under `workdir` first, so every reader
    after this one sees UTF-8. GB18030 is accepted only when its decoded header names OKX's columns.
    """
    what = label or "the file"
    try:
        text = utf8_text(path, workdir)
    except UndecodableText as exc:
        raise RejectedFile(f"{what} is not CSV text that can be read exactly: {exc}: {NOT_AN_OKX_FILE}") from None
    try:
        with text.path.open(encoding="utf-8-sig", newline="") as handle:
            headers = next(csv.reader(handle), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RejectedFile(f"cannot read the CSV header{in_part(label)}: {exc}: {DAMAGED}") from None
    try:
        names = column_names(headers, label)
    except RejectedFile as exc:
        if text.encoding != GB18030:
            raise
        raise RejectedFile(
            f"{what} is not UTF-8, and read as GB18030 its header is not a rebate file's ({exc}): save it as UTF-8"
        ) from None
    return file_part(label, headers, names, csv_path=text.path, many=many)


def text_batches(part: FilePart) -> Iterator[pl.DataFrame]:
    """A part's cells as text columns named by role, at most `BATCH_ROWS` rows at a time."""
    names = list(part.names)
    if part.sheet is not None:
        yield from part.sheet.iter_slices(BATCH_ROWS)
        return
    assert part.csv_path is not None
    reader = pl.scan_csv(part.csv_path, infer_schema=False, new_columns=names, empty_string_is_null=False)
    try:
        for frame in reader.collect_batches(chunk_size=BATCH_ROWS):
            if frame.width != len(names):
                raise RejectedFile(
                    f"the CSV{in_part(part.label)} has {frame.width} columns but its header names {len(names)}: "
                    + DAMAGED
                )
            yield frame
    except pl.exceptions.PolarsError as exc:
        raise RejectedFile(f"cannot read the CSV{in_part(part.label)}: {first_line(exc)}: {DAMAGED}") from None


def zip_parts(path: Path, max_unzipped_bytes: int, skipped: list[str]) -> Iterator[FilePart]:
    """Every member, in archive order, as a CSV part, each copied into a temporary file of our own naming in turn.

    All of the zip or none of it: every member is a CSV rebate file (`csv_part`: its text decoded exactly, its
    header checked), or the whole file is refused naming the member and why. Only packaging junk is skipped, each
    listed in `skipped` (`_packaging_junk`); a dot-file such as `dir/.x.csv` is a member like any other. A member
    that holds nothing (at most a BOM and blanks) has no rows; a zip with no CSV member at all is rejected.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise NotARebateFile(f"cannot open the zip (cut short?): {exc}: download it again from OKX") from None
    found = 0
    with archive, tempfile.TemporaryDirectory(prefix="okx-rebates-zip-") as workdir:
        members = archive.infolist()
        check_budget(sum(info.file_size for info in members), max_unzipped_bytes)
        candidates: list[zipfile.ZipInfo] = []
        for info in members:
            junk = _packaging_junk(archive, info)
            if junk is None:
                candidates.append(info)
            elif junk:
                skipped.append(f"zip member {info.filename!r} ({junk})")
        budget = max_unzipped_bytes
        for index, info in enumerate(candidates):
            label = f"zip member {info.filename!r}"
            if stat.S_ISLNK(info.external_attr >> 16):
                raise RejectedFile(f"{label} is a symbolic link, not a rebate file: {NOT_AN_OKX_FILE}")
            target = Path(workdir) / f"member-{index}"
            budget -= _copy_member(archive, info, target, budget)
            found += 1
            if not _holds_nothing(target):
                if _starts_with(target, (ZIP_MAGIC, OLE2_MAGIC)):
                    raise RejectedFile(f"{label} is a zip or a spreadsheet, not CSV text: {NOT_AN_OKX_FILE}")
                part = csv_part(target, label, many=len(candidates) > 1, workdir=Path(workdir))
                yield part
                if part.csv_path is not None:
                    part.csv_path.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
    if not found:
        names = ", ".join(repr(info.filename) for info in members) or "nothing"
        raise RejectedFile(f"the zip holds no CSV file (it holds {names}): {NOT_AN_OKX_FILE}")


def _holds_nothing(path: Path) -> bool:
    """Whether a file holds nothing but maybe a BOM and blanks."""
    with path.open("rb") as handle:
        head = handle.read(4097)
    return len(head) <= 4096 and not head.removeprefix(UTF8_BOM).strip()


def _starts_with(path: Path, magics: tuple[bytes, ...]) -> bool:
    with path.open("rb") as handle:
        return handle.read(max(len(magic) for magic in magics)).startswith(magics)


_APPLE_DOUBLE = b"\x00\x05\x16\x07"
"""The first bytes of a macOS AppleDouble file (`._name`: a file's resource fork and Finder attributes)."""
_DS_STORE = b"\x00\x00\x00\x01Bud1"
"""The first bytes of a Finder `.DS_Store` file."""


def _packaging_junk(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str | None:
    """Why a member is packaging junk to skip, `""` for an empty folder entry (nothing to say), or None for a member.

    Junk is what macOS's Archive Utility adds: the `__MACOSX/` folder, and `._name` or `.DS_Store` files recognised
    by their first bytes, not only their names (a CSV named `.DS_Store` is a member like any other).
    """
    parts = PurePosixPath(info.filename).parts
    if info.is_dir() and info.file_size == 0:
        return ""
    if "__MACOSX" in parts[:-1]:
        return "macOS metadata folder __MACOSX/"
    name = parts[-1] if parts else ""
    magic = _APPLE_DOUBLE if name.startswith("._") else _DS_STORE if name == ".DS_Store" else None
    if magic is None or info.flag_bits & ENCRYPTED:
        return None
    try:
        head = next(member_chunks(archive, info), b"")[: len(magic)]
    except zipfile.BadZipFile:
        return None  # copied and refused as a member, with its reason
    return "macOS Finder metadata" if head == magic else None


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Copy one member into `target`, stopping as soon as it gives more than `budget` bytes (a lying header)."""
    if info.flag_bits & ENCRYPTED:
        raise RejectedFile(f"zip member {info.filename!r} is encrypted: ask OKX for an unencrypted file")
    written = 0
    try:
        with target.open("wb") as sink:
            for chunk in member_chunks(archive, info):
                written += len(chunk)
                if written > budget:
                    raise RejectedFile(
                        f"zip member {info.filename!r} unpacks to more than it declares, past "
                        f"REBATES_MAX_UNZIPPED_BYTES ({budget:,} bytes left): a zip bomb or a damaged file"
                    )
                sink.write(chunk)
    except zipfile.BadZipFile as exc:
        raise NotARebateFile(
            f"cannot unpack zip member {info.filename!r} (cut short?): {exc}: download it again from OKX"
        ) from None
    return written


def check_unpacked_size(path: Path, max_unzipped_bytes: int) -> None:
    """Reject a workbook (itself a zip) that unpacks to more than the cap, counting the bytes it really produces.

    A workbook can declare small sizes and still expand far past them, so every member is inflated (and thrown
    away) before calamine reads it, and the count stops at the cap.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise NotARebateFile(f"cannot open the xlsx (cut short?): {exc}: download it again from OKX") from None
    with archive:
        members = archive.infolist()
        check_budget(sum(info.file_size for info in members), max_unzipped_bytes)
        produced = 0
        for info in members:
            try:
                for chunk in member_chunks(archive, info):
                    produced += len(chunk)
                    if produced > max_unzipped_bytes:
                        raise RejectedFile(
                            f"the xlsx unpacks to more than REBATES_MAX_UNZIPPED_BYTES ({max_unzipped_bytes:,} "
                            f"bytes) by member {info.filename!r}, more than its sizes declare: a zip bomb or a "
                            "damaged file"
                        )
            except zipfile.BadZipFile as exc:
                raise NotARebateFile(
                    f"cannot unpack the xlsx member {info.filename!r}: {exc}: it is cut short, damaged, or expands "
                    "past the sizes it declares (a zip bomb); download it again from OKX"
                ) from None


def check_budget(declared: int, max_unzipped_bytes: int) -> None:
    if declared > max_unzipped_bytes:
        raise RejectedFile(
            f"the file would unpack to {declared:,} bytes, more than REBATES_MAX_UNZIPPED_BYTES "
            f"({max_unzipped_bytes:,}): a zip bomb, or raise the setting if the file is genuine"
        )


def describe_unknown(path: Path) -> str:
    """Why the payload is no rebate file, in words: its bytes are never quoted (they are whatever a host sent)."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head:
        return "the file is empty: download it again from OKX"
    if head.startswith(ZIP_MAGIC):
        return "the file starts like a zip or xlsx but cannot be opened (cut short?): download it again from OKX"
    if head.lstrip().startswith(b"<"):
        hint = "an HTML or XML page (an error page or an expired link's answer): ask OKX for a fresh link"
    elif b"\x00" not in head and b"," in head and decoded_head(head, "utf-8") is None:
        hint = "text, but neither UTF-8, UTF-16 with a byte-order mark, nor GB18030; download it again from OKX"
    else:
        hint = "a damaged or unexpected download; download it again from OKX"
    return f"not a CSV, zip, xlsx or xls file ({path.stat().st_size:,} bytes): {hint}"
