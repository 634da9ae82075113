"""The per-window lifecycle, persisted in DuckDB: every transition is committed the moment it happens."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import duckdb

from pipeline.clock import Clock
from pipeline.db import connect
from pipeline.okx.limits import CREATE_INTERVAL
from pipeline.windows import RebateWindow, WindowKind, plan_windows


class WindowState(StrEnum):
    """Where a window's file is: planned → requesting → requested → ongoing → finished → downloaded → loaded."""

    PLANNED = "planned"
    """Known to be needed; no create spent on it yet."""
    REQUESTING = "requesting"
    """A create was reserved and may have gone out; the outcome is not recorded yet (a crash lands here)."""
    REQUESTED = "requested"
    """OKX accepted the create (or already had the file); not polled since."""
    ONGOING = "ongoing"
    """OKX is generating the file."""
    FINISHED = "finished"
    """OKX has the file; it can be downloaded."""
    DOWNLOADED = "downloaded"
    """The file is archived under raw/ and recorded in rebate_files."""
    LOADED = "loaded"
    """Its rows are in the database."""
    FAILED = "failed"
    """A step failed; it is retried after next_attempt_at."""
    QUARANTINED = "quarantined"
    """The file is broken; it stays archived with the reason, and nothing of it is loaded."""


class CreateOutcome(StrEnum):
    """What became of one create (POST)."""

    RESERVED = "reserved"
    CREATED = "created"
    EXISTED = "existed"
    RATE_LIMITED = "rate_limited"
    FAILED = "failed"


WAITING_FOR_OKX = (WindowState.REQUESTING, WindowState.REQUESTED, WindowState.ONGOING, WindowState.FINISHED)
"""States in which the next step is OKX's or a download's: what `sync --wait` waits for."""


@dataclass(frozen=True)
class WindowRecord:
    """One row of rebate_windows."""

    window_id: str
    broker_type: str
    begin_date: date
    end_date: date
    kind: WindowKind
    state: WindowState
    planned_at: datetime
    requested_at: datetime | None
    server_requested_at: datetime | None
    polled_at: datetime | None
    finished_at: datetime | None
    file_id: str | None
    downloaded_at: datetime | None
    loaded_at: datetime | None
    rows_loaded: int | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    updated_at: datetime

    @property
    def window(self) -> RebateWindow:
        """The date range this row is about."""
        return RebateWindow(self.broker_type, self.begin_date, self.end_date)


_COLUMNS = [field.name for field in fields(WindowRecord)]
_UPDATABLE = frozenset(_COLUMNS) - {"window_id", "broker_type", "begin_date", "end_date", "planned_at"}


def _record(row: Sequence[Any]) -> WindowRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["kind"] = WindowKind(values["kind"])
    values["state"] = WindowState(values["state"])
    return WindowRecord(**values)


class OverlapError(Exception):
    """A new window would share days with one already in the ledger (its rows would be counted twice)."""


class StaleStateError(Exception):
    """A window was not in the state the caller expected: another process moved it first."""


@dataclass(frozen=True)
class FileRecord:
    """One archived download (a row of rebate_files)."""

    file_id: str
    window_id: str
    path: str
    bytes: int
    sha256: str
    format: str


class Ledger:
    """Reads and advances the windows' lifecycle; each call holds the database only for its own statements."""

    def __init__(self, db_path: Path, clock: Clock, *, lock_timeout: float = 300.0) -> None:
        self.db_path = db_path
        self.clock = clock
        self.lock_timeout = lock_timeout

    def _connect(self) -> Any:
        return connect(self.db_path, lock_timeout=self.lock_timeout)

    def windows(self, *, broker_type: str | None = None) -> list[WindowRecord]:
        """Every window (of one broker type, if given), oldest first."""
        query = f"SELECT {', '.join(_COLUMNS)} FROM rebate_windows"  # noqa: S608 - column names are ours
        params: list[Any] = []
        if broker_type is not None:
            query += " WHERE broker_type = ?"
            params.append(broker_type)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY begin_date, broker_type", params).fetchall()
        return [_record(row) for row in rows]

    def get(self, window_id: str) -> WindowRecord:
        """One window by id (KeyError when unknown)."""
        with self._connect() as db:
            row = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM rebate_windows WHERE window_id = ?",  # noqa: S608
                [window_id],
            ).fetchone()
        if row is None:
            raise KeyError(window_id)
        return _record(row)

    def add_windows(self, planned: Iterable[tuple[RebateWindow, WindowKind]]) -> list[WindowRecord]:
        """Insert new planned windows in one transaction, refusing any that overlaps a window already there."""
        planned = list(planned)
        if planned:
            with self._connect() as db, transaction(db):
                self._insert(db, planned)
        return [self.get(window.window_id) for window, _ in planned]

    def plan(self, broker_type: str, begin: date, end: date) -> list[WindowRecord]:
        """Plan windows for every day of [begin, end] not yet covered, reading and inserting in one transaction.

        DuckDB lets one process hold the file at a time, so two processes planning at once cannot both plan the
        same days.
        """
        with self._connect() as db, transaction(db):
            rows = db.execute(
                "SELECT broker_type, begin_date, end_date, kind FROM rebate_windows WHERE broker_type = ?",
                [broker_type],
            ).fetchall()
            existing = [(RebateWindow(*row[:3]), WindowKind(row[3])) for row in rows]
            planned = plan_windows(broker_type, begin, end, existing)
            self._insert(db, planned)
        return [self.get(window.window_id) for window, _ in planned]

    def _insert(self, db: duckdb.DuckDBPyConnection, planned: list[tuple[RebateWindow, WindowKind]]) -> None:
        now = self.clock.now()
        for window, kind in planned:
            clash = db.execute(
                "SELECT window_id FROM rebate_windows WHERE broker_type = ? AND begin_date <= ? AND end_date >= ? "
                "LIMIT 1",
                [window.broker_type, window.end, window.begin],
            ).fetchone()
            if clash is not None:
                raise OverlapError(f"{window.window_id} overlaps {clash[0]}")
            db.execute(
                "INSERT INTO rebate_windows (window_id, broker_type, begin_date, end_date, kind, state, planned_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [window.window_id, window.broker_type, window.begin, window.end, kind.value,
                 WindowState.PLANNED.value, now, now],
            )  # fmt: skip
            _event(db, window.window_id, now, None, WindowState.PLANNED, kind.value)

    def transition(
        self,
        window_id: str,
        to: WindowState,
        *,
        expected: Iterable[WindowState] | None = None,
        detail: str | None = None,
        **changes: Any,
    ) -> WindowRecord:
        """Move a window to `to`, updating the given columns, and record the event; committed before returning.

        With `expected`, the move happens only from one of those states (else `StaleStateError`): the guard for
        a process acting on what it read a moment ago.
        """
        with self._connect() as db, transaction(db):
            transition_in(db, window_id, to, self.clock.now(), expected=expected, detail=detail, **changes)
        return self.get(window_id)

    def create_budget_next_at(self) -> datetime | None:
        """When the account may make its next create, from every create reserved or made; None if never."""
        with self._connect() as db:
            row = db.execute("SELECT max(budget_until) FROM create_attempts").fetchone()
        return row[0] if row else None

    def reserve_create(self, window_id: str) -> int | None:
        """Spend the hour on `window_id` if the budget allows: returns the attempt id, or None when not yet.

        The caller holds the cross-process create lock around reserve → POST → `record_create`, so two
        processes cannot both find the budget free.
        """
        now = self.clock.now()
        with self._connect() as db, transaction(db):
            row = db.execute("SELECT max(budget_until) FROM create_attempts").fetchone()
            next_at = row[0] if row else None
            if next_at is not None and next_at > now:
                return None
            attempt = db.execute(
                "INSERT INTO create_attempts (window_id, attempted_at, outcome, budget_until) "
                "VALUES (?, ?, ?, ?) RETURNING attempt_id",
                [window_id, now, CreateOutcome.RESERVED.value, now + CREATE_INTERVAL],
            ).fetchone()
            current = db.execute("SELECT state FROM rebate_windows WHERE window_id = ?", [window_id]).fetchone()
            db.execute(
                "UPDATE rebate_windows SET state = ?, updated_at = ? WHERE window_id = ?",
                [WindowState.REQUESTING.value, now, window_id],
            )
            _event(db, window_id, now, current[0] if current else None, WindowState.REQUESTING, "create reserved")
        assert attempt is not None
        return int(attempt[0])

    def record_create(
        self,
        attempt_id: int,
        outcome: CreateOutcome,
        *,
        server_ts: datetime | None = None,
        budget_until: datetime | None = None,
        detail: str | None = None,
    ) -> None:
        """Write what became of a reserved create (the budget stays spent unless `budget_until` moves it)."""
        with self._connect() as db:
            db.execute(
                "UPDATE create_attempts SET outcome = ?, server_ts = ?, detail = ?, "
                "budget_until = coalesce(?, budget_until) WHERE attempt_id = ?",
                [outcome.value, server_ts, detail, budget_until, attempt_id],
            )

    def create_attempts(self) -> list[tuple[str, datetime, CreateOutcome, datetime]]:
        """(window id, attempted at, outcome, budget until) for every create, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT window_id, attempted_at, outcome, budget_until FROM create_attempts ORDER BY attempt_id"
            ).fetchall()
        return [(row[0], row[1], CreateOutcome(row[2]), row[3]) for row in rows]

    def record_file(self, record: FileRecord, source_host: str) -> None:
        """Add an archived file, or count one more download of the same bytes."""
        now = self.clock.now()
        with self._connect() as db:
            db.execute(
                "INSERT INTO rebate_files (file_id, window_id, path, bytes, sha256, format, source_host, "
                "first_downloaded_at, last_downloaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (file_id) DO UPDATE SET last_downloaded_at = excluded.last_downloaded_at, "
                "downloads = rebate_files.downloads + 1",
                [record.file_id, record.window_id, record.path, record.bytes, record.sha256, record.format,
                 source_host, now, now],
            )  # fmt: skip

    def files(self, window_id: str | None = None) -> list[FileRecord]:
        """Archived files (of one window, if given), oldest first."""
        query = "SELECT file_id, window_id, path, bytes, sha256, format FROM rebate_files"
        params: list[Any] = []
        if window_id is not None:
            query += " WHERE window_id = ?"
            params.append(window_id)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY first_downloaded_at, file_id", params).fetchall()
        return [FileRecord(*row) for row in rows]


def transition_in(
    db: duckdb.DuckDBPyConnection,
    window_id: str,
    to: WindowState,
    now: datetime,
    *,
    expected: Iterable[WindowState] | None = None,
    detail: str | None = None,
    **changes: Any,
) -> None:
    """`Ledger.transition` inside the caller's transaction, so a load and its `loaded` state commit together."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"not ledger columns: {sorted(unknown)}")
    allowed = None if expected is None else {state.value for state in expected}
    assignments = {**changes, "state": to.value, "updated_at": now}
    current = db.execute("SELECT state FROM rebate_windows WHERE window_id = ?", [window_id]).fetchone()
    if current is None:
        raise KeyError(window_id)
    if allowed is not None and current[0] not in allowed:
        raise StaleStateError(f"{window_id} is {current[0]}, not {' or '.join(sorted(allowed))}")
    db.execute(
        f"UPDATE rebate_windows SET {', '.join(f'{column} = ?' for column in assignments)} "  # noqa: S608
        "WHERE window_id = ?",
        [*(_db_value(value) for value in assignments.values()), window_id],
    )
    _event(db, window_id, now, current[0], to, detail)


@contextmanager
def transaction(db: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN … COMMIT, or ROLLBACK on any exception (then re-raised)."""
    db.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _db_value(value: Any) -> Any:
    return value.value if isinstance(value, StrEnum) else value


def _event(
    db: duckdb.DuckDBPyConnection,
    window_id: str,
    at: datetime,
    from_state: str | None,
    to: WindowState,
    detail: str | None,
) -> None:
    db.execute(
        "INSERT INTO window_events (window_id, event_at, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?)",
        [window_id, at, from_state, to.value, detail],
    )
