"""What a pass covers and what it did: the types the pass driver, its steps, the flows and the CLI share."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime

from pipeline.config import DEFAULT_ACCOUNT
from pipeline.ledger import CreateOutcome, WindowRecord

log = logging.getLogger(__name__)


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
    unfinished: dict[str, str] = field(default_factory=dict)
    """Windows of the pass's days that are neither loaded nor quarantined, with their state."""
    next_poll_at: datetime | None = None
    """When the earliest window still waiting for OKX is due another poll (None when none waits)."""
    overdue: list[str] = field(default_factory=list)
    """Windows requested longer than OVERDUE_AFTER ago whose file OKX still has not finished (each also warned)."""
    create_refusal: str | None = None
    """Why OKX refused or failed this pass's create (50011, or a transient error after retries), in words."""

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
            self.create_refusal = step.create_refusal
        self.create_next_at = step.create_next_at or self.create_next_at
        self.polled.update(step.polled)
        self.downloaded += step.downloaded
        self.loaded.update(step.loaded)
        self.quarantined.update(step.quarantined)
        self.failed.update(step.failed)
        self.warnings += [warning for warning in step.warnings if warning not in self.warnings]
        self.pending = step.pending or self.pending
        return self

    def note_status(self, status: SyncReport) -> None:
        """Take what a what-is-pending step found, replacing what an earlier round of the same pass found."""
        self.pending, self.unfinished, self.next_poll_at = status.pending, status.unfinished, status.next_poll_at
        self.overdue = status.overdue
        self.create_next_at = status.create_next_at


@dataclass(frozen=True)
class PassScope:
    """What a pass covers: its days and the ledger's broker scopes; plain values a flow hands from task to task."""

    begin: date
    end: date
    scopes: tuple[str, ...]
    account: str = DEFAULT_ACCOUNT

    def report(self) -> SyncReport:
        """An empty report for a step of this pass."""
        return SyncReport(self.begin, self.end)

    def holds(self, record: WindowRecord) -> bool:
        """Whether a window is of this pass's account and scopes and shares a day with its days."""
        return (
            record.account == self.account
            and record.broker_type in self.scopes
            and record.begin_date <= self.end
            and record.end_date >= self.begin
        )
