"""Fixtures for tests that run `rebates` as operators do: the environment pointing a process at the simulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import DEFAULT_API_KEY, DEFAULT_PASSPHRASE, DEFAULT_SECRET_KEY

OperatorEnv = Callable[[RunningSimulator, Path], dict[str, str]]


def make_operator_env(simulator: RunningSimulator, data: Path) -> dict[str, str]:
    """The variables an operator sets to run `rebates` (api broker type) against `simulator`, data under `data`."""
    return {
        "OKX_API_KEY": DEFAULT_API_KEY,
        "OKX_SECRET_KEY": DEFAULT_SECRET_KEY,
        "OKX_PASSPHRASE": DEFAULT_PASSPHRASE,
        "OKX_BASE_URL": simulator.base_url,
        "REBATES_BROKER_TYPES": "api",
        "REBATES_DATA_DIR": str(data),
        "REBATES_DB": str(data / "rebates.duckdb"),
        "REBATES_START_DATE": "2025-01-01",
    }


@pytest.fixture
def operator_env() -> OperatorEnv:
    """`make_operator_env`, for tests that start `rebates` in a subprocess."""
    return make_operator_env
