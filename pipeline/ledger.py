"""The per-window lifecycle, persisted in DuckDB or PostgreSQL: every transition is committed the moment it happens."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

import duckdb

from pipeline.clock import Clock
from pipeline.config import DEFAULT_ACCOUNT, DEFAULT_LOCK_TIMEOUT, Settings
from pipeline.db import connect, transaction
from pipeline.domain import CREATE_INTERVAL, GENERATION_TIME, OVERDUE_AFTER
from pipeline.pg import HeldConnection, lock_in_transaction
from pipeline.sqlfiles import Dialect, ledger_statement
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

DONE_STATES = frozenset({WindowState.LOADED, WindowState.QUARANTINED})
"""Nothing more happens to a window in these states by itself (a quarantined file needs a person)."""

RETRYABLE = (WindowState.FAILED, WindowState.QUARANTINED)
"""States `rebates retry` sends back to be downloaded and loaded again."""

OVERDUE_HOURS = OVERDUE_AFTER // timedelta(hours=1)

RECREATABLE = (WindowState.REQUESTED, WindowState.ONGOING)
"""States `rebates retry` plans again for a new create once OKX is OVERDUE_AFTER late with the file."""

OPEN_TO_OKX = (WindowState.PLANNED, *WAITING_FOR_OKX, WindowState.FAILED)
"""States from which what OKX says of a window's file may move it (a failed one only before it has a file)."""

_S = WindowState
TRANSITIONS: Mapping[WindowState | None, frozenset[WindowState]] = {
    None: frozenset({_S.PLANNED}),
    _S.PLANNED: frozenset({_S.REQUESTING, _S.ONGOING, _S.FINISHED, _S.QUARANTINED, _S.DOWNLOADED}),
    _S.REQUESTING: frozenset({_S.PLANNED, _S.REQUESTED, _S.ONGOING, _S.FINISHED, _S.QUARANTINED, _S.DOWNLOADED}),
    _S.REQUESTED: frozenset({_S.REQUESTED, _S.ONGOING, _S.FINISHED, _S.PLANNED, _S.QUARANTINED, _S.DOWNLOADED}),
    _S.ONGOING: frozenset({_S.ONGOING, _S.FINISHED, _S.PLANNED, _S.QUARANTINED, _S.DOWNLOADED}),
    _S.FINISHED: frozenset({_S.FINISHED, _S.FAILED, _S.QUARANTINED, _S.DOWNLOADED}),
    _S.DOWNLOADED: frozenset({_S.DOWNLOADED, _S.LOADED, _S.FAILED, _S.QUARANTINED}),
    _S.LOADED: frozenset({_S.LOADED, _S.DOWNLOADED}),
    _S.FAILED: frozenset({_S.FAILED, _S.PLANNED, _S.ONGOING, _S.FINISHED, _S.QUARANTINED, _S.DOWNLOADED, _S.LOADED}),
    _S.QUARANTINED: frozenset({_S.FAILED, _S.PLANNED, _S.QUARANTINED, _S.DOWNLOADED}),
}
"""Every move a window may make, from -> to; `_transition`, the one place that writes a state, enforces it.

The lifecycle runs planned -> requesting -> requested -> ongoing -> finished -> downloaded -> loaded; a state may
repeat (a poll, a fresh link, the same file loaded again). The ways back are few and named: a create that did not go
through, or a file OKX never listed, plans the window again (-> planned); a failed or quarantined window is retried
(-> failed or planned); a file loaded by hand replaces what a window held (-> downloaded, from any
state). Nothing moves a window from finished or later back to waiting for OKX."""

REFETCH_LIMIT = 6
"""Downloads in a row that were not a rebate file at all before the window is quarantined for a person to look."""

CREATE_BACKOFF_MAX = timedelta(hours=24)
"""The longest a window OKX keeps refusing waits before its create is tried again."""

RETRY_BACKOFF_FIRST = timedelta(minutes=5)
RETRY_BACKOFF_MAX = timedelta(hours=6)


def retry_delay(attempts: int) -> timedelta:
    """How long to wait before trying a failed step again: 5 min, 10, 20 … up to 6 h."""
    backoff: timedelta = RETRY_BACKOFF_FIRST * 2 ** max(attempts - 1, 0)
    return min(backoff, RETRY_BACKOFF_MAX)


def create_backoff(losses: int) -> timedelta:
    """How long a window waits for its next create after its `losses`-th lost or refused one: 2 h, 4, 8 … up to 24."""
    backoff: timedelta = CREATE_INTERVAL * 2**losses
    return min(backoff, CREATE_BACKOFF_MAX)


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
    account: str = DEFAULT_ACCOUNT

    @property
    def window(self) -> RebateWindow:
        """The date range this row is about."""
        return RebateWindow(self.broker_type, self.begin_date, self.end_date, self.account)

    @property
    def is_done(self) -> bool:
        """Loaded, or quarantined: nothing more happens to it by itself."""
        return self.state in DONE_STATES

    def create_due(self, now: datetime) -> bool:
        """Planned, and not backing off after OKX refused its create."""
        return self.state is WindowState.PLANNED and (self.next_attempt_at is None or self.next_attempt_at <= now)

    def backing_off(self, now: datetime) -> bool:
        """A failed step whose retry time has not come yet."""
        return self.state is WindowState.FAILED and self.next_attempt_at is not None and self.next_attempt_at > now

    @property
    def waiting_for_okx(self) -> bool:
        """Requested (by anyone) and its file not archived yet: what `sync --wait` waits for."""
        return self.state in WAITING_FOR_OKX or (
            self.state is WindowState.FAILED and self.file_id is None and self.requested_at is not None
        )

    def due_for_load(self, now: datetime) -> bool:
        """Archived and not loaded: downloaded, or a failed load whose retry time has come."""
        if self.state is WindowState.DOWNLOADED:
            return True
        return self.state is WindowState.FAILED and self.file_id is not None and not self.backing_off(now)

    def open_to_okx(self, now: datetime) -> bool:
        """Whether what OKX says of its file may move it: not done, not archived, not backing off."""
        if self.state not in OPEN_TO_OKX:
            return False
        return not (self.state is WindowState.FAILED and (self.file_id is not None or self.backing_off(now)))

    def poll_due(self, now: datetime, interval: timedelta) -> bool:
        """Whether a GET about this waiting window is worth its budget now.

        Not while a create is in flight or a failure backs off; a finished file always (its link is needed);
        otherwise once `interval` has passed since OKX last told us anything (or since the create).
        """
        if self.state is WindowState.REQUESTING or self.backing_off(now):
            return False
        last_heard = max(filter(None, (self.polled_at, self.requested_at)), default=None)
        return self.state is WindowState.FINISHED or last_heard is None or now - last_heard >= interval

    def next_poll_at(self, now: datetime, interval: timedelta) -> datetime:
        """When this waiting window is next due a poll: its retry time, OKX's generation time, or `interval` on."""
        if self.state is WindowState.FAILED and self.next_attempt_at:
            return self.next_attempt_at
        if self.state is WindowState.REQUESTED and self.requested_at and self.polled_at is None:
            return min(self.requested_at + GENERATION_TIME, now + interval)
        return (self.polled_at or now) + interval

    def retryable(self, now: datetime) -> bool:
        """Whether `rebates retry` may send it back: failed, quarantined, or OKX OVERDUE_AFTER late with its file."""
        return self.state in RETRYABLE or (self.state in RECREATABLE and self.overdue(now))

    @property
    def asked_at(self) -> datetime:
        """When OKX was asked for this window's file: its create, or its planning when none is recorded."""
        return self.requested_at or self.planned_at

    def retry_refusal(self) -> str:
        """Why `rebates retry` leaves this window alone, and when it would not."""
        if self.state in RECREATABLE:
            since = self.asked_at
            return (
                f"OKX was asked for its file at {since:%Y-%m-%d %H:%M} UTC and may take {OVERDUE_HOURS} hours: "
                f"retry it after {since + OVERDUE_AFTER:%Y-%m-%d %H:%M} UTC if it is still not there"
            )
        return (
            "only failed or quarantined windows, and windows whose file OKX has not finished "
            f"{OVERDUE_HOURS} hours after the create, are retried"
        )

    def overdue(self, now: datetime) -> bool:
        """Requested more than OKX's 3 hours ago and still not finished (OKX says to contact support)."""
        return self.state is not WindowState.FINISHED and now - self.asked_at > OVERDUE_AFTER


WINDOW_COLUMNS = tuple(field.name for field in fields(WindowRecord))
"""rebate_windows' columns in their order, named once (sql/ledger/schema/010_rebate_windows.sql declares them)."""
_UPDATABLE = frozenset(WINDOW_COLUMNS) - {"window_id", "account", "broker_type", "begin_date", "end_date", "planned_at"}


def _records(cursor: Any) -> list[WindowRecord]:
    names = [column[0] for column in cursor.description or ()]
    records = []
    for row in cursor.fetchall():
        values = dict(zip(names, row, strict=True))
        record = {name: values[name] for name in WINDOW_COLUMNS}
        record["kind"] = WindowKind(record["kind"])
        record["state"] = WindowState(record["state"])
        records.append(WindowRecord(**record))
    return records


class _Session:
    """One connection (in one transaction when writing) to where the ledger lives, speaking its SQL dialect.

    The only seam between the backends: the lifecycle rules above and in `Ledger` are shared, and so are the
    ledger's statements (`sql/ledger/`, in each backend's parameters: `pipeline/sqlfiles.py`).
    """

    placeholder = "?"

    def run(self, name: str, params: dict[str, Any]) -> Any:
        """Run `ledger/<name>.sql` with named parameters; the cursor."""
        raise NotImplementedError

    def lock(self, key: str) -> None:
        """Serialise this transaction with every other that takes `key` (an account's hour or planning)."""

    def update_window(self, window_id: str, state: WindowState, assignments: dict[str, Any]) -> None:
        """Set the given (checked) columns of one window, provided it is still in `state`."""
        # The only statement built here: which columns a transition sets varies; their names are checked by callers.
        mark = self.placeholder
        self.execute(
            f"UPDATE rebate_windows SET {', '.join(f'{column} = {mark}' for column in assignments)} "  # noqa: S608
            f"WHERE window_id = {mark} AND state = {mark}",
            [*(_db_value(value) for value in assignments.values()), window_id, state.value],
        )

    def execute(self, statement: str, values: list[Any]) -> None:
        """Run one positional statement."""
        raise NotImplementedError


class _DuckSession(_Session):
    """The embedded ledger: DuckDB lets one process write at a time, so no lock is needed beyond the transaction."""

    def __init__(self, db: duckdb.DuckDBPyConnection) -> None:
        self.db = db

    def run(self, name: str, params: dict[str, Any]) -> Any:
        return self.db.execute(ledger_statement(name, Dialect.DUCKDB), params)

    def execute(self, statement: str, values: list[Any]) -> None:
        self.db.execute(statement, values)


class _PgSession(_Session):
    """The shared ledger: row locks (`FOR UPDATE`) and per-account advisory transaction locks do the serialising."""

    placeholder = "%s"

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def run(self, name: str, params: dict[str, Any]) -> Any:
        return self.connection.execute(ledger_statement(name, Dialect.POSTGRES), params)

    def lock(self, key: str) -> None:
        lock_in_transaction(self.connection, key)

    def execute(self, statement: str, values: list[Any]) -> None:
        self.connection.execute(statement, values)


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
    """Reads and advances the windows' lifecycle; each call holds the database only for its own statements.

    Every transition and its guard is a method here: callers never compare state strings. Two processes cannot
    both move a window or spend the create hour: each read-then-write runs in one transaction, and DuckDB lets one
    process write at a time; in PostgreSQL (`state_url`, REBATES_STATE_URL) the window's row is locked
    (`SELECT … FOR UPDATE`) and the account's hour and planning take an advisory transaction lock each.

    A ledger speaks for one OKX account: it lists, plans and spends the create hour of that account only (window
    ids are unique across accounts, so `get` and the transitions need no account).
    """

    def __init__(
        self,
        db_path: Path,
        clock: Clock,
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        account: str = DEFAULT_ACCOUNT,
        state_url: str | None = None,
    ) -> None:
        self.db_path = db_path
        """The DuckDB database: the ledger itself, or (with `state_url`) only where the loads land."""
        self.clock = clock
        self.lock_timeout = lock_timeout
        self.account = account
        self.state_url = state_url
        self._state = HeldConnection(state_url) if state_url is not None else None
        """PostgreSQL: one connection for the ledger's life. DuckDB is opened per call: no other process may open
        the file while one holds it, and a pass lasts minutes."""

    def close(self) -> None:
        """Close the ledger's PostgreSQL connection (nothing to do for DuckDB, whose connections last one call)."""
        if self._state is not None:
            self._state.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _session(self, *, write: bool = False) -> Iterator[_Session]:
        """A connection for one call; with `write`, one transaction committed when the block ends."""
        if self._state is not None:
            connection = self._state.get()
            if not write:
                yield _PgSession(connection)
                return
            with connection.transaction():
                yield _PgSession(connection)
            return
        with connect(self.db_path, lock_timeout=self.lock_timeout) as db:
            if not write:
                yield _DuckSession(db)
                return
            with transaction(db):
                yield _DuckSession(db)

    # ---------------------------------------------------------------------------------------------- reading

    def windows(self, *, broker_type: str | None = None) -> list[WindowRecord]:
        """Every window (of one broker type, if given), oldest first."""
        with self._session() as db:
            return _records(db.run("windows", {"broker_type": broker_type, "account": self.account}))

    def in_scopes(self, scopes: Iterable[str]) -> list[WindowRecord]:
        """Every window of these broker scopes, oldest first."""
        wanted = set(scopes)
        return [record for record in self.windows() if record.broker_type in wanted]

    def get(self, window_id: str) -> WindowRecord:
        """One window by id (KeyError when unknown)."""
        with self._session() as db:
            return _get(db, window_id)

    def files(self, window_id: str | None = None) -> list[FileRecord]:
        """Archived files (of one window, if given), oldest first."""
        with self._session() as db:
            rows = db.run("files", {"window_id": window_id}).fetchall()
        return [FileRecord(*row) for row in rows]

    def current_file(self, record: WindowRecord) -> FileRecord:
        """The archived file a window points at (ValueError when it has none)."""
        if record.file_id is None:
            raise ValueError(f"{record.window_id} has no archived file to load")
        return next(item for item in self.files(record.window_id) if item.file_id == record.file_id)

    def create_budget_next_at(self) -> datetime | None:
        """When the account may make its next create, from every create reserved or made; None if never."""
        with self._session() as db:
            row = db.run("create_budget_next_at", {"account": self.account}).fetchone()
        return row[0] if row else None

    # ---------------------------------------------------------------------------------------------- planning

    def add_windows(self, planned: Iterable[tuple[RebateWindow, WindowKind]]) -> list[WindowRecord]:
        """Insert new planned windows in one transaction, refusing any that overlaps a window already there."""
        planned = list(planned)
        if planned:
            with self._session(write=True) as db:
                db.lock(f"rebates:plan:{self.account}")
                self._insert(db, planned)
        return [self.get(window.window_id) for window, _ in planned]

    def plan(self, broker_type: str, begin: date, end: date) -> list[WindowRecord]:
        """Plan windows for every day of [begin, end] not yet covered, reading and inserting in one transaction.

        DuckDB lets one process hold the file at a time, and PostgreSQL serialises the account's planning with an
        advisory lock, so two processes planning at once cannot both plan the same days.
        """
        with self._session(write=True) as db:
            db.lock(f"rebates:plan:{self.account}")
            found = db.run("windows", {"broker_type": broker_type, "account": self.account})
            existing = [(record.window, record.kind) for record in _records(found)]
            planned = plan_windows(broker_type, begin, end, existing, self.account)
            self._insert(db, planned)
        return [self.get(window.window_id) for window, _ in planned]

    def _insert(self, db: _Session, planned: list[tuple[RebateWindow, WindowKind]]) -> None:
        now = self.clock.now()
        for window, kind in planned:
            if window.account != self.account:
                raise ValueError(f"{window.window_id} is account {window.account}'s, not {self.account}'s")
            span = {
                "account": window.account,
                "broker_type": window.broker_type,
                "begin_date": window.begin,
                "end_date": window.end,
            }
            clash = db.run("overlapping_window", span).fetchone()
            if clash is not None:
                raise OverlapError(f"{window.window_id} overlaps {clash[0]}")
            db.run("insert_window", {**span, "window_id": window.window_id, "kind": kind.value, "now": now})
            _event(db, window.window_id, now, None, WindowState.PLANNED, kind.value)

    # ---------------------------------------------------------------------------------------------- moving

    def transition(
        self,
        window_id: str,
        read: WindowState | Collection[WindowState],
        to: WindowState,
        *,
        detail: str | None = None,
        **changes: Any,
    ) -> WindowRecord:
        """Move a window from the state the caller `read` to `to`, updating the given columns, and record the event.

        Committed before returning. A window no longer in `read` is not moved (`StaleStateError`), and a move not in
        TRANSITIONS is a bug (ValueError): see `_transition`.
        """
        with self._session(write=True) as db:
            _transition(db, window_id, read, to, self.clock.now(), detail=detail, **changes)
            return _get(db, window_id)

    def fail(self, record: WindowRecord, reason: str) -> WindowRecord:
        """The window's step failed: count the attempt and back off (5 min, doubling, at most 6 h) before a retry."""
        attempts = record.attempts + 1
        return self.transition(
            record.window_id,
            record.state,
            WindowState.FAILED,
            detail=reason,
            attempts=attempts,
            next_attempt_at=self.clock.now() + retry_delay(attempts),
            last_error=reason,
        )

    def refetch(self, record: WindowRecord, reason: str) -> WindowRecord:
        """What was downloaded is not a rebate file at all (an error page, empty, cut short): a transport glitch.

        The window forgets that file (it stays archived) and asks OKX for a fresh link after a backoff, like a failed
        download; after `REFETCH_LIMIT` such payloads in a row it is quarantined, since a person must look.
        """
        attempts = record.attempts + 1
        if attempts >= REFETCH_LIMIT:
            return self.quarantine(
                record, f"{reason} (still not a rebate file after {attempts} downloads: ask OKX support)"
            )
        return self.transition(
            record.window_id,
            record.state,
            WindowState.FAILED,
            detail=f"{reason}; downloading again",
            file_id=None,
            polled_at=None,
            attempts=attempts,
            next_attempt_at=self.clock.now() + retry_delay(attempts),
            last_error=reason,
        )

    def retry(self, window_id: str) -> WindowRecord:
        """`rebates retry`: a window is downloaded (with a fresh link) and loaded again now, or asked of OKX again.

        A failed or quarantined window keeps its archived files and is downloaded again (planned again if its file
        was never requested). A window whose file OKX has not finished OVERDUE_AFTER after it was requested is planned
        again, for a new create in the account's next hour. Raises `StaleStateError` for a window in any other state
        (saying when an overdue one becomes retryable).
        """
        record = self.get(window_id)
        now = self.clock.now()
        if not record.retryable(now):
            raise StaleStateError(f"{window_id} is {record.state.value}: {record.retry_refusal()}")
        again = record.state in RETRYABLE and record.requested_at is not None
        return self.transition(
            window_id,
            record.state,
            WindowState.FAILED if again else WindowState.PLANNED,
            detail="retry asked for by hand",
            file_id=None,
            polled_at=None,
            attempts=0,
            next_attempt_at=None,
            last_error=None,
        )

    def quarantine(self, record: WindowRecord, reason: str) -> WindowRecord:
        """The window's file is broken: keep it archived with the reason, load nothing of it."""
        return self.transition(
            record.window_id, record.state, WindowState.QUARANTINED, detail=reason, last_error=reason
        )

    def mark_polled(self, record: WindowRecord) -> WindowRecord:
        """OKX does not list the window's file yet: note when it was asked (StaleStateError if it moved meanwhile)."""
        return self.transition(record.window_id, record.state, record.state, polled_at=self.clock.now())

    def unlisted(self, record: WindowRecord) -> WindowRecord:
        """OKX still does not list a file requested OVERDUE_AFTER ago: plan the window again for a new create.

        The create that follows waits 2 hours after the first such loss, then 4, 8 ... at most 24 (counted from the
        creates OKX accepted for this window), so a range OKX keeps losing cannot take every hour.
        """
        accepted = self.accepted_creates(record.window_id)
        backoff = create_backoff(max(accepted, 1))
        reason = (
            f"OKX has not listed the file {self.clock.now() - record.asked_at} after it was requested ({accepted} "
            "create(s) accepted so far); asking for it again"
        )
        return self.transition(
            record.window_id,
            record.state,
            WindowState.PLANNED,
            detail=reason,
            polled_at=None,
            next_attempt_at=self.clock.now() + backoff,
            last_error=reason,
        )

    def observe(
        self, record: WindowRecord, *, finished: bool, server_requested_at: datetime | None, detail: str
    ) -> None:
        """What OKX says of a window's file (finished or still generating); StaleStateError if another moved it.

        A window OKX once called finished stays finished when a later answer says ongoing (only its poll time moves).
        """
        now = self.clock.now()
        changes: dict[str, object] = {"polled_at": now}
        if server_requested_at is not None:
            changes["server_requested_at"] = server_requested_at
        if record.requested_at is None:
            changes["requested_at"] = now
        if finished and record.finished_at is None:
            changes["finished_at"] = now
        target = WindowState.FINISHED if finished or record.state is WindowState.FINISHED else WindowState.ONGOING
        self.transition(record.window_id, record.state, target, detail=detail, **changes)

    def requested(self, window_id: str, outcome: CreateOutcome, server_requested_at: datetime | None) -> None:
        """OKX accepted the create (or already had the file): wait for it."""
        self.transition(
            window_id,
            WindowState.REQUESTING,
            WindowState.REQUESTED,
            detail=f"create: {outcome.value}",
            requested_at=self.clock.now(),
            server_requested_at=server_requested_at,
            polled_at=None,
            attempts=0,
            next_attempt_at=None,
            last_error=None,
        )

    def refuse_create(self, window_id: str, reason: str) -> WindowRecord:
        """OKX refused this window's create for a reason of its own: plan it again after a capped backoff.

        The backoff counts in create hours (2, 4, 8 … at most 24), so every refusal leaves other windows hours.
        """
        record = self.get(window_id)
        attempts = record.attempts + 1
        backoff = create_backoff(attempts)
        return self.transition(
            window_id,
            WindowState.REQUESTING,
            WindowState.PLANNED,
            detail=f"create refused: {reason}",
            attempts=attempts,
            next_attempt_at=self.clock.now() + backoff,
            last_error=reason,
        )

    def replan(self, window_id: str, reason: str) -> None:
        """A create that did not go through (or never reached OKX): the window is planned again."""
        self.transition(window_id, WindowState.REQUESTING, WindowState.PLANNED, detail=reason, last_error=reason)

    def record_archived(self, record: WindowRecord, archived: FileRecord, source_host: str) -> WindowRecord:
        """Index an archived file and point its window at it (state downloaded, ready to load).

        The window must still be in the state the caller read (StaleStateError otherwise; the file stays indexed
        and archived either way, as every archived file is).
        """
        now = self.clock.now()
        with self._session(write=True) as db:
            db.run("record_file", {**asdict(archived), "source_host": source_host, "now": now})
        with self._session(write=True) as db:
            _transition(
                db,
                record.window_id,
                record.state,
                WindowState.DOWNLOADED,
                now,
                detail=archived.path,
                file_id=archived.file_id,
                downloaded_at=now,
                attempts=0,
                next_attempt_at=None,
                last_error=None,
            )
            return _get(db, record.window_id)

    # ---------------------------------------------------------------------------------------------- the hour

    def reserve_create(self, window_id: str) -> int | None:
        """Spend the hour on `window_id` if the budget allows: returns the attempt id, or None when not yet.

        Reading the budget, reserving the hour and moving the window to `requesting` are one transaction, and
        DuckDB lets one process write at a time (PostgreSQL: the account's hour is an advisory transaction lock):
        two processes cannot both find the hour free. Another account's hour is another lock.
        """
        now = self.clock.now()
        with self._session(write=True) as db:
            db.lock(f"rebates:create-hour:{self.account}")
            row = db.run("create_budget_next_at", {"account": self.account}).fetchone()
            next_at = row[0] if row else None
            if next_at is not None and next_at > now:
                return None
            attempt = db.run(
                "reserve_create",
                {"window_id": window_id, "account": self.account, "now": now, "budget_until": now + CREATE_INTERVAL},
            ).fetchone()
            _transition(db, window_id, WindowState.PLANNED, WindowState.REQUESTING, now, detail="create reserved")
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
        with self._session(write=True) as db:
            db.run(
                "record_create",
                {"outcome": outcome.value, "server_ts": server_ts, "detail": detail, "budget_until": budget_until,
                 "attempt_id": attempt_id},
            )  # fmt: skip

    def accepted_creates(self, window_id: str) -> int:
        """How many creates OKX accepted (created or existed) for this window so far."""
        with self._session() as db:
            row = db.run("accepted_creates", {"window_id": window_id}).fetchone()
        return int(row[0]) if row else 0

    def mark_loaded(self, record: WindowRecord, *, rows: int | None, detail: str) -> WindowRecord:
        """The window's load committed in DuckDB: mark it loaded (`rows` None: the same file was already loaded).

        A crash between the load's commit and this leaves the window downloaded; the next pass loads it again, finds
        the same file already loaded (a no-op) and comes here: nothing is loaded twice. A window another worker
        marked loaded meanwhile is marked again (the same load); any other move since `record` was read is stale.
        """
        now = self.clock.now()
        with self._session(write=True) as db:
            read = {record.state, WindowState.LOADED}
            _transition(
                db, record.window_id, read, WindowState.LOADED, now, detail=detail, **_loaded_changes(now, rows)
            )
            return _get(db, record.window_id)


def open_ledger(settings: Settings, clock: Clock) -> Ledger:
    """The ledger of the account `settings` speak for, where they keep it (PostgreSQL with REBATES_STATE_URL)."""
    url = settings.rebates_state_url.get_secret_value() if settings.rebates_state_url else None
    return Ledger(
        settings.rebates_db,
        clock,
        lock_timeout=settings.rebates_db_lock_timeout,
        account=settings.rebates_account,
        state_url=url,
    )


def _loaded_changes(now: datetime, rows: int | None) -> dict[str, Any]:
    changes: dict[str, Any] = {"attempts": 0, "next_attempt_at": None, "last_error": None}
    if rows is not None:
        changes |= {"loaded_at": now, "rows_loaded": rows}
    return changes


def _get(db: _Session, window_id: str) -> WindowRecord:
    found = _records(db.run("window", {"window_id": window_id}))
    if not found:
        raise KeyError(window_id)
    return found[0]


def _transition(
    db: _Session,
    window_id: str,
    read: WindowState | Collection[WindowState],
    to: WindowState,
    now: datetime,
    *,
    detail: str | None = None,
    **changes: Any,
) -> None:
    """The one place that writes a window's state: a compare-and-set on the state the caller read.

    `read` is the state (or the states, for a move that is the same whatever it finds among them) the caller based
    its decision on. The move must be in TRANSITIONS (else ValueError: a bug), and the window must still be in a
    `read` state, its row locked where the backend can (else StaleStateError: another process moved it first, and
    this writer's view is stale). The update itself repeats the condition, so nothing moves a window from a state
    its writer did not see.
    """
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"not ledger columns: {sorted(unknown)}")
    allowed = frozenset({read}) if isinstance(read, WindowState) else frozenset(read)
    illegal = sorted(state.value for state in allowed if to not in TRANSITIONS[state])
    if illegal or not allowed:
        raise ValueError(f"{window_id}: a window never moves from {' or '.join(illegal) or 'nothing'} to {to.value}")
    row = db.run("window_state", {"window_id": window_id}).fetchone()
    if row is None:
        raise KeyError(window_id)
    current = WindowState(row[0])
    if current not in allowed:
        raise StaleStateError(
            f"{window_id} is {current.value}, not {' or '.join(sorted(state.value for state in allowed))}: another "
            f"process moved it first; it stays {current.value}"
        )
    db.update_window(window_id, current, {**changes, "state": to.value, "updated_at": now})
    _event(db, window_id, now, current.value, to, detail)


def _db_value(value: Any) -> Any:
    return value.value if isinstance(value, StrEnum) else value


def _event(
    db: _Session, window_id: str, at: datetime, from_state: str | None, to: WindowState, detail: str | None
) -> None:
    db.run(
        "insert_event",
        {"window_id": window_id, "event_at": at, "from_state": from_state, "to_state": to.value, "detail": detail},
    )
