"""The simulator's configuration and state: validation, budgets under concurrency, seeding, rotation, reset."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, timedelta

import pytest

from pipeline.clock import FakeClock
from pipeline.domain import CREATE_INTERVAL, GENERATION_TIME, BrokerType
from pipeline.simulator.files import FileShape, HeaderStyle, Layout
from pipeline.simulator.options import ROTATE
from pipeline.simulator.state import DEFAULT_ACCOUNT, Fault, SimAccount, SimulatorConfig, SimulatorState
from tests.simulator.conftest import SIM_START


@pytest.fixture
def state() -> SimulatorState:
    return SimulatorState(SimulatorConfig(), FakeClock(SIM_START))


def test_the_default_account_is_the_documented_dual_broker() -> None:
    config = SimulatorConfig()
    assert config.accounts == (DEFAULT_ACCOUNT,)
    assert (DEFAULT_ACCOUNT.api_key, DEFAULT_ACCOUNT.secret_key, DEFAULT_ACCOUNT.passphrase) == (
        "sim-api-key",
        "sim-secret-key",
        "sim-passphrase",
    )
    assert DEFAULT_ACCOUNT.broker_types == (BrokerType.API, BrokerType.OAUTH)
    assert config.ready_after == GENERATION_TIME
    assert not config.demo_only


def test_an_accounts_repr_leaves_out_its_secrets() -> None:
    assert "sim-secret-key" not in repr(DEFAULT_ACCOUNT)
    assert "sim-passphrase" not in repr(DEFAULT_ACCOUNT)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SimulatorConfig(accounts=()),
        lambda: SimulatorConfig(accounts=(DEFAULT_ACCOUNT, DEFAULT_ACCOUNT)),
        lambda: SimulatorConfig(ready_after=timedelta(seconds=-1)),
        lambda: SimulatorConfig(shape="docx"),  # type: ignore[arg-type]
        lambda: SimAccount(broker_types=()),
        lambda: SimAccount(broker_types=("retail",)),  # type: ignore[arg-type]
    ],
)
def test_an_impossible_configuration_is_refused(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


def test_only_one_of_many_concurrent_creates_gets_the_hour(state: SimulatorState) -> None:
    now = state.clock.now()
    results: list[bool] = []
    barrier = threading.Barrier(16)

    def spend() -> None:
        barrier.wait()
        results.append(state.try_spend_create("sim-api-key", now))

    threads = [threading.Thread(target=spend) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 15 + [True]
    assert state.create_next_at("sim-api-key") == now + CREATE_INTERVAL


def test_a_seeded_file_is_ready_by_default_and_costs_no_create(state: SimulatorState) -> None:
    record = state.seed_file("sim-api-key", "oauth", date(2025, 1, 1), date(2025, 1, 31))
    assert record.is_finished(state.clock.now())
    assert record.origin == "dashboard"
    assert state.try_spend_create("sim-api-key", state.clock.now())


def test_a_seeded_file_requested_just_now_is_ongoing_for_ready_after(state: SimulatorState) -> None:
    now = state.clock.now()
    record = state.seed_file("sim-api-key", BrokerType.API, date(2025, 1, 1), date(2025, 1, 31), now)
    assert not record.is_finished(now + GENERATION_TIME - timedelta(seconds=1))
    assert record.is_finished(now + GENERATION_TIME)


def test_seeding_for_an_unknown_account_is_refused(state: SimulatorState) -> None:
    with pytest.raises(ValueError, match="API key"):
        state.seed_file("nobody", "api", date(2025, 1, 1), date(2025, 1, 31))


def test_asking_for_a_known_range_returns_the_first_record(state: SimulatorState) -> None:
    first, created = state.request_range("sim-api-key", BrokerType.API, date(2025, 1, 1), date(2025, 1, 2), SIM_START)
    again, created_again = state.request_range(
        "sim-api-key", BrokerType.API, date(2025, 1, 1), date(2025, 1, 2), SIM_START + timedelta(hours=5)
    )
    assert (created, created_again) == (True, False)
    assert again == first


def test_rotate_picks_per_range_deterministically_and_uses_every_option() -> None:
    config = SimulatorConfig(shape=ROTATE, layout=ROTATE, header_style=ROTATE)
    one, other = SimulatorState(config, FakeClock(SIM_START)), SimulatorState(config, FakeClock(SIM_START))
    specs = []
    for month in range(1, 13):
        for broker_type in BrokerType:
            begin, end = date(2024, month, 1), date(2024, month, 20)
            first = one.seed_file("sim-api-key", broker_type, begin, end)
            second = other.seed_file("sim-api-key", broker_type, begin, end)
            assert one.file_spec(first) == other.file_spec(second)
            specs.append(one.file_spec(first))
    assert {spec.shape for spec in specs} == set(FileShape)
    assert {spec.layout for spec in specs} == set(Layout)
    assert {spec.header_style for spec in specs} == set(HeaderStyle)


def test_reset_forgets_ranges_budgets_faults_and_calls(state: SimulatorState) -> None:
    now = state.clock.now()
    state.seed_file("sim-api-key", "api", date(2025, 1, 1), date(2025, 1, 31))
    state.try_spend_create("sim-api-key", now)
    state.faults.inject(Fault.BUSY, times=3)
    state.record_call("GET", "/files", 200, None, now)
    state.reset()
    assert state.ranges() == []
    assert state.try_spend_create("sim-api-key", now)
    assert state.faults.pending(Fault.BUSY) == 0
    assert state.calls() == []


def test_the_snapshot_is_plain_json_data(state: SimulatorState) -> None:
    state.seed_file("sim-api-key", "api", date(2025, 1, 1), date(2025, 1, 31))
    state.record_call("POST", "/api/v5/broker/fd/rebate-per-orders", 429, "50011", state.clock.now())
    snapshot = state.snapshot()
    assert snapshot["clock"]["fake"] is True
    assert snapshot["ranges"][0]["begin"] == "20250101"
    assert snapshot["ranges"][0]["state"] == "finished"
    assert snapshot["counts"] == {"POST /api/v5/broker/fd/rebate-per-orders": 1}
    assert snapshot["calls"][0]["code"] == "50011"
