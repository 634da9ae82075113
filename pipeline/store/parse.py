"""Read a downloaded OKX rebate file (CSV, zip of CSVs, xlsx or xls) into one exact, typed Polars frame."""

from __future__ import annotations

import csv
import math
import re
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta, tzinfo
from decimal import Decimal
from pathlib import Path, PurePosixPath

import fastexcel
import polars as pl

from pipeline.columns import AMOUNT_COLUMNS
from pipeline.fileformat import UTF8_BOM, ZIP_MAGIC, FileFormat, detect_format

__all__ = [
    "AMOUNT_DTYPE",
    "FRAME_SCHEMA",
    "ParsedFile",
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
_ZIP_CHUNK = 1 << 20
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
_NOT_AN_OKX_FILE = "it is not an OKX rebate-details file, or it was edited; download it again from OKX"
_DAMAGED = "the file is damaged or was edited; download it again from OKX"
_SPREADSHEET = "a spreadsheet stored it as a number and may have changed it; use the file exactly as OKX sent it"
_SPREADSHEET_IDS = "it turned the ids into numbers and lost digits; use the file exactly as OKX sent it"


class RejectedFile(Exception):
    """The file cannot be loaded; the message is one line naming column, data row and value where relevant."""


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

    @property
    def rows(self) -> int:
        """How many data rows the file holds."""
        return self.frame.height


def parse_rebate_file(path: Path, *, tz: tzinfo, max_unzipped_bytes: int) -> ParsedFile:
    """Read the rebate file at `path`, whatever its shape, or raise `RejectedFile` saying why it cannot be loaded.

    The format is detected from the first bytes (`detect_format`), never from the name. `tz` gives each row's
    `trade_date` (OKX's days are UTC+8 days; use the `REBATES_TZ` setting). `max_unzipped_bytes` caps what a zip may
    unpack to (`REBATES_MAX_UNZIPPED_BYTES`): a zip declaring more, or producing more while read, is rejected, and so
    is an xlsx (itself a zip) declaring more.
    """
    file_format = detect_format(path)
    warnings: list[str] = []
    tables = _read_tables(path, file_format, max_unzipped_bytes, warnings)
    if tables:
        text, names = _concatenate(tables)
    else:
        names = {name: header for name, header in _DOCS_HEADERS.items() if name not in OPTIONAL_COLUMNS}
        text = pl.DataFrame(schema={name: pl.String for name in names})
    frame = _typed(text, names, _Rows(tables), tz, warnings)
    return ParsedFile(
        frame=frame,
        format=file_format,
        source_columns=tables[0].headers if tables else (),
        extra_columns=tuple(header for name, header in names.items() if name.startswith(_EXTRA)),
        totals=_totals(frame),
        warnings=tuple(warnings),
    )


def _read_tables(path: Path, file_format: FileFormat, max_unzipped_bytes: int, warnings: list[str]) -> list[_Table]:
    """The file's tables as text: one for a CSV, one per CSV member of a zip, one per sheet with a header."""
    if file_format is FileFormat.CSV:
        tables = [_read_csv(path, label="")]
    elif file_format is FileFormat.ZIP:
        tables = _read_zip(path, max_unzipped_bytes, warnings)
    elif file_format in (FileFormat.XLSX, FileFormat.XLS):
        if file_format is FileFormat.XLSX:
            _check_declared_size(path, max_unzipped_bytes)
        tables = _read_workbook(path, file_format)
    else:
        raise RejectedFile(_describe_unknown(path))
    return tables


# --- reading each shape into text columns ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
    """One CSV, zip member or sheet: its header as written and its cells as text, one column per role.

    Columns are named by role: a name from `FRAME_SCHEMA`, `extra:<header>` or `nameless:<position>`.
    """

    label: str
    """`zip member 'a.csv'`, `sheet 'Rebates'`, or empty for the file itself."""
    headers: tuple[str, ...]
    names: dict[str, str]
    """Column name to its header as written, trimmed."""
    frame: pl.DataFrame


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


def _table(label: str, headers: Sequence[str], names: Sequence[str], frame: pl.DataFrame) -> _Table:
    return _Table(
        label=label,
        headers=tuple(headers),
        names={name: header.strip() for name, header in zip(names, headers, strict=True)},
        frame=frame,
    )


def _read_csv(path: Path, label: str) -> _Table:
    """A CSV file (UTF-8, maybe with a BOM, LF or CRLF line ends) as text columns."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            headers = next(csv.reader(handle), [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RejectedFile(f"cannot read the CSV header{_in(label)}: {exc}: {_DAMAGED}") from None
    names = _column_names(headers, label)
    try:
        frame = pl.read_csv(path, infer_schema=False, new_columns=names)
    except pl.exceptions.PolarsError as exc:
        raise RejectedFile(f"cannot read the CSV{_in(label)}: {_first_line(exc)}: {_DAMAGED}") from None
    if frame.width != len(names):
        raise RejectedFile(
            f"the CSV{_in(label)} has {frame.width} columns but its header names {len(names)}: {_DAMAGED}"
        )
    return _table(label, headers, names, frame)


def _read_zip(path: Path, max_unzipped_bytes: int, warnings: list[str]) -> list[_Table]:
    """Every regular CSV member, in archive order, each copied into a temporary file of our own naming.

    An empty member counts as a CSV member with no rows; a zip with no CSV member at all is rejected.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise RejectedFile(f"cannot open the zip: {exc}: {_DAMAGED}") from None
    tables: list[_Table] = []
    empty_members = 0
    with archive, tempfile.TemporaryDirectory(prefix="okx-rebates-zip-") as workdir:
        members = archive.infolist()
        _check_budget(sum(info.file_size for info in members), max_unzipped_bytes)
        budget = max_unzipped_bytes
        for index, info in enumerate(members):
            if _is_junk(info):
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                warnings.append(f"skipped zip member {info.filename!r}: a symbolic link")
                continue
            target = Path(workdir) / f"member-{index}"
            budget -= _copy_member(archive, info, target, budget)
            if _holds_nothing(target):
                empty_members += 1
            elif detect_format(target) is FileFormat.CSV:
                tables.append(_read_csv(target, f"zip member {info.filename!r}"))
            else:
                warnings.append(f"skipped zip member {info.filename!r}: not CSV text")
            target.unlink()
    if not tables and not empty_members:
        names = ", ".join(repr(info.filename) for info in members) or "nothing"
        raise RejectedFile(f"the zip holds no CSV file (it holds {names}): {_NOT_AN_OKX_FILE}")
    return tables


def _holds_nothing(path: Path) -> bool:
    """Whether a file holds nothing but maybe a BOM and blanks."""
    with path.open("rb") as handle:
        head = handle.read(4097)
    return len(head) <= 4096 and not head.removeprefix(UTF8_BOM).strip()


def _is_junk(info: zipfile.ZipInfo) -> bool:
    """Directories, macOS resource forks and dot-files: never rebate data."""
    parts = PurePosixPath(info.filename).parts
    return info.is_dir() or not parts or "__MACOSX" in parts or parts[-1].startswith(".")


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Copy one member into `target`, stopping as soon as it gives more than `budget` bytes (a lying header)."""
    if info.flag_bits & 0x1:
        raise RejectedFile(f"zip member {info.filename!r} is encrypted: ask OKX for an unencrypted file")
    written = 0
    try:
        with archive.open(info) as source, target.open("wb") as sink:
            while chunk := source.read(_ZIP_CHUNK):
                written += len(chunk)
                if written > budget:
                    raise RejectedFile(
                        f"zip member {info.filename!r} unpacks to more than it declares, past "
                        f"REBATES_MAX_UNZIPPED_BYTES ({budget:,} bytes left): a zip bomb or a damaged file"
                    )
                sink.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise RejectedFile(f"cannot unpack zip member {info.filename!r}: {exc}: {_DAMAGED}") from None
    return written


def _check_declared_size(path: Path, max_unzipped_bytes: int) -> None:
    """Reject a workbook (itself a zip) that declares more uncompressed bytes than the cap, before calamine reads it."""
    with zipfile.ZipFile(path) as archive:
        _check_budget(sum(info.file_size for info in archive.infolist()), max_unzipped_bytes)


def _check_budget(declared: int, max_unzipped_bytes: int) -> None:
    if declared > max_unzipped_bytes:
        raise RejectedFile(
            f"the file would unpack to {declared:,} bytes, more than REBATES_MAX_UNZIPPED_BYTES "
            f"({max_unzipped_bytes:,}): a zip bomb, or raise the setting if the file is genuine"
        )


def _read_workbook(path: Path, file_format: FileFormat) -> list[_Table]:
    """Every sheet that has a header (a large legacy .xls may be split over several), read with calamine."""
    try:
        # Bytes, not the path: given a path, calamine picks its xlsx or xls reader by the file's name.
        reader = fastexcel.read_excel(path.read_bytes())
        sheet_names = reader.sheet_names
        sheets = [_read_sheet(reader, name, f"sheet {name!r}" if len(sheet_names) > 1 else "") for name in sheet_names]
    except fastexcel.FastExcelError as exc:
        raise RejectedFile(f"cannot read the {file_format.value} workbook: {_first_line(exc)}: {_DAMAGED}") from None
    tables = [sheet for sheet in sheets if sheet is not None]
    if not tables:
        raise RejectedFile(f"the {file_format.value} workbook has no header row in any sheet: {_NOT_AN_OKX_FILE}")
    return tables


def _read_sheet(reader: fastexcel.ExcelReader, sheet_name: str, label: str) -> _Table | None:
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
    return _table(label, headers, names, pl.DataFrame(columns))


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


def _concatenate(tables: Sequence[_Table]) -> tuple[pl.DataFrame, dict[str, str]]:
    """Zip members or sheets one after the other; each must have the same columns as the first (in any order)."""
    first = tables[0]
    order = list(first.names)
    for table in tables[1:]:
        if set(table.names) != set(order):
            raise RejectedFile(
                f"{table.label} has columns {', '.join(table.headers)}, unlike {first.label} "
                f"({', '.join(first.headers)}): every part of the file must have the same columns"
            )
    if len(tables) == 1:
        return first.frame, first.names
    return pl.concat([table.frame.select(order) for table in tables], how="vertical"), first.names


class _Rows:
    """Names a data row for a message: its number in the whole file, and in its zip member or sheet."""

    def __init__(self, tables: Sequence[_Table]) -> None:
        self._parts: list[tuple[int, int, str]] = []
        start = 1
        for table in tables:
            self._parts.append((start, start + table.frame.height, table.label))
            start += table.frame.height

    def describe(self, row: int) -> str:
        for start, stop, label in self._parts:
            if start <= row < stop and label:
                own = "" if len(self._parts) == 1 else f", its row {row - start + 1}"
                return f"data row {row} ({label}{own})"
        return f"data row {row}"


@dataclass(frozen=True)
class _Check:
    """One way a column's value can be wrong: `bad` is true on the rows that break it."""

    name: str
    bad: pl.Expr
    problem: str
    """Ends the message after the value, e.g. `not a decimal number: <what to do>`."""


def _typed(text: pl.DataFrame, names: dict[str, str], rows: _Rows, tz: tzinfo, warnings: list[str]) -> pl.DataFrame:
    """Validate the text columns (vectorised) and cast them to `FRAME_SCHEMA`; raise on the first bad row."""
    text = text.with_columns(source_row=pl.int_range(1, text.height + 1, dtype=pl.Int64))
    data_columns = [name for name in text.columns if name != "source_row"]
    if text.height:
        blank_row = pl.all_horizontal(_blank(name) for name in data_columns)
        blank_rows = text.select(blank_row.sum()).item()
        if blank_rows:
            text = text.filter(~blank_row)
            warnings.append(f"skipped {blank_rows} blank row{'s' if blank_rows > 1 else ''}")
    _validate(text, names, rows)
    extras = [name for name in data_columns if name.startswith(_EXTRA)]
    for name in data_columns:
        if name.startswith(_NAMELESS):
            warnings.append(f"dropped column {name.removeprefix(_NAMELESS)}, which has no header and no values")
        elif name.startswith(_EXTRA):
            warnings.append(f"unknown column {names[name]!r} kept in extra")

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
    _confirm_amounts(text, parsed, names)
    return parsed


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
        raise RejectedFile(
            "an amount column's total is beyond DECIMAL(38,18) (over 20 integer digits): report the file to OKX"
        ) from None
    return {name: Decimal(value) for name, value in zip(AMOUNT_COLUMNS, sums, strict=True)}


# --- messages ----------------------------------------------------------------------------------------------------


def _in(label: str) -> str:
    return f" in {label}" if label else ""


def _first_row(mask: pl.Series) -> int:
    """The 1-based data row of the first true value."""
    return int(mask.arg_true()[0]) + 1


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _shorten(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _describe_unknown(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head:
        return "the file is empty: download it again from OKX"
    if head.startswith(ZIP_MAGIC):
        return "the file starts like a zip or xlsx but cannot be opened (cut short?): download it again from OKX"
    if head.lstrip().startswith(b"<"):
        hint = "an error page or an expired link's answer; ask OKX for a fresh link and download again"
    elif b"\x00" not in head and b"," in head and not _is_utf8(head):
        hint = "text, but not UTF-8 text; download it again from OKX"
    else:
        hint = "a damaged or unexpected download; download it again from OKX"
    return f"not a CSV, zip, xlsx or xls file: starts with {head[:32]!r}: {hint}"


def _is_utf8(head: bytes) -> bool:
    """Whether `head` is UTF-8, allowing a character cut at its very end."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3
    return True
