"""One acquisition pass: discover OKX's files, plan windows, spend the hourly create, poll, download and archive."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path

import httpx

from pipeline.clock import Clock
from pipeline.config import BrokerType, Settings, SettingsError
from pipeline.download import DownloadError, DownloadTooLargeError, LinkExpiredError, clean_temp, download_file
from pipeline.ingest import ingest_due, record_archived, retry_delay
from pipeline.ledger import (
    WAITING_FOR_OKX,
    CreateOutcome,
    FileRecord,
    Ledger,
    OverlapError,
    StaleStateError,
    WindowRecord,
    WindowState,
)
from pipeline.okx.client import OkxClient, RebateLink
from pipeline.okx.errors import OkxError, OkxRateLimitError, OkxTransientError
from pipeline.okx.limits import CREATE_INTERVAL, GENERATION_TIME
from pipeline.okx.throttle import GetLimiter
from pipeline.windows import DEFAULT_SCOPE, RebateWindow, WindowKind, yesterday

log = logging.getLogger(__name__)

DOWNLOAD_TRIES_PER_PASS = 3
"""Fresh links asked for one window in one pass before the window is marked failed until later."""

REQUESTING_GRACE = timedelta(minutes=10)
"""A create reserved longer ago than this with no outcome was cut off by a crash (a live one takes seconds)."""

OVERDUE_AFTER = timedelta(hours=3)
"""OKX's docs: contact support when a file has not appeared 3 hours after the create."""


def broker_scope(broker_type: BrokerType | None) -> str:
    """The ledger's name for a broker type (`default` when the broker has one type and none is sent)."""
    return broker_type.value if broker_type is not None else DEFAULT_SCOPE


def scope_broker_type(scope: str) -> BrokerType | None:
    """The `brokerType` to send for a ledger scope."""
    return None if scope == DEFAULT_SCOPE else BrokerType(scope)


@dataclass
class SyncReport:
    """What one pass did, for the CLI's summary, the flow's artifact and the tests."""

    begin: date
    end: date
    adopted: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    created: str | None = None
    create_outcome: CreateOutcome | None = None
    create_next_at: datetime | None = None
    polled: dict[str, str] = field(default_factory=dict)
    downloaded: list[str] = field(default_factory=list)
    loaded: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        """Record and log a warning."""
        log.warning("%s", message)
        self.warnings.append(message)

    def merge(self, step: SyncReport) -> SyncReport:
        """Add what a later step of the same pass did (the flows run each step as its own task)."""
        self.adopted += step.adopted
        self.planned += step.planned
        if step.created is not None:
            self.created, self.create_outcome = step.created, step.create_outcome
        self.create_next_at = step.create_next_at or self.create_next_at
        self.polled.update(step.polled)
        self.downloaded += step.downloaded
        self.loaded.update(step.loaded)
        self.quarantined.update(step.quarantined)
        self.failed.update(step.failed)
        self.warnings += [warning for warning in step.warnings if warning not in self.warnings]
        self.pending = step.pending or self.pending
        return self


@dataclass(frozen=True)
class PassScope:
    """What a pass covers: its days and the ledger's broker scopes; plain values a flow hands from task to task."""

    begin: date
    end: date
    scopes: tuple[str, ...]

    def report(self) -> SyncReport:
        """An empty report for a step of this pass."""
        return SyncReport(self.begin, self.end)


def pass_scope(
    settings: Settings, clock: Clock, begin: date | None, end: date | None, broker_type: BrokerType | None
) -> PassScope:
    """The days (default REBATES_START_DATE .. yesterday in REBATES_TZ) and broker scopes a pass covers."""
    first_day = begin or settings.rebates_start_date
    if first_day is None:
        raise SettingsError("REBATES_START_DATE is not set: the first day of history to collect (or pass --begin)")
    last_day = end or yesterday(clock.now(), settings.rebates_tz)
    configured = settings.rebates_broker_types
    if broker_type is not None:
        if configured and broker_type not in configured:
            raise SettingsError(
                f"REBATES_BROKER_TYPES is {','.join(configured)}: --broker-type {broker_type} is not one of them"
            )
        scopes = [broker_scope(broker_type)]
    else:
        scopes = [broker_scope(item) for item in configured] or [DEFAULT_SCOPE]
    return PassScope(first_day, last_day, tuple(scopes))


@dataclass
class OkxAnswers:
    """What a pass learnt from OKX: fresh links by window, and which windows it already asked about.

    Kept in memory only (a link is a bearer URL to the broker's data): never logged, stored or passed as a parameter.
    """

    links: dict[str, RebateLink] = field(default_factory=dict)
    asked: set[str] = field(default_factory=set)


class Syncer:
    """Runs acquisition passes. Every decision is read from and written to the ledger as it is made."""

    def __init__(
        self,
        settings: Settings,
        client: OkxClient,
        ledger: Ledger,
        limiter: GetLimiter,
        clock: Clock,
        *,
        progress: Callable[[str], None] | None = None,
        download_transport: httpx.BaseTransport | None = None,
        answers: OkxAnswers | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.ledger = ledger
        self.limiter = limiter
        self.clock = clock
        self.progress = progress or (lambda message: None)
        self.download_transport = download_transport
        self.answers = answers if answers is not None else OkxAnswers()

    def close(self) -> None:
        """Close the OKX client's connections."""
        self.client.close()

    # ------------------------------------------------------------------ the pass

    def run(
        self,
        *,
        begin: date | None = None,
        end: date | None = None,
        broker_type: BrokerType | None = None,
        wait: bool = False,
        deadline: timedelta = timedelta(hours=3),
    ) -> SyncReport:
        """One pass: discover → create (if the hour allows) → poll and download → load.

        With `wait`, keeps polling and loading until nothing is waiting for OKX or `deadline` has passed.
        """
        scope = pass_scope(self.settings, self.clock, begin, end, broker_type)
        report = scope.report()
        self.answers = OkxAnswers()
        self.discover(scope, report)
        self.create(scope, report)
        give_up_at = self.clock.now() + deadline
        while True:
            self.poll(scope, report)
            self.download(scope, report)
            self.load(scope, report)
            if not wait or not self.waiting(scope) or self.clock.now() >= give_up_at:
                break
            self.wait_for_next_poll(scope, give_up_at)
        self.finish(scope, report)
        return report

    def discover(self, scope: PassScope, report: SyncReport) -> None:
        """List OKX's files and adopt those that fit, settle creates a crash cut off, and plan the missing days."""
        removed = clean_temp(self.settings.rebates_data_dir)
        if removed:
            log.info("removed %d partial download(s) left by an earlier run", removed)
        for name in scope.scopes:
            self.progress(f"listing OKX's files ({name})")
            self._discover(name, scope.begin, scope.end, report)
        self._recover_requesting(scope.scopes, report)
        if scope.begin > scope.end:
            report.warn(f"nothing to plan: {scope.begin} is after {scope.end}")
            return
        for name in scope.scopes:
            report.planned += [record.window_id for record in self.ledger.plan(name, scope.begin, scope.end)]

    def poll(self, scope: PassScope, report: SyncReport) -> None:
        """Ask OKX (a GET each, within its limits) about every requested window due a poll; note what it says."""
        now = self.clock.now()
        interval = timedelta(seconds=self.settings.rebates_poll_interval)
        for record in self.waiting(scope):
            if record.state is WindowState.REQUESTING or record.window_id in self.answers.asked:
                continue
            if record.state is WindowState.FAILED and record.next_attempt_at and record.next_attempt_at > now:
                continue
            last_heard = max(filter(None, (record.polled_at, record.requested_at)), default=None)
            if record.state is not WindowState.FINISHED and last_heard and now - last_heard < interval:
                continue  # asked moments ago (or just created): a GET now would only spend the minute's budget
            links = self._get(partial(self._ask, record))
            if links is None:
                return
            self.answers.asked.add(record.window_id)
            if not links:
                self.ledger.transition(record.window_id, record.state, polled_at=self.clock.now())
                report.polled[record.window_id] = "not listed yet"
                continue
            self._apply_link(self.ledger.get(record.window_id), links[0], adopting=False)
            report.polled[record.window_id] = links[0].state

    def download(self, scope: PassScope, report: SyncReport) -> None:
        """Download and archive every file OKX has finished (a fresh link is asked for when none is at hand)."""
        for record in self.waiting(scope):
            if record.state is WindowState.FINISHED:
                self._download(record, report)

    def load(self, scope: PassScope, report: SyncReport) -> None:
        """Load what was archived (now, or by an earlier pass that stopped before loading)."""
        for outcome in ingest_due(self.settings, self.ledger, self.clock, scopes=set(scope.scopes)):
            if outcome.result is not None:
                report.loaded[outcome.window_id] = outcome.result.rows_loaded
            elif outcome.state is WindowState.QUARANTINED:
                report.quarantined[outcome.window_id] = outcome.reason or ""
            else:
                report.failed[outcome.window_id] = outcome.reason or ""

    def wait_for_next_poll(self, scope: PassScope, give_up_at: datetime) -> None:
        """Sleep until the earliest waiting window is due another poll (never past `give_up_at`); forget old answers."""
        self._sleep_until_next_poll(self.waiting(scope), give_up_at)
        self.answers = OkxAnswers()

    def finish(self, scope: PassScope, report: SyncReport) -> None:
        """Note what is still pending, when the next create is allowed, and files overdue past OKX's 3 hours."""
        waiting = self.waiting(scope)
        report.pending = [record.window_id for record in waiting]
        report.create_next_at = self.ledger.create_budget_next_at()
        for record in waiting:
            since = record.requested_at or record.planned_at
            if record.state is not WindowState.FINISHED and self.clock.now() - since > OVERDUE_AFTER:
                report.warn(
                    f"{record.window_id} was requested {since:%Y-%m-%d %H:%M} UTC and is not ready after "
                    f"{OVERDUE_AFTER}; OKX says to contact support past 3 hours"
                )

    # ------------------------------------------------------------------ discover

    def _discover(self, scope: str, first_day: date, last_day: date, report: SyncReport) -> None:
        """List every file OKX has (no create budget spent) and adopt the ones that fit the ledger."""
        links = self._get(lambda: self.client.list_rebate_links(scope_broker_type(scope)))
        if links is None:
            return
        records = {record.window_id: record for record in self.ledger.windows(broker_type=scope)}
        for link in links:
            window = self._link_window(scope, link, report)
            if window is None:
                continue
            record = records.get(window.window_id)
            if record is None:
                if window.end < first_day or window.begin > last_day:
                    continue
                try:
                    (record,) = self.ledger.add_windows([(window, WindowKind.ADOPTED)])
                except OverlapError as exc:
                    log.info("OKX has a file for %s that does not match the ledger's windows (%s)", window, exc)
                    continue
            if self._apply_link(record, link, adopting=record.state is WindowState.PLANNED):
                report.adopted.append(record.window_id)

    def _link_window(self, scope: str, link: RebateLink, report: SyncReport) -> RebateWindow | None:
        """The window a listed file covers, read from beginTime/endTime in REBATES_TZ (endTime starts the last day)."""
        if link.begin_time is None or link.end_time is None:
            return None
        tz = self.settings.rebates_tz
        begin_local, end_local = link.begin_time.astimezone(tz), link.end_time.astimezone(tz)
        if begin_local.time() != datetime.min.time() or end_local.time() != datetime.min.time():
            report.warn(
                f"OKX's file starting {link.begin_time.isoformat()} does not start at midnight in REBATES_TZ="
                f"{tz}; check REBATES_TZ (OKX's days look like UTC+8)"
            )
            return None
        try:
            return RebateWindow(scope, begin_local.date(), end_local.date())
        except ValueError as exc:
            log.info("skipping a listed file: %s", exc)
            return None

    def _apply_link(self, record: WindowRecord, link: RebateLink, *, adopting: bool) -> bool:
        """Move a window to what OKX says of it; returns True when this adopted an existing file."""
        self.answers.asked.add(record.window_id)
        now = self.clock.now()
        open_states = (WindowState.PLANNED, *WAITING_FOR_OKX, WindowState.FAILED)
        if record.state not in open_states or (record.state is WindowState.FAILED and record.file_id is not None):
            return False
        if record.state is WindowState.FAILED and record.next_attempt_at and record.next_attempt_at > now:
            return False
        changes: dict[str, object] = {"polled_at": now}
        if link.c_time is not None:
            changes["server_requested_at"] = link.c_time
        if record.requested_at is None:
            changes["requested_at"] = now
        if link.state == "finished":
            self.answers.links[record.window_id] = link
            if record.finished_at is None:
                changes["finished_at"] = now
            target = WindowState.FINISHED
        else:
            target = WindowState.ONGOING
        detail = "adopted a file OKX already had" if adopting else f"OKX says {link.state}"
        try:
            self.ledger.transition(record.window_id, target, expected=open_states, detail=detail, **changes)
        except StaleStateError as exc:
            log.info("%s", exc)
            return False
        return adopting

    def _recover_requesting(self, scopes: Iterable[str], report: SyncReport) -> None:
        """A window left `requesting` by a crash: ask OKX (a GET, no create) whether the create went through."""
        now = self.clock.now()
        for scope in scopes:
            for record in self.ledger.windows(broker_type=scope):
                if record.state is not WindowState.REQUESTING or now - record.updated_at < REQUESTING_GRACE:
                    continue
                if record.window_id not in self.answers.asked:
                    links = self._get(partial(self._ask, record))
                    if links is None:
                        continue
                    self.answers.asked.add(record.window_id)
                    if links:
                        self._apply_link(record, links[0], adopting=False)
                        continue
                try:
                    self.ledger.transition(
                        record.window_id,
                        WindowState.PLANNED,
                        expected=[WindowState.REQUESTING],
                        detail="the create did not reach OKX before the process stopped",
                    )
                    report.warn(f"{record.window_id}: an interrupted create never reached OKX; planned again")
                except StaleStateError as exc:
                    log.info("%s", exc)

    # ------------------------------------------------------------------ create

    def create(self, scope: PassScope, report: SyncReport) -> None:
        """Spend the account's hourly create on the most useful planned window, if the hour allows."""
        candidates = [
            record
            for name in scope.scopes
            for record in self.ledger.windows(broker_type=name)
            if record.state is WindowState.PLANNED and record.end_date >= scope.begin and record.begin_date <= scope.end
        ]
        if not candidates:
            return
        chosen = min(candidates, key=create_priority)
        attempt = self.ledger.reserve_create(chosen.window_id)
        if attempt is None:
            report.create_next_at = self.ledger.create_budget_next_at()
            log.info("the hourly create is spent until %s", report.create_next_at)
            return
        report.created = chosen.window_id
        self.progress(f"asking OKX to generate {chosen.window_id}")
        broker_type = scope_broker_type(chosen.broker_type)
        now = self.clock.now()
        try:
            result = self.client.create_rebate_link(chosen.begin_date, chosen.end_date, broker_type)
        except OkxRateLimitError as exc:
            until = max(now + CREATE_INTERVAL, exc.retry_after or now)
            self.ledger.record_create(attempt, CreateOutcome.RATE_LIMITED, budget_until=until, detail=str(exc))
            self._replan(chosen, f"rate limited: {exc}")
            report.create_outcome = CreateOutcome.RATE_LIMITED
            report.warn(f"OKX refused the create for {chosen.window_id} (50011): budget spent until {until:%H:%M} UTC")
            return
        except OkxTransientError as exc:
            self.ledger.record_create(attempt, CreateOutcome.FAILED, detail=str(exc))
            self._replan(chosen, str(exc))
            report.create_outcome = CreateOutcome.FAILED
            report.warn(f"the create for {chosen.window_id} failed ({exc}); the hour counts as spent")
            return
        except OkxError as exc:
            self.ledger.record_create(attempt, CreateOutcome.FAILED, detail=str(exc))
            self._replan(chosen, str(exc))
            raise
        outcome = CreateOutcome.EXISTED if result.existed else CreateOutcome.CREATED
        self.ledger.record_create(attempt, outcome, server_ts=result.first_requested_at)
        self.ledger.transition(
            chosen.window_id,
            WindowState.REQUESTED,
            detail=f"create: {outcome.value}",
            requested_at=now,
            server_requested_at=result.first_requested_at,
            attempts=0,
            last_error=None,
        )
        report.create_outcome = outcome

    def _replan(self, record: WindowRecord, reason: str) -> None:
        self.ledger.transition(
            record.window_id, WindowState.PLANNED, expected=[WindowState.REQUESTING], detail=reason, last_error=reason
        )

    # ------------------------------------------------------------------ poll and download

    def waiting(self, scope: PassScope) -> list[WindowRecord]:
        """Windows requested (by anyone) whose file is not archived yet: what `--wait` waits for."""
        return [
            record
            for record in self.ledger.windows()
            if record.broker_type in scope.scopes
            and (
                record.state in WAITING_FOR_OKX
                or (record.state is WindowState.FAILED and record.file_id is None and record.requested_at is not None)
            )
        ]

    def _ask(self, record: WindowRecord) -> list[RebateLink]:
        """GET type=false for exactly this window's range."""
        self.progress(f"asking OKX about {record.window_id}")
        links = self.client.get_rebate_link(record.begin_date, record.end_date, scope_broker_type(record.broker_type))
        return [link for link in links if link.state in ("ongoing", "finished")][:1]

    def _get(self, call: Callable[[], list[RebateLink]]) -> list[RebateLink] | None:
        """A GET through the client; a 50011 fills the limiter's minute and ends this pass's GETs (None)."""
        try:
            return call()
        except OkxRateLimitError as exc:
            self.limiter.penalize()
            log.warning("OKX rate-limited a GET (%s); no more GETs this pass", exc)
            return None

    def _download(self, record: WindowRecord, report: SyncReport) -> None:
        """Download with fresh links until whole (a 403 or a cut-off transfer asks OKX for a new link)."""
        window = record.window
        last_error = ""
        for attempt in range(DOWNLOAD_TRIES_PER_PASS):
            link = self.answers.links.get(record.window_id)
            if attempt > 0 or link is None:
                links = self._get(lambda: self._ask(record))
                if not links or links[0].state != "finished":
                    return
                link = links[0]
            self.progress(f"downloading {record.window_id}")
            try:
                archived = download_file(
                    link.file_href,
                    window,
                    self.settings.rebates_data_dir,
                    max_bytes=self.settings.rebates_max_download_bytes,
                    timeout=self.settings.rebates_http_timeout,
                    transport=self.download_transport,
                )
            except DownloadTooLargeError as exc:
                last_error = str(exc)
                break
            except (LinkExpiredError, DownloadError) as exc:
                last_error = str(exc)
                log.warning("%s: %s; asking for a fresh link", record.window_id, exc)
                self.answers.links.pop(record.window_id, None)
                continue
            file_id = archived.file_id(window)
            record_archived(
                self.ledger,
                record,
                FileRecord(file_id, record.window_id, archived.relative_path, archived.bytes, archived.sha256,
                           archived.format.value),
                archived.source_host,
            )  # fmt: skip
            report.downloaded.append(record.window_id)
            return
        attempts = record.attempts + 1
        self.ledger.transition(
            record.window_id,
            WindowState.FAILED,
            detail=last_error,
            attempts=attempts,
            next_attempt_at=self.clock.now() + retry_delay(attempts),
            last_error=last_error,
        )
        report.failed[record.window_id] = last_error

    def _sleep_until_next_poll(self, pending: list[WindowRecord], give_up_at: datetime) -> None:
        """Sleep until the earliest pending window is due another poll (never past the deadline)."""
        now = self.clock.now()
        interval = timedelta(seconds=self.settings.rebates_poll_interval)
        due: list[datetime] = []
        for record in pending:
            if record.state is WindowState.FAILED and record.next_attempt_at:
                due.append(record.next_attempt_at)
            elif record.state is WindowState.REQUESTED and record.requested_at and record.polled_at is None:
                due.append(min(record.requested_at + GENERATION_TIME, now + interval))
            else:
                due.append((record.polled_at or now) + interval)
        wake = min(max(min(due), now), give_up_at)
        seconds = max((wake - now).total_seconds(), 0.0)
        self.progress(f"waiting {seconds:.0f} s for OKX ({len(pending)} file(s) pending)")
        self.clock.sleep(seconds)


def create_priority(record: WindowRecord) -> tuple[int, float]:
    """Daily increments newest first, then everything else oldest first."""
    if record.kind is WindowKind.DAILY:
        return (0, -record.begin_date.toordinal())
    return (1, record.begin_date.toordinal())


def syncer_for(
    settings: Settings,
    clock: Clock,
    *,
    progress: Callable[[str], None] | None = None,
    answers: OkxAnswers | None = None,
) -> Syncer:
    """A Syncer wired to OKX, the ledger and the shared GET limiter as the settings say.

    `answers`: what earlier steps of the same pass learnt from OKX (the flows share it between their tasks).
    """
    say = progress or (lambda message: None)
    limiter = GetLimiter(
        settings.state_dir, clock, on_wait=lambda seconds: say(f"waiting {seconds:.0f} s for a GET slot")
    )
    client = OkxClient(settings, clock=clock, before_request=limiter.before_request)
    ledger = Ledger(Path(settings.rebates_db), clock, lock_timeout=settings.rebates_db_lock_timeout)
    return Syncer(settings, client, ledger, limiter, clock, progress=progress, answers=answers)
