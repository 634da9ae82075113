"""Several OKX accounts in one installation: each its own windows, create hour and GET budget, one after another."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.clock import FakeClock
from pipeline.config import Settings, UsageError, load_settings
from pipeline.domain import CREATE_INTERVAL, GET_LIMIT, REBATE_PATH, BrokerType
from pipeline.ledger import Ledger, OverlapError, WindowState
from pipeline.okx.throttle import FileSlots, GetLimiter
from pipeline.passes import retry_windows, sync_accounts
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import SimAccount, SimulatorConfig
from pipeline.windows import RebateWindow, WindowKind
from tests.conftest import accounts_variables, set_env

pytestmark = pytest.mark.slow

EU = SimAccount(api_key="eu-api-key", secret_key="eu-secret", passphrase="eu-pass", broker_types=(BrokerType.API,))
ASIA = SimAccount(
    api_key="asia-api-key", secret_key="asia-secret", passphrase="asia-pass", broker_types=(BrokerType.OAUTH,)
)


@pytest.fixture
def two_accounts(
    fake_clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RunningSimulator, Settings]]:
    """A simulator knowing accounts eu (api) and asia (oauth), and settings naming both."""
    with RunningSimulator(SimulatorConfig(orders_per_day=3, accounts=(EU, ASIA)), clock=fake_clock) as running:
        yield running, account_settings(tmp_path, monkeypatch, running.base_url)


def account_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base_url: str) -> Settings:
    """REBATES_ACCOUNTS=eu (api), asia (oauth) with each account's own variables, data under `tmp_path`."""
    variables = accounts_variables(
        base_url,
        tmp_path / "data",
        {"eu": EU, "asia": ASIA},
        REBATES_BROKER_TYPES_EU="api",
        REBATES_BROKER_TYPES_ASIA="oauth",
        REBATES_START_DATE="2025-02-20",
    )
    set_env(monkeypatch, variables)
    return load_settings()


def test_each_account_has_its_own_windows_and_create_hour(tmp_path: Path, fake_clock: FakeClock) -> None:
    db = tmp_path / "rebates.duckdb"
    eu, asia = Ledger(db, fake_clock, account="eu"), Ledger(db, fake_clock, account="asia")
    (eu_window,) = eu.plan("api", date(2025, 1, 1), date(2025, 1, 31))
    (asia_window,) = asia.plan("api", date(2025, 1, 1), date(2025, 1, 31))  # the same days: another account's
    assert (eu_window.window_id, asia_window.window_id) == ("eu:api:20250101-20250131", "asia:api:20250101-20250131")
    assert [record.window_id for record in eu.windows()] == [eu_window.window_id]
    assert eu.reserve_create(eu_window.window_id) is not None
    assert eu.reserve_create(eu_window.window_id) is None  # eu's hour is spent …
    assert asia.reserve_create(asia_window.window_id) is not None  # … asia's is not
    assert eu.create_budget_next_at() == fake_clock.now() + CREATE_INTERVAL
    assert Ledger(db, fake_clock).create_budget_next_at() is None  # nor the default account's
    with pytest.raises(OverlapError):
        eu.add_windows([(RebateWindow("api", date(2025, 1, 5), date(2025, 1, 6), "eu"), WindowKind.ADOPTED)])
    with pytest.raises(ValueError, match="account asia's, not eu's"):
        eu.add_windows([(RebateWindow("api", date(2025, 3, 1), date(2025, 3, 1), "asia"), WindowKind.ADOPTED)])


def test_an_old_ledger_without_accounts_reads_as_the_default_account(tmp_path: Path, fake_clock: FakeClock) -> None:
    import duckdb

    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as old:
        old.execute(
            "CREATE TABLE rebate_windows (window_id VARCHAR PRIMARY KEY, broker_type VARCHAR NOT NULL, "
            "begin_date DATE NOT NULL, end_date DATE NOT NULL, kind VARCHAR NOT NULL, state VARCHAR NOT NULL, "
            "planned_at TIMESTAMPTZ NOT NULL, requested_at TIMESTAMPTZ, server_requested_at TIMESTAMPTZ, "
            "polled_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, file_id VARCHAR, downloaded_at TIMESTAMPTZ, "
            "loaded_at TIMESTAMPTZ, rows_loaded BIGINT, attempts INTEGER NOT NULL DEFAULT 0, "
            "next_attempt_at TIMESTAMPTZ, last_error VARCHAR, updated_at TIMESTAMPTZ NOT NULL)"
        )
        old.execute(
            "INSERT INTO rebate_windows (window_id, broker_type, begin_date, end_date, kind, state, planned_at, "
            "updated_at) VALUES ('api:20250101-20250131', 'api', '2025-01-01', '2025-01-31', 'history', 'planned', "
            "now(), now())"
        )
    (record,) = Ledger(db, fake_clock).windows()
    assert (record.window_id, record.account) == ("api:20250101-20250131", "default")
    assert Ledger(db, fake_clock, account="eu").windows() == []


def test_each_account_has_its_own_get_budget(tmp_path: Path, fake_clock: FakeClock) -> None:
    eu, asia = (GetLimiter(tmp_path, fake_clock, account=name) for name in ("eu", "asia"))
    start = fake_clock.now()
    for _ in range(GET_LIMIT):
        eu.acquire()
    asia.acquire()  # not delayed by eu's full minute
    assert fake_clock.now() == start
    eu.acquire()  # eu waits for its own minute
    assert fake_clock.now() > start
    default_slots, eu_slots = GetLimiter(tmp_path, fake_clock).slots, eu.slots
    assert isinstance(default_slots, FileSlots) and default_slots.state_file.name == "okx-get-slots.json"
    assert isinstance(eu_slots, FileSlots) and eu_slots.state_file.name == "okx-get-slots-eu.json"


def test_a_sync_runs_every_account_with_its_own_keys_and_hour(
    two_accounts: tuple[RunningSimulator, Settings], fake_clock: FakeClock
) -> None:
    simulator, settings = two_accounts
    runs = sync_accounts(settings, fake_clock)
    assert [run.scope.account for run in runs] == ["eu", "asia"]
    assert [run.scope.scopes for run in runs] == [("api",), ("oauth",)]
    creates = simulator.state.calls("POST", REBATE_PATH)
    assert [call.code for call in creates] == ["0", "0"]  # one create each, in the same hour
    assert [len(simulator.state.ranges(account.api_key)) for account in (EU, ASIA)] == [1, 1]
    eu = Ledger(settings.rebates_db, fake_clock, account="eu").windows()
    asia = Ledger(settings.rebates_db, fake_clock, account="asia").windows()
    assert [record.window_id for record in eu] == ["eu:api:20250220-20250228"]
    assert [record.window_id for record in asia] == ["asia:oauth:20250220-20250228"]
    assert {record.state for record in eu + asia} == {WindowState.REQUESTED}

    (only_asia,) = sync_accounts(settings, fake_clock, account="asia")
    assert only_asia.scope.account == "asia"
    with pytest.raises(UsageError, match="'us' is not configured"):
        sync_accounts(settings, fake_clock, account="us")


def test_retry_finds_each_window_in_its_own_account(
    two_accounts: tuple[RunningSimulator, Settings], fake_clock: FakeClock
) -> None:
    _, settings = two_accounts
    ledger = Ledger(settings.rebates_db, fake_clock, account="asia")
    (record,) = ledger.plan("oauth", date(2025, 1, 1), date(2025, 1, 31))
    ledger.quarantine(record, "broken")
    assert retry_windows(settings, fake_clock, [record.window_id]) == [record.window_id]
    assert ledger.get(record.window_id).state is WindowState.PLANNED
    with pytest.raises(UsageError, match="not configured"):
        retry_windows(settings, fake_clock, ["us:api:20250101-20250131"])


def test_status_lists_every_account_and_each_next_create(
    two_accounts: tuple[RunningSimulator, Settings], fake_clock: FakeClock
) -> None:
    _, settings = two_accounts
    eu = Ledger(settings.rebates_db, fake_clock, account="eu")
    (record,) = eu.plan("api", date(2025, 1, 1), date(2025, 1, 31))
    eu.reserve_create(record.window_id)
    Ledger(settings.rebates_db, fake_clock, account="asia").plan("oauth", date(2025, 1, 1), date(2025, 1, 31))
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert [window["account"] for window in payload["windows"]] == ["eu", "asia"]
    assert set(payload["next_create_at_by_account"]) == {"eu", "asia"}
    assert payload["next_create_at_by_account"]["asia"] is None
    result = CliRunner().invoke(app, ["status", "--account", "asia", "--json"])
    assert result.exit_code == 0, result.output
    assert [window["window_id"] for window in json.loads(result.output)["windows"]] == ["asia:oauth:20250101-20250131"]
    result = CliRunner().invoke(app, ["status"], terminal_width=200)
    assert "asia: next create allowed: -" in result.output and "eu: next create allowed: " in result.output


def test_an_accounts_okx_error_names_that_accounts_variable_and_the_next_account_still_runs(
    two_accounts: tuple[RunningSimulator, Settings], fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    del two_accounts  # the simulator and the variables it set
    monkeypatch.setenv("OKX_PASSPHRASE_EU", "not-eu-pass")
    eu_run, asia_run = sync_accounts(load_settings(), fake_clock)
    (failure,) = eu_run.failures
    assert "OKX_PASSPHRASE_EU" in str(failure) and "not-eu-pass" not in str(failure)
    assert not asia_run.failures and asia_run.report.created == "asia:oauth:20250220-20250228"
