"""Turn an archived file into loaded rows, or quarantine it with its reason: the step after a download."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from pipeline.clock import Clock
from pipeline.config import Settings
from pipeline.download import archive_local_file
from pipeline.ledger import FileRecord, Ledger, WindowRecord, WindowState
from pipeline.load import LoadMismatchError, LoadResult, load_window, publish_snapshot, refresh_orders
from pipeline.parse import RejectedFile, parse_rebate_file
from pipeline.windows import RebateWindow, WindowKind

log = logging.getLogger(__name__)

RETRY_BACKOFF_FIRST = timedelta(minutes=5)
RETRY_BACKOFF_MAX = timedelta(hours=6)


@dataclass(frozen=True)
class IngestOutcome:
    """What became of one window's file: loaded (with its result), quarantined or failed (with the reason)."""

    window_id: str
    state: WindowState
    result: LoadResult | None = None
    reason: str | None = None


def retry_delay(attempts: int) -> timedelta:
    """How long to wait before trying a failed step again: 5 min, 10, 20 … up to 6 h."""
    backoff: timedelta = RETRY_BACKOFF_FIRST * 2 ** max(attempts - 1, 0)
    return min(backoff, RETRY_BACKOFF_MAX)


def ingest_window(settings: Settings, ledger: Ledger, record: WindowRecord, clock: Clock) -> IngestOutcome:
    """Parse the window's latest archived file and load it; a broken file is quarantined, never partly loaded."""
    if record.file_id is None:
        raise ValueError(f"{record.window_id} has no archived file to load")
    archived = next(item for item in ledger.files(record.window_id) if item.file_id == record.file_id)
    path = settings.rebates_data_dir / archived.path
    try:
        parsed = parse_rebate_file(path, tz=settings.rebates_tz, max_unzipped_bytes=settings.rebates_max_unzipped_bytes)
        result = load_window(
            settings.rebates_db, record, archived, parsed, clock, lock_timeout=settings.rebates_db_lock_timeout
        )
    except RejectedFile as exc:
        reason = f"{archived.path}: {exc}"
        log.error("%s quarantined: %s", record.window_id, reason)
        ledger.transition(record.window_id, WindowState.QUARANTINED, detail=reason, last_error=reason)
        return IngestOutcome(record.window_id, WindowState.QUARANTINED, reason=reason)
    except LoadMismatchError as exc:
        attempts = record.attempts + 1
        ledger.transition(
            record.window_id,
            WindowState.FAILED,
            detail=str(exc),
            attempts=attempts,
            next_attempt_at=clock.now() + retry_delay(attempts),
            last_error=str(exc),
        )
        return IngestOutcome(record.window_id, WindowState.FAILED, reason=str(exc))
    return IngestOutcome(record.window_id, WindowState.LOADED, result=result)


def ingest_due(
    settings: Settings, ledger: Ledger, clock: Clock, *, scopes: set[str] | None = None
) -> list[IngestOutcome]:
    """Load every archived file not loaded yet (downloaded, or a failed load whose retry time has come)."""
    now = clock.now()
    outcomes = []
    for record in ledger.windows():
        if scopes is not None and record.broker_type not in scopes:
            continue
        due_retry = (
            record.state is WindowState.FAILED
            and record.file_id is not None
            and (record.next_attempt_at is None or record.next_attempt_at <= now)
        )
        if record.state is WindowState.DOWNLOADED or due_retry:
            outcomes.append(ingest_window(settings, ledger, record, clock))
    finish_pass(settings, loaded=any(outcome.state is WindowState.LOADED for outcome in outcomes))
    return outcomes


def finish_pass(settings: Settings, *, loaded: bool) -> None:
    """Bring rebate_orders up to date with every load so far, then publish the analysts' snapshot if data changed.

    Runs even when this pass loaded nothing: a pass that died between a load and this refresh left its orders
    listed in pending_order_refresh, and this is where they are recomputed. The snapshot is published only after
    the refresh, so analysts never see rebate_orders behind rebate_details.
    """
    refreshed = refresh_orders(settings.rebates_db, lock_timeout=settings.rebates_db_lock_timeout)
    if loaded or refreshed:
        snapshot = publish_snapshot(
            settings.rebates_db, settings.snapshot_path, lock_timeout=settings.rebates_db_lock_timeout
        )
        log.info("published the analysts' read-only snapshot at %s", snapshot)


def record_archived(ledger: Ledger, record: WindowRecord, archived: FileRecord, source_host: str) -> WindowRecord:
    """Index an archived file and point its window at it (state downloaded, ready to load)."""
    ledger.record_file(archived, source_host)
    return ledger.transition(
        record.window_id,
        WindowState.DOWNLOADED,
        detail=archived.path,
        file_id=archived.file_id,
        downloaded_at=ledger.clock.now(),
        attempts=0,
        next_attempt_at=None,
        last_error=None,
    )


def load_by_hand(settings: Settings, ledger: Ledger, source: Path, window: RebateWindow, clock: Clock) -> IngestOutcome:
    """`rebates load`: archive a file obtained by hand under the window (adding the window if new) and load it."""
    known = {record.window_id: record for record in ledger.windows(broker_type=window.broker_type)}
    record = known.get(window.window_id)
    if record is None:
        (record,) = ledger.add_windows([(window, WindowKind.ADOPTED)])
    archived = archive_local_file(source, window, settings.rebates_data_dir)
    file_record = FileRecord(
        archived.file_id(window), window.window_id, archived.relative_path, archived.bytes, archived.sha256,
        archived.format.value,
    )  # fmt: skip
    record = record_archived(ledger, record, file_record, archived.source_host)
    outcome = ingest_window(settings, ledger, record, clock)
    finish_pass(settings, loaded=outcome.state is WindowState.LOADED)
    return outcome
