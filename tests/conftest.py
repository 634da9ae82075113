"""Test-wide fixtures: an environment without the developer's OKX_ / REBATES_ variables or .env."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"


@pytest.fixture(autouse=True)
def clean_settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Run every test in its own directory with no OKX_ / REBATES_ variables, so no real setting leaks in."""
    for name in list(os.environ):
        if name.startswith(("OKX_", "REBATES_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield
