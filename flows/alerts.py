"""The automations that send the pipeline's events to a broker, through a notification block they already have."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from prefect.automations import AutomationCore, EventTrigger, Posture, SendNotification
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL

from pipeline.alerts import RESOURCE_PREFIX, AlertKind

AUTOMATION_PREFIX = "okx-rebates: "

BODY = (
    "{{ event.event }} for {{ event.resource['prefect.resource.name'] }} at {{ event.occurred }} UTC:\n"
    "{{ event.payload.reason }}\n\n"
    "Flow run: {{ event.related | selectattr('role', 'equalto', 'flow-run') | map(attribute='name') | join(', ') }}"
)
"""The notification text: the event, its window (or pass), when, the reason, and the flow run's name."""


@dataclass(frozen=True)
class AlertRule:
    """One automation: its name, the events it reacts to, and the notification's subject."""

    name: str
    events: frozenset[str]
    subject: str
    resource: str


RULES = (
    AlertRule(
        AUTOMATION_PREFIX + "window quarantined",
        frozenset({AlertKind.WINDOW_QUARANTINED.value}),
        "okx-rebates: a rebate file was quarantined",
        f"{RESOURCE_PREFIX}.*",
    ),
    AlertRule(
        AUTOMATION_PREFIX + "file overdue",
        frozenset({AlertKind.FILE_OVERDUE.value}),
        "okx-rebates: a rebate file is overdue at OKX (contact OKX support)",
        f"{RESOURCE_PREFIX}.*",
    ),
    AlertRule(
        AUTOMATION_PREFIX + "pass failed",
        frozenset({AlertKind.PASS_FAILED.value}),
        "okx-rebates: a pass failed",
        f"{RESOURCE_PREFIX}.*",
    ),
    AlertRule(
        AUTOMATION_PREFIX + "create refused",
        frozenset({AlertKind.CREATE_REFUSED.value}),
        "okx-rebates: OKX refused the hourly create",
        f"{RESOURCE_PREFIX}.*",
    ),
    AlertRule(
        AUTOMATION_PREFIX + "run crashed or timed out",
        frozenset({"prefect.flow-run.Crashed", "prefect.flow-run.TimedOut"}),
        "okx-rebates: a flow run crashed or timed out (no pass report)",
        "prefect.flow-run.*",
    ),
)
"""One automation per kind of alert, so each notification's subject says what happened."""


def automations(block_document_id: UUID) -> list[AutomationCore]:
    """The automations for RULES, each sending to the notification block with this id."""
    found = []
    for rule in RULES:
        trigger = EventTrigger(
            expect=set(rule.events),
            match={"prefect.resource.id": rule.resource},
            posture=Posture.Reactive,
            threshold=1,
        )
        if rule.resource.startswith("prefect.flow-run"):
            trigger.match_related = {"prefect.resource.id": "prefect.tag.okx-rebates"}  # our deployments' tag
        action = SendNotification(block_document_id=block_document_id, subject=rule.subject, body=BODY)
        found.append(
            AutomationCore(
                name=rule.name,
                description="Installed by `rebates alerts install` (docs/operations.md).",
                trigger=trigger,
                actions=[action],
            )
        )
    return found


def install(block_name: str) -> list[str]:
    """Create (or replace, by name) the automations, sending to the notification block `block_name`.

    `block_name` is the block's name, or `type-slug/name` (`slack-webhook/brokers`) when two blocks share it.
    Returns the automations' names.
    """
    if not PREFECT_API_URL.value():
        raise LookupError(
            "PREFECT_API_URL is not set: point it at the Prefect server whose runs should alert "
            "(export PREFECT_API_URL=http://127.0.0.1:4200/api, or prefect config set PREFECT_API_URL=...)"
        )
    block_id = _block_document_id(block_name)
    with get_client(sync_client=True) as client:
        for automation in automations(block_id):
            for existing in client.read_automations_by_name(automation.name):
                client.delete_automation(existing.id)
            client.create_automation(automation)
    return [rule.name for rule in RULES]


def _block_document_id(block_name: str) -> UUID:
    """The id of the notification block with this name (or `type-slug/name`); its secrets are never read."""
    slug, _, name = block_name.rpartition("/")
    with get_client(sync_client=True) as client:
        documents = [
            document
            for document in client.read_block_documents(include_secrets=False)
            if document.name == name and (not slug or (document.block_type and document.block_type.slug == slug))
        ]
    if not documents:
        raise LookupError(
            f"no Prefect block is named {block_name!r}: create a notification block first (Slack webhook, e-mail, "
            "custom webhook; docs/operations.md shows how), then pass its name to --block"
        )
    if len(documents) > 1:
        kinds = ", ".join(f"{document.block_type.slug}/{name}" for document in documents if document.block_type)
        raise LookupError(f"{len(documents)} blocks are named {name!r} ({kinds}): pass --block as type-slug/name")
    (document,) = documents
    if document.block_schema is None or "notify" not in document.block_schema.capabilities:
        raise LookupError(f"the block {block_name!r} cannot send notifications: pick a notification block")
    return document.id
