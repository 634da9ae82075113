"""The if-rebate limiter: at most 2 user checks per rolling second across every process sharing a data dir."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from pipeline.clock import Clock
from pipeline.config import DEFAULT_ACCOUNT
from pipeline.domain import IF_REBATE_LIMIT, IF_REBATE_PATH, IF_REBATE_WINDOW
from pipeline.okx.throttle import GetLimiter

SAFETY_MARGIN = timedelta(milliseconds=100)
"""Added to OKX's second so that a little clock difference with the server never costs a 50011."""


class IfRebateLimiter(GetLimiter):
    """`GetLimiter`'s shared slots with the if-rebate budget and slots of its own.

    Plug `before_request` into `OkxClient(before_request=...)`: it takes a slot before every if-rebate attempt,
    retries included, and lets every other call through (the rebate-file GETs have their own limiter).
    """

    KIND = "okx-if-rebate-slots"

    def __init__(
        self,
        state_dir: Path,
        clock: Clock,
        *,
        on_wait: Callable[[float], None] | None = None,
        account: str = DEFAULT_ACCOUNT,
        state_url: str | None = None,
    ) -> None:
        super().__init__(
            state_dir,
            clock,
            limit=IF_REBATE_LIMIT,
            window=IF_REBATE_WINDOW + SAFETY_MARGIN,
            on_wait=on_wait,
            account=account,
            state_url=state_url,
        )

    def before_request(self, method: str, path: str) -> datetime | None:
        """The client hook: GETs to if-rebate take a slot (the client signs with its moment); anything else passes."""
        if method.upper() == "GET" and path.split("?", 1)[0] == IF_REBATE_PATH:
            return self.acquire()
        return None
