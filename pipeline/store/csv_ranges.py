"""Cut a CSV's data rows into ranges DuckDB reads side by side, each numbered from its first row: a load on every core.

The load numbers each row of the file (`source_row`, its lineage) with `row_number() OVER ()`, a streaming window
that keeps DuckDB's read of the file on one thread. Read in ranges (`read_csv(..., skip = n)` then `LIMIT`), each
range numbered from its own first row, the ranges run at once on as many threads, and the numbers are still the
file's: `skip` counts lines and `LIMIT` rows, which are the same thing in a file without quotes or blank lines. A
file with any quote character is read whole, as one range: a quoted field may hold a line break.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MIN_RANGE_ROWS = 250_000
"""Rows below which a range is not worth its own thread: a small file is read in one go."""
SKIP_COST = 0.1
"""Skipping a line costs DuckDB about a tenth of loading a row (measured on the 10M-row file: 0.56 s a million lines
skipped, on one thread, against about 5 s a million rows loaded), so a later range gets fewer rows to end together."""
MAPPED_WINDOW = 64 << 20
"""Bytes of a file a scan maps at once (`mapped_windows`)."""
SAMPLE_BYTES = 1 << 20
"""How much of the file's head, middle and tail gives its typical line length."""
_BLANK_LINE = re.compile(rb"\n\r?\n")
"""An empty line, LF or CRLF."""


@dataclass(frozen=True)
class RowRange:
    """Data rows `skip + 1` to `skip + rows` of a CSV (to its end when `rows` is None), counted from 1."""

    skip: int
    rows: int | None


WHOLE = (RowRange(0, None),)
"""The file read in one range."""


def row_ranges(path: Path, threads: int) -> tuple[RowRange, ...]:
    """The ranges to read `path` in: one per thread for a large file without quotes, else the whole file.

    The row counts come from an estimate of the file's lines (its size over the longest average line length of its
    head, middle and tail), so the ranges are only roughly even; the last one reads to the end, so together they hold
    every row when the estimate is low. One too high (a file whose lines are much longer elsewhere) makes a range
    start past the end, which DuckDB refuses: the load then reads the file exactly instead.
    """
    if threads < 2:
        return WHOLE
    size = path.stat().st_size
    if size == 0:
        return WHOLE
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as text:
        middle = max(0, size // 2 - SAMPLE_BYTES // 2)
        samples = (text[:SAMPLE_BYTES], text[middle : middle + SAMPLE_BYTES], text[-SAMPLE_BYTES:])
    estimated = int(size / max(_mean_line_length(sample) for sample in samples)) - 1  # the header
    count = min(threads, estimated // MIN_RANGE_ROWS)
    if count < 2 or any(window.find(b'"') != -1 for window in mapped_windows(path)):
        return WHOLE
    return _balanced(estimated, count)


def has_blank_line(path: Path) -> bool:
    """Whether a CSV holds an empty line (DuckDB's reader skips those, which would renumber the rows after it).

    One regular-expression pass over a memory map of the file, a window at a time (`mapped_windows`: bounded RSS; the
    windows overlap by two bytes, so a `\n\r\n` cut by a window's end is seen whole): no copy of it, and half the CPU
    of searching for each line end in turn.
    """
    if path.stat().st_size == 0:
        return False
    return any(_BLANK_LINE.search(window) is not None for window in mapped_windows(path, overlap=2))


def mapped_windows(path: Path, *, overlap: int = 0) -> Iterator[mmap.mmap]:
    """The file mapped `MAPPED_WINDOW` bytes at a time, each window starting `overlap` bytes before the last one ended.

    A scan of a whole-file map keeps every page it touched resident in the process (8 GB of RSS for an 8 GB file);
    a window unmapped after its scan leaves them to the page cache, so the process stays bounded by the window.
    """
    size = path.stat().st_size
    start = 0
    with path.open("rb") as handle:
        while start < size:
            aligned = start - start % mmap.ALLOCATIONGRANULARITY
            length = min(size - aligned, MAPPED_WINDOW + start - aligned)
            with mmap.mmap(handle.fileno(), length, offset=aligned, access=mmap.ACCESS_READ) as window:
                yield window
            if aligned + length >= size:
                return
            start = aligned + length - overlap


def _mean_line_length(sample: bytes) -> float:
    lines = sample.count(b"\n")
    return len(sample) / lines if lines else float(len(sample) or 1)


def _balanced(rows: int, count: int) -> tuple[RowRange, ...]:
    """`count` ranges over about `rows` rows that take their threads equally long, the skip counted.

    Range i loads r_i rows after skipping the S_(i-1) rows before it: equal cost means r_i = r_0 - SKIP_COST * S_(i-1),
    so S_i = (1 - SKIP_COST) * S_(i-1) + r_0 and r_0 = rows * SKIP_COST / (1 - (1 - SKIP_COST) ** count).
    """
    first = rows * SKIP_COST / (1 - (1 - SKIP_COST) ** count)
    ranges: list[RowRange] = []
    skipped = 0
    for _ in range(count - 1):
        take = max(1, round(first - SKIP_COST * skipped))
        ranges.append(RowRange(skipped, take))
        skipped += take
    ranges.append(RowRange(skipped, None))
    return tuple(ranges)
