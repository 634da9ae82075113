"""The acquisition steps of a pass: discover OKX's files, plan windows, spend the hourly create, poll, download."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial

import httpx

from pipeline.acquire.download import (
    DownloadError,
    DownloadRules,
    DownloadStalledError,
    DownloadTooLargeError,
    LinkExpiredError,
    UnsafeLinkError,
    download_file,
)
from pipeline.acquire.fit import LinkDays, UnfinishedDay, UnfitLink, check_complete, check_fits, link_days
from pipeline.archive import clean_temp
from pipeline.clock import Clock
from pipeline.config import Settings
from pipeline.domain import CREATE_INTERVAL, CREATE_WAIT, MAX_RETRY_AFTER, OVERDUE_AFTER, BrokerType
from pipeline.ledger import (
    CreateOutcome,
    Ledger,
    OverlapError,
    StaleStateError,
    WindowRecord,
    WindowState,
    open_ledger,
)
from pipeline.okx.client import OkxClient, RebateLink
from pipeline.okx.errors import (
    OkxAuthError,
    OkxBrokerTypeError,
    OkxError,
    OkxNotSentError,
    OkxOAuthError,
    OkxPermissionError,
    OkxRateLimitError,
    OkxTransientError,
)
from pipeline.okx.throttle import GetLimiter, open_limiter
from pipeline.pass_types import PassScope, SyncReport
from pipeline.windows import DEFAULT_SCOPE, RebateWindow, WindowKind

log = logging.getLogger(__name__)

DOWNLOAD_TRIES_PER_PASS = 3
"""Fresh links asked for one window in one pass before the window is marked failed until later."""

ACCOUNT_REFUSALS = (OkxAuthError, OkxPermissionError, OkxBrokerTypeError, OkxOAuthError)
"""Refusals of the account or its settings, not of one window: the pass stops with the setting to fix."""

REQUESTING_GRACE = timedelta(minutes=10)
"""A create reserved longer ago than this with no outcome was cut off by a crash (a live one takes seconds)."""


def broker_scope(broker_type: BrokerType | None) -> str:
    """The ledger's name for a broker type (`default` when the broker has one type and none is sent)."""
    return broker_type.value if broker_type is not None else DEFAULT_SCOPE


def scope_broker_type(scope: str) -> BrokerType | None:
    """The `brokerType` to send for a ledger scope."""
    return None if scope == DEFAULT_SCOPE else BrokerType(scope)


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
        self.poll_interval = timedelta(seconds=settings.rebates_poll_interval)

    def forget_answers(self) -> None:
        """Drop the links and answers OKX gave: a later round asks afresh (links age)."""
        self.answers = OkxAnswers()

    def close(self) -> None:
        """Close the OKX client's connections, and the ledger's and the limiter's (PostgreSQL's, held for the pass)."""
        self.client.close()
        self.ledger.close()
        self.limiter.close()

    # ------------------------------------------------------------------ the steps

    def discover(self, scope: PassScope, report: SyncReport) -> None:
        """List OKX's files and adopt those that fit, settle creates a crash cut off, and plan the missing days."""
        removed = clean_temp(self.settings.layout)
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
        self._recover_requesting(scope.scopes, report)
        now = self.clock.now()
        for record in self.waiting(scope):
            if record.window_id in self.answers.asked or not record.poll_due(now, self.poll_interval):
                continue
            links = self._get(partial(self._ask, record))
            if links is None:
                return
            self.answers.asked.add(record.window_id)
            link = self._pick(record, links, report)
            if record.window_id in report.quarantined:
                continue
            if link is None:
                report.polled[record.window_id] = self._not_listed(record, now, report)
                continue
            self._apply_link(self.ledger.get(record.window_id), link, adopting=False)
            report.polled[record.window_id] = link.state

    def download(self, scope: PassScope, report: SyncReport) -> None:
        """Download and archive every file OKX has finished (a fresh link is asked for when none is at hand)."""
        for record in self.waiting(scope):
            if record.state is WindowState.FINISHED:
                self._download(record, report)

    def finish(self, scope: PassScope, report: SyncReport) -> None:
        """Note what is pending and unfinished, when the next create and poll are due, and files overdue at OKX."""
        now = self.clock.now()
        waiting = self.waiting(scope)
        report.pending = [record.window_id for record in waiting]
        report.create_next_at = self.ledger.create_budget_next_at()
        report.next_poll_at = min((record.next_poll_at(now, self.poll_interval) for record in waiting), default=None)
        report.unfinished = {
            record.window_id: record.state.value
            for record in self.ledger.windows()
            if scope.holds(record) and not record.is_done
        }
        for record in waiting:
            if record.overdue(now):
                report.overdue.append(record.window_id)
                report.warn(
                    f"{record.window_id} was requested {record.asked_at:%Y-%m-%d %H:%M} UTC and is not ready after "
                    f"{OVERDUE_AFTER}; OKX says to contact support past 3 hours"
                )

    # ------------------------------------------------------------------ discover

    def _discover(self, scope: str, first_day: date, last_day: date, report: SyncReport) -> None:
        """List every file OKX has (no create budget spent) and adopt the ones that fit the ledger.

        A file is adopted only as a window of exactly its days that overlaps no other window, and only if OKX first
        generated it after its last day had ended: a file made during its last day holds that day in part, for good.
        """
        links = self._get(lambda: self.client.list_rebate_links(scope_broker_type(scope)))
        if links is None:
            return
        records = {record.window_id: record for record in self.ledger.windows(broker_type=scope)}
        for link in links:
            placed = self._link_window(scope, link, report)
            if placed is None:
                continue
            window, days = placed
            record = records.get(window.window_id)
            try:
                check_complete(link, days, self.settings.rebates_tz)
            except UnfinishedDay as exc:
                if record is not None and record.open_to_okx(self.clock.now()):
                    self._spoiled(record, exc, report)
                else:
                    log.info("not adopting a listed file: %s", exc)
                continue
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

    def _link_window(self, scope: str, link: RebateLink, report: SyncReport) -> tuple[RebateWindow, LinkDays] | None:
        """The window a listed file covers and its days, from beginTime/endTime in REBATES_TZ (endTime starts the
        last day)."""
        try:
            days = link_days(link, self.settings.rebates_tz)
        except UnfitLink as exc:
            report.warn(f"a file OKX lists cannot be placed: {exc}")
            return None
        try:
            return RebateWindow(scope, days.begin, days.end, self.ledger.account), days
        except ValueError as exc:
            log.info("skipping a listed file: %s", exc)
            return None

    def _pick(self, record: WindowRecord, links: list[RebateLink], report: SyncReport) -> RebateLink | None:
        """The file OKX answered that is exactly this window's days, made after the last of them; None if none is.

        A file of other days is never loaded as this window (warned; the window keeps waiting for its own). A file of
        exactly its days that OKX first made before the last day ended quarantines the window (`_spoiled`).
        """
        for link in links:
            try:
                check_fits(link, record.begin_date, record.end_date, self.settings.rebates_tz)
            except UnfinishedDay as exc:
                self._spoiled(record, exc, report)
                return None
            except UnfitLink as exc:
                report.warn(f"{record.window_id}: {exc}")
                continue
            return link
        return None

    def _spoiled(self, record: WindowRecord, exc: UnfinishedDay, report: SyncReport) -> None:
        """OKX's one file for the window's range lacks part of its last day: quarantine the window, loudly.

        OKX answers every later request for the same range with that same file, so no retry can mend it: a person
        asks OKX support to regenerate it, or loads the day from a file obtained otherwise (`rebates load`).
        """
        reason = (
            f"{exc}; OKX answers every request for this range with that file: ask OKX support to regenerate it, or "
            "load these days from another file with `rebates load`"
        )
        if not _moved(lambda: self.ledger.quarantine(record, reason)):
            return
        report.quarantined[record.window_id] = reason
        report.warn(f"{record.window_id} quarantined: {reason}")

    def _not_listed(self, record: WindowRecord, now: datetime, report: SyncReport) -> str:
        """OKX does not list the window's file: note the poll, or, OVERDUE_AFTER after the create, plan a new one."""
        try:
            if record.state is WindowState.REQUESTED and record.overdue(now):
                replanned = self.ledger.unlisted(record)
                report.warn(
                    f"{record.window_id}: {replanned.last_error}; a new create goes after "
                    f"{replanned.next_attempt_at:%Y-%m-%d %H:%M} UTC"
                )
                return "not listed: planned again"
            self.ledger.mark_polled(record)
        except StaleStateError as exc:
            log.info("%s", exc)
            return "moved by another process"
        return "not listed yet"

    def _apply_link(self, record: WindowRecord, link: RebateLink, *, adopting: bool) -> bool:
        """Move a window to what OKX says of it; returns True when this adopted an existing file."""
        self.answers.asked.add(record.window_id)
        if not record.open_to_okx(self.clock.now()):
            return False
        finished = link.state == "finished"
        if finished:
            self.answers.links[record.window_id] = link
        detail = "adopted a file OKX already had" if adopting else f"OKX says {link.state}"
        moved = _moved(
            lambda: self.ledger.observe(record, finished=finished, server_requested_at=link.c_time, detail=detail)
        )
        return moved and adopting

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
                    link = self._pick(record, links, report)
                    if record.window_id in report.quarantined:
                        continue
                    if link is not None:
                        self._apply_link(record, link, adopting=False)
                        continue
                replan = partial(
                    self.ledger.replan, record.window_id, "the create did not reach OKX before the process stopped"
                )
                if _moved(replan):
                    report.warn(f"{record.window_id}: an interrupted create never reached OKX; planned again")

    # ------------------------------------------------------------------ create

    def create(self, scope: PassScope, report: SyncReport) -> None:
        """Spend the account's hourly create on the most useful planned window, if the hour allows.

        The hour is sacred: a create that may have reached OKX is never sent again (the window stays `requesting`
        and a later pass asks OKX with a GET whether it went through); a window OKX refuses for its own reasons
        backs off, so the next hours go to other windows; a Retry-After is believed for at most MAX_RETRY_AFTER.
        """
        now = self.clock.now()
        candidates = [
            record
            for record in self.ledger.in_scopes(scope.scopes)
            if record.create_due(now) and record.end_date >= scope.begin and record.begin_date <= scope.end
        ]
        if not candidates:
            return
        chosen = min(candidates, key=create_priority)
        try:
            attempt = self.ledger.reserve_create(chosen.window_id)
            if attempt is None:
                attempt = self._wait_for_the_hour(chosen)
        except StaleStateError as exc:  # another process moved the window first: the hour stays unspent
            log.info("%s", exc)
            return
        if attempt is None:
            report.create_next_at = self.ledger.create_budget_next_at()
            log.info("the hourly create is spent until %s", report.create_next_at)
            return
        report.created = chosen.window_id
        try:
            self._send_create(chosen, attempt, report)
        except StaleStateError as exc:  # moved meanwhile (a file loaded by hand): that move stands, the hour is spent
            report.warn(f"the create for {chosen.window_id} was sent, but {exc}")

    def _send_create(self, chosen: WindowRecord, attempt: int, report: SyncReport) -> None:
        """POST the create for the reserved window and record what OKX said, in the ledger and the report."""
        now = self.clock.now()  # after any wait for the hour
        self.progress(f"asking OKX to generate {chosen.window_id}")
        broker_type = scope_broker_type(chosen.broker_type)
        try:
            result = self.client.create_rebate_file(chosen.begin_date, chosen.end_date, broker_type)
        except OkxRateLimitError as exc:
            until = self._rate_limited_until(now, exc, report)
            self.ledger.record_create(attempt, CreateOutcome.RATE_LIMITED, budget_until=until, detail=str(exc))
            self.ledger.replan(chosen.window_id, f"rate limited: {exc}")
            report.create_outcome = CreateOutcome.RATE_LIMITED
            report.create_refusal = f"rate limited (50011): the hourly create is spent until {until:%H:%M} UTC"
            report.warn(f"OKX refused the create for {chosen.window_id} (50011): budget spent until {until:%H:%M} UTC")
            return
        except OkxNotSentError as exc:
            self.ledger.record_create(attempt, CreateOutcome.FAILED, detail=str(exc))
            self.ledger.replan(chosen.window_id, str(exc))
            report.create_outcome = CreateOutcome.FAILED
            report.create_refusal = f"never reached OKX ({exc}); the hour counts as spent"
            report.warn(f"the create for {chosen.window_id} never reached OKX ({exc}); the hour counts as spent")
            return
        except OkxTransientError as exc:
            self.ledger.record_create(attempt, CreateOutcome.RESERVED, detail=f"outcome unknown: {exc}")
            report.create_outcome = CreateOutcome.RESERVED
            report.warn(
                f"the create for {chosen.window_id} may have reached OKX ({exc}); it is not sent again: a pass "
                f"after {REQUESTING_GRACE} asks OKX whether the file is being generated"
            )
            return
        except ACCOUNT_REFUSALS as exc:
            self.ledger.record_create(attempt, CreateOutcome.FAILED, detail=str(exc))
            self.ledger.replan(chosen.window_id, str(exc))
            raise
        except OkxError as exc:
            self.ledger.record_create(attempt, CreateOutcome.FAILED, detail=str(exc))
            refused = self.ledger.refuse_create(chosen.window_id, str(exc))
            report.create_outcome = CreateOutcome.FAILED
            report.create_refusal = f"refused ({exc}); asked again after {refused.next_attempt_at:%Y-%m-%d %H:%M} UTC"
            report.failed[chosen.window_id] = str(exc)
            report.warn(
                f"OKX refused the create for {chosen.window_id} ({exc}); other windows get the next hours, and "
                f"this one is asked again after {refused.next_attempt_at:%Y-%m-%d %H:%M} UTC"
            )
            return
        outcome = CreateOutcome.EXISTED if result.existed else CreateOutcome.CREATED
        self.ledger.record_create(attempt, outcome, server_ts=result.first_requested_at)
        self.ledger.requested(chosen.window_id, outcome, result.first_requested_at)
        report.create_outcome = outcome

    def _wait_for_the_hour(self, chosen: WindowRecord) -> int | None:
        """Reserve the hour for `chosen` once it frees, if that is within CREATE_WAIT (else None, at once).

        Another process may take the hour meanwhile: the reservation is tried again, never forced.
        """
        next_at = self.ledger.create_budget_next_at()
        now = self.clock.now()
        if next_at is None or next_at - now > CREATE_WAIT:
            return None
        wait = max((next_at - now).total_seconds(), 0.0)
        self.progress(f"waiting {wait:.0f} s for the account's create hour")
        log.info("the create hour frees in %.0f s; waiting for it", wait)
        self.clock.sleep(wait)
        if self.ledger.get(chosen.window_id).state is not WindowState.PLANNED:
            return None
        return self.ledger.reserve_create(chosen.window_id)

    def _rate_limited_until(self, now: datetime, exc: OkxRateLimitError, report: SyncReport) -> datetime:
        """When the next create may go after a 50011: an hour on, or OKX's Retry-After, believed up to a bound."""
        until = max(now + CREATE_INTERVAL, exc.retry_after or now)
        if until - now > MAX_RETRY_AFTER:
            report.warn(
                f"OKX asked to wait until {until:%Y-%m-%d %H:%M} UTC before the next create; waiting "
                f"{MAX_RETRY_AFTER} at most instead"
            )
            until = now + MAX_RETRY_AFTER
        return until

    # ------------------------------------------------------------------ poll and download

    def waiting(self, scope: PassScope) -> list[WindowRecord]:
        """Windows requested (by anyone) whose file is not archived yet: what `--wait` waits for."""
        return [record for record in self.ledger.in_scopes(scope.scopes) if record.waiting_for_okx]

    def _ask(self, record: WindowRecord) -> list[RebateLink]:
        """GET type=false for this window's range: every file OKX answers with that is ongoing or finished.

        Which of them (if any) is this window's file is `_pick`'s to say: OKX's answer is checked, not trusted.
        """
        self.progress(f"asking OKX about {record.window_id}")
        links = self.client.get_rebate_link(record.begin_date, record.end_date, scope_broker_type(record.broker_type))
        return [link for link in links if link.state in ("ongoing", "finished")]

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
                link = self._pick(record, links or [], report)
                if link is None or link.state != "finished":
                    return
            self.progress(f"downloading {record.window_id}")
            try:
                archived = download_file(
                    link.file_href,
                    window,
                    self.settings.layout,
                    DownloadRules.of(self.settings),
                    transport=self.download_transport,
                )
            except (DownloadTooLargeError, DownloadStalledError, UnsafeLinkError) as exc:
                last_error = str(exc)  # a fresh link would fare no better: the window backs off instead
                break
            except (LinkExpiredError, DownloadError) as exc:
                last_error = str(exc)
                log.warning("%s: %s; asking for a fresh link", record.window_id, exc)
                self.answers.links.pop(record.window_id, None)
                continue
            # Moved meanwhile by another worker: the file stays archived and indexed.
            file = archived.file_record(window)
            if _moved(partial(self.ledger.record_archived, record, file, archived.source_host)):
                report.downloaded.append(record.window_id)
            return
        if not _moved(lambda: self.ledger.fail(record, last_error)):
            return
        report.failed[record.window_id] = last_error


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
    limiter = open_limiter(settings, clock, on_wait=lambda seconds: say(f"waiting {seconds:.0f} s for a GET slot"))
    client = OkxClient(settings, clock=clock, before_request=limiter.before_request)
    ledger = open_ledger(settings, clock)
    return Syncer(settings, client, ledger, limiter, clock, progress=progress, answers=answers)


def _moved(move: Callable[[], object]) -> bool:
    """Make a ledger move; False (logged) when another process moved the window first: its move stands."""
    try:
        move()
    except StaleStateError as exc:
        log.info("%s", exc)
        return False
    return True
