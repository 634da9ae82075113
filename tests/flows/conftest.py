"""Flow tests: one temporary Prefect server for the session, and `flow_simulator` on the flows' file clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

from pipeline.clock import FileClock
from pipeline.clock_file import CLOCK_FILE_VARIABLE
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import SimulatorConfig
from tests.now import clock_at_tests_now


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    """Prefect's temporary local server (7-18 s to start), shared by every flow test; its scheduler does not run."""
    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def flow_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FileClock:
    """The flows' clock, at TESTS_NOW (REBATES_CLOCK_FILE): "yesterday" is the same day for a test and its flows."""
    clock = clock_at_tests_now(tmp_path / "clock")
    monkeypatch.setenv(CLOCK_FILE_VARIABLE, str(clock.path))
    return clock


@pytest.fixture
def flow_simulator(flow_clock: FileClock) -> Iterator[RunningSimulator]:
    """The OKX simulator on the flows' clock: they sign with the time it checks, as in production."""
    with RunningSimulator(SimulatorConfig(orders_per_day=5), clock=flow_clock) as running:
        yield running


@pytest.fixture
def prefect_api() -> Callable[[str, dict[str, Any]], Any]:
    """POST to the Prefect API with only the fields given: the tests read artifacts and events by exactly the filters
    they name, as an operator's script would."""

    def post(path: str, body: dict[str, Any]) -> Any:
        response = httpx.post(f"{PREFECT_API_URL.value()}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    return post
