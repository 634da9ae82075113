"""Tests for pipeline/store/csv_ranges.py: row ranges that together read every row once, numbered as in the file."""

from __future__ import annotations

import itertools
import mmap
from pathlib import Path

import duckdb
import pytest

import pipeline.store.csv_ranges
from pipeline.sqlfiles import sql_text
from pipeline.store.csv_ranges import SKIP_COST, WHOLE, RowRange, _balanced, has_blank_line, mapped_windows, row_ranges

NAMES = ["id", "amount"]


def write_csv(path: Path, rows: int, *, line_end: str = "\n", quoted_row: int | None = None) -> list[tuple[int, str]]:
    """A two-column CSV of `rows` rows; returns (row number, id) as the file holds them."""
    lines = ["id,amount"]
    expected = []
    for number in range(1, rows + 1):
        ident = f"{number:07d}{'x' * (number % 13)}"  # lines of different lengths
        amount = f'"{number}.5"' if number == quoted_row else f"{number}.25"
        lines.append(f"{ident},{amount}")
        expected.append((number, ident))
    path.write_text(line_end.join(lines) + line_end)
    return expected


def read_ranges(path: Path, ranges: tuple[RowRange, ...], first_row: int = 1) -> list[tuple[int, str]]:
    """Every range read by DuckDB through load/csv_range.sql, joined as load/insert_csv.sql joins them."""
    branch = sql_text("load/csv_range.sql")
    union = "\nUNION ALL\n".join(
        branch.replace("{skip}", str(part.skip)).replace("{limit}", "" if part.rows is None else f"LIMIT {part.rows}")
        for part in ranges
    )
    with duckdb.connect() as db:
        db.execute("SET threads = 2")
        db.execute("SET preserve_insertion_order = false")
        rows = db.execute(
            f"SELECT source_row, id FROM ({union}) ORDER BY source_row",
            {"path": str(path), "names": NAMES, "first_row": first_row},
        ).fetchall()
    return [(int(number), str(ident)) for number, ident in rows]


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranges of a few rows, so that a small file is cut as a large one would be."""
    monkeypatch.setattr(pipeline.store.csv_ranges, "MIN_RANGE_ROWS", 50)


def test_one_thread_or_a_small_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    write_csv(path, 1_000)
    assert row_ranges(path, threads=1) == WHOLE
    assert row_ranges(path, threads=2) == WHOLE, "a thousand rows are not worth a second thread"
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert row_ranges(empty, threads=2) == WHOLE


@pytest.mark.usefixtures("small_ranges")
@pytest.mark.parametrize("threads", [2, 3, 4])
@pytest.mark.parametrize("line_end", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_the_ranges_read_every_row_once_with_its_number_in_the_file(
    tmp_path: Path, threads: int, line_end: str
) -> None:
    path = tmp_path / "rows.csv"
    expected = write_csv(path, 1_000, line_end=line_end)
    ranges = row_ranges(path, threads=threads)
    assert len(ranges) == threads
    assert ranges[0].skip == 0 and ranges[-1].rows is None
    for before, after in itertools.pairwise(ranges):
        assert before.rows is not None and after.skip == before.skip + before.rows, "back to back"
    assert read_ranges(path, ranges) == expected


@pytest.mark.usefixtures("small_ranges")
def test_a_part_after_others_is_numbered_from_its_first_row_in_the_file(tmp_path: Path) -> None:
    """A zip's second member: its rows continue the numbers of the first's."""
    path = tmp_path / "second.csv"
    expected = write_csv(path, 400)
    assert read_ranges(path, row_ranges(path, threads=2), first_row=1_001) == [
        (number + 1_000, ident) for number, ident in expected
    ]


def test_the_last_range_reads_to_the_end_when_the_estimate_is_low(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    expected = write_csv(path, 1_000)
    assert read_ranges(path, (RowRange(0, 10), RowRange(10, None))) == expected


def test_a_range_past_the_end_is_refused_not_read_as_nothing(tmp_path: Path) -> None:
    """An estimate far too high: DuckDB refuses the statement, and the load reads the file exactly (test_load)."""
    path = tmp_path / "rows.csv"
    write_csv(path, 1_000)
    with pytest.raises(duckdb.InvalidInputException):
        read_ranges(path, (RowRange(0, 900), RowRange(900, 300), RowRange(1_200, None)))


@pytest.mark.usefixtures("small_ranges")
def test_a_file_with_any_quote_is_read_whole(tmp_path: Path) -> None:
    """A quoted field may hold a line break, and then lines are no longer rows: `skip` would land mid-row."""
    path = tmp_path / "quoted.csv"
    write_csv(path, 1_000, quoted_row=999)
    assert row_ranges(path, threads=2) == WHOLE


def test_a_row_that_starts_with_a_hash_is_a_row_not_a_comment(tmp_path: Path) -> None:
    """Left to guess, DuckDB's reader can take such a line for a comment and drop it without a word."""
    path = tmp_path / "hash.csv"
    path.write_text("id,amount\n1,2.5\n#2,3.5\n3,4.5\n")
    assert read_ranges(path, WHOLE) == [(1, "1"), (2, "#2"), (3, "3")]


def test_balanced_ranges_cost_their_threads_the_same_with_the_skip_counted() -> None:
    ranges = _balanced(1_000_000, 4)
    sizes = [part.rows or 0 for part in ranges[:-1]]
    assert all(sizes)
    last = 1_000_000 - ranges[-1].skip
    costs = [part.skip * SKIP_COST + (part.rows if part.rows is not None else last) for part in ranges]
    assert max(costs) - min(costs) <= 4, costs
    assert sizes == sorted(sizes, reverse=True), "a later range skips more, so it loads fewer rows"


@pytest.mark.parametrize("window", [mmap.ALLOCATIONGRANULARITY, 3 * mmap.ALLOCATIONGRANULARITY + 5])
def test_a_file_is_mapped_a_window_at_a_time_and_every_byte_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    """Bounded RSS for a scan of any file size; a pattern cut by a window's end is still found whole."""
    monkeypatch.setattr(pipeline.store.csv_ranges, "MAPPED_WINDOW", window)
    path = tmp_path / "rows.csv"
    text = b"".join(b"%07d,1.25\n" % number for number in range(5_000))
    path.write_bytes(text)
    windows = [bytes(part) for part in mapped_windows(path)]
    assert len(windows) > 3 and all(len(part) <= window + mmap.ALLOCATIONGRANULARITY for part in windows)
    if window % mmap.ALLOCATIONGRANULARITY == 0:
        assert b"".join(windows) == text, "back to back without overlap"
    else:  # a window starts at a page: it may repeat the end of the one before, and skips nothing
        assert windows[0] == text[: len(windows[0])] and text.endswith(windows[-1])
        assert all(part in text for part in windows)
    assert not has_blank_line(path)
    for cut in (w * window for w in range(1, 4)):  # a CRLF blank line across each of the first window ends
        for offset in (-2, -1, 0):
            edited = text[: cut + offset] + b"\n\r\n" + text[cut + offset :]
            path.write_bytes(edited)
            assert has_blank_line(path), (cut, offset)
