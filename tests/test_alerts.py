"""The alerts a run's reports call for: one per quarantined window, overdue file, refused create and failure."""

from __future__ import annotations

from datetime import date

from pipeline.alerts import RESOURCE_PREFIX, AlertKind, alerts_for, redact
from pipeline.pass_types import SyncReport


def test_each_problem_becomes_one_alert_with_its_window_and_reason() -> None:
    first = SyncReport(date(2025, 1, 1), date(2025, 1, 31), quarantined={"api:20250101-20250110": "not a rebate file"})
    second = SyncReport(date(2025, 1, 1), date(2025, 1, 31), quarantined={"api:20250101-20250110": "again"})
    second.created, second.create_refusal = "api:20250111-20250131", "rate limited (50011)"
    second.overdue = ["oauth:20250101-20250131"]
    alerts = alerts_for([first, second], [RuntimeError("OKX refused: check OKX_PASSPHRASE")], "sync-rebates")
    assert [(alert.kind, alert.subject) for alert in alerts] == [
        (AlertKind.WINDOW_QUARANTINED, "api:20250101-20250110"),
        (AlertKind.CREATE_REFUSED, "api:20250111-20250131"),
        (AlertKind.FILE_OVERDUE, "oauth:20250101-20250131"),
        (AlertKind.PASS_FAILED, "sync-rebates"),
    ]
    assert alerts[0].reason == "not a rebate file"
    assert alerts[-1].resource_id == "okx-rebates.pass.sync-rebates"
    assert "OKX_PASSPHRASE" in alerts[-1].reason


def test_a_quiet_pass_calls_for_no_alert() -> None:
    assert alerts_for([SyncReport(date(2025, 1, 1), date(2025, 1, 2))], [], "sync-rebates") == []


def test_a_download_links_signed_query_never_reaches_an_alert() -> None:
    text = "403 from https://oss.example/f/RebateDetails.csv?Expires=1&Signature=abc then gave up"
    assert redact(text) == "403 from https://oss.example/f/RebateDetails.csv?... then gave up"


def test_a_named_accounts_alerts_name_it_and_the_automations_still_match_them() -> None:
    report = SyncReport(date(2025, 1, 1), date(2025, 1, 31), quarantined={"eu:api:20250101-20250110": "bad amount"})
    quarantined, failed = alerts_for([report], [RuntimeError("OKX refused")], "sync-rebates", "eu")
    assert quarantined.resource_id == "okx-rebates.window.eu:api:20250101-20250110"
    assert quarantined.resource_name == "eu:api:20250101-20250110 (account eu)"
    assert failed.resource_id == "okx-rebates.pass.sync-rebates.eu"
    assert failed.resource_name == "sync-rebates (account eu)"
    assert quarantined.details["account"] == failed.details["account"] == "eu"
    assert all(alert.resource_id.startswith(RESOURCE_PREFIX + ".") for alert in (quarantined, failed))
    (default,) = alerts_for([], [RuntimeError("x")], "sync-rebates")
    assert (default.resource_id, default.resource_name, default.account) == (
        "okx-rebates.pass.sync-rebates",
        "sync-rebates",
        "default",
    )
    assert "account" not in default.details
