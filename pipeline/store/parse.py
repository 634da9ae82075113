"""Read a downloaded OKX rebate file (CSV, zip of CSVs, xlsx or xls) exactly, part by part, in bounded batches."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, tzinfo
from decimal import Decimal
from pathlib import Path

import polars as pl

from pipeline.columns import AMOUNT_COLUMNS
from pipeline.fileformat import FileFormat, detect_format
from pipeline.store.containers import csv_part, describe_unknown, text_batches, zip_parts
from pipeline.store.headers import EXTRA, NAMELESS, FilePart
from pipeline.store.rejection import NotARebateFile, RejectedFile
from pipeline.store.rows import FRAME_SCHEMA, add_totals, amount_totals, typed_batch
from pipeline.store.sheets import workbook_parts, xlsx_parts

__all__ = [
    "FRAME_SCHEMA",
    "FilePart",
    "NotARebateFile",
    "ParsedFile",
    "PartSummary",
    "RebateFile",
    "RejectedFile",
    "parse_rebate_file",
]


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
    """What the first part's header dropped or kept in `extra` (`parts`)."""
    parts: list[PartSummary] = field(default_factory=list)
    """Each part this reader typed (`RebateFile.batches`), in order; not the parts DuckDB read itself."""
    skipped: list[str] = field(default_factory=list)
    """Zip members skipped as packaging junk (see `containers.zip_parts`), each with why; nothing else is skipped."""

    def all_warnings(self) -> tuple[str, ...]:
        """The warnings in the order a reader meets them: skipped rows, then the columns (`warnings`)."""
        blank = [f"skipped {self.blank_rows} blank row{'s' if self.blank_rows > 1 else ''}"] if self.blank_rows else []
        return (*blank, *self.warnings)


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
                self.summary.extra_columns = tuple(h for n, h in part.names.items() if n.startswith(EXTRA))
                for name in part.names:
                    if name.startswith(NAMELESS):
                        self.summary.warnings.append(
                            f"dropped column {name.removeprefix(NAMELESS)}, which has no header and no values"
                        )
                    elif name.startswith(EXTRA):
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
        for text in text_batches(part):
            first = self.summary.rows + self.summary.blank_rows + 1
            frame, blank = typed_batch(text, part, first, start, self.tz, self.window)
            self.summary.blank_rows += blank
            self.summary.rows += frame.height
            own.rows += frame.height
            totals = amount_totals(frame)
            add_totals(self.summary.totals, totals)
            add_totals(own.totals, totals)
            yield frame

    def count_rows(self, rows: int) -> None:
        """Count `rows` rows of a part DuckDB read itself (the fast path in load.py), to number the next part's."""
        self.summary.rows += rows

    def _read_parts(self) -> Iterator[FilePart]:
        file_format = self.format
        if file_format is FileFormat.CSV:
            with tempfile.TemporaryDirectory(prefix="okx-rebates-text-") as workdir:
                yield csv_part(self.path, label="", many=False, workdir=Path(workdir))
        elif file_format is FileFormat.ZIP:
            yield from zip_parts(self.path, self.max_unzipped_bytes, self.summary.skipped)
        elif file_format is FileFormat.XLSX:
            yield from xlsx_parts(self.path, self.max_unzipped_bytes)
        elif file_format is FileFormat.XLS:
            yield from workbook_parts(self.path, file_format, None)
        else:
            raise NotARebateFile(describe_unknown(self.path))


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
