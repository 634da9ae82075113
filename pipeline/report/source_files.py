"""Re-read the archived OKX files a report's figures come from: their rows and amounts per broker code and day."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, tzinfo
from decimal import Decimal
from pathlib import Path

import polars as pl

from pipeline.columns import AMOUNT_COLUMNS
from pipeline.report.model import EXACT
from pipeline.store.parse import RebateFile, RejectedFile


@dataclass(frozen=True)
class SourceFiles:
    """Where the archive is and how its files are read: the data directory, the timezone of days, the zip limit."""

    root: Path
    """REBATES_DATA_DIR: `rebate_files.path` is relative to it."""
    tz: tzinfo
    max_unzipped_bytes: int


@dataclass
class Figures:
    """Rows and the eight amount sums of some rows of a file (or of the database), added up exactly."""

    rows: int = 0
    amounts: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(AMOUNT_COLUMNS, Decimal(0)))

    def add(self, other: Figures) -> None:
        """Add `other`'s rows and amounts to these."""
        self.rows += other.rows
        for name in AMOUNT_COLUMNS:
            self.amounts[name] = EXACT.add(self.amounts[name], other.amounts[name])

    def differences(self, other: Figures) -> list[str]:
        """What differs from `other`: `rows` and each amount column's name, in the file's order."""
        found = [] if self.rows == other.rows else ["rows"]
        return found + [name for name in AMOUNT_COLUMNS if self.amounts[name] != other.amounts[name]]


CodeDay = tuple[str, date]
"""(broker code, day): the grain the reconciliation compares at."""


class UnreadableSource(Exception):
    """An archived file could not be read again (gone, or no longer a rebate file): its figures cannot be checked."""


def file_figures(path: Path, sources: SourceFiles, start: date, end: date) -> dict[CodeDay, Figures]:
    """The rows and amounts of the archived file at `path` (relative to the data directory) per broker code and day,
    for the days `start`..`end` only, read exactly as the loader reads them (`pipeline.store.parse`).

    Raises `UnreadableSource` saying why when the file is gone or no longer reads as a rebate file.
    """
    full = sources.root / path
    if not full.is_file():
        raise UnreadableSource(f"{path} is not in the archive any more")
    source = RebateFile(full, tz=sources.tz, max_unzipped_bytes=sources.max_unzipped_bytes)
    found: dict[CodeDay, Figures] = {}
    try:
        for part in source.parts():
            for frame in source.batches(part):
                days = frame.filter(pl.col("trade_date").is_between(start, end))
                grouped = days.group_by("broker_code", "trade_date").agg(
                    pl.len().alias("rows"), *(pl.col(name).sum() for name in AMOUNT_COLUMNS)
                )
                for record in grouped.iter_rows(named=True):
                    sums = Figures(int(record["rows"]), {name: Decimal(record[name]) for name in AMOUNT_COLUMNS})
                    found.setdefault((record["broker_code"], record["trade_date"]), Figures()).add(sums)
    except (RejectedFile, pl.exceptions.ComputeError) as exc:
        raise UnreadableSource(f"{path} no longer reads as a rebate file: {exc}") from None
    return found
