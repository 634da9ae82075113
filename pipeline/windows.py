"""Date windows: disjoint, day-aligned ranges of at most 180 days, in the timezone of REBATES_TZ."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum

from pipeline.config import DEFAULT_ACCOUNT
from pipeline.domain import DATE_FORMAT, MAX_WINDOW_DAYS

DEFAULT_SCOPE = "default"
"""The ledger's broker type when REBATES_BROKER_TYPES is empty (a single-type broker: no brokerType is sent)."""


class WindowKind(StrEnum):
    """Why a window exists; it decides which window the hourly create is spent on."""

    HISTORY = "history"
    """Part of the backfill: the oldest goes first."""
    DAILY = "daily"
    """A new day after history is covered: the newest goes first."""
    ADOPTED = "adopted"
    """A file OKX already had (e.g. requested from the broker dashboard), taken over without a create."""


@dataclass(frozen=True, order=True)
class RebateWindow:
    """A range of whole days [begin, end], both included, for one broker type of one OKX account."""

    broker_type: str
    begin: date
    end: date
    account: str = DEFAULT_ACCOUNT

    def __post_init__(self) -> None:
        if self.end < self.begin:
            raise ValueError(f"window ends ({self.end}) before it begins ({self.begin})")
        if self.days > MAX_WINDOW_DAYS:
            raise ValueError(f"window {self.begin}..{self.end} spans {self.days} days; OKX allows {MAX_WINDOW_DAYS}")

    @property
    def days(self) -> int:
        """How many days the window covers."""
        return (self.end - self.begin).days + 1

    @property
    def window_id(self) -> str:
        """A stable key: `api:20240101-20240629`, prefixed by the account unless it is `default`: `eu:api:…`.

        The default account keeps the ids it had before there were accounts, so an existing ledger stays valid.
        """
        prefix = "" if self.account == DEFAULT_ACCOUNT else f"{self.account}:"
        return f"{prefix}{self.broker_type}:{self.begin:{DATE_FORMAT}}-{self.end:{DATE_FORMAT}}"

    @classmethod
    def parse(cls, window_id: str) -> RebateWindow:
        """Read a window id back: `api:20240101-20240629` or `eu:api:…` (ValueError when it is not one)."""
        parts = window_id.split(":")
        account = parts.pop(0) if len(parts) == 3 else DEFAULT_ACCOUNT
        if len(parts) != 2 or not account or (len(window_id.split(":")) == 3 and account == DEFAULT_ACCOUNT):
            raise ValueError(f"{window_id!r} is not a window id like api:20250101-20250131 or eu:api:20250101-20250131")
        scope, dates = parts
        begin_text, _, end_text = dates.partition("-")
        try:
            begin = datetime.strptime(begin_text, DATE_FORMAT).date()
            end = datetime.strptime(end_text, DATE_FORMAT).date()
        except ValueError:
            raise ValueError(f"{window_id!r} is not a window id like api:20250101-20250131") from None
        if scope not in {"api", "oauth", DEFAULT_SCOPE}:
            raise ValueError(f"{window_id!r}: the broker type must be api, oauth or {DEFAULT_SCOPE}")
        return cls(scope, begin, end, account)


def yesterday(now: datetime, tz: tzinfo) -> date:
    """The last whole day that has ended in `tz`."""
    return now.astimezone(tz).date() - timedelta(days=1)


def uncovered_runs(begin: date, end: date, covered: Iterable[RebateWindow]) -> Iterator[tuple[date, date]]:
    """The maximal runs of days in [begin, end] that no window in `covered` includes, oldest first."""
    spans = sorted((max(w.begin, begin), min(w.end, end)) for w in covered if w.begin <= end and w.end >= begin)
    cursor = begin
    for span_begin, span_end in spans:
        if span_begin > cursor:
            yield cursor, span_begin - timedelta(days=1)
        cursor = max(cursor, span_end + timedelta(days=1))
    if cursor <= end:
        yield cursor, end


def plan_windows(
    broker_type: str,
    begin: date,
    end: date,
    existing: Iterable[tuple[RebateWindow, WindowKind]],
    account: str = DEFAULT_ACCOUNT,
) -> list[tuple[RebateWindow, WindowKind]]:
    """New windows that cover every day of [begin, end] not yet in `existing`, never overlapping it or each other.

    Days after the last window this pipeline planned itself (history or daily; adopted files don't count) are new
    days: one daily window (one day, normally; after an outage every missing day, up to 180 in a window, so
    catching up costs one create, not one a day); daily windows are created newest first. Any other gap (all of it
    on the first run) is history, cut into windows of at most 180 days from its oldest day.
    """
    existing_for_type = [(w, kind) for w, kind in existing if (w.broker_type, w.account) == (broker_type, account)]
    last_planned = max((w.end for w, kind in existing_for_type if kind is not WindowKind.ADOPTED), default=None)
    planned: list[tuple[RebateWindow, WindowKind]] = []
    for run_begin, run_end in uncovered_runs(begin, end, [w for w, _ in existing_for_type]):
        is_new_days = last_planned is not None and run_begin > last_planned
        kind = WindowKind.DAILY if is_new_days else WindowKind.HISTORY
        cursor = run_begin
        while cursor <= run_end:
            chunk_end = min(cursor + timedelta(days=MAX_WINDOW_DAYS - 1), run_end)
            planned.append((RebateWindow(broker_type, cursor, chunk_end, account), kind))
            cursor = chunk_end + timedelta(days=1)
    return planned
