"""What the flows run with: the worker's settings and the system clock, unless the demo pins its own for a while.

Tests name a shared clock instead with REBATES_CLOCK_FILE, as for the CLI: flows and test then agree on the time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.blocks.system import Secret

from pipeline.clock import Clock
from pipeline.clock_file import clock_from_env
from pipeline.config import Settings, SettingsError, credentials_block_variable, load_settings

CREDENTIAL_FIELDS = {
    "okx_api_key": "OKX_API_KEY",
    "okx_secret_key": "OKX_SECRET_KEY",
    "okx_passphrase": "OKX_PASSPHRASE",
}
"""Settings field → the key it has in the Secret block's JSON object (the same names as the variables)."""

_pinned: tuple[Settings, Clock] | None = None


def run_settings(account: str | None = None) -> Settings:
    """The account's settings from the worker's environment (and `.env`), its credentials from a Secret block if named.

    `account`: a name in REBATES_ACCOUNTS (None: the first configured account; `default` without it). With
    REBATES_CREDENTIALS_BLOCK=<name> (`REBATES_CREDENTIALS_BLOCK_<NAME>` for a named account), the block must hold a
    JSON object with OKX_API_KEY, OKX_SECRET_KEY and OKX_PASSPHRASE; it wins over the variables. Nothing read here
    is ever passed on as a parameter. Inside `pinned`, the pinned settings (for that account) instead.
    """
    settings = base_settings(account)
    if _pinned is not None:
        return settings
    variable = credentials_block_variable(settings)
    block_name = os.environ.get(variable, "").strip()
    if not block_name:
        return settings
    try:
        value: Any = Secret.load(block_name).get()  # type: ignore[union-attr]
    except ValueError:
        raise SettingsError(
            f"{variable}={block_name}: no Prefect Secret block has that name (docs/operations.md "
            "shows how to create it)"
        ) from None
    keys = list(CREDENTIAL_FIELDS.values())
    if not isinstance(value, dict) or not all(isinstance(value.get(key), str) and value[key] for key in keys):
        raise SettingsError(f"{variable}={block_name}: the Secret block must hold a JSON object with {', '.join(keys)}")
    return settings.replace(**{name: value[key] for name, key in CREDENTIAL_FIELDS.items()})


def show_pipeline_logs() -> None:
    """Let the pipeline's INFO lines through; with PREFECT_LOGGING_EXTRA_LOGGERS=pipeline they reach the run's logs.

    Prefect gives an extra logger its handlers but not a level, so it would inherit the root's WARNING.
    """
    logger = logging.getLogger("pipeline")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def base_settings(account: str | None = None) -> Settings:
    """The account's settings without the Secret block's credentials: for steps that never call OKX (no block to load).

    `account` None: the first configured account. An account not in REBATES_ACCOUNTS is a UsageError naming them.
    """
    settings = _pinned[0] if _pinned is not None else load_settings()
    return settings.for_account(account if account is not None else settings.rebates_account)


def account_names(account: str | None = None) -> list[str]:
    """The accounts a run covers: `account` alone (checked against REBATES_ACCOUNTS), or every configured one.

    Only the names are read here: one account's malformed variables fail that account's pass, not the others'.
    """
    settings = _pinned[0] if _pinned is not None else load_settings()
    return list(settings.account_names) if account is None else [settings.account_name(account)]


def run_clock() -> Clock:
    """The clock the flows read and sleep on: the pinned one; the shared test clock REBATES_CLOCK_FILE names (as for
    every command, against the loopback simulator only); or the system's."""
    return _pinned[1] if _pinned is not None else clock_from_env(load_settings)


@contextmanager
def pinned(settings: Settings, clock: Clock) -> Iterator[None]:
    """Run the flows called in this process, in the `with` block, on these settings and this clock.

    For the demo, which moves the simulator's clock an hour at a time instead of waiting: the flows it calls run
    in this process, and their tasks in its threads, so they all see the pin. Never used by a deployment.
    """
    global _pinned
    if _pinned is not None:
        raise RuntimeError("the flows' settings and clock are already pinned")
    _pinned = (settings, clock)
    try:
        yield
    finally:
        _pinned = None
