"""What reports say to people, written once: the glossary, the header's facts, the status and the command's summary."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pipeline.config import DEFAULT_ACCOUNT
from pipeline.report.model import Cell, Report, days_text
from pipeline.report.text import format_amount
from pipeline.windows import RebateWindow

EXACTNESS = (
    "Amounts are USDT, shown with 2 decimals. The workbook's cells hold numbers as Excel does (doubles, about 15 "
    "significant digits); the CSV files and the data lake hold every amount exactly, to 18 decimals."
)
"""Where the exact figures are, said the same way in every format."""

SIGNS = (
    "Amounts are as OKX writes them in its files: volumes, net fee, settlement fee and rebates are positive; fee is "
    "negative (OKX stores the fee a user paid as a negative number). The summary shows it as Fee paid, with its sign "
    "turned, so that less fee paid reads as a fall."
)


def glossary(tz_label: str, *, comparing: bool = True) -> tuple[tuple[str, str], ...]:
    """Every word a report uses for an amount or a count, each amount as OKX's broker API defines it.

    `comparing` False (a statement, which compares no periods) leaves out the words only comparisons use.
    """
    comparisons = {"Fee paid (USDT)", "Change %", "No data"} if not comparing else set()
    return tuple(entry for entry in _entries(tz_label) if entry[0] not in comparisons)


def _entries(tz_label: str) -> tuple[tuple[str, str], ...]:
    """The glossary's every entry, in the order a reader meets the words."""
    return (
        ("Spot volume (USDT)", "Spot trade volume, in USDT (OKX's spotTradeAmt)."),
        ("Derivative volume (USDT)", "Derivative trade volume, in USDT (OKX's derivativeTradeAmt)."),
        ("Fee (USDT)", "The trading fee, in USDT (OKX's fee), negative as OKX stores it: the fee the user paid."),
        ("Fee paid (USDT)", "The fee with its sign turned (positive): less fee paid reads as a fall."),
        (
            "Net fee (USDT)",
            "The fee base for commission settlement after removing data such as commission cards and "
            "counterparties, in USDT (OKX's netFee).",
        ),
        (
            "Settlement fee (USDT)",
            "The fee base before settlement, removing node commission rebates, commission cards, etc., in USDT "
            "(OKX's settlementFee).",
        ),
        ("Broker rebate (USDT)", "The rebate amount to the broker, in USDT (OKX's brokerRebate)."),
        ("Sub-broker rebate (USDT)", "The rebate amount to the sub-broker, in USDT (OKX's suBrokerRebate)."),
        ("User rebate (USDT)", "The rebate amount to the user, in USDT (OKX's userRebate)."),
        ("Signs", SIGNS),
        (
            "Effective rate",
            "Broker rebate divided by net fee, as a percentage. A rate's change is in percentage points (pp): "
            "from 20.00% to 21.50% is +1.50 pp.",
        ),
        ("Share of broker rebate", "A row's part of the period's broker rebate."),
        ("Change %", "The change divided by the previous period's value (its size, so a fall reads negative)."),
        (
            "Orders",
            "Distinct OKX order ids. OKX writes an order once per day it filled on, so an order that filled on two "
            "days counts on each day, and once in the period.",
        ),
        (
            "Users",
            "Distinct user ids (uid). Only OAuth broker files (16 columns) carry a uid; API broker files (14 "
            "columns) do not, so their users read n/a (empty in CSV).",
        ),
        ("Broker code", "The broker code the user's orders were tagged with (OKX's brokerCode)."),
        ("Broker type", "api (API broker) or oauth (OAuth broker): OKX gives each its own files."),
        ("User level", "The user's fee level, e.g. Lv1 or VIP2 (OKX's level); (none) where OKX left it empty."),
        ("Affiliated rebate", "Whether the order had an affiliated rebate that day (OKX's affiliated)."),
        ("Day", f"A calendar day in {tz_label}, the timezone OKX's files count days in."),
        ("Not over yet", f"A day that has not ended yet in {tz_label}: no file can hold it yet."),
        ("No data", "No loaded file holds any day of that period: the figure is unknown, not zero."),
        ("n/a", "Not available: the files carry no uid, so users cannot be counted."),
        (
            "Reconciled",
            "Every figure was set against the archived OKX file it comes from, read again: the rows and all eight "
            "amounts are equal, broker code by broker code and day by day.",
        ),
        ("Total", "The Total row adds the rows up exactly; a count the rows overlap in is counted once there."),
        ("Exact figures", EXACTNESS),
    )


def window_words(window_id: str) -> str:
    """A window as people read it: `api file 2025-01-01 to 2025-01-14` (`account eu, api file ...`)."""
    window = RebateWindow.parse(window_id)
    account = f"account {window.account}, " if window.account != DEFAULT_ACCOUNT else ""
    kind = f"{window.broker_type} file" if window.broker_type != "default" else "file"
    days = f"{window.begin}" if window.begin == window.end else f"{window.begin} to {window.end}"
    return f"{account}{kind} {days}"


def moment(when: datetime, tz_label: str) -> str:
    """`2025-03-01 10:00:00 UTC+08:00 (2025-03-01 02:00:00 UTC)`: a time in the report's timezone, UTC beside it."""
    return f"{when:%Y-%m-%d %H:%M:%S} {zone_note(when, tz_label)}"


def zone_note(when: datetime, tz_label: str) -> str:
    """What follows a local time: its timezone and the same moment in UTC, `UTC+08:00 (2025-03-01 02:00:00 UTC)`."""
    utc = when.astimezone(UTC)
    if when.utcoffset() == timedelta(0):
        return "UTC"
    return f"{tz_label} ({utc:%Y-%m-%d %H:%M:%S} UTC)"


def status_line(report: Report) -> str:
    """Whether the figures can be trusted, in one line: reconciled or not, complete or not."""
    reconciled = (
        "reconciled: every figure equals the loaded OKX files, read again"
        if report.reconciliation_ok
        else "NOT reconciled: some figure differs from the OKX file it comes from (see Reconciliation)"
    )
    if report.missing_days:
        return f"{reconciled}; incomplete: {len(report.missing_days)} day(s) have no loaded file yet"
    return reconciled


def facts(report: Report) -> list[tuple[str, str | datetime]]:
    """The header's label: value lines, in order; Generated at as a datetime (a real date-time in the workbook)."""
    period, previous = report.period, report.previous
    found: list[tuple[str, str | datetime]] = [
        ("Period", f"{period.words}, days in {report.timezone}"),
    ]
    if report.kind == "report":
        found += [("Compared with", previous.words), ("Account", report.account or "all accounts")]
    found += [
        ("Broker code", report.broker_code or "all broker codes"),
        *report.facts,
        ("Generated at", report.shown_generated_at),
        ("Last load", moment_text(report.freshness.last_load, report)),
        ("Latest complete day", str(report.freshness.latest_complete_day or "none yet")),
    ]
    if report.freshness.not_over:
        found.append(("Not over yet", days_text(report.freshness.not_over)))
    found.append(("Files", "; ".join(report.sources) or "none loaded"))
    return found


def moment_text(when: datetime | None, report: Report) -> str:
    """A time as `moment` writes it, in the report's timezone; `never` for None."""
    if when is None:
        return "never"
    offset = report.shown_generated_at.tzinfo
    return moment(when.astimezone(offset) if offset else when, report.timezone)


def summary_values(report: Report) -> dict[str, Cell]:
    """This period's figure of each summary row, by its Metric label (`Net fee (USDT)`, `Orders`)."""
    return {str(record["metric"]): record["this_period"] for record in report.summary.records()}


def _amounts_text(totals: Mapping[str, Cell]) -> str | None:
    """`net fee 1,234.57 USDT, broker rebate 456.79 USDT`, rounded as the tables show them; None without both."""
    net_fee, broker_rebate = totals.get("Net fee (USDT)"), totals.get("Broker rebate (USDT)")
    if not isinstance(net_fee, Decimal) or not isinstance(broker_rebate, Decimal):
        return None
    return f"net fee {format_amount(net_fee)} USDT, broker rebate {format_amount(broker_rebate)} USDT"


def summary_lines(report: Report) -> list[str]:
    """What `rebates report` and `rebates statements` print about a report: period, totals, status, warnings."""
    lines = [f"{report.title}: {report.period.words}, days in {report.timezone}"]
    amounts = _amounts_text(summary_values(report))
    if amounts is not None:
        lines.append(f"  {amounts}")
    lines.append(f"  {status_line(report)}")
    lines += [f"  incomplete: {line}" for line in report.incomplete]
    lines += [f"  warning: {warning}" for warning in report.warnings]
    return lines


def statement_line(report: Report) -> str:
    """A statement in one line for `rebates statements`: its code, orders, net fee, broker rebate and status."""
    totals = summary_values(report)
    amounts = _amounts_text(totals)
    amounts = f", {amounts}" if amounts is not None else ""
    status = "reconciled" if report.reconciliation_ok else "NOT reconciled"
    incomplete = f", incomplete ({len(report.missing_days)} day(s) without a file)" if report.missing_days else ""
    return f"{report.broker_code}: {totals.get('Orders', 0):,} orders{amounts}; {status}{incomplete}"
