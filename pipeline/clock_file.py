"""REBATES_CLOCK_FILE: the shared test clock commands and flows read instead of the system's, against the simulator."""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlsplit

from pipeline.clock import Clock, FileClock, SystemClock
from pipeline.config import LOOPBACK_HOSTS, Settings, SettingsError

CLOCK_FILE_VARIABLE = "REBATES_CLOCK_FILE"
"""A testing and demo hook: read the time from this file (a `FileClock`) instead of the system's."""


def clock_from_env(settings: Callable[[], Settings]) -> Clock:
    """The system clock, or the `FileClock` REBATES_CLOCK_FILE names (`settings` are read only then).

    The file clock is for tests and demos against the simulator only: a SettingsError unless OKX_BASE_URL and every
    account's base URL are loopback, so a simulated time can never reach the real OKX.
    """
    path = os.environ.get(CLOCK_FILE_VARIABLE, "").strip()
    if not path:
        return SystemClock()
    chosen = settings()
    hosts = {"OKX_BASE_URL": chosen.okx_base_url}
    for name in chosen.rebates_accounts:
        try:
            hosts[f"OKX_BASE_URL_{name.upper()}"] = chosen.for_account(name).okx_base_url
        except SettingsError:
            continue  # that account calls nobody: its own pass fails on its settings, and the others go on
    for variable, url in hosts.items():
        if urlsplit(url).hostname not in LOOPBACK_HOSTS:
            raise SettingsError(
                f"{CLOCK_FILE_VARIABLE} is a testing hook for the simulator only; {variable}={url} is not loopback: "
                f"unset {CLOCK_FILE_VARIABLE}"
            )
    return FileClock(path)
