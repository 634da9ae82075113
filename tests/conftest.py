"""Test-wide fixtures: a clean environment, a fake clock, and the OKX simulator with settings pointing at it."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.clock import FakeClock
from pipeline.config import Settings, load_settings
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import (
    DEFAULT_API_KEY,
    DEFAULT_PASSPHRASE,
    DEFAULT_SECRET_KEY,
    SimAccount,
    SimulatorConfig,
)
from tests.postgres import Cluster, server_binaries

os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what a test needs from what it uses: `make check` leaves out PostgreSQL, Prefect and slow tests."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        backends = [value for value in callspec.params.values() if isinstance(value, str)] if callspec else []
        if fixtures & {"pg_cluster", "state_url"} or "postgres" in backends:  # a [postgres] case asks for it late
            item.add_marker(pytest.mark.postgres)
        if "prefect_server" in fixtures:
            item.add_marker(pytest.mark.prefect)


@pytest.fixture(autouse=True)
def clean_settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Run every test in its own directory with no OKX_ / REBATES_ variables, so no real setting leaks in.

    REBATES_TESTS_* are the tests' own switches (tests/now.py, `pg_cluster`), not settings: they stay.
    """
    for name in list(os.environ):
        if name.startswith(("OKX_", "REBATES_")) and not name.startswith("REBATES_TESTS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def fake_clock() -> FakeClock:
    """One clock for the pipeline and the simulator: 2025-03-01 02:00 UTC (10:00 at UTC+8)."""
    return FakeClock(datetime(2025, 3, 1, 2, tzinfo=UTC))


@pytest.fixture
def simulator(fake_clock: FakeClock) -> Iterator[RunningSimulator]:
    """The OKX simulator on a free loopback port, on `fake_clock` (flow tests have `flow_simulator`), small files."""
    config = SimulatorConfig(orders_per_day=5)
    with RunningSimulator(config, clock=fake_clock) as running:
        yield running


@pytest.fixture
def sim_settings(simulator: RunningSimulator, tmp_path: Path) -> Settings:
    """Settings pointing the pipeline at the simulator, with the data dir and database in the test's directory."""
    return load_settings(
        okx_api_key=DEFAULT_API_KEY,
        okx_secret_key=DEFAULT_SECRET_KEY,
        okx_passphrase=DEFAULT_PASSPHRASE,
        okx_base_url=simulator.base_url,
        rebates_broker_types="api,oauth",
        rebates_data_dir=tmp_path / "data",
        rebates_db=tmp_path / "data" / "rebates.duckdb",
        rebates_http_retries=2,
    )


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


def accounts_variables(base_url: str, data: Path, accounts: dict[str, SimAccount], **extra: str) -> dict[str, str]:
    """REBATES_ACCOUNTS naming `accounts` (name -> simulator account), each with its own keys, against `base_url`.

    Data under `data`; `extra` adds or overrides variables (a broker type per account, say).
    """
    variables = {
        "REBATES_ACCOUNTS": ",".join(accounts),
        "OKX_BASE_URL": base_url,
        "REBATES_DATA_DIR": str(data),
        "REBATES_DB": str(data / "rebates.duckdb"),
    }
    for name, account in accounts.items():
        suffix = name.upper()
        variables |= {
            f"OKX_API_KEY_{suffix}": account.api_key,
            f"OKX_SECRET_KEY_{suffix}": account.secret_key,
            f"OKX_PASSPHRASE_{suffix}": account.passphrase,
        }
    return variables | extra


def set_env(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    """Put `variables` in this process's environment for the test."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def operator_env() -> OperatorEnv:
    """`make_operator_env`, for tests that start `rebates` in a subprocess."""
    return make_operator_env


@pytest.fixture
def simulator_env(simulator: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`make_operator_env` in this process's environment, for commands run in it; returns the data directory."""
    data = tmp_path / "data"
    set_env(monkeypatch, make_operator_env(simulator, data))
    return data


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on, so connecting fails at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL cluster for the whole session; its tests fail where PostgreSQL's server is missing."""
    found = server_binaries()
    cluster = Cluster(found).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def state_url(pg_cluster: Cluster) -> str:
    """REBATES_STATE_URL of a fresh, empty PostgreSQL database of its own for this test."""
    return pg_cluster.new_database()
