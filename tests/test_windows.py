"""Window planning: disjoint, day-aligned, at most 180 days, history in chunks and new days one by one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from pipeline.windows import RebateWindow, WindowKind, plan_windows, uncovered_runs, yesterday

UTC8 = timezone(timedelta(hours=8))


def covered_days(windows: list[RebateWindow]) -> list[date]:
    return sorted(window.begin + timedelta(days=offset) for window in windows for offset in range(window.days))


def test_a_400_day_backfill_is_three_disjoint_windows_of_at_most_180_days() -> None:
    begin, end = date(2024, 1, 1), date(2024, 1, 1) + timedelta(days=399)
    planned = plan_windows("api", begin, end, [])
    windows = [window for window, _ in planned]
    assert [w.days for w in windows] == [180, 180, 40]
    assert all(kind is WindowKind.HISTORY for _, kind in planned)
    days = covered_days(windows)
    assert days == [begin + timedelta(days=n) for n in range(400)]


def test_after_history_each_new_day_is_its_own_window() -> None:
    history = [(RebateWindow("api", date(2024, 1, 1), date(2024, 6, 28)), WindowKind.HISTORY)]
    planned = plan_windows("api", date(2024, 1, 1), date(2024, 6, 29), history)
    assert planned == [(RebateWindow("api", date(2024, 6, 29), date(2024, 6, 29)), WindowKind.DAILY)]
    daily = [*history, *planned]
    assert plan_windows("api", date(2024, 1, 1), date(2024, 6, 30), daily) == [
        (RebateWindow("api", date(2024, 6, 30), date(2024, 6, 30)), WindowKind.DAILY)
    ]


def test_days_missed_in_an_outage_are_caught_up_in_one_window_of_at_most_180_days() -> None:
    history = [(RebateWindow("api", date(2024, 1, 1), date(2024, 6, 28)), WindowKind.HISTORY)]
    ten_days = plan_windows("api", date(2024, 1, 1), date(2024, 7, 8), history)
    assert ten_days == [(RebateWindow("api", date(2024, 6, 29), date(2024, 7, 8)), WindowKind.DAILY)]
    a_year = plan_windows("api", date(2024, 1, 1), date(2025, 6, 28), history)
    assert [window.days for window, _ in a_year] == [180, 180, 5]
    assert all(kind is WindowKind.DAILY for _, kind in a_year)


def test_a_gap_inside_history_is_planned_as_history_and_never_overlaps() -> None:
    existing = [
        (RebateWindow("api", date(2024, 1, 1), date(2024, 1, 10)), WindowKind.HISTORY),
        (RebateWindow("api", date(2024, 1, 20), date(2024, 1, 31)), WindowKind.HISTORY),
    ]
    planned = plan_windows("api", date(2024, 1, 1), date(2024, 1, 31), existing)
    assert planned == [(RebateWindow("api", date(2024, 1, 11), date(2024, 1, 19)), WindowKind.HISTORY)]
    assert not any(new.begin <= old.end and old.begin <= new.end for new, _ in planned for old, _ in existing)


def test_an_adopted_file_does_not_make_the_days_after_it_daily() -> None:
    adopted = [(RebateWindow("api", date(2024, 1, 1), date(2024, 1, 31)), WindowKind.ADOPTED)]
    planned = plan_windows("api", date(2024, 1, 1), date(2024, 2, 29), adopted)
    assert planned == [(RebateWindow("api", date(2024, 2, 1), date(2024, 2, 29)), WindowKind.HISTORY)]


def test_planning_is_per_broker_type() -> None:
    existing = [(RebateWindow("oauth", date(2024, 1, 1), date(2024, 1, 31)), WindowKind.HISTORY)]
    planned = plan_windows("api", date(2024, 1, 1), date(2024, 1, 31), existing)
    assert [w for w, _ in planned] == [RebateWindow("api", date(2024, 1, 1), date(2024, 1, 31))]


def test_planning_again_plans_nothing() -> None:
    first = plan_windows("api", date(2023, 1, 1), date(2024, 12, 31), [])
    assert plan_windows("api", date(2023, 1, 1), date(2024, 12, 31), first) == []


def test_uncovered_runs_clips_to_the_range() -> None:
    existing = [RebateWindow("api", date(2023, 12, 1), date(2024, 1, 5))]
    assert list(uncovered_runs(date(2024, 1, 1), date(2024, 1, 9), existing)) == [(date(2024, 1, 6), date(2024, 1, 9))]


def test_a_window_refuses_more_than_180_days_or_a_reversed_range() -> None:
    RebateWindow("api", date(2024, 1, 1), date(2024, 1, 1) + timedelta(days=179))
    with pytest.raises(ValueError, match="180"):
        RebateWindow("api", date(2024, 1, 1), date(2024, 1, 1) + timedelta(days=180))
    with pytest.raises(ValueError, match="before"):
        RebateWindow("api", date(2024, 1, 2), date(2024, 1, 1))


def test_window_id_is_stable_and_readable() -> None:
    assert RebateWindow("oauth", date(2024, 1, 1), date(2024, 6, 28)).window_id == "oauth:20240101-20240628"


def test_yesterday_is_taken_in_the_configured_timezone() -> None:
    now = datetime(2024, 3, 1, 17, 0, tzinfo=UTC)  # 01:00 on 2 March at UTC+8
    assert yesterday(now, UTC8) == date(2024, 3, 1)
    assert yesterday(now, UTC) == date(2024, 2, 29)


def test_the_default_account_keeps_its_ids_and_another_account_prefixes_them() -> None:
    window = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 31))
    assert window.window_id == "api:20250101-20250131"
    eu = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 31), "eu")
    assert eu.window_id == "eu:api:20250101-20250131"
    assert RebateWindow.parse(eu.window_id) == eu
    assert RebateWindow.parse(window.window_id) == window
    single_type = RebateWindow("default", date(2025, 1, 1), date(2025, 1, 1))
    assert RebateWindow.parse(single_type.window_id) == single_type


@pytest.mark.parametrize("text", ["default:api:20250101-20250131", ":api:20250101-20250131", "a:b:api:20250101-2025"])
def test_a_window_id_naming_the_default_account_or_malformed_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a window id"):
        RebateWindow.parse(text)


def test_accounts_plan_their_own_windows_independently() -> None:
    mine = [(RebateWindow("api", date(2024, 1, 1), date(2024, 1, 10), "eu"), WindowKind.HISTORY)]
    planned = plan_windows("api", date(2024, 1, 1), date(2024, 1, 10), mine, "asia")
    assert [(w.account, w.begin, w.end) for w, _ in planned] == [("asia", date(2024, 1, 1), date(2024, 1, 10))]
    assert plan_windows("api", date(2024, 1, 1), date(2024, 1, 10), mine, "eu") == []
