"""One limiter that every OKX GET passes: at most 2 per rolling minute across every process sharing a data dir."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from filelock import FileLock

from pipeline.clock import Clock
from pipeline.config import DEFAULT_ACCOUNT
from pipeline.okx.limits import GET_LIMIT, GET_WINDOW, REBATE_PATH

log = logging.getLogger(__name__)

SAFETY_MARGIN = timedelta(seconds=1)
"""Added to OKX's minute so that a little clock difference with the server never costs a 429."""


def slots_name(kind: str, account: str) -> str:
    """A limiter's state file stem: `okx-get-slots` for the default account, `okx-get-slots-eu` for account eu."""
    return kind if account == DEFAULT_ACCOUNT else f"{kind}-{account}"


class GetLimiter:
    """Grants GET slots from a small state file guarded by a file lock, so two `rebates sync` share one budget.

    Each OKX account has its own two GETs a minute, so its own state file: one account's polling never delays
    another's.

    Plug `before_request` into `OkxClient(before_request=...)`: it is called before every attempt, retries included,
    and sleeps (through the clock) until a slot is free.
    """

    def __init__(
        self,
        state_dir: Path,
        clock: Clock,
        *,
        limit: int = GET_LIMIT,
        window: timedelta = GET_WINDOW + SAFETY_MARGIN,
        on_wait: Callable[[float], None] | None = None,
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        stem = slots_name("okx-get-slots", account)
        self.state_file = state_dir / f"{stem}.json"
        self.lock = FileLock(str(state_dir / f"{stem}.lock"))
        self.clock = clock
        self.limit = limit
        self.window = window
        self.on_wait = on_wait
        self.granted: list[datetime] = []
        """Every slot this process was given (tests read it)."""

    def _read(self) -> list[datetime]:
        try:
            return [datetime.fromisoformat(text) for text in json.loads(self.state_file.read_text())]
        except (FileNotFoundError, ValueError):
            return []

    def _write(self, stamps: list[datetime]) -> None:
        temp = self.state_file.with_suffix(".tmp")
        temp.write_text(json.dumps([stamp.isoformat() for stamp in stamps]))
        temp.replace(self.state_file)

    def acquire(self) -> None:
        """Take a GET slot, sleeping until one is free."""
        while True:
            with self.lock:
                now = self.clock.now()
                recent = sorted(stamp for stamp in self._read() if stamp > now - self.window)
                if len(recent) < self.limit:
                    self._write([*recent, now])
                    self.granted.append(now)
                    return
                wait = max((recent[-self.limit] + self.window - now).total_seconds(), 0.01)
            log.debug("GET budget used; waiting %.1f s for a slot", wait)
            if self.on_wait is not None:
                self.on_wait(wait)
            self.clock.sleep(wait)

    def penalize(self) -> None:
        """OKX answered 50011 to a GET: count the minute as full from now."""
        with self.lock:
            now = self.clock.now()
            self._write([now] * self.limit)

    def before_request(self, method: str, path: str) -> None:
        """The client hook: GETs to the rebate endpoint take a slot; anything else passes."""
        if method.upper() == "GET" and path.split("?", 1)[0] == REBATE_PATH:
            self.acquire()
