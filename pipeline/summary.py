"""What sync passes did, in words: the lines `rebates sync` prints and the markdown the flows publish."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from pipeline.pass_types import SyncReport

Rows = list[tuple[str, list[str]]]


def summary_rows(reports: Sequence[SyncReport], unfinished: Mapping[str, str] | None = None) -> Rows:
    """One (label, items) row per step, over every pass in `reports` (nothing secret: ids, counts, reasons)."""
    polled = {window: answer for report in reports for window, answer in report.polled.items()}
    loaded = {window: rows for report in reports for window, rows in report.loaded.items()}
    quarantined = {window: reason for report in reports for window, reason in report.quarantined.items()}
    failed = {window: reason for report in reports for window, reason in report.failed.items()}
    rows: Rows = [
        ("adopted (files OKX already had)", [window for report in reports for window in report.adopted]),
        ("planned", [window for report in reports for window in report.planned]),
        (
            "created",
            [f"{report.created} ({report.create_outcome})" for report in reports if report.created is not None],
        ),
        ("polled", [f"{window}: {answer}" for window, answer in polled.items()]),
        ("downloaded", [window for report in reports for window in report.downloaded]),
        ("loaded (rows)", [f"{window}: {rows:,}" for window, rows in loaded.items()]),
        ("quarantined", [f"{window}: {reason}" for window, reason in quarantined.items()]),
        ("failed", [f"{window}: {reason}" for window, reason in failed.items()]),
        ("pending (waiting for OKX)", list(reports[-1].pending) if reports else []),
    ]
    if unfinished is not None:
        rows.append(("unfinished in range", [f"{window}: {state}" for window, state in unfinished.items()]))
    return rows


def summary_markdown(
    title: str,
    reports: Sequence[SyncReport],
    now: datetime,
    *,
    failure: str | None = None,
    unfinished: Mapping[str, str] | None = None,
) -> str:
    """The runs' artifact: a markdown table, one row per step, then the warnings."""
    passes = f"{len(reports)} completed" + (f", then: {failure}" if failure else "")
    rows: list[tuple[str, Sequence[str] | str]] = [("passes", passes), *summary_rows(reports, unfinished)]
    rows.append(("next create allowed", next_create(reports[-1].create_next_at if reports else None, now)))
    lines = [f"# {title}", "", "| step | result |", "|---|---|"]
    lines += [f"| {label} | {cell(value)} |" for label, value in rows]
    warnings = list(dict.fromkeys(warning for report in reports for warning in report.warnings))
    if warnings:
        lines += ["", "## Warnings", "", *(f"- {one_line(warning)}" for warning in warnings)]
    return "\n".join(lines) + "\n"


def next_create(moment: datetime | None, now: datetime) -> str:
    """When the account's next create is allowed, in UTC."""
    if moment is None or moment <= now:
        return "now"
    return f"{moment:%Y-%m-%d %H:%M} UTC (in {round((moment - now).total_seconds() / 60)} min)"


def cell(value: Sequence[str] | str) -> str:
    """A table cell: items joined by line breaks, `-` when empty, pipes escaped."""
    if isinstance(value, str):
        return one_line(value) or "-"
    return "<br>".join(one_line(item) for item in value) or "-"


def one_line(text: str) -> str:
    """Text safe inside a markdown table row."""
    return " ".join(str(text).split()).replace("|", "\\|")
