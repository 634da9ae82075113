"""A listed file is a window's only when it holds exactly its days and was made after the last of them had ended."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from pipeline.acquire.fit import LinkDays, RangeMismatch, UnfinishedDay, UnfitLink, check_fits, link_days
from pipeline.okx.client import RebateLink

UTC8 = timezone(timedelta(hours=8))
JANUARY_1_TO_10 = (date(2025, 1, 1), date(2025, 1, 10))


def at(day: date, hour: int = 0, tz: timezone = UTC8) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=tz)


def link(begin: date, end: date, *, made: datetime | None) -> RebateLink:
    return RebateLink(
        state="finished", file_href="https://x/f.csv", begin_time=at(begin), end_time=at(end), c_time=made, ts=made
    )


def test_a_file_of_exactly_the_windows_days_made_after_them_fits() -> None:
    check_fits(link(date(2025, 1, 1), date(2025, 1, 10), made=at(date(2025, 1, 11), 0)), *JANUARY_1_TO_10, UTC8)


@pytest.mark.parametrize(
    ("begin", "end"),
    [
        (date(2025, 1, 1), date(2025, 1, 5)),
        (date(2024, 12, 31), date(2025, 1, 10)),
        (date(2025, 1, 2), date(2025, 1, 11)),
    ],
)
def test_a_file_of_other_days_never_fits(begin: date, end: date) -> None:
    with pytest.raises(RangeMismatch, match=f"a file of {begin:%Y%m%d}-{end:%Y%m%d}, not 20250101-20250110"):
        check_fits(link(begin, end, made=at(date(2025, 2, 1))), *JANUARY_1_TO_10, UTC8)


def test_a_file_made_before_its_last_day_ended_holds_that_day_in_part() -> None:
    made = at(date(2025, 2, 1), 11)  # 11:00 UTC+8 on the last day
    with pytest.raises(UnfinishedDay, match=r"first generated the file of 20250131-20250201 at 2025-02-01 11:00"):
        check_fits(link(date(2025, 1, 31), date(2025, 2, 1), made=made), date(2025, 1, 31), date(2025, 2, 1), UTC8)


def test_the_last_day_ends_at_midnight_in_rebates_tz_not_utc() -> None:
    # 2025-01-10 20:00 UTC is 04:00 on the 11th in UTC+8: over there, though not yet over in UTC.
    made = datetime(2025, 1, 10, 20, tzinfo=UTC)
    check_fits(link(*JANUARY_1_TO_10, made=made), *JANUARY_1_TO_10, UTC8)
    with pytest.raises(UnfinishedDay):
        check_fits(link(*JANUARY_1_TO_10, made=made - timedelta(hours=5)), *JANUARY_1_TO_10, UTC8)


def test_a_file_without_ctime_cannot_be_shown_complete() -> None:
    with pytest.raises(UnfinishedDay, match="no cTime"):
        check_fits(link(*JANUARY_1_TO_10, made=None), *JANUARY_1_TO_10, UTC8)


def test_a_range_that_is_no_whole_days_in_rebates_tz_is_unfit() -> None:
    odd = RebateLink(
        state="finished",
        file_href="",
        begin_time=at(date(2025, 1, 1), 0, UTC),
        end_time=at(date(2025, 1, 10), 0, UTC),
        c_time=None,
        ts=None,
    )
    with pytest.raises(UnfitLink, match="not a midnight in REBATES_TZ"):
        link_days(odd, UTC8)
    assert link_days(odd, UTC) == LinkDays(date(2025, 1, 1), date(2025, 1, 10))
    missing = RebateLink(state="finished", file_href="", begin_time=None, end_time=None, c_time=None, ts=None)
    with pytest.raises(UnfitLink, match="no beginTime/endTime"):
        link_days(missing, UTC8)
