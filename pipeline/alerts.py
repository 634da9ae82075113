"""What a run should tell a broker about, as alerts: quarantined windows, overdue files, refused creates, failures.

The flows turn each `Alert` into a Prefect event (`flows/events.py`); automations (`flows/alerts.py`) send those on.
An alert carries window ids and reasons in words, never a credential or a download link.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pipeline.config import DEFAULT_ACCOUNT
from pipeline.pass_types import SyncReport

RESOURCE_PREFIX = "okx-rebates"
"""Every event's resource id starts with this: `okx-rebates.window.<window id>`, `okx-rebates.pass.<flow>[.<acct>]`."""

ACCOUNT_LABEL = "rebates.account"
"""The resource label every event carries: the OKX account it is about (`default` without REBATES_ACCOUNTS)."""

_URL_QUERY = re.compile(r"(https?://[^\s\"'?]+)\?[^\s\"']*")


class AlertKind(StrEnum):
    """The events the pipeline emits; their names are what automations match."""

    WINDOW_QUARANTINED = "rebates.window.quarantined"
    """A downloaded file did not load and was set aside: the window needs a person (`rebates load`, or OKX)."""
    FILE_OVERDUE = "rebates.file.overdue"
    """A requested file is not ready 3 hours after the create: OKX says to contact support."""
    PASS_FAILED = "rebates.pass.failed"  # noqa: S105 - an event name, not a password
    """A step of a pass failed; the reason names the setting to fix, or says it is OKX's side."""
    CREATE_REFUSED = "rebates.create.refused"
    """OKX refused (50011) or failed the hourly create; the hour counts as spent."""


@dataclass(frozen=True)
class Alert:
    """One thing to tell the broker: its kind, what it is about (a window id, or the pass), why, and whose account."""

    kind: AlertKind
    subject: str
    reason: str
    details: dict[str, str] = field(default_factory=dict)
    account: str = DEFAULT_ACCOUNT

    @property
    def resource_id(self) -> str:
        """The event's resource: the window (its id names its account), or the pass (`….pass.<kind>[.<account>]`)."""
        if self.kind is AlertKind.PASS_FAILED:
            suffix = "" if self.account == DEFAULT_ACCOUNT else f".{self.account}"
            return f"{RESOURCE_PREFIX}.pass.{self.subject}{suffix}"
        return f"{RESOURCE_PREFIX}.window.{self.subject}"

    @property
    def resource_name(self) -> str:
        """What a notification calls it: the window id or the pass, with `(account eu)` for a named account."""
        return self.subject if self.account == DEFAULT_ACCOUNT else f"{self.subject} (account {self.account})"


def alerts_for(
    reports: Sequence[SyncReport], failures: Sequence[Exception], run_kind: str, account: str = DEFAULT_ACCOUNT
) -> list[Alert]:
    """The alerts one account's passes call for: each quarantined window, overdue file and refused create once, then
    the first failure (the one the account's pass fails with).

    `run_kind` names the pass in a failure's resource (`sync`, `backfill`); `account` is whose passes they were.
    """
    alerts: dict[tuple[AlertKind, str], Alert] = {}

    def add(kind: AlertKind, subject: str, reason: str, **details: str) -> None:
        if account != DEFAULT_ACCOUNT:
            details["account"] = account
        alerts.setdefault((kind, subject), Alert(kind, subject, redact(reason), details, account))

    for report in reports:
        for window_id, reason in report.quarantined.items():
            add(AlertKind.WINDOW_QUARANTINED, window_id, reason or "quarantined", window=window_id)
        if report.created is not None and report.create_refusal is not None:
            add(AlertKind.CREATE_REFUSED, report.created, report.create_refusal, window=report.created)
    if reports:
        for window_id in reports[-1].overdue:
            add(
                AlertKind.FILE_OVERDUE,
                window_id,
                "requested more than 3 hours ago and still not ready at OKX: OKX says to contact its support",
                window=window_id,
            )
    if failures:
        add(AlertKind.PASS_FAILED, run_kind, str(failures[0]) or type(failures[0]).__name__, error=_name(failures[0]))
    return list(alerts.values())


def redact(text: str) -> str:
    """Text with every URL's query string cut off (a signed download link's query is its bearer token)."""
    return _URL_QUERY.sub(r"\1?...", " ".join(text.split()))


def _name(error: Exception) -> str:
    return type(error).__name__
