"""Whether a file OKX lists is the whole of a window: exactly its days, made after the last of them had ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from pipeline.domain import DATE_FORMAT
from pipeline.okx.client import RebateLink


@dataclass(frozen=True)
class LinkDays:
    """The days a listed file covers, read from its beginTime/endTime in REBATES_TZ (endTime starts the last day)."""

    begin: date
    end: date

    def __str__(self) -> str:
        return f"{self.begin:{DATE_FORMAT}}-{self.end:{DATE_FORMAT}}"


class UnfitLink(Exception):
    """A listed file that must not be loaded as the window asked about (the message says why)."""


class RangeMismatch(UnfitLink):
    """The file covers other days than the window (OKX answered a different range)."""


class UnfinishedDay(UnfitLink):
    """OKX first generated the file before its last day had ended: that day is in it only in part, for good."""


def link_days(link: RebateLink, tz: tzinfo) -> LinkDays:
    """The days a file covers; UnfitLink when OKX gave no range or one that does not start at midnight in `tz`."""
    if link.begin_time is None or link.end_time is None:
        raise UnfitLink("OKX gave no beginTime/endTime for the file, so the days it covers are unknown")
    begin, end = link.begin_time.astimezone(tz), link.end_time.astimezone(tz)
    if begin.time() != time(0) or end.time() != time(0):
        raise UnfitLink(
            f"the file's beginTime {link.begin_time.isoformat()} is not a midnight in REBATES_TZ={tz}; check "
            "REBATES_TZ (OKX's days look like UTC+8)"
        )
    if end < begin:
        raise UnfitLink(f"the file's endTime {link.end_time.isoformat()} is before its beginTime")
    return LinkDays(begin.date(), end.date())


def day_end(day: date, tz: tzinfo) -> datetime:
    """The moment `day` is over in `tz` (midnight that starts the next day)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)


def check_complete(link: RebateLink, days: LinkDays, tz: tzinfo) -> None:
    """UnfinishedDay unless OKX first generated the file (cTime) after its last day had ended in `tz`."""
    if link.c_time is None:
        raise UnfinishedDay(
            f"OKX gave no cTime for the file of {days}, so it cannot tell whether {days.end} had ended when the file "
            "was made"
        )
    over = day_end(days.end, tz)
    if link.c_time < over:
        raise UnfinishedDay(
            f"OKX first generated the file of {days} at {link.c_time.astimezone(tz):%Y-%m-%d %H:%M} ({tz}), before "
            f"{days.end} ended at {over:%Y-%m-%d %H:%M}: it holds that day only in part, and OKX keeps that file for "
            "the range"
        )


def check_fits(link: RebateLink, begin: date, end: date, tz: tzinfo) -> None:
    """Raise UnfitLink (RangeMismatch, UnfinishedDay) unless the file is exactly the days begin..end, made after."""
    days = link_days(link, tz)
    if (days.begin, days.end) != (begin, end):
        raise RangeMismatch(
            f"OKX answered with a file of {days}, not {begin:{DATE_FORMAT}}-{end:{DATE_FORMAT}}; it is not loaded "
            "as this window"
        )
    check_complete(link, days, tz)
