"""The runs' table and progress artifacts: each window's state after a run, and how far a backfill has got."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from prefect import task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from flows.policy import DATABASE_RETRIES, STEP_OPTIONS
from flows.runtime import base_settings, run_clock
from pipeline.config import DEFAULT_ACCOUNT
from pipeline.pass_types import PassScope
from pipeline.run_tables import WindowRow, percent_done, window_rows

WINDOW_STATES_KEY = "window-states"
BACKFILL_PROGRESS_KEY = "backfill-progress"


def account_key(key: str, account: str) -> str:
    """An artifact key for one account: `window-states-eu` (the key as it is for `default`, the only account).

    Prefect's keys are lower-case letters, digits and dashes, so `_` in an account name becomes `-`.
    """
    return key if account == DEFAULT_ACCOUNT else f"{key}-{account.replace('_', '-')}"


def account_words(account: str) -> str:
    """`Account eu: ` before an artifact's description, nothing for `default`."""
    return "" if account == DEFAULT_ACCOUNT else f"Account {account}: "


def publish_summary(key: str, what: str, markdown: str, account: str | None) -> None:
    """A run's markdown summary under `key` (`key-<account>` for one named account), described as `what` was written."""
    create_markdown_artifact(
        markdown=markdown,
        key=account_key(key, account) if account else key,
        description=f"{what} written" + (f" for account {account}" if account else ""),
    )


@task(name="window-states", **STEP_OPTIONS, **DATABASE_RETRIES)
def window_states(scope: PassScope) -> list[WindowRow]:
    """Every window of the pass's account, days and broker types, with its state, as the ledger has it now."""
    return window_rows(base_settings(scope.account), run_clock(), scope)


def publish_window_states(scope: PassScope) -> list[WindowRow] | None:
    """The `window-states[-<account>]` table artifact; None (and no artifact) when the ledger could not be read."""
    rows = window_states(scope, return_state=True).result(raise_on_failure=False)
    if not isinstance(rows, list):
        return None
    create_table_artifact(
        table=rows,
        key=account_key(WINDOW_STATES_KEY, scope.account),
        description=account_words(scope.account) + "every window of this run's days and its state after the run",
    )
    return rows


class BackfillProgress:
    """The `backfill-progress[-<account>]` artifact: the share of the range's windows loaded or quarantined."""

    def __init__(self, begin: date, end: date, account: str = DEFAULT_ACCOUNT) -> None:
        created = create_progress_artifact(
            progress=0.0,
            key=account_key(BACKFILL_PROGRESS_KEY, account),
            description=f"{account_words(account)}backfill {begin}..{end}: share of its windows loaded or quarantined",
        )
        assert isinstance(created, UUID)  # called from the (synchronous) flow: the sync variant answered
        self.artifact_id = created

    def update(self, scope: PassScope) -> None:
        """Read the range's windows and move the bar (left where it was when the ledger cannot be read)."""
        rows = window_states(scope, return_state=True).result(raise_on_failure=False)
        if isinstance(rows, list):
            update_progress_artifact(self.artifact_id, progress=percent_done(rows))
