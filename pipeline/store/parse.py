"""Read a downloaded OKX rebate file (CSV, zip of CSVs, xlsx or xls) exactly, part by part, in bounded batches."""

from __future__ import annotations

import csv
import math
import re
import stat
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta, tzinfo
from decimal import Decimal, localcontext
from pathlib import Path, PurePosixPath
from typing import Any

import fastexcel
import polars as pl

from pipeline.columns import AMOUNT_COLUMNS
from pipeline.fileformat import OLE2_MAGIC, UTF8_BOM, ZIP_MAGIC, FileFormat, detect_format
from pipeline.logs import first_line
from pipeline.store.csv_ranges import mapped_windows
from pipeline.store.inflate import member_chunks
from pipeline.store.text import GB18030, UndecodableText, utf8_text
from pipeline.store.xlsx_numbers import SheetNumbers, StoredNumber, UnreadableSheet, scan_workbook

__all__ = [
    "AMOUNT_DTYPE",
    "FRAME_SCHEMA",
    "FilePart",
    "NotARebateFile",
    "ParsedFile",
    "PartSummary",
    "RebateFile",
    "RejectedFile",
    "parse_rebate_file",
]

AMOUNT_DTYPE = pl.Decimal(38, 18)
"""DuckDB's DECIMAL(38,18): at most 20 integer digits and 18 decimal places."""
MAX_INTEGER_DIGITS = 20
MAX_DECIMAL_PLACES = 18

TEXT_COLUMNS: tuple[str, ...] = ("broker_code", "level", "uid", "inst_id", "ord_id", "cl_ord_id")
"""Columns kept as text; in a spreadsheet their cells must be text cells."""
OPTIONAL_COLUMNS = frozenset({"uid", "cl_ord_id"})
"""Columns only the newer 16-column layout has."""
_NUMBER_COLUMNS = frozenset({*AMOUNT_COLUMNS, "ts"})
REQUIRED_VALUES: tuple[str, ...] = ("broker_code", "inst_id", "ord_id", *AMOUNT_COLUMNS, "affiliated", "ts")
"""Columns where an empty value rejects the file."""

FRAME_SCHEMA = pl.Schema(
    {
        "source_row": pl.Int64(),
        **{name: pl.String() for name in TEXT_COLUMNS},
        **{name: AMOUNT_DTYPE for name in AMOUNT_COLUMNS},
        "affiliated": pl.Boolean(),
        "ts": pl.Datetime("ms", "UTC"),
        "trade_date": pl.Date(),
        "extra": pl.String(),
    }
)
"""The parsed frame's columns, in order."""

_DOCS_HEADERS: dict[str, str] = {
    "broker_code": "brokerCode",
    "level": "level",
    "uid": "uid",
    "inst_id": "instId",
    "ord_id": "ordId",
    "cl_ord_id": "clOrdId",
    "spot_trade_amt": "spotTradeAmt",
    "derivative_trade_amt": "derivativeTradeAmt",
    "fee": "fee",
    "net_fee": "netFee",
    "settlement_fee": "settlementFee",
    "broker_rebate": "brokerRebate",
    "sub_broker_rebate": "suBrokerRebate",
    "user_rebate": "userRebate",
    "affiliated": "affiliated",
    "ts": "ts",
}
"""Each column's header in OKX's docs, which name the sub-broker rebate `suBrokerRebate`."""
_HEADER_NAMES: dict[str, str] = {
    **{written.lower(): name for name, written in _DOCS_HEADERS.items()},
    "subbrokerrebate": "sub_broker_rebate",
}
"""Header (trimmed, lower case) to column name."""
_EXTRA = "extra:"
_NAMELESS = "nameless:"

_SAMPLE_ROWS = 256
"""How many values per column are re-read with Python (`Decimal`, `repr`) to confirm Polars' conversions."""
_BLANK_LINE = re.compile(rb"\n\r?\n")
"""An empty line, LF or CRLF."""
BATCH_ROWS = 200_000
"""Rows validated and typed at a time: bounds the memory a load needs, whatever the file's size."""
_TOTAL_DIGITS = MAX_INTEGER_DIGITS + MAX_DECIMAL_PLACES
_TOTAL_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS
_TOTAL_TOO_LARGE = "an amount column's total is beyond DECIMAL(38,18) (over 20 integer digits): report the file to OKX"
_COLUMN_WARNINGS = ("dropped column ", "unknown column ")
_FLOAT_EXACT_INTEGERS = 2**53
"""A double holds every integer below this exactly."""

_PLAIN_AMOUNT = (
    rf"^[+-]?(?:0*[0-9]{{1,{MAX_INTEGER_DIGITS}}}(?:\.[0-9]{{0,{MAX_DECIMAL_PLACES}}}0*)?"
    rf"|0*\.[0-9]{{1,{MAX_DECIMAL_PLACES}}}0*)$"
)
"""A plain decimal that DECIMAL(38,18) holds exactly (leading and trailing zeros aside)."""
_NUMBER = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
"""Decimal text, maybe in scientific notation."""
_NUMBER_PARTS = r"^[+-]?([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$"
_MAX_EXPONENT = 60
_DIGITS = r"^[0-9]+$"
_EPOCH_MS = r"^[0-9]{1,18}$"
MIN_TS_MS = 1_420_070_400_000
"""2015-01-01 UTC in epoch milliseconds: no OKX broker rebate is older."""
MAX_TS_MS = 4_102_444_800_000
"""2100-01-01 UTC: a later `ts` is not a time OKX wrote."""
_PLAUSIBLE_TS_TEXT = "2015-01-01 and 2100-01-01"
_NOT_AN_OKX_FILE = "it is not an OKX rebate-details file, or it was edited; download it again from OKX"
_DAMAGED = "the file is damaged or was edited; download it again from OKX"
_SPREADSHEET = "a spreadsheet stored it as a number and may have changed it; use the file exactly as OKX sent it"
_SPREADSHEET_IDS = "it turned the ids into numbers and lost digits; use the file exactly as OKX sent it"


class RejectedFile(Exception):
    """The file cannot be loaded; the message is one line naming column, data row and value where relevant."""


class NotARebateFile(RejectedFile):
    """The payload is no rebate file at all (an error page, empty, cut short): a transport glitch, download it again."""


@dataclass(frozen=True)
class ParsedFile:
    """A rebate file read exactly: the typed frame (`FRAME_SCHEMA`) and what was learnt on the way."""

    frame: pl.DataFrame
    format: FileFormat
    source_columns: tuple[str, ...]
    """The headers as written in the file (the first zip member or sheet that has any)."""
    extra_columns: tuple[str, ...]
    """Headers this module does not know; their values are kept in `extra` as JSON."""
    totals: dict[str, Decimal]
    """The exact sum of each amount column over the frame."""
    warnings: tuple[str, ...]
    parts: tuple[PartSummary, ...] = ()
    """Each sheet's or zip member's rows and sums, in order (one part, labelled empty, for a plain CSV)."""
    skipped: tuple[str, ...] = ()
    """Zip members skipped as packaging junk, each with why: `zip member '__MACOSX/._a.csv' (macOS metadata)`."""

    @property
    def rows(self) -> int:
        """How many data rows the file holds."""
        return self.frame.height


@dataclass(frozen=True)
class FilePart:
    """One CSV, zip member or sheet of a rebate file, its header checked, its rows not read yet."""

    label: str
    """`zip member 'a.csv'`, `sheet 'Rebates'`, or empty for the file itself."""
    headers: tuple[str, ...]
    names: dict[str, str]
    """Column name (a name from `FRAME_SCHEMA`, `extra:<header>` or `nameless:<position>`) to its header, trimmed."""
    csv_path: Path | None = None
    """The CSV text on disk (a CSV file, or a zip member copied out); None for a sheet."""
    sheet: pl.DataFrame | None = None
    """A sheet's cells as text (a sheet holds at most 1,048,576 rows, so this is bounded)."""
    many: bool = False
    """Whether the file has more than one part (messages then give the row within the part too)."""

    @property
    def plain_csv(self) -> bool:
        """Whether DuckDB may read this part itself: CSV text with only the known columns and no blank line."""
        known = all(not name.startswith((_EXTRA, _NAMELESS)) for name in self.names)
        return self.csv_path is not None and known and not _has_blank_line(self.csv_path)


@dataclass
class PartSummary:
    """What one part held (a sheet, a zip member, or the file itself): its rows and each amount column's sum."""

    label: str
    """As in `FilePart.label`: `sheet 'Rebates'`, `zip member 'a.csv'`, or empty for the file itself."""
    rows: int = 0
    totals: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(AMOUNT_COLUMNS, Decimal(0)))


@dataclass
class FileSummary:
    """What a rebate file held, added up batch by batch as it is read."""

    rows: int = 0
    blank_rows: int = 0
    totals: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(AMOUNT_COLUMNS, Decimal(0)))
    source_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)
    parts: list[PartSummary] = field(default_factory=list)
    """Each part this reader typed (`RebateFile.batches`), in order; not the parts DuckDB read itself."""
    skipped: list[str] = field(default_factory=list)
    """Zip members skipped as packaging junk (`_packaging_junk`), each with why; nothing else is ever skipped."""

    def all_warnings(self) -> tuple[str, ...]:
        """The warnings in the order a reader meets them: the file's parts, skipped rows, then its columns."""
        blank = [f"skipped {self.blank_rows} blank row{'s' if self.blank_rows > 1 else ''}"] if self.blank_rows else []
        columns = [warning for warning in self.warnings if warning.startswith(_COLUMN_WARNINGS)]
        parts = [warning for warning in self.warnings if not warning.startswith(_COLUMN_WARNINGS)]
        return (*parts, *blank, *columns)


class RebateFile:
    """A rebate file read part by part and batch by batch, so memory does not grow with the file.

    `parts()` yields each CSV, zip member or sheet with its header checked (zip members are copied out one at a time
    and deleted after); `batches(part)` yields its rows validated and typed (`FRAME_SCHEMA`), at most `BATCH_ROWS`
    at a time, and adds them to `summary`. `tz` gives each row's `trade_date` (OKX's days are UTC+8 days; use the
    `REBATES_TZ` setting). With `window` (first and last day), a row whose `trade_date` lies outside it rejects the
    file. `max_unzipped_bytes` caps what a zip or xlsx may unpack to (`REBATES_MAX_UNZIPPED_BYTES`), counting the
    bytes really produced, not the sizes it declares.
    """

    def __init__(
        self, path: Path, *, tz: tzinfo, max_unzipped_bytes: int, window: tuple[date, date] | None = None
    ) -> None:
        self.path = path
        self.format = detect_format(path)
        self.tz = tz
        self.window = window
        self.max_unzipped_bytes = max_unzipped_bytes
        self.summary = FileSummary()
        self._first: FilePart | None = None

    def again(self) -> RebateFile:
        """A fresh reader of the same file, from its first row."""
        return RebateFile(self.path, tz=self.tz, max_unzipped_bytes=self.max_unzipped_bytes, window=self.window)

    @property
    def fast_path_possible(self) -> bool:
        """Whether DuckDB may read the file's CSV text itself: CSV or zipped CSV, and days at a fixed offset."""
        return self.format in (FileFormat.CSV, FileFormat.ZIP) and self.tz.utcoffset(None) is not None

    def parts(self) -> Iterator[FilePart]:
        """Every part with a header, in order; each must have the same columns as the first (in any order)."""
        for part in self._read_parts():
            if self._first is None:
                self._first = part
                self.summary.source_columns = part.headers
                self.summary.extra_columns = tuple(h for n, h in part.names.items() if n.startswith(_EXTRA))
                for name in part.names:
                    if name.startswith(_NAMELESS):
                        self.summary.warnings.append(
                            f"dropped column {name.removeprefix(_NAMELESS)}, which has no header and no values"
                        )
                    elif name.startswith(_EXTRA):
                        self.summary.warnings.append(f"unknown column {part.names[name]!r} kept in extra")
            elif set(part.names) != set(self._first.names):
                raise RejectedFile(
                    f"{part.label} has columns {', '.join(part.headers)}, unlike {self._first.label} "
                    f"({', '.join(self._first.headers)}): every part of the file must have the same columns"
                )
            yield part

    def batches(self, part: FilePart) -> Iterator[pl.DataFrame]:
        """The part's rows, validated and typed, at most `BATCH_ROWS` at a time; raises `RejectedFile` on a bad row."""
        start = self.summary.rows + self.summary.blank_rows + 1
        own = PartSummary(part.label)
        self.summary.parts.append(own)
        for text in _text_batches(part):
            first = self.summary.rows + self.summary.blank_rows + 1
            frame, blank = _typed(text, part, first, start, self.tz, self.window)
            self.summary.blank_rows += blank
            self.summary.rows += frame.height
            own.rows += frame.height
            totals = _totals(frame)
            _add(self.summary.totals, totals)
            _add(own.totals, totals)
            yield frame

    def count_rows(self, rows: int) -> None:
        """Count `rows` rows of a part that DuckDB read itself (see `FilePart.plain_csv`), to number the next part's."""
        self.summary.rows += rows

    def _read_parts(self) -> Iterator[FilePart]:
        file_format = self.format
        if file_format is FileFormat.CSV:
            with tempfile.TemporaryDirectory(prefix="okx-rebates-text-") as workdir:
                yield _csv_part(self.path, label="", many=False, workdir=Path(workdir))
        elif file_format is FileFormat.ZIP:
            yield from _zip_parts(self.path, self.max_unzipped_bytes, self.summary.skipped)
        elif file_format is FileFormat.XLSX:
            yield from _xlsx_parts(self.path, self.max_unzipped_bytes)
        elif file_format is FileFormat.XLS:
            yield from _workbook_parts(self.path, file_format, None)
        else:
            raise NotARebateFile(_describe_unknown(self.path))


def _add(sums: dict[str, Decimal], totals: dict[str, Decimal]) -> None:
    """Add a batch's `totals` to `sums`, exactly; a sum past DECIMAL(38,18) rejects the file."""
    with localcontext() as exact:
        exact.prec = 2 * _TOTAL_DIGITS
        for name, value in totals.items():
            total = sums[name] + value
            if abs(total) >= _TOTAL_LIMIT:
                raise RejectedFile(_TOTAL_TOO_LARGE)
            sums[name] = total


def parse_rebate_file(
    path: Path, *, tz: tzinfo, max_unzipped_bytes: int, window: tuple[date, date] | None = None
) -> ParsedFile:
    """Read the whole rebate file at `path` into one frame (see `RebateFile`; loads read it batch by batch).

    Raises `RejectedFile` saying why it cannot be loaded (`NotARebateFile` when it is no rebate file at all). The
    format is detected from the first bytes (`detect_format`), never from the name.
    """
    source = RebateFile(path, tz=tz, max_unzipped_bytes=max_unzipped_bytes, window=window)
    frames = [frame for part in source.parts() for frame in source.batches(part)]
    frame = pl.concat(frames, how="vertical") if frames else FRAME_SCHEMA.to_frame()
    summary = source.summary
    return ParsedFile(
        frame=frame,
        format=source.format,
        source_columns=summary.source_columns,
        extra_columns=summary.extra_columns,
        totals=summary.totals,
        warnings=summary.all_warnings(),
        parts=tuple(summary.parts),
        skipped=tuple(summary.skipped),
    )


# --- reading each shape into text columns ------------------------------------------------------------------------


def _column_names(headers: Sequence[str], label: str) -> list[str]:
    """Each header's column name; rejects a duplicated header or a missing required column."""
    names: list[str] = []
    first_seen: dict[str, int] = {}
    for position, written in enumerate(headers, start=1):
        header = written.strip()
        if not header:
            names.append(f"{_NAMELESS}{position}")
            continue
        name = _HEADER_NAMES.get(header.lower(), f"{_EXTRA}{header}")
        key = name.lower()
        if key in first_seen:
            other = headers[first_seen[key] - 1].strip()
            same = f"{header!r}" if other == header else f"{other!r} and {header!r}"
            raise RejectedFile(
                f"the header names column {same} twice{_in(label)} (columns {first_seen[key]} and {position}): "
                f"{_NOT_AN_OKX_FILE}"
            )
        first_seen[key] = position
        names.append(name)
    missing = [_DOCS_HEADERS[name] for name in _DOCS_HEADERS if name not in names and name not in OPTIONAL_COLUMNS]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        found = ", ".join(header.strip() for header in headers) or "none"
        raise RejectedFile(
            f"the file has no {', '.join(missing)} column{plural}{_in(label)} (its columns: {found}): "
            + _NOT_AN_OKX_FILE
        )
    return names


def _part(label: str, headers: Sequence[str], names: Sequence[str], **where: Any) -> FilePart:
    return FilePart(
        label=label,
        headers=tuple(headers),
        names={name: header.strip() for name, header in zip(names, headers, strict=True)},
        **where,
    )


def _csv_part(path: Path, label: str, *, many: bool, workdir: Path) -> FilePart:
    """A CSV file, its header read and checked; LF or CRLF line ends.

    Its text is UTF-8 (maybe with a BOM), UTF-16 with a BOM, or GB18030, each told by a check that cannot guess
    (pipeline/store/text.py); text that is not UTF-8 is copied out as UTF-8 under `workdir` first, so every reader
    after this one sees UTF-8. GB18030 is accepted only when its decoded header names OKX's columns.
    """
    what = label or "the file"
    try:
        text = utf8_text(path, workdir)
    except UndecodableText as exc:
        raise RejectedFile(f"{what} is not CSV text that can be read exactly: {exc}: {_NOT_AN_OKX_FILE}") from None
    try:
        with text.path.open(encoding="utf-8-sig", newline="") as handle:
            headers = next(csv.reader(handle), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RejectedFile(f"cannot read the CSV header{_in(label)}: {exc}: {_DAMAGED}") from None
    try:
        names = _column_names(headers, label)
    except RejectedFile as exc:
        if text.encoding != GB18030:
            raise
        raise RejectedFile(
            f"{what} is not UTF-8, and read as GB18030 its header is not a rebate file's ({exc}): save it as UTF-8"
        ) from None
    return _part(label, headers, names, csv_path=text.path, many=many)


def _text_batches(part: FilePart) -> Iterator[pl.DataFrame]:
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
                    f"the CSV{_in(part.label)} has {frame.width} columns but its header names {len(names)}: {_DAMAGED}"
                )
            yield frame
    except pl.exceptions.PolarsError as exc:
        raise RejectedFile(f"cannot read the CSV{_in(part.label)}: {first_line(exc)}: {_DAMAGED}") from None


def _has_blank_line(path: Path) -> bool:
    """Whether a CSV holds an empty line (DuckDB's reader skips those, which would renumber the rows after it).

    One regular-expression pass over a memory map of the file, a window at a time (`mapped_windows`: bounded RSS; the
    windows overlap by two bytes, so a `\n\r\n` cut by a window's end is seen whole): no copy of it, and half the CPU
    of searching for each line end in turn.
    """
    if path.stat().st_size == 0:
        return False
    return any(_BLANK_LINE.search(window) is not None for window in mapped_windows(path, overlap=2))


def _zip_parts(path: Path, max_unzipped_bytes: int, skipped: list[str]) -> Iterator[FilePart]:
    """Every member, in archive order, as a CSV part, each copied into a temporary file of our own naming in turn.

    All of the zip or none of it: every member is a CSV rebate file (`_csv_part`: its text decoded exactly, its
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
        _check_budget(sum(info.file_size for info in members), max_unzipped_bytes)
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
                raise RejectedFile(f"{label} is a symbolic link, not a rebate file: {_NOT_AN_OKX_FILE}")
            target = Path(workdir) / f"member-{index}"
            budget -= _copy_member(archive, info, target, budget)
            found += 1
            if not _holds_nothing(target):
                if _starts_with(target, (ZIP_MAGIC, OLE2_MAGIC)):
                    raise RejectedFile(f"{label} is a zip or a spreadsheet, not CSV text: {_NOT_AN_OKX_FILE}")
                part = _csv_part(target, label, many=len(candidates) > 1, workdir=Path(workdir))
                yield part
                if part.csv_path is not None:
                    part.csv_path.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
    if not found:
        names = ", ".join(repr(info.filename) for info in members) or "nothing"
        raise RejectedFile(f"the zip holds no CSV file (it holds {names}): {_NOT_AN_OKX_FILE}")


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
    if magic is None or info.flag_bits & 0x1:
        return None
    try:
        with archive.open(info) as member:
            head = member.read(len(magic))
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):
        return None  # copied and refused as a member, with its reason
    return "macOS Finder metadata" if head == magic else None


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Copy one member into `target`, stopping as soon as it gives more than `budget` bytes (a lying header)."""
    if info.flag_bits & 0x1:
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
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise NotARebateFile(
            f"cannot unpack zip member {info.filename!r} (cut short?): {exc}: download it again from OKX"
        ) from None
    return written


def _check_unpacked_size(path: Path, max_unzipped_bytes: int) -> None:
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
        _check_budget(sum(info.file_size for info in members), max_unzipped_bytes)
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
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                raise NotARebateFile(
                    f"cannot unpack the xlsx member {info.filename!r}: {exc}: it is cut short, damaged, or expands "
                    "past the sizes it declares (a zip bomb); download it again from OKX"
                ) from None


def _xlsx_parts(path: Path, max_unzipped_bytes: int) -> Iterator[FilePart]:
    """An xlsx's sheets (`_workbook_parts`), once its real unpacked size is known to be within the cap.

    Its number cells that a double would change are found by a scan of the sheets' XML (`_scan_xlsx`), which runs
    in a thread while calamine reads the sheets: calamine lets go of the GIL, so on two cores the scan costs little.
    """
    _check_unpacked_size(path, max_unzipped_bytes)
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xlsx-scan") as pool:
        numbers = pool.submit(_scan_xlsx, path, stop)
        try:
            yield from _workbook_parts(path, FileFormat.XLSX, numbers.result)
        finally:
            stop.set()


def _scan_xlsx(path: Path, stop: threading.Event) -> dict[str, SheetNumbers]:
    """Each sheet's number cells whose stored text a double cannot carry (`scan_workbook`), by sheet name.

    Runs beside calamine's read, after `_check_unpacked_size` bounded what the workbook unpacks to.
    """
    try:
        return scan_workbook(path, stop)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as exc:
        raise NotARebateFile(
            f"cannot unpack the xlsx: {exc}: it is cut short or damaged; download it again from OKX"
        ) from None
    except UnreadableSheet as exc:
        raise RejectedFile(f"cannot read the xlsx: {exc}: {_NOT_AN_OKX_FILE}") from None


def _check_budget(declared: int, max_unzipped_bytes: int) -> None:
    if declared > max_unzipped_bytes:
        raise RejectedFile(
            f"the file would unpack to {declared:,} bytes, more than REBATES_MAX_UNZIPPED_BYTES "
            f"({max_unzipped_bytes:,}): a zip bomb, or raise the setting if the file is genuine"
        )


def _workbook_parts(
    path: Path, file_format: FileFormat, numbers: Callable[[], dict[str, SheetNumbers]] | None
) -> Iterator[FilePart]:
    """Every sheet that has a header (a large range may be split over several), read with calamine one at a time.

    `numbers` (xlsx only) gives each sheet's number cells whose stored text a double cannot carry: those cells are
    read as stored (`_restore_stored_numbers`). A legacy xls stores every number as a double, so calamine's double
    is the stored value itself, read by its shortest repr.
    """
    try:
        # Bytes, not the path: given a path, calamine picks its xlsx or xls reader by the file's name.
        reader = fastexcel.read_excel(path.read_bytes())
        sheet_names = reader.sheet_names
    except fastexcel.FastExcelError as exc:
        raise NotARebateFile(
            f"cannot read the {file_format.value} workbook (cut short?): {first_line(exc)}: download it again from OKX"
        ) from None
    found = False
    for name in sheet_names:
        label = f"sheet {name!r}" if len(sheet_names) > 1 else ""
        try:
            sheet = _read_sheet(reader, name, label, numbers, many=len(sheet_names) > 1)
        except fastexcel.FastExcelError as exc:
            raise RejectedFile(f"cannot read the {file_format.value} workbook: {first_line(exc)}: {_DAMAGED}") from None
        if sheet is not None:
            found = True
            yield sheet
    if not found:
        raise RejectedFile(f"the {file_format.value} workbook has no header row in any sheet: {_NOT_AN_OKX_FILE}")


def _read_sheet(
    reader: fastexcel.ExcelReader,
    sheet_name: str,
    label: str,
    numbers: Callable[[], dict[str, SheetNumbers]] | None,
    *,
    many: bool,
) -> FilePart | None:
    """One sheet as text columns; None for a sheet without even a header.

    The fast path reads the sheet once, typing each column from all its cells with strict coercion: a column then
    holds one cell type only, so a `string` column holds text cells only, and a `float` column float cells only.
    A sheet whose columns mix cell types (a legacy .xls stores small whole amounts as integers beside floats; a
    damaged file mixes worse) is read with coercion instead, and once more to see what the coercion hid
    (`_probe_mixed_cells`).
    """
    try:
        sheet = reader.load_sheet(sheet_name, schema_sample_rows=None, dtype_coercion="strict")
        mixed = False
    except fastexcel.UnsupportedColumnTypeCombinationError:
        sheet = reader.load_sheet(sheet_name, schema_sample_rows=None)
        mixed = True
    headers = _sheet_headers(sheet.selected_columns, label)
    if not headers:
        return None
    names = _column_names(headers, label)
    frame = sheet.to_polars()
    frame.columns = names
    if mixed:
        _probe_mixed_cells(reader, sheet_name, frame, headers, label)
    columns: list[pl.Series] = []
    for name, header, series in zip(names, headers, frame.iter_columns(), strict=True):
        if name in TEXT_COLUMNS and series.dtype not in (pl.String, pl.Null):
            row = _first_row(series.is_not_null())
            kind = "number" if series.dtype.is_numeric() else str(series.dtype).lower()
            raise RejectedFile(
                f"{header.strip()} in data row {row}{_in(label)} is a {kind} cell ({series[row - 1]!r}), not text: "
                + _SPREADSHEET
            )
        if name == "ts" and series.dtype == pl.Float64:
            series = _whole_milliseconds(series, header.strip(), label)
        columns.append(_cells_as_text(series))
    stored = None if numbers is None else _sheet_numbers(numbers(), sheet_name)
    if stored is not None and (stored.changed or stored.unplaced):
        columns = _restore_stored_numbers(columns, frame, stored, sheet_name, first_header_written=bool(headers[0]))
    return _part(label, headers, names, sheet=pl.DataFrame(columns), many=many)


def _sheet_numbers(numbers: dict[str, SheetNumbers], sheet_name: str) -> SheetNumbers:
    """The scan of a sheet's XML; a sheet calamine reads but the workbook does not list cannot be checked."""
    if sheet_name not in numbers:
        raise RejectedFile(
            f"cannot find the XML of sheet {sheet_name!r} in the xlsx to check its numbers' stored digits: "
            + _NOT_AN_OKX_FILE
        )
    return numbers[sheet_name]


def _restore_stored_numbers(
    columns: list[pl.Series], frame: pl.DataFrame, stored: SheetNumbers, sheet_name: str, *, first_header_written: bool
) -> list[pl.Series]:
    """Put back the exact stored text of the number cells a double changed (calamine reads every number as one).

    Each cell is placed by its reference relative to the table's first cell, and placed only where calamine read
    the same double from it; a cell that cannot be placed so rejects the file rather than load a changed value.
    """
    restored: dict[int, tuple[list[int], list[str]]] = {}
    for number in stored.changed:
        row, column = _table_position(number, stored, first_header_written)
        if not (0 <= column < frame.width and 0 <= row < frame.height) or not _reads_as(
            frame.to_series(column)[row], number.text
        ):
            raise RejectedFile(_changed_by_a_double(number.cell, number.text, sheet_name))
        rows, texts = restored.setdefault(column, ([], []))
        rows.append(row)
        texts.append(number.text)
    if stored.unplaced:
        raise RejectedFile(_changed_by_a_double("", stored.unplaced[0], sheet_name))
    return [
        series.scatter(restored[index][0], restored[index][1]) if index in restored else series
        for index, series in enumerate(columns)
    ]


def _table_position(number: StoredNumber, stored: SheetNumbers, first_header_written: bool) -> tuple[int, int]:
    """A cell's data row and column in calamine's table, from 0; (-1, -1) when the table's origin is unknown.

    The header is the sheet's first row with a value; the table's first column is that row's first cell unless a
    later row has a cell further left, which calamine reads as a column without a header.
    """
    if stored.first_row is None or stored.first_column is None or not first_header_written:
        return -1, -1
    return number.row - stored.first_row - 1, number.column - stored.first_column


def _reads_as(value: object, text: str) -> bool:
    """Whether calamine read `text`'s nearest double at this cell (the check that places a stored text)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and float(value) == float(text)


def _changed_by_a_double(cell: str, text: str, sheet_name: str) -> str:
    where = f"in cell {cell}" if cell else "in a cell without a cell reference"
    return (
        f"the number {where} of sheet {sheet_name!r} stores {_shorten(text)}, more digits than a double can carry, "
        "and it cannot be matched to a cell of the table calamine read, so its exact value cannot be read: "
        "store the amounts as text cells, or ask OKX for the CSV file"
    )


def _probe_mixed_cells(
    reader: fastexcel.ExcelReader, sheet_name: str, frame: pl.DataFrame, headers: Sequence[str], label: str
) -> None:
    """Reject the cells that coercion would change silently, reading the sheet once more with other types.

    Coercion writes a number cell in a text column as text (an order id loses its digits unseen, and a float is cut
    to 9 decimal places), and reads a true/false or date cell in a number column as a number. So the id columns and
    the text-typed amount columns are read as booleans (a number or true/false cell gives a value, a text cell
    none), and the number-typed amount columns as text (a true/false or date cell gives text that is no number).
    """
    probes: dict[str | int, fastexcel.DType] = {}
    for position, (name, series) in enumerate(zip(frame.columns, frame.iter_columns(), strict=True)):
        if name in TEXT_COLUMNS or (name in _NUMBER_COLUMNS and not series.dtype.is_numeric()):
            probes[position] = "boolean"
        elif name in _NUMBER_COLUMNS:
            probes[position] = "string"
    probed = reader.load_sheet(sheet_name, dtypes=probes, use_columns=[int(position) for position in probes])
    for key, probe in zip(probes, probed.to_polars().iter_columns(), strict=True):
        column = int(key)
        name, header, series = frame.columns[column], headers[column].strip(), frame.to_series(column)
        if probe.dtype == pl.String:
            odd = probe.is_not_null() & ~probe.str.contains(r"^[-+.0-9eE]+$")
            problem, shown = f"is a true/false or date cell ({{!r}}), not a number: {_DAMAGED}", probe
        elif name in TEXT_COLUMNS:
            odd = probe.is_not_null()
            problem, shown = f"is a number or true/false cell (read as {{!r}}), not text: {_SPREADSHEET}", series
        else:
            numbers = probe.is_not_null()
            texts = probe.is_null() & series.is_not_null() & (series.str.len_bytes() > 0)
            minority, other = ("text", "number") if texts.sum() <= numbers.sum() else ("number", "text")
            odd = texts if minority == "text" else numbers
            problem = f"is a {minority} cell ({{!r}}) among {other} cells, which cannot be read exactly: {_DAMAGED}"
            shown = series
        if odd.any():
            row = _first_row(odd)
            raise RejectedFile(f"{header} in data row {row}{_in(label)} " + problem.format(shown[row - 1]))


def _sheet_headers(columns: Sequence[fastexcel.ColumnInfo], label: str) -> list[str]:
    """The header row as written: calamine renames a repeated header `name_1` and names a blank one `__UNNAMED__n`."""
    written = [column.name for column in columns]
    present = set(written)
    for column in columns:
        match = re.fullmatch(r"(.+)_[0-9]+", column.name)
        if match and match.group(1) in present and column.column_name_from != "generated":
            raise RejectedFile(
                f"the header names column {match.group(1)!r} twice{_in(label)} (columns "
                f"{written.index(match.group(1)) + 1} and {column.index + 1}): {_NOT_AN_OKX_FILE}"
            )
    return ["" if column.column_name_from == "generated" else column.name for column in columns]


def _whole_milliseconds(series: pl.Series, header: str, label: str) -> pl.Series:
    """A float `ts` column as integers, rejecting a cell that is not a whole number of milliseconds a double holds."""
    bad = series.is_not_null() & (
        (series != series.floor()) | (series < 0) | (series >= _FLOAT_EXACT_INTEGERS) | series.is_nan()
    )
    if bad.any():
        row = _first_row(bad)
        raise RejectedFile(
            f"{header} in data row {row}{_in(label)} is {series[row - 1]!r}, not whole epoch milliseconds: {_DAMAGED}"
        )
    return series.cast(pl.Int64)


def _cells_as_text(series: pl.Series) -> pl.Series:
    """A spreadsheet column as text: float cells through `_float_cells_as_text`, every other type exactly.

    (Never fastexcel's own `string` dtype for number cells: it cuts a float to 9 decimal places.)
    """
    if series.dtype == pl.Float64:
        return _float_cells_as_text(series)
    return series.cast(pl.String)


def _float_cells_as_text(series: pl.Series) -> pl.Series:
    """The one place money passes through a float: spreadsheet float cells, each written as its shortest round-trip
    decimal text, the same value as Python's `repr(float)`. Polars formats a float with the shortest digits that
    read back to the same double (`0.1`, `1e-7`, `24.0`), vectorised; a sample is checked against `repr`. Never
    `Decimal(float)`, which gives the binary expansion (0.1000000000000000055...).
    """
    texts = series.cast(pl.String)
    _confirm_float_text(series, texts)
    return texts


def _confirm_float_text(floats: pl.Series, texts: pl.Series) -> None:
    """Check a sample of float cells' text against Python's `repr`, lest a Polars version format floats otherwise."""
    step = max(1, floats.len() // _SAMPLE_ROWS)
    sample = zip(floats.gather_every(step).to_list(), texts.gather_every(step).to_list(), strict=True)
    for value, text in sample:
        if value is not None and math.isfinite(value) and Decimal(text) != Decimal(repr(value)):
            raise RuntimeError(
                f"Polars wrote the float cell {value!r} as {text!r}, not its shortest round-trip text; "
                "use the tested Polars version (requirements.lock)"
            )


# --- from text columns to the typed frame ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rows:
    """Names a data row for a message: its number in the whole file, and in its zip member or sheet."""

    part: FilePart
    start: int
    """The file's row number of the part's first row."""

    def describe(self, row: int) -> str:
        if not self.part.label:
            return f"data row {row}"
        own = f", its row {row - self.start + 1}" if self.part.many else ""
        return f"data row {row} ({self.part.label}{own})"


@dataclass(frozen=True)
class _Check:
    """One way a column's value can be wrong: `bad` is true on the rows that break it."""

    name: str
    bad: pl.Expr
    problem: str
    """Ends the message after the value, e.g. `not a decimal number: <what to do>`."""


def _typed(
    text: pl.DataFrame, part: FilePart, first: int, start: int, tz: tzinfo, window: tuple[date, date] | None
) -> tuple[pl.DataFrame, int]:
    """Validate a batch of text columns (vectorised) and cast it to `FRAME_SCHEMA`; raise on its first bad row.

    `first` is the file's row number of the batch's first row, `start` that of its part's. Returns the typed batch
    and how many blank rows it skipped.
    """
    names, rows = part.names, _Rows(part, start)
    text = text.with_columns(source_row=pl.int_range(first, first + text.height, dtype=pl.Int64))
    data_columns = [name for name in text.columns if name != "source_row"]
    blank_rows = 0
    if text.height:
        blank_row = pl.all_horizontal(_blank(name) for name in data_columns)
        blank_rows = text.select(blank_row.sum()).item()
        if blank_rows:
            text = text.filter(~blank_row)
    _validate(text, names, rows)
    extras = [name for name in data_columns if name.startswith(_EXTRA)]
    ts = pl.col("ts").cast(pl.Int64).cast(pl.Datetime("ms", "UTC"))
    parsed = text.select(
        pl.col("source_row"),
        *(_text_or_null(name, name in text.columns) for name in TEXT_COLUMNS),
        *(_cast_amount(pl.col(name)).alias(name) for name in AMOUNT_COLUMNS),
        (pl.col("affiliated").str.to_lowercase() == "true").alias("affiliated"),
        ts.alias("ts"),
        _local_date(ts, tz).alias("trade_date"),
        _extra_json(extras, names).alias("extra"),
    )
    if window is not None:
        _check_window(parsed, text, names, rows, window, tz)
    _confirm_amounts(text, parsed, names)
    return parsed, blank_rows


def _check_window(
    parsed: pl.DataFrame,
    text: pl.DataFrame,
    names: dict[str, str],
    rows: _Rows,
    window: tuple[date, date],
    tz: tzinfo,
) -> None:
    """Reject the batch's first row whose trade_date is outside the window, naming the likely cause."""
    outside = ~parsed["trade_date"].is_between(window[0], window[1])
    if not outside.any():
        return
    position = int(outside.arg_true()[0])
    day: date = parsed["trade_date"][position]
    near = min(abs((day - window[0]).days), abs((day - window[1]).days)) <= 1
    cause = (
        f"a row just past the window's edge: check REBATES_TZ ({tz}; OKX's days are UTC+8 days)"
        if near
        else "the file covers other days than the window: is it the right file for this window?"
    )
    raise RejectedFile(
        f"{names['ts']} in {rows.describe(text['source_row'][position])} is {text['ts'][position]!r}, "
        f"trade date {day}, outside the window {window[0]}..{window[1]}: {cause}"
    )


def _blank(name: str) -> pl.Expr:
    return pl.col(name).is_null() | (pl.col(name).str.len_bytes() == 0)


def _validate(text: pl.DataFrame, names: dict[str, str], rows: _Rows) -> None:
    """Raise `RejectedFile` for the earliest row that breaks a rule (the leftmost rule on that row).

    One vectorised pass evaluates every cheap rule; the costlier digit count of an amount runs only on the rows of
    a column that are not plain decimals of the usual size (scientific notation, or too long).
    """
    if not text.height:
        return
    checks = _checks(names)
    flags = text.select(check.bad.any().alias(str(index)) for index, check in enumerate(checks)).row(0)
    broken = [check for check, failed in zip(checks, flags, strict=True) if failed]
    failures: list[tuple[int, int, _Check]] = []
    if broken:
        firsts = text.select(check.bad.arg_true().first().alias(str(index)) for index, check in enumerate(broken))
        failures = [
            (position, index, check) for index, (position, check) in enumerate(zip(firsts.row(0), broken, strict=True))
        ]
    amounts = [name for name in names if name in AMOUNT_COLUMNS]
    unusual = text.select((~_blank(name) & ~pl.col(name).str.contains(_PLAIN_AMOUNT)).alias(name) for name in amounts)
    for name, mask in zip(amounts, unusual.iter_columns(), strict=True):
        if mask.any():
            failures.extend(_unusual_amount_failures(text[name], mask, len(failures)))
    if failures:
        position, _, check = min(failures, key=lambda failure: failure[:2])
        header = names.get(check.name) or f"column {check.name.removeprefix(_NAMELESS)}"
        value = text[check.name][position]
        shown = "empty" if value is None or value == "" else _shorten(value)
        raise RejectedFile(f"{header} in {rows.describe(text['source_row'][position])} is {shown}, {check.problem}")


def _unusual_amount_failures(amounts: pl.Series, unusual: pl.Series, order: int) -> list[tuple[int, int, _Check]]:
    """The first row of an amount column that is not a number, and the first with too many digits.

    Only the rows that are not plain decimals of the usual size are examined (`unusual`), so scientific notation
    costs little and a well-formed file costs nothing here.
    """
    name = amounts.name
    column = pl.col(name)
    is_number = column.str.contains(_NUMBER)
    checks = [
        _Check(name, ~is_number, f"not a decimal number: {_DAMAGED}"),
        _Check(
            name,
            is_number & ~_fits_decimal(column),
            f"which has more than {MAX_DECIMAL_PLACES} decimal places or {MAX_INTEGER_DIGITS} integer digits, "
            "so DECIMAL(38,18) cannot hold it exactly: report the file to OKX",
        ),
    ]
    subset = pl.DataFrame([unusual.arg_true().alias("position"), amounts.filter(unusual)])
    firsts = subset.select(
        pl.col("position").filter(check.bad).first().alias(str(index)) for index, check in enumerate(checks)
    ).row(0)
    return [
        (position, order + index, check)
        for index, (position, check) in enumerate(zip(firsts, checks, strict=True))
        if position is not None
    ]


def _checks(names: dict[str, str]) -> list[_Check]:
    """The cheap rules on the values, in the file's column order."""
    checks: list[_Check] = []
    for name in names:
        column, present = pl.col(name), ~_blank(name)
        if name in REQUIRED_VALUES:
            checks.append(_Check(name, _blank(name), f"but every row needs a value: {_DAMAGED}"))
        if name == "ord_id":
            problem = f"not an order id (digits only): if a spreadsheet saved the file, {_SPREADSHEET_IDS}"
            checks.append(_Check(name, present & ~column.str.contains(_DIGITS), problem))
        elif name == "affiliated":
            is_flag = column.str.to_lowercase().is_in(["true", "false"])
            checks.append(_Check(name, present & ~is_flag, f"not true or false: {_DAMAGED}"))
        elif name == "ts":
            checks.append(
                _Check(name, present & ~column.str.contains(_EPOCH_MS), f"not epoch milliseconds: {_DAMAGED}")
            )
            value = pl.when(column.str.contains(_EPOCH_MS)).then(column.cast(pl.Int64, strict=False))
            plausible = f"between {_PLAUSIBLE_TS_TEXT}"
            for scale, cause in ((1000, "it looks like seconds"), (1 / 1000, "it looks like microseconds")):
                low, high = int(MIN_TS_MS / scale), int(MAX_TS_MS / scale)
                checks.append(
                    _Check(
                        name,
                        value.is_between(low, high),
                        f"not epoch milliseconds {plausible}: {cause}, not milliseconds; ask OKX for a fresh file",
                    )
                )
            checks.append(
                _Check(
                    name,
                    ~value.is_between(MIN_TS_MS, MAX_TS_MS),
                    f"not a plausible time in epoch milliseconds (expected {plausible}): {_DAMAGED}",
                )
            )
        elif name.startswith(_NAMELESS):
            checks.append(_Check(name, present, f"but its column has no header: {_NOT_AN_OKX_FILE}"))
    return checks


def _fits_decimal(text: pl.Expr) -> pl.Expr:
    """Whether number text (maybe `1.5E-7`), its exponent applied, has at most 20 integer digits and 18 places."""
    parts = text.str.extract_groups(_NUMBER_PARTS)
    whole, fraction = parts.struct.field("1"), parts.struct.field("2").fill_null("")
    exponent = parts.struct.field("3").fill_null("0").cast(pl.Int64, strict=False)
    digits = whole + fraction
    count = digits.str.len_chars().cast(pl.Int64)
    point = whole.str.len_chars().cast(pl.Int64) + exponent
    leading = count - digits.str.strip_chars_start("0").str.len_chars().cast(pl.Int64)
    significant_end = digits.str.strip_chars_end("0").str.len_chars().cast(pl.Int64)
    fits = (leading == count) | (
        ((point - leading) <= MAX_INTEGER_DIGITS) & ((significant_end - point) <= MAX_DECIMAL_PLACES)
    )
    return (fits & (exponent.abs() <= _MAX_EXPONENT)).fill_null(False)


def _cast_amount(text: pl.Expr) -> pl.Expr:
    """Validated amount text to DECIMAL(38,18); the text was checked to fit, so nothing is rounded."""
    return text.cast(AMOUNT_DTYPE)


def _confirm_amounts(text: pl.DataFrame, parsed: pl.DataFrame, names: dict[str, str]) -> None:
    """Re-read a sample of every amount column with Python's Decimal and compare it with Polars' cast."""
    if not parsed.height:
        return
    step = max(1, parsed.height // _SAMPLE_ROWS)
    for name in AMOUNT_COLUMNS:
        written = text[name].gather_every(step).to_list()
        cast = parsed[name].gather_every(step).to_list()
        for source, value in zip(written, cast, strict=True):
            if Decimal(source) != value:
                raise RuntimeError(
                    f"Polars read {names[name]} {source!r} as {value}: its decimal cast is not exact in this "
                    "Polars version; use the tested one (requirements.lock)"
                )


def _text_or_null(name: str, present: bool) -> pl.Expr:
    if not present:
        return pl.lit(None, dtype=pl.String).alias(name)
    return pl.when(_blank(name)).then(None).otherwise(pl.col(name)).alias(name)


def _local_date(ts: pl.Expr, tz: tzinfo) -> pl.Expr:
    """The calendar day of `ts` in `tz`: a fixed offset by arithmetic, an IANA zone through Polars' zone data."""
    offset = tz.utcoffset(None)
    if offset is not None:
        return (ts + pl.duration(milliseconds=offset // timedelta(milliseconds=1))).dt.date()
    key = getattr(tz, "key", None)
    if not isinstance(key, str):
        raise TypeError(f"tz must be a fixed offset or a zoneinfo.ZoneInfo, not {tz!r}")
    return ts.dt.convert_time_zone(key).dt.date()


def _extra_json(extras: Sequence[str], names: dict[str, str]) -> pl.Expr:
    if not extras:
        return pl.lit(None, dtype=pl.String)
    return pl.struct(_text_or_null(name, present=True).alias(names[name]) for name in extras).struct.json_encode()


def _totals(frame: pl.DataFrame) -> dict[str, Decimal]:
    try:
        sums = frame.select(pl.col(name).sum() for name in AMOUNT_COLUMNS).row(0)
    except pl.exceptions.ComputeError:
        raise RejectedFile(_TOTAL_TOO_LARGE) from None
    return {name: Decimal(value) for name, value in zip(AMOUNT_COLUMNS, sums, strict=True)}


# --- messages ----------------------------------------------------------------------------------------------------


def _in(label: str) -> str:
    return f" in {label}" if label else ""


def _first_row(mask: pl.Series) -> int:
    """The 1-based data row of the first true value."""
    return int(mask.arg_true()[0]) + 1


def _shorten(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _describe_unknown(path: Path) -> str:
    """Why the payload is no rebate file, in words: its bytes are never quoted (they are whatever a host sent)."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head:
        return "the file is empty: download it again from OKX"
    if head.startswith(ZIP_MAGIC):
        return "the file starts like a zip or xlsx but cannot be opened (cut short?): download it again from OKX"
    if head.lstrip().startswith(b"<"):
        hint = "an HTML or XML page (an error page or an expired link's answer): ask OKX for a fresh link"
    elif b"\x00" not in head and b"," in head and not _is_utf8(head):
        hint = "text, but neither UTF-8, UTF-16 with a byte-order mark, nor GB18030; download it again from OKX"
    else:
        hint = "a damaged or unexpected download; download it again from OKX"
    return f"not a CSV, zip, xlsx or xls file ({path.stat().st_size:,} bytes): {hint}"


def _is_utf8(head: bytes) -> bool:
    """Whether `head` is UTF-8, allowing a character cut at its very end."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3
    return True
