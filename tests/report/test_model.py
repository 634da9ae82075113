"""The report's vocabulary: periods and what a month-end run reports on."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from pipeline.report.model import Period

UTC8 = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("now", "month"),
    [
        (datetime(2025, 2, 28, 15, 59, tzinfo=UTC), Period.month(2025, 1)),  # 23:59 on Feb 28 in UTC+8
        (datetime(2025, 2, 28, 16, 0, tzinfo=UTC), Period.month(2025, 2)),  # midnight, March 1 in UTC+8
        (datetime(2025, 1, 1, 0, 0, tzinfo=UTC), Period.month(2024, 12)),  # across the year
    ],
)
def test_the_last_ended_month_is_the_one_over_in_the_reports_timezone(now: datetime, month: Period) -> None:
    assert Period.last_ended_month(now, UTC8) == month


def test_a_month_is_compared_with_the_month_before_and_a_range_with_as_many_days() -> None:
    assert Period.month(2025, 3).previous() == Period.month(2025, 2)
    assert Period(date(2025, 3, 10), date(2025, 3, 16)).previous() == Period(date(2025, 3, 3), date(2025, 3, 9))
