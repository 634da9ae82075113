"""One limiter that every OKX GET passes: at most 2 per rolling minute across every process sharing the state."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from filelock import FileLock

from pipeline.clock import Clock
from pipeline.config import DEFAULT_ACCOUNT, Settings
from pipeline.domain import GET_LIMIT, GET_WINDOW, REBATE_PATH
from pipeline.pg import HeldConnection, lock_in_transaction
from pipeline.sqlfiles import Dialect, ledger_statement

log = logging.getLogger(__name__)

SAFETY_MARGIN = timedelta(seconds=1)
"""Added to OKX's minute so that a little clock difference with the server never costs a 429."""


def slots_name(kind: str, account: str) -> str:
    """A limiter's state file stem: `okx-get-slots` for the default account, `okx-get-slots-eu` for account eu."""
    return kind if account == DEFAULT_ACCOUNT else f"{kind}-{account}"


class Slots(Protocol):
    """Where a limiter keeps the slots it granted, shared by every process using the same state."""

    def take(self, clock: Clock, limit: int, window: timedelta) -> datetime | float:
        """Grant a slot now if fewer than `limit` fall in the `window` before it (its time); else seconds to wait.

        The time is read once the slots are locked, so a process that waited for the lock never stamps the past.
        """

    def fill(self, now: datetime, limit: int) -> None:
        """Count the whole window as used from `now` (OKX said 50011)."""

    def close(self) -> None:
        """Let go of what the slots hold open (a PostgreSQL connection); they reopen it when used again."""


class FileSlots:
    """Slots in a small JSON file guarded by a file lock: every process on one machine (one data dir)."""

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file
        self.lock = FileLock(str(state_file.with_suffix(".lock")))

    def close(self) -> None:
        """Nothing stays open between grants."""

    def _read(self) -> list[datetime]:
        try:
            return [datetime.fromisoformat(text) for text in json.loads(self.state_file.read_text())]
        except (FileNotFoundError, ValueError):
            return []

    def _write(self, stamps: list[datetime]) -> None:
        temp = self.state_file.with_suffix(".tmp")
        temp.write_text(json.dumps([stamp.isoformat() for stamp in stamps]))
        temp.replace(self.state_file)

    def take(self, clock: Clock, limit: int, window: timedelta) -> datetime | float:
        """See `Slots.take`."""
        with self.lock:
            now = clock.now()
            recent = sorted(stamp for stamp in self._read() if stamp > now - window)
            if len(recent) < limit:
                self._write([*recent, now])
                return now
            return max((recent[-limit] + window - now).total_seconds(), 0.01)

    def fill(self, now: datetime, limit: int) -> None:
        """See `Slots.fill`."""
        with self.lock:
            self._write([now] * limit)


class PostgresSlots:
    """Slots in PostgreSQL's limiter_slots, under a per-(limiter, account) advisory lock: workers on any machine."""

    def __init__(self, state_url: str, limiter: str, account: str) -> None:
        self.state = HeldConnection(state_url)
        self.params = {"limiter": limiter, "account": account}
        self.key = f"rebates:{limiter}:{account}"

    def close(self) -> None:
        """Close the limiter's connection (opened again if it is used after)."""
        self.state.close()

    def take(self, clock: Clock, limit: int, window: timedelta) -> datetime | float:
        """See `Slots.take`."""
        connection = self.state.get()
        with connection.transaction():
            lock_in_transaction(connection, self.key)
            now = clock.now()
            found = connection.execute(_slots("recent_slots"), {**self.params, "since": now - window})
            recent: list[datetime] = [row[0] for row in found.fetchall()]
            if len(recent) < limit:
                connection.execute(_slots("grant_slot"), {**self.params, "now": now})
                return now
        return max((recent[-limit] + window - now).total_seconds(), 0.01)

    def fill(self, now: datetime, limit: int) -> None:
        """See `Slots.fill`."""
        connection = self.state.get()
        with connection.transaction():
            lock_in_transaction(connection, self.key)
            connection.execute(_slots("clear_slots"), self.params)
            for _ in range(limit):
                connection.execute(_slots("grant_slot"), {**self.params, "now": now})


class GetLimiter:
    """Grants GET slots from a small state file guarded by a file lock, so two `rebates sync` share one budget.

    With `state_url` (REBATES_STATE_URL) the slots are kept in PostgreSQL instead, so workers on different machines
    share the budget. Each OKX account has its own two GETs a minute, so its own slots: one account's polling never
    delays another's.

    Plug `before_request` into `OkxClient(before_request=...)`: it is called before every attempt, retries included,
    and sleeps (through the clock) until a slot is free.
    """

    KIND = "okx-get-slots"
    """The limiter's name: its state file stem and its rows' `limiter` in PostgreSQL."""

    def __init__(
        self,
        state_dir: Path,
        clock: Clock,
        *,
        limit: int = GET_LIMIT,
        window: timedelta = GET_WINDOW + SAFETY_MARGIN,
        on_wait: Callable[[float], None] | None = None,
        account: str = DEFAULT_ACCOUNT,
        state_url: str | None = None,
    ) -> None:
        self.slots: Slots
        if state_url is None:
            state_dir.mkdir(parents=True, exist_ok=True)
            self.slots = FileSlots(state_dir / f"{slots_name(self.KIND, account)}.json")
        else:
            self.slots = PostgresSlots(state_url, self.KIND, account)
        self.clock = clock
        self.limit = limit
        self.window = window
        self.on_wait = on_wait
        self.granted: list[datetime] = []
        """Every slot this process was given (tests read it)."""

    def acquire(self) -> datetime:
        """Take a GET slot, sleeping until one is free; the moment it was granted."""
        while True:
            taken = self.slots.take(self.clock, self.limit, self.window)
            if isinstance(taken, datetime):
                self.granted.append(taken)
                return taken
            wait = taken
            log.debug("GET budget used; waiting %.1f s for a slot", wait)
            if self.on_wait is not None:
                self.on_wait(wait)
            self.clock.sleep(wait)

    def penalize(self) -> None:
        """OKX answered 50011 to a GET: count the minute as full from now."""
        self.slots.fill(self.clock.now(), self.limit)

    def close(self) -> None:
        """Close the limiter's PostgreSQL connection, if it holds one."""
        self.slots.close()

    def before_request(self, method: str, path: str) -> datetime | None:
        """The client hook: GETs to the rebate endpoint take a slot (the client signs with its moment); anything else
        passes."""
        if method.upper() == "GET" and path.split("?", 1)[0] == REBATE_PATH:
            return self.acquire()
        return None


def open_limiter(
    settings: Settings,
    clock: Clock,
    *,
    kind: type[GetLimiter] = GetLimiter,
    on_wait: Callable[[float], None] | None = None,
) -> GetLimiter:
    """The limiter (`kind`: GETs, or `IfRebateLimiter`) of the account `settings` speak for, where they keep it.

    A file under the data dir's state folder, or PostgreSQL's limiter_slots with REBATES_STATE_URL.
    """
    url = settings.rebates_state_url.get_secret_value() if settings.rebates_state_url else None
    return kind(settings.layout.state, clock, on_wait=on_wait, account=settings.rebates_account, state_url=url)


def _slots(name: str) -> str:
    """One of the PostgreSQL limiter's statements (`sql/ledger/postgres/limiter/`)."""
    return ledger_statement(f"limiter/{name}", Dialect.POSTGRES)
