"""Turn an archived file into loaded rows, or quarantine it with its reason: the step after a download."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.archive import archive_local_file
from pipeline.clock import Clock
from pipeline.config import Settings
from pipeline.db import connect
from pipeline.ledger import Ledger, StaleStateError, WindowRecord, WindowState
from pipeline.logs import first_line
from pipeline.state import copy_ledger_to_duckdb, duckdb_writes
from pipeline.store.lake import mark_pending_orders, publish_lake
from pipeline.store.load import DatabaseLimits, LoadResult, load_window, refresh_orders
from pipeline.store.parse import NotARebateFile, RebateFile, RejectedFile
from pipeline.windows import RebateWindow, WindowKind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestOutcome:
    """What became of one window's file: loaded (with its result), quarantined or failed (with the reason)."""

    window_id: str
    state: WindowState
    result: LoadResult | None = None
    reason: str | None = None


def ingest_window(settings: Settings, ledger: Ledger, record: WindowRecord, clock: Clock) -> IngestOutcome:
    """Load the window's latest archived file, or settle why not; whatever goes wrong stays with this window.

    A file that is no rebate file at all (an error page, empty, cut short) is downloaded again (`Ledger.refetch`);
    a rebate file with bad data is quarantined with the reason; any other error (a bug, a panic in native code, a
    full disk) fails the window with backoff (`Ledger.fail`), so every other window still loads in the same pass.
    Only KeyboardInterrupt and SystemExit go on up.
    """
    archived = ledger.current_file(record)
    path = settings.rebates_data_dir / archived.path
    try:
        source = RebateFile(
            path,
            tz=settings.rebates_tz,
            max_unzipped_bytes=settings.rebates_max_unzipped_bytes,
            window=(record.begin_date, record.end_date),
        )
        with duckdb_writes(settings):
            result = load_window(
                settings.rebates_db,
                record,
                archived,
                source,
                clock,
                lock_timeout=settings.rebates_db_lock_timeout,
                limits=database_limits(settings),
            )
        _mark_loaded(ledger, record, result)
    except StaleStateError as exc:
        return _moved_meanwhile(ledger, record, exc)
    except NotARebateFile as exc:
        reason = f"{archived.path}: {exc}"
        log.warning("%s: %s", record.window_id, reason)
        return _settle(ledger, record, reason, lambda: ledger.refetch(record, reason))
    except RejectedFile as exc:
        reason = f"{archived.path}: {exc}"
        log.error("%s quarantined: %s", record.window_id, reason)
        return _settle(ledger, record, reason, lambda: ledger.quarantine(record, reason))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a panic in native code (polars' PanicException) is a BaseException
        reason = f"{archived.path}: could not load ({type(exc).__name__}: {first_line(exc)}); retried after a backoff"
        log.exception("%s failed: %s", record.window_id, reason)
        return _settle(ledger, record, reason, lambda: ledger.fail(record, reason))
    return IngestOutcome(record.window_id, WindowState.LOADED, result=result)


def _settle(ledger: Ledger, record: WindowRecord, reason: str, move: Callable[[], WindowRecord]) -> IngestOutcome:
    """Move the window to what became of its file, unless another process moved it first."""
    try:
        settled = move()
    except StaleStateError as exc:
        return _moved_meanwhile(ledger, record, exc)
    return IngestOutcome(record.window_id, settled.state, reason=reason)


def _moved_meanwhile(ledger: Ledger, record: WindowRecord, exc: StaleStateError) -> IngestOutcome:
    """Another process moved the window while this one loaded it: its move stands (nothing of this load committed)."""
    log.warning("%s: %s", record.window_id, exc)
    return IngestOutcome(record.window_id, ledger.get(record.window_id).state, reason=str(exc))


def _mark_loaded(ledger: Ledger, record: WindowRecord, result: LoadResult) -> None:
    """The load committed in DuckDB: move the window to loaded, in either ledger (DuckDB or PostgreSQL) alike.

    A crash between the load's commit and this leaves the window downloaded; the next pass loads the same file again,
    finds its rows already committed (a skipped load) and comes here: nothing is loaded twice. The window then gets
    the rows the database holds if it does not show them yet (its mark was missing); another worker may also have
    loaded and marked it first.
    """
    if not result.skipped:
        ledger.mark_loaded(record, rows=result.rows_loaded, detail=f"{result.rows_loaded} rows from {result.file_id}")
        return
    healed = record.loaded_at is None or record.rows_loaded != result.rows_loaded
    ledger.mark_loaded(
        record,
        rows=result.rows_loaded if healed else None,
        detail="already loaded" + (" (its mark was missing: healed)" if healed else ""),
    )


def database_limits(settings: Settings) -> DatabaseLimits:
    """DuckDB's memory, threads and spill directory for loads (REBATES_DB_MEMORY_LIMIT, REBATES_DB_THREADS)."""
    return DatabaseLimits(
        memory_limit=settings.rebates_db_memory_limit,
        threads=settings.rebates_db_threads,
        temp_directory=settings.layout.tmp / "duckdb",
    )


def ingest_due(
    settings: Settings, ledger: Ledger, clock: Clock, *, scopes: set[str] | None = None
) -> list[IngestOutcome]:
    """Load every archived file not loaded yet (downloaded, or a failed load whose retry time has come)."""
    now = clock.now()
    outcomes = [
        ingest_window(settings, ledger, record, clock)
        for record in ledger.windows()
        if (scopes is None or record.broker_type in scopes) and record.due_for_load(now)
    ]
    refresh_and_publish(settings, loaded=any(outcome.state is WindowState.LOADED for outcome in outcomes))
    return outcomes


def refresh_and_publish(settings: Settings, *, loaded: bool) -> None:
    """Bring rebate_orders up to date with every load so far, then publish the changed partitions to the analysts' lake.

    Runs even when this pass loaded nothing: a pass that died between a load and this refresh left its orders
    marked in pending_order_ranges, and one that died before its publish left loads the lake does not have yet;
    both are finished here. The database is held from before the refresh to the end of the publish, so no other
    process loads in between, and the lake is published only after the refresh: analysts never see rebate_orders
    behind rebate_details. `loaded` only says whether to log when nothing needed publishing. It opens the database
    once; a pass with nothing to refresh or publish reads a little and writes nothing (no file, no fsync).

    With REBATES_STATE_URL the whole of it holds the DuckDB write lock in PostgreSQL (one writer across machines),
    and the ledger's rebate_windows and rebate_files are copied into DuckDB first, for the lake and the reports.
    """
    with duckdb_writes(settings), connect(settings.rebates_db, lock_timeout=settings.rebates_db_lock_timeout) as held:
        copy_ledger_to_duckdb(settings, held)
        mark_pending_orders(held)
        refresh_orders(held, limits=database_limits(settings))
        published = publish_lake(held, settings.layout)
    if published.partitions_written or published.partitions_removed or loaded:
        log.info(
            "published the analysts' lake at %s: %d partition file(s) written, %d removed (%s bytes), up to load %d",
            settings.layout.lake,
            published.partitions_written,
            published.partitions_removed,
            f"{published.bytes_written:,}",
            published.last_load_id,
        )
    if published.entry_point_written:
        log.info("wrote the analysts' entry point at %s (any DuckDB 1.4+ opens it)", settings.layout.analysts)


def load_by_hand(settings: Settings, ledger: Ledger, source: Path, window: RebateWindow, clock: Clock) -> IngestOutcome:
    """`rebates load`: archive a file obtained by hand under the window (adding the window if new) and load it."""
    known = {record.window_id: record for record in ledger.windows(broker_type=window.broker_type)}
    record = known.get(window.window_id)
    if record is None:
        (record,) = ledger.add_windows([(window, WindowKind.ADOPTED)])
    log.debug("archiving %s as %s", source, window.window_id)
    archived = archive_local_file(source, window, settings.layout)
    record = ledger.record_archived(record, archived.file_record(window), archived.source_host)
    outcome = ingest_window(settings, ledger, record, clock)
    refresh_and_publish(settings, loaded=outcome.state is WindowState.LOADED)
    return outcome
