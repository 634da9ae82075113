"""A pass's report, merged from its steps, reads the same in `rebates sync` and in the flows' artifact."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pipeline.ledger import CreateOutcome
from pipeline.pass_types import PassScope
from pipeline.summary import summary_markdown, summary_rows

NOW = datetime(2026, 1, 2, 3, 0, tzinfo=UTC)
SCOPE = PassScope(date(2025, 12, 1), date(2026, 1, 1), ("api",))


def test_the_steps_of_a_pass_merge_into_one_report() -> None:
    report = SCOPE.report()
    discovered, created, polled, loaded, pending = (SCOPE.report() for _ in range(5))
    discovered.adopted.append("api:20251201-20251210")
    discovered.warn("OKX's file starting ... does not start at midnight")
    created.created, created.create_outcome = "api:20251211-20260101", CreateOutcome.CREATED
    polled.polled["api:20251201-20251210"] = "finished"
    loaded.loaded["api:20251201-20251210"] = 1_234
    pending.pending = ["api:20251211-20260101"]
    pending.create_next_at = NOW + timedelta(minutes=42)
    for step in (discovered, created, polled, loaded, pending):
        report.merge(step)
    rows = dict(summary_rows([report]))
    assert rows["adopted (files OKX already had)"] == ["api:20251201-20251210"]
    assert rows["created"] == ["api:20251211-20260101 (created)"]
    assert rows["loaded (rows)"] == ["api:20251201-20251210: 1,234"]
    assert rows["pending (waiting for OKX)"] == ["api:20251211-20260101"]
    markdown = summary_markdown("sync 2025-12-01..2026-01-01", [report], NOW)
    assert markdown.startswith("# sync 2025-12-01..2026-01-01\n")
    assert "| passes | 1 completed |" in markdown
    assert "| next create allowed | 2026-01-02 03:42 UTC (in 42 min) |" in markdown
    assert "## Warnings" in markdown


def test_a_failure_and_the_unfinished_windows_are_in_the_artifact_and_pipes_are_escaped() -> None:
    report = SCOPE.report()
    report.quarantined["api:20251201-20251210"] = "raw/api/x.csv: column fee | row 3"
    markdown = summary_markdown(
        "backfill", [report], NOW, failure="OKX refused OKX_SECRET_KEY", unfinished={"api:1": "requested"}
    )
    assert "| passes | 1 completed, then: OKX refused OKX_SECRET_KEY |" in markdown
    assert "column fee \\| row 3" in markdown
    assert "| unfinished in range | api:1: requested |" in markdown
    assert "| next create allowed | now |" in markdown
