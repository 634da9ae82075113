"""Set a report's figures against the archived OKX files they come from, re-read: per window, or per day of a code."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

from pipeline.columns import AMOUNT_COLUMNS
from pipeline.report.model import Period, exact_text
from pipeline.report.source_files import CodeDay, Figures, UnreadableSource
from pipeline.report.tables import AMOUNT_LABELS

FileReader = Callable[[str], dict[CodeDay, Figures]]
"""Reads an archived file (path relative to the data directory) into its period's figures per code and day."""


def describe(differences: Sequence[str], ours: Figures, theirs: Figures, our_side: str, their_side: str) -> str:
    """`broker rebate 1.5 in the file, 1.6 in the database; rows ...`: each difference with both values."""
    parts = []
    for name in differences:
        if name == "rows":
            parts.append(f"rows {ours.rows:,} {our_side}, {theirs.rows:,} {their_side}")
        else:
            label = AMOUNT_LABELS[name].lower()
            parts.append(
                f"{label} {exact_text(ours.amounts[name])} {our_side}, {exact_text(theirs.amounts[name])} {their_side}"
            )
    return "; ".join(parts)


@dataclass(frozen=True)
class WindowCheck:
    """One loaded window's file against the database, for the period's days (and one broker code, if given)."""

    window_id: str
    begin: date
    end: date
    file_name: str
    sha256: str
    in_file: Figures
    in_db: Figures
    mismatched: tuple[CodeDay, ...]
    """(broker code, day) pairs whose rows or amounts differ, even where the period's sums agree."""
    unchanged: bool
    """The database still holds, for the whole window, exactly the rows and totals loaded from this file."""
    unreadable: str | None = None
    """Why the archived file could not be read again (then nothing of it is checked)."""

    @property
    def matches(self) -> bool:
        """The file was read again and every (code, day) of the period equals the database."""
        return self.unreadable is None and not self.mismatched

    def differences(self) -> str | None:
        """What differs, in words; None when everything matches."""
        if self.unreadable is not None:
            return f"the file could not be read again: {self.unreadable}"
        found = self.in_file.differences(self.in_db)
        if found:
            return describe(found, self.in_file, self.in_db, "in the file", "in the database")
        if self.mismatched:
            pairs = ", ".join(f"{code} on {day}" for code, day in self.mismatched[:5])
            return f"equal in total, not per broker code and day: {pairs}"
        return None


@dataclass(frozen=True)
class DayCheck:
    """One day of a broker code's statement against the loaded files' rows of that code on that day."""

    day: date
    files: tuple[str, ...]
    """The archived files holding the day for the code's broker type (names only)."""
    in_files: Figures
    in_statement: Figures
    unreadable: tuple[str, ...] = ()

    @property
    def matches(self) -> bool:
        """Every file was read again and the code's rows and amounts that day equal the statement's."""
        return not self.unreadable and not self.in_files.differences(self.in_statement)

    def differences(self) -> str | None:
        """What differs, in words; None when everything matches."""
        if self.unreadable:
            return "a file could not be read again: " + "; ".join(self.unreadable)
        found = self.in_files.differences(self.in_statement)
        return describe(found, self.in_files, self.in_statement, "in the files", "in the statement") or None


@dataclass
class Reconciler:
    """The loaded windows of a period, what the database holds per window, code and day, and the files re-read."""

    period: Period
    windows: Sequence[Mapping[str, Any]]
    """reconciliation.sql's records: each loaded window sharing a day with the period."""
    held: Sequence[Mapping[str, Any]]
    """window_code_days.sql's records: the database's rows and sums per window, broker code and day."""
    read: FileReader
    _files: dict[str, dict[CodeDay, Figures] | str] = field(default_factory=dict)
    _by_window: dict[str, dict[CodeDay, Figures]] = field(default_factory=dict)

    def _file(self, path: str) -> dict[CodeDay, Figures] | str:
        """The file's figures, read once; the reason as text when it cannot be read."""
        if path not in self._files:
            try:
                self._files[path] = self.read(path)
            except UnreadableSource as exc:
                self._files[path] = str(exc)
        return self._files[path]

    def _held(self, window_id: str, broker_code: str | None) -> dict[CodeDay, Figures]:
        """What the database holds of the window per (code, day) of the period (of one code, if given)."""
        if not self._by_window:
            for record in self.held:
                figures = Figures(int(record["rows"]), {name: record[name] for name in AMOUNT_COLUMNS})
                key = (record["broker_code"], record["trade_date"])
                self._by_window.setdefault(record["window_id"], {}).setdefault(key, Figures()).add(figures)
        return _of_code(self._by_window.get(window_id, {}), broker_code)

    def window_checks(self, broker_code: str | None = None) -> list[WindowCheck]:
        """Each window's period part (of one broker code, if given): its file re-read against the database."""
        checks = []
        for window in self.windows:
            held = self._held(window["window_id"], broker_code)
            read = self._file(window["path"])
            unreadable = read if isinstance(read, str) else None
            in_file_days = {} if isinstance(read, str) else _of_code(read, broker_code)
            keys = sorted(set(held) | set(in_file_days))
            mismatched = tuple(
                key for key in keys if in_file_days.get(key, Figures()).differences(held.get(key, Figures()))
            )
            checks.append(
                WindowCheck(
                    window_id=window["window_id"],
                    begin=max(window["begin_date"], self.period.start),
                    end=min(window["end_date"], self.period.end),
                    file_name=PurePosixPath(window["path"]).name,
                    sha256=window["sha256"],
                    in_file=_sum(in_file_days.values()),
                    in_db=_sum(held.values()),
                    mismatched=() if unreadable else mismatched,
                    unchanged=_unchanged(window),
                    unreadable=unreadable,
                )
            )
        return checks

    def day_checks(self, broker_code: str, broker_types: Iterable[str], accounts: Iterable[str]) -> list[DayCheck]:
        """Every day of the period for one broker code: the loaded files' rows of that code against the statement's.

        Only the windows of the code's broker types and accounts are read; each file once for every code.
        """
        types, owners = set(broker_types), set(accounts)
        mine = [window for window in self.windows if window["broker_type"] in types and window["account"] in owners]
        checks = []
        for day in self.period.day_list():
            covering = [window for window in mine if window["begin_date"] <= day <= window["end_date"]]
            in_files, in_statement, unreadable = Figures(), Figures(), []
            for window in covering:
                read = self._file(window["path"])
                if isinstance(read, str):
                    unreadable.append(read)
                elif (broker_code, day) in read:
                    in_files.add(read[(broker_code, day)])
                held = self._held(window["window_id"], broker_code).get((broker_code, day))
                if held is not None:
                    in_statement.add(held)
            names = tuple(PurePosixPath(window["path"]).name for window in covering)
            checks.append(DayCheck(day, names, in_files, in_statement, tuple(unreadable)))
        return checks


def _of_code(figures: Mapping[CodeDay, Figures], broker_code: str | None) -> dict[CodeDay, Figures]:
    return {key: value for key, value in figures.items() if broker_code in (None, key[0])}


def _sum(parts: Iterable[Figures]) -> Figures:
    total = Figures()
    for part in parts:
        total.add(part)
    return total


def _unchanged(window: Mapping[str, Any]) -> bool:
    """The window's rows and totals now, whole, against what its file held when it was loaded (rebate_loads)."""
    as_loaded = {name: Decimal(text) for name, text in json.loads(window["file_totals"]).items()}
    same_rows = window["rows_in_file"] == window["rows_in_db"]
    return same_rows and all(as_loaded.get(name) == window[name] for name in AMOUNT_COLUMNS)
