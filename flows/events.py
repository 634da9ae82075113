"""Prefect events from a run's alerts (`pipeline/alerts.py`): what the automations in `flows/alerts.py` send on."""

from __future__ import annotations

from collections.abc import Sequence

from prefect.events import emit_event

from pipeline.alerts import ACCOUNT_LABEL, Alert


def emit_alerts(alerts: Sequence[Alert]) -> None:
    """One event per alert, about its window (or pass), labelled with its account, with the reason in the payload.

    Inside a run, Prefect relates each event to the flow run, its flow, deployment and tags, so an automation can
    match on those too. Nothing in an alert is secret: window ids, reasons in words (links' queries cut off).
    """
    for alert in alerts:
        emit_event(
            event=alert.kind.value,
            resource={
                "prefect.resource.id": alert.resource_id,
                "prefect.resource.name": alert.resource_name,
                ACCOUNT_LABEL: alert.account,
            },
            payload={"reason": alert.reason, **alert.details},
        )
