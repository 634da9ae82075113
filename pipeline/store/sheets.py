"""Spreadsheets (xlsx, xls) read with calamine into text columns, each number cell as the text it stores."""

from __future__ import annotations

import math
import re
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import fastexcel
import polars as pl

from pipeline.fileformat import FileFormat
from pipeline.logs import first_line
from pipeline.store.containers import check_unpacked_size
from pipeline.store.headers import NUMBER_COLUMNS, TEXT_COLUMNS, FilePart, column_names, file_part
from pipeline.store.rejection import (
    DAMAGED,
    NOT_AN_OKX_FILE,
    SPREADSHEET,
    NotARebateFile,
    RejectedFile,
    first_row,
    in_part,
    shorten,
)
from pipeline.store.rows import SAMPLE_ROWS
from pipeline.store.xlsx_numbers import SheetNumbers, StoredNumber, UnreadableSheet, scan_workbook

_FLOAT_EXACT_INTEGERS = 2**53
"""A double holds every integer below this exactly."""


def xlsx_parts(path: Path, max_unzipped_bytes: int) -> Iterator[FilePart]:
    """An xlsx's sheets (`workbook_parts`), once its real unpacked size is known to be within the cap.

    Its number cells that a double would change are found by a scan of the sheets' XML (`_scan_xlsx`), which runs
    in a thread while calamine reads the sheets: calamine lets go of the GIL, so on two cores the scan costs little.
    """
    check_unpacked_size(path, max_unzipped_bytes)
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xlsx-scan") as pool:
        numbers = pool.submit(_scan_xlsx, path, stop)
        try:
            yield from workbook_parts(path, FileFormat.XLSX, numbers.result)
        finally:
            stop.set()


def _scan_xlsx(path: Path, stop: threading.Event) -> dict[str, SheetNumbers]:
    """Each sheet's number cells whose stored text a double cannot carry (`scan_workbook`), by sheet name.

    Runs beside calamine's read, after `check_unpacked_size` bounded what the workbook unpacks to.
    """
    try:
        return scan_workbook(path, stop)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as exc:
        raise NotARebateFile(
            f"cannot unpack the xlsx: {exc}: it is cut short or damaged; download it again from OKX"
        ) from None
    except UnreadableSheet as exc:
        raise RejectedFile(f"cannot read the xlsx: {exc}: {NOT_AN_OKX_FILE}") from None


def workbook_parts(
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
            raise RejectedFile(f"cannot read the {file_format.value} workbook: {first_line(exc)}: {DAMAGED}") from None
        if sheet is not None:
            found = True
            yield sheet
    if not found:
        raise RejectedFile(f"the {file_format.value} workbook has no header row in any sheet: {NOT_AN_OKX_FILE}")


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
    names = column_names(headers, label)
    frame = sheet.to_polars()
    frame.columns = names
    if mixed:
        _probe_mixed_cells(reader, sheet_name, frame, headers, label)
    columns: list[pl.Series] = []
    for name, header, series in zip(names, headers, frame.iter_columns(), strict=True):
        if name in TEXT_COLUMNS and series.dtype not in (pl.String, pl.Null):
            row = first_row(series.is_not_null())
            kind = "number" if series.dtype.is_numeric() else str(series.dtype).lower()
            raise RejectedFile(
                f"{header.strip()} in data row {row}{in_part(label)} is a {kind} cell ({series[row - 1]!r}), not text: "
                + SPREADSHEET
            )
        if name == "ts" and series.dtype == pl.Float64:
            series = _whole_milliseconds(series, header.strip(), label)
        columns.append(_cells_as_text(series))
    stored = None if numbers is None else _sheet_numbers(numbers(), sheet_name)
    if stored is not None and (stored.changed or stored.unplaced):
        columns = _restore_stored_numbers(columns, frame, stored, sheet_name, first_header_written=bool(headers[0]))
    return file_part(label, headers, names, sheet=pl.DataFrame(columns), many=many)


def _sheet_numbers(numbers: dict[str, SheetNumbers], sheet_name: str) -> SheetNumbers:
    """The scan of a sheet's XML; a sheet calamine reads but the workbook does not list cannot be checked."""
    if sheet_name not in numbers:
        raise RejectedFile(
            f"cannot find the XML of sheet {sheet_name!r} in the xlsx to check its numbers' stored digits: "
            + NOT_AN_OKX_FILE
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
        f"the number {where} of sheet {sheet_name!r} stores {shorten(text)}, more digits than a double can carry, "
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
        if name in TEXT_COLUMNS or (name in NUMBER_COLUMNS and not series.dtype.is_numeric()):
            probes[position] = "boolean"
        elif name in NUMBER_COLUMNS:
            probes[position] = "string"
    probed = reader.load_sheet(sheet_name, dtypes=probes, use_columns=[int(position) for position in probes])
    for key, probe in zip(probes, probed.to_polars().iter_columns(), strict=True):
        column = int(key)
        name, header, series = frame.columns[column], headers[column].strip(), frame.to_series(column)
        if probe.dtype == pl.String:
            odd = probe.is_not_null() & ~probe.str.contains(r"^[-+.0-9eE]+$")
            problem, shown = f"is a true/false or date cell ({{!r}}), not a number: {DAMAGED}", probe
        elif name in TEXT_COLUMNS:
            odd = probe.is_not_null()
            problem, shown = f"is a number or true/false cell (read as {{!r}}), not text: {SPREADSHEET}", series
        else:
            numbers = probe.is_not_null()
            texts = probe.is_null() & series.is_not_null() & (series.str.len_bytes() > 0)
            minority, other = ("text", "number") if texts.sum() <= numbers.sum() else ("number", "text")
            odd = texts if minority == "text" else numbers
            problem = f"is a {minority} cell ({{!r}}) among {other} cells, which cannot be read exactly: {DAMAGED}"
            shown = series
        if odd.any():
            row = first_row(odd)
            raise RejectedFile(f"{header} in data row {row}{in_part(label)} " + problem.format(shown[row - 1]))


def _sheet_headers(columns: Sequence[fastexcel.ColumnInfo], label: str) -> list[str]:
    """The header row as written: calamine renames a repeated header `name_1` and names a blank one `__UNNAMED__n`."""
    written = [column.name for column in columns]
    present = set(written)
    for column in columns:
        match = re.fullmatch(r"(.+)_[0-9]+", column.name)
        if match and match.group(1) in present and column.column_name_from != "generated":
            raise RejectedFile(
                f"the header names column {match.group(1)!r} twice{in_part(label)} (columns "
                f"{written.index(match.group(1)) + 1} and {column.index + 1}): {NOT_AN_OKX_FILE}"
            )
    return ["" if column.column_name_from == "generated" else column.name for column in columns]


def _whole_milliseconds(series: pl.Series, header: str, label: str) -> pl.Series:
    """A float `ts` column as integers, rejecting a cell that is not a whole number of milliseconds a double holds."""
    bad = series.is_not_null() & (
        (series != series.floor()) | (series < 0) | (series >= _FLOAT_EXACT_INTEGERS) | series.is_nan()
    )
    if bad.any():
        row = first_row(bad)
        raise RejectedFile(
            f"{header} in data row {row}{in_part(label)} is {series[row - 1]!r}, not whole epoch milliseconds: "
            + DAMAGED
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
    step = max(1, floats.len() // SAMPLE_ROWS)
    sample = zip(floats.gather_every(step).to_list(), texts.gather_every(step).to_list(), strict=True)
    for value, text in sample:
        if value is not None and math.isfinite(value) and Decimal(text) != Decimal(repr(value)):
            raise RuntimeError(
                f"Polars wrote the float cell {value!r} as {text!r}, not its shortest round-trip text; "
                "use the tested Polars version (requirements.lock)"
            )
