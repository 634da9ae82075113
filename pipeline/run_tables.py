"""What the runs' table and progress artifacts show, as plain rows: each window of a pass's days and its state."""

from __future__ import annotations

from pipeline.alerts import redact
from pipeline.clock import Clock
from pipeline.config import Settings
from pipeline.ledger import DONE_STATES, open_ledger
from pipeline.pass_types import PassScope

WindowRow = dict[str, str | int | None]


def window_rows(settings: Settings, clock: Clock, scope: PassScope) -> list[WindowRow]:
    """Every window of the pass's broker scopes that shares a day with its days, oldest first, with its state."""
    with open_ledger(settings, clock) as ledger:
        records = [record for record in ledger.windows() if scope.holds(record)]
    return [
        {
            "window": record.window_id,
            "kind": record.kind.value,
            "state": record.state.value,
            "requested (UTC)": f"{record.requested_at:%Y-%m-%d %H:%M}" if record.requested_at else None,
            "rows loaded": record.rows_loaded,
            "last error": redact(record.last_error) if record.last_error else None,
        }
        for record in sorted(records, key=lambda record: (record.begin_date, record.broker_type))
    ]


def percent_done(rows: list[WindowRow]) -> float:
    """The share of the windows in `rows` that are loaded or quarantined, 0-100 (0 while none is planned)."""
    if not rows:
        return 0.0
    done = {state.value for state in DONE_STATES}
    return 100.0 * sum(1 for row in rows if row["state"] in done) / len(rows)
