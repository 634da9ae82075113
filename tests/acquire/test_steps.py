"""Acquisition against the simulator: one create an hour, adoption, crash resumption, refreshed links, GET limits."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from pipeline.acquire import steps
from pipeline.acquire.download import DownloadStalledError, download_file
from pipeline.acquire.steps import Syncer, syncer_for
from pipeline.archive import ArchivedFile
from pipeline.clock import FakeClock
from pipeline.config import Settings, UsageError
from pipeline.domain import CREATE_INTERVAL, CREATE_WAIT, GET_LIMIT, GET_WINDOW, MAX_RETRY_AFTER, REBATE_PATH
from pipeline.ledger import CreateOutcome, Ledger, WindowState
from pipeline.okx.client import OkxClient, RebateLink
from pipeline.okx.errors import OkxParameterError, OkxRateLimitError, OkxTransientError
from pipeline.pass_types import PassScope, SyncReport
from pipeline.passes import retry_windows, sync
from pipeline.simulator.files import Corruption
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import DEFAULT_API_KEY, Fault
from pipeline.windows import RebateWindow, WindowKind
from tests.test_ledger import query

pytestmark = pytest.mark.slow

YESTERDAY = date(2025, 2, 28)  # the fake clock starts 2025-03-01 10:00 at UTC+8


def run_hourly(settings: Settings, clock: FakeClock, *, until: Callable[[], bool], hours: int) -> list[SyncReport]:
    """One pass an hour, as the schedule would, until `until()` or `hours` passes."""
    reports = []
    for _ in range(hours):
        reports.append(sync(settings, clock).report)
        if until():
            break
        clock.advance(CREATE_INTERVAL)
    return reports


def all_loaded(ledger: Ledger) -> bool:
    windows = ledger.windows()
    return bool(windows) and all(record.state is WindowState.LOADED for record in windows)


def creates(simulator: RunningSimulator) -> list[datetime]:
    return [call.at for call in simulator.state.calls("POST", REBATE_PATH)]


def assert_okx_limits_held(simulator: RunningSimulator) -> None:
    """No 429 was ever answered, creates are an hour apart, and no minute saw more than 2 GETs."""
    assert simulator.state.count(status=429) == 0
    stamps = creates(simulator)
    assert all(later - earlier >= CREATE_INTERVAL for earlier, later in itertools.pairwise(stamps))
    gets = [call.at for call in simulator.state.calls("GET", REBATE_PATH)]
    for start in gets:
        assert sum(1 for other in gets if start <= other < start + GET_WINDOW) <= GET_LIMIT


@pytest.fixture
def ledger(sim_settings: Settings, fake_clock: FakeClock) -> Ledger:
    return Ledger(sim_settings.rebates_db, fake_clock)


def test_a_400_day_backfill_completes_with_one_create_per_hour(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=YESTERDAY - timedelta(days=399))
    reports = run_hourly(settings, fake_clock, until=lambda: all_loaded(ledger), hours=10)

    windows = ledger.windows()
    assert [record.window.days for record in windows] == [180, 180, 40]
    assert all_loaded(ledger)
    assert len(creates(simulator)) == 3  # one per window, none repeated
    assert [report.created for report in reports[:3]] == [record.window_id for record in windows]  # oldest first
    assert len(reports) == 5  # the last file is ready two hours after its create
    for record in windows:
        (archived,) = ledger.files(record.window_id)
        assert (settings.rebates_data_dir / archived.path).stat().st_size == archived.bytes
        assert archived.path.startswith(f"raw/api/{record.begin_date:%Y%m%d}_{record.end_date:%Y%m%d}_")
    assert_okx_limits_held(simulator)


def test_two_broker_types_share_the_accounts_hour(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_start_date=YESTERDAY - timedelta(days=9))
    run_hourly(settings, fake_clock, until=lambda: all_loaded(ledger), hours=6)
    assert {record.window_id for record in ledger.windows()} == {"api:20250219-20250228", "oauth:20250219-20250228"}
    assert len(creates(simulator)) == 2
    assert_okx_limits_held(simulator)


def test_after_an_outage_the_missed_days_cost_one_create_and_then_each_new_day_its_own(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=YESTERDAY)
    sync(settings, fake_clock)
    fake_clock.advance(timedelta(days=3))  # three days down; history (yesterday) was requested
    report = sync(settings, fake_clock).report
    daily = [record for record in ledger.windows() if record.kind is WindowKind.DAILY]
    assert [record.window_id for record in daily] == ["api:20250301-20250303"]
    assert report.created == "api:20250301-20250303"
    fake_clock.advance(timedelta(days=1))
    sync(settings, fake_clock)
    daily = [record for record in ledger.windows() if record.kind is WindowKind.DAILY]
    assert [record.window.days for record in daily] == [3, 1]


def test_existing_files_are_adopted_without_a_create(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=date(2025, 1, 1))
    simulator.state.seed_file(DEFAULT_API_KEY, "api", date(2025, 1, 1), date(2025, 1, 31))  # from the dashboard
    simulator.state.seed_file(DEFAULT_API_KEY, "api", date(2024, 6, 1), date(2024, 6, 30))  # before our range
    report = sync(settings, fake_clock).report

    assert report.adopted == ["api:20250101-20250131"]
    adopted = ledger.get("api:20250101-20250131")
    assert (adopted.kind, adopted.state) == (WindowKind.ADOPTED, WindowState.LOADED)
    assert report.created == "api:20250201-20250228"  # the create went to what OKX did not have
    assert [call.at for call in simulator.state.calls("POST", REBATE_PATH)] == [fake_clock.now()]
    assert {record.window_id for record in ledger.windows()} == {"api:20250101-20250131", "api:20250201-20250228"}


def test_a_planned_window_that_appears_on_okx_is_adopted_and_the_hour_goes_elsewhere(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=YESTERDAY - timedelta(days=399))
    sync(settings, fake_clock)
    second = ledger.windows()[1]
    simulator.state.seed_file(DEFAULT_API_KEY, "api", second.begin_date, second.end_date)
    fake_clock.advance(CREATE_INTERVAL)
    report = sync(settings, fake_clock).report
    assert report.adopted == [second.window_id]
    assert ledger.get(second.window_id).state is WindowState.LOADED
    assert report.created == ledger.windows()[2].window_id
    assert len(creates(simulator)) == 2


def test_a_rate_limited_create_records_the_budget_and_is_not_retried(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=YESTERDAY)
    assert simulator.state.try_spend_create(DEFAULT_API_KEY, fake_clock.now())  # someone else spent the hour
    report = sync(settings, fake_clock).report
    assert report.create_outcome is CreateOutcome.RATE_LIMITED
    assert simulator.state.count("POST", REBATE_PATH) == 1
    assert ledger.get("api:20250228-20250228").state is WindowState.PLANNED
    assert ledger.create_budget_next_at() == fake_clock.now() + CREATE_INTERVAL
    again = sync(settings, fake_clock).report
    assert again.created is None
    assert simulator.state.count("POST", REBATE_PATH) == 1


def test_wait_polls_within_limits_until_the_file_is_archived(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=YESTERDAY)
    started = fake_clock.now()
    report = sync(settings, fake_clock, wait=True).report
    assert report.downloaded == ["api:20250228-20250228"]
    assert report.pending == []
    assert started + timedelta(hours=2) <= fake_clock.now() <= started + timedelta(hours=2, minutes=10)
    assert_okx_limits_held(simulator)


def test_wait_gives_up_at_the_deadline(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=YESTERDAY)
    started = fake_clock.now()
    report = sync(settings, fake_clock, wait=True, deadline=timedelta(minutes=30)).report
    assert report.pending == ["api:20250228-20250228"]
    assert fake_clock.now() - started <= timedelta(minutes=31)


def test_windows_not_yet_requested_do_not_keep_wait_waiting(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_start_date=YESTERDAY)  # two types, one create an hour
    report = sync(settings, fake_clock, wait=True).report
    assert len(report.downloaded) == 1
    assert [record.state for record in ledger.windows()].count(WindowState.PLANNED) == 1


def test_an_expired_link_is_refreshed(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=date(2025, 1, 1))
    simulator.state.seed_file(DEFAULT_API_KEY, "api", date(2025, 1, 1), date(2025, 1, 31))
    simulator.state.faults.inject(Fault.EXPIRED_LINK, times=1)
    report = sync(settings, fake_clock).report
    assert report.downloaded == ["api:20250101-20250131"]
    assert simulator.state.count("GET", status=403) == 1
    assert ledger.get("api:20250101-20250131").state is WindowState.LOADED


def test_a_truncated_download_is_retried_and_never_archived(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=date(2025, 1, 1))
    simulator.state.seed_file(DEFAULT_API_KEY, "api", date(2025, 1, 1), date(2025, 1, 31))
    simulator.state.faults.inject(Fault.TRUNCATED_DOWNLOAD, times=2)
    report = sync(settings, fake_clock).report
    assert report.downloaded == ["api:20250101-20250131"]
    archived = list((settings.layout.raw / "api").iterdir())
    assert len(archived) == 1
    (record,) = ledger.files("api:20250101-20250131")
    assert archived[0].stat().st_size == record.bytes


def test_a_file_that_keeps_failing_is_marked_failed_and_retried_later(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=date(2025, 1, 1))
    simulator.state.seed_file(DEFAULT_API_KEY, "api", date(2025, 1, 1), date(2025, 1, 31))
    simulator.state.faults.inject(Fault.TRUNCATED_DOWNLOAD, times=3)
    report = sync(settings, fake_clock).report
    failed = ledger.get("api:20250101-20250131")
    assert report.failed
    assert (failed.state, failed.attempts) == (WindowState.FAILED, 1)
    assert not (settings.layout.raw).exists()
    assert failed.next_attempt_at is not None
    fake_clock.set(failed.next_attempt_at)
    sync(settings, fake_clock)
    assert ledger.get("api:20250101-20250131").state is WindowState.LOADED


def test_a_stalled_download_backs_off_without_fresh_links_and_the_pass_goes_on(
    sim_settings: Settings,
    simulator: RunningSimulator,
    fake_clock: FakeClock,
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=date(2025, 1, 1))
    simulator.state.seed_file(DEFAULT_API_KEY, "api", date(2025, 1, 1), date(2025, 1, 31))
    simulator.state.seed_file(DEFAULT_API_KEY, "api", date(2025, 2, 1), date(2025, 2, 28))
    slow = "api:20250101-20250131"
    tried: list[str] = []

    def crawling(href: str, window: RebateWindow, *args: Any, **kwargs: Any) -> ArchivedFile:
        tried.append(window.window_id)
        if window.window_id == slow:
            raise DownloadStalledError("the host stalled")
        return download_file(href, window, *args, **kwargs)

    monkeypatch.setattr(steps, "download_file", crawling)
    report = sync(settings, fake_clock).report
    assert tried.count(slow) == 1, "a stalled host was asked again with fresh links in the same pass"
    assert report.failed == {slow: "the host stalled"}
    assert report.downloaded == ["api:20250201-20250228"]
    stalled = ledger.get(slow)
    assert stalled.state is WindowState.FAILED
    assert stalled.next_attempt_at is not None and stalled.next_attempt_at > fake_clock.now()
    assert ledger.get("api:20250201-20250228").state is WindowState.LOADED


class Crash(BaseException):
    """Stands for the process being killed: nothing after it runs."""


@pytest.mark.parametrize("crash_at", range(5))
@pytest.mark.parametrize("where", ["before", "after"])
def test_a_run_killed_at_any_transition_resumes_without_duplicate_create_or_lost_file(
    sim_settings: Settings,
    simulator: RunningSimulator,
    fake_clock: FakeClock,
    ledger: Ledger,
    crash_at: int,
    where: str,
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=YESTERDAY)
    calls = 0
    original = Ledger.transition
    original_reserve = Ledger.reserve_create

    def crashing(self: Ledger, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == crash_at and where == "before":
            raise Crash
        result = original(self, *args, **kwargs)
        if calls == crash_at and where == "after":
            raise Crash
        return result

    def crashing_reserve(self: Ledger, window_id: str) -> Any:
        if crash_at == 0:
            original_reserve(self, window_id)
            raise Crash  # reserved, and killed before the POST went out
        return original_reserve(self, window_id)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Ledger, "transition", crashing)
        patch.setattr(Ledger, "reserve_create", crashing_reserve)
        try:
            sync(settings, fake_clock)
            fake_clock.advance(timedelta(hours=2))
            sync(settings, fake_clock)
        except Crash:
            pass
    for _ in range(4):  # the restarted schedule, an hour apart
        fake_clock.advance(CREATE_INTERVAL)
        sync(settings, fake_clock)
    assert all_loaded(ledger)
    posts = simulator.state.calls("POST", REBATE_PATH)
    assert len([call for call in posts if call.code == "0"]) == 1, "the window was created more than once"
    assert_okx_limits_held(simulator)
    (record,) = ledger.windows()
    assert len(ledger.files(record.window_id)) == 1
    assert not list((settings.layout.tmp).glob("*.part"))


def refuse_creates_for(window_id: str, error: Exception) -> Callable[..., Any]:
    """OkxClient.create_rebate_file that raises `error` for one window's range and asks OKX for the others."""
    original = OkxClient.create_rebate_file

    def create(self: OkxClient, begin: date, end: date, broker_type: Any) -> Any:
        if f"{begin:%Y%m%d}-{end:%Y%m%d}" in window_id:
            raise error
        return original(self, begin, end, broker_type)

    return create


def test_a_window_okx_always_refuses_backs_off_and_other_windows_get_the_hours(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger, monkeypatch: Any
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=YESTERDAY - timedelta(days=399))
    first = "api:20240126-20240723"  # the oldest history window goes first
    refusal = OkxParameterError("OKX refused GET (code 51000): parameter error", code="51000")
    monkeypatch.setattr(OkxClient, "create_rebate_file", refuse_creates_for(first, refusal))
    started = fake_clock.now()
    reports = run_hourly(settings, fake_clock, until=lambda: False, hours=5)
    second, third = (record.window_id for record in ledger.windows()[1:])
    assert [report.created for report in reports] == [first, second, first, third, None]
    assert first in reports[0].failed and first in reports[2].failed
    refused = ledger.get(first)
    assert (refused.state, refused.attempts) == (WindowState.PLANNED, 2)
    assert refused.next_attempt_at == started + 2 * CREATE_INTERVAL + 4 * CREATE_INTERVAL  # 2 h, then 4 h
    assert_okx_limits_held(simulator)


def test_an_absurd_retry_after_is_believed_for_two_hours_at_most(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger, monkeypatch: Any
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=YESTERDAY)
    far = fake_clock.now() + timedelta(days=365 * 30)
    limited = OkxRateLimitError("rate limit (50011)", code="50011", retry_after=far)
    monkeypatch.setattr(OkxClient, "create_rebate_file", refuse_creates_for("api:20250228-20250228", limited))
    report = sync(settings, fake_clock).report
    assert ledger.create_budget_next_at() == fake_clock.now() + MAX_RETRY_AFTER
    assert any("at most instead" in warning for warning in report.warnings)


def test_a_create_that_may_have_reached_okx_is_settled_with_a_get_not_a_second_post(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger, monkeypatch: Any
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=YESTERDAY)
    original = OkxClient.create_rebate_file

    def reaches_okx_then_times_out(self: OkxClient, begin: date, end: date, broker_type: Any) -> Any:
        original(self, begin, end, broker_type)
        raise OkxTransientError("no answer from OKX (ReadTimeout)")

    monkeypatch.setattr(OkxClient, "create_rebate_file", reaches_okx_then_times_out)
    report = sync(settings, fake_clock).report
    assert ledger.get("api:20250228-20250228").state is WindowState.REQUESTING
    assert any("not sent again" in warning for warning in report.warnings)
    monkeypatch.setattr(OkxClient, "create_rebate_file", original)
    run_hourly(settings, fake_clock, until=lambda: all_loaded(ledger), hours=4)
    assert all_loaded(ledger)
    assert simulator.state.count("POST", REBATE_PATH) == 1, "the create was sent twice"
    assert_okx_limits_held(simulator)


def test_a_quarantined_window_is_downloaded_and_loaded_again_when_retried(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=date(2025, 1, 1))
    window_id = "api:20250101-20250131"
    simulator.state.seed_file(DEFAULT_API_KEY, "api", date(2025, 1, 1), date(2025, 1, 31))
    simulator.state.faults.inject(Fault.MALFORMED_FILE, times=1, how=Corruption.BAD_AMOUNT)
    sync(settings, fake_clock)
    assert ledger.get(window_id).state is WindowState.QUARANTINED
    with pytest.raises(UsageError, match=r"is requested: OKX was asked for its file at .* retry it after"):
        retry_windows(settings, fake_clock, [window_id, "api:20250201-20250228"])  # requested a moment ago
    assert retry_windows(settings, fake_clock, [window_id]) == [window_id]
    report = sync(settings, fake_clock).report
    assert report.loaded.get(window_id, 0) > 0
    assert ledger.get(window_id).state is WindowState.LOADED
    assert len(ledger.files(window_id)) == 2, "the quarantined file stays archived beside the good one"
    with pytest.raises(UsageError, match="is loaded"):
        retry_windows(settings, fake_clock, [window_id])


def test_a_pass_a_little_early_for_the_hour_waits_for_it_instead_of_losing_it(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_start_date=date(2024, 1, 1))  # several history windows to create
    sync(settings, fake_clock)
    first = creates(simulator)[-1]
    fake_clock.set(first + CREATE_INTERVAL - timedelta(seconds=20))  # the hourly schedule, 20 s ahead of the hour
    report = sync(settings, fake_clock).report
    assert report.created is not None
    assert creates(simulator)[-1] == first + CREATE_INTERVAL  # waited the 20 s, not the hour
    assert_okx_limits_held(simulator)

    fake_clock.set(creates(simulator)[-1] + CREATE_INTERVAL - CREATE_WAIT - timedelta(seconds=1))
    report = sync(settings, fake_clock).report
    assert report.created is None and len(creates(simulator)) == 2  # too early to wait: the hour is not forced
    assert report.create_next_at == first + 2 * CREATE_INTERVAL


UTC8 = timezone(timedelta(hours=8))


def test_a_get_answered_with_another_ranges_file_is_never_loaded_as_the_window(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=date(2025, 1, 1))
    window_id = "api:20250101-20250228"
    sync(settings, fake_clock)  # plans the window and spends the hour on it
    simulator.state.faults.inject(Fault.SHORT_RANGE, times=1)
    fake_clock.advance(timedelta(hours=2))
    syncer, scope = syncer_for(settings, fake_clock), PassScope(date(2025, 1, 1), YESTERDAY, ("api",))
    report = scope.report()
    syncer.poll(scope, report)  # no listing first (e.g. its GET was rate limited): the window's own GET answers
    syncer.download(scope, report)
    syncer.close()

    assert ledger.get(window_id).state is WindowState.REQUESTED
    assert ledger.files(window_id) == []
    assert any("a file of 20250101-20250130, not 20250101-20250228" in warning for warning in report.warnings)

    fake_clock.advance(CREATE_INTERVAL)
    run_hourly(settings, fake_clock, until=lambda: ledger.get(window_id).is_done, hours=3)
    assert ledger.get(window_id).state is WindowState.LOADED
    (archived,) = ledger.files(window_id)
    assert archived.path.startswith("raw/api/20250101_20250228_")
    assert "api:20250101-20250130" not in {record.window_id for record in ledger.windows()}, "it overlaps: not adopted"
    assert_okx_limits_held(simulator)


def test_a_listed_file_made_before_its_last_day_ended_is_never_adopted(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=date(2025, 1, 1))
    made_mid_day = datetime(2025, 2, 1, 11, tzinfo=UTC8)
    simulator.state.seed_file(DEFAULT_API_KEY, "api", date(2025, 1, 31), date(2025, 2, 1), made_mid_day)
    report = sync(settings, fake_clock).report

    assert report.adopted == []
    assert [record.window_id for record in ledger.windows()] == ["api:20250101-20250228"]
    run_hourly(settings, fake_clock, until=lambda: all_loaded(ledger), hours=4)
    assert all_loaded(ledger)
    (archived,) = ledger.files()
    assert archived.window_id == "api:20250101-20250228", "Feb 1 comes from a file made after it ended"


def test_a_window_whose_own_range_okx_made_during_its_last_day_is_quarantined_not_loaded(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=date(2025, 1, 1))
    made_mid_day = datetime(2025, 2, 28, 12, tzinfo=UTC8)
    simulator.state.seed_file(DEFAULT_API_KEY, "api", date(2025, 1, 1), date(2025, 2, 28), made_mid_day)
    run_hourly(settings, fake_clock, until=lambda: ledger.windows()[0].is_done, hours=4)

    (record,) = ledger.windows()
    assert record.state is WindowState.QUARANTINED
    assert record.last_error is not None
    assert "first generated the file of 20250101-20250228 at 2025-02-28 12:00" in record.last_error
    assert "before 2025-02-28 ended" in record.last_error
    assert ledger.files() == [], "nothing of the partial file is downloaded or loaded"


def test_a_create_okx_never_lists_is_asked_again_with_a_backoff(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=date(2025, 1, 1))
    window_id = "api:20250101-20250228"
    simulator.state.faults.inject(Fault.LOST_CREATE, times=2)
    reports = run_hourly(settings, fake_clock, until=lambda: ledger.get(window_id).is_done, hours=24)

    assert ledger.get(window_id).state is WindowState.LOADED
    attempts = query(ledger, f"SELECT attempted_at FROM create_attempts WHERE window_id = '{window_id}' ORDER BY 1")
    stamps = [row[0] for row in attempts]
    assert len(stamps) == 3, "the lost create is asked again, and again after a longer wait"
    first_wait, second_wait = stamps[1] - stamps[0], stamps[2] - stamps[1]
    assert timedelta(hours=5) <= first_wait < second_wait, "3 h not listed, then a backoff that grows"
    warnings = [warning for report in reports for warning in report.warnings]
    assert sum(f"{window_id}: OKX has not listed the file" in warning for warning in warnings) == 2
    assert_okx_limits_held(simulator)


def test_retry_asks_okx_again_for_a_file_it_is_overdue_with(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock, ledger: Ledger
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=date(2025, 1, 1))
    window_id = "api:20250101-20250228"
    simulator.state.faults.inject(Fault.LOST_CREATE, times=1)
    sync(settings, fake_clock)
    fake_clock.advance(timedelta(hours=1))
    with pytest.raises(UsageError, match=r"is requested: .* retry it after 2025-03-01 05:00 UTC"):
        retry_windows(settings, fake_clock, [window_id])
    fake_clock.advance(timedelta(hours=2, minutes=1))
    assert retry_windows(settings, fake_clock, [window_id]) == [window_id]
    assert ledger.get(window_id).state is WindowState.PLANNED
    report = sync(settings, fake_clock).report
    assert report.created == window_id
    assert len(creates(simulator)) == 2


WORKERS = pytest.mark.parametrize("backend", ["duckdb", "postgres"])
"""Two workers on one ledger, embedded or shared."""


def two_workers_on_a_finished_file(
    backend: str, request: pytest.FixtureRequest, sim_settings: Settings, clock: FakeClock
) -> tuple[PassScope, Syncer, Syncer]:
    """Two workers' syncers on one ledger (DuckDB, or PostgreSQL for `postgres`) whose one window's file OKX has
    just finished; the caller closes them."""
    state_url = request.getfixturevalue("state_url") if backend == "postgres" else None
    settings = sim_settings.replace(
        rebates_broker_types=("api",), rebates_start_date=date(2025, 1, 1), rebates_state_url=state_url
    )
    sync(settings, clock)
    clock.advance(timedelta(hours=2))
    return PassScope(date(2025, 1, 1), YESTERDAY, ("api",)), syncer_for(settings, clock), syncer_for(settings, clock)


@WORKERS
def test_a_poll_that_waited_for_its_get_never_moves_a_window_another_pass_moved_on(
    backend: str,
    request: pytest.FixtureRequest,
    sim_settings: Settings,
    simulator: RunningSimulator,
    fake_clock: FakeClock,
) -> None:
    scope, slow, quick = two_workers_on_a_finished_file(backend, request, sim_settings, fake_clock)
    window_id = "api:20250101-20250228"
    ask = slow.client.get_rebate_link

    def the_other_pass_runs_while_this_get_waits(begin: date, end: date, broker_type: Any) -> list[RebateLink]:
        quick.poll(scope, scope.report())
        quick.download(scope, scope.report())
        ask(begin, end, broker_type)
        return []  # what OKX said a moment before the other pass asked

    slow.client.get_rebate_link = the_other_pass_runs_while_this_get_waits  # type: ignore[method-assign]
    report = scope.report()
    slow.poll(scope, report)

    assert report.polled == {window_id: "moved by another process"}
    assert quick.ledger.get(window_id).state is WindowState.DOWNLOADED
    ledger = quick.ledger
    events = query(ledger, f"SELECT from_state, to_state FROM window_events WHERE window_id = '{window_id}'")
    assert ("downloaded", "requested") not in events
    slow.close()
    quick.close()


@WORKERS
def test_a_download_another_worker_finished_first_leaves_its_move_standing(
    backend: str,
    request: pytest.FixtureRequest,
    sim_settings: Settings,
    simulator: RunningSimulator,
    fake_clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scope, slow, quick = two_workers_on_a_finished_file(backend, request, sim_settings, fake_clock)
    window_id = "api:20250101-20250228"
    slow.poll(scope, scope.report())

    def the_other_worker_archives_it_first(*args: Any, **kwargs: Any) -> ArchivedFile:
        monkeypatch.setattr(steps, "download_file", download_file)
        quick.download(scope, scope.report())
        return download_file(*args, **kwargs)

    monkeypatch.setattr(steps, "download_file", the_other_worker_archives_it_first)
    report = scope.report()
    slow.download(scope, report)  # read the window finished; records its file once the other moved it on

    assert report.downloaded == [] and report.failed == {}
    record = quick.ledger.get(window_id)
    assert record.state is WindowState.DOWNLOADED
    assert len(quick.ledger.files(window_id)) == 1, "the same bytes: one archived file, downloaded twice"
    slow.close()
    quick.close()
