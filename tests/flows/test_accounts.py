"""The flows with two OKX accounts: a pass each in turn, artifacts and events per account, a failure kept to its own."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from prefect.blocks.system import Secret

from flows.artifacts import account_key
from flows.reports import build_reports
from flows.runtime import run_settings
from flows.sync import backfill, retry_by_account, sync_rebates
from pipeline.cli.operate import _secret_block_reader
from pipeline.clock import FileClock
from pipeline.config import SettingsError, UsageError
from pipeline.doctor import Check, run_doctor
from pipeline.pass_types import SyncReport
from pipeline.passes import prepare
from pipeline.report.model import Period
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import Fault, SimAccount, SimulatorConfig
from tests.conftest import accounts_variables, set_env
from tests.flows.test_flows import (
    SEEDED_END,
    START,
    YESTERDAY,
    PostToApi,
    fake_report_module,
    flow_run_id,
    run_name_and_parameters,
)
from tests.flows.test_operations import events_named, run_artifacts

EU = SimAccount(api_key="eu-api-key-0001", secret_key="eu-secret-0001", passphrase="eu-pass-0001")
ASIA = SimAccount(api_key="asia-api-key-0002", secret_key="asia-secret-0002", passphrase="asia-pass-0002")
SECRETS = (EU.secret_key, EU.passphrase, ASIA.secret_key, ASIA.passphrase, "Signature=")

ASIA_START = SEEDED_END + timedelta(days=1)
ASIA_END = ASIA_START + timedelta(days=4)
"""Asia's history starts later (REBATES_START_DATE_ASIA): the simulator makes the same orders for the same days, and
until the store keys rebate_details by account, two accounts' files must not share a day."""

SEEDED_DAYS = {"eu": (START, SEEDED_END), "asia": (ASIA_START, ASIA_END)}


def window(account: str) -> str:
    """The account's seeded window: a file OKX already has."""
    begin, end = SEEDED_DAYS[account]
    return f"{account}:api:{begin:%Y%m%d}-{end:%Y%m%d}"


@pytest.fixture
def two_accounts(flow_clock: FileClock) -> Iterator[RunningSimulator]:
    """The simulator serving two broker accounts, each its own keys, files and budgets, on the flows' clock."""
    with RunningSimulator(SimulatorConfig(accounts=(EU, ASIA), orders_per_day=5), clock=flow_clock) as running:
        yield running


@pytest.fixture
def accounts_env(two_accounts: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """REBATES_ACCOUNTS=eu,asia and each account's own credentials, as a worker has them; returns the data dir."""
    data = tmp_path / "data"
    variables = accounts_variables(
        two_accounts.base_url,
        data,
        {"eu": EU, "asia": ASIA},
        REBATES_BROKER_TYPES="api",
        REBATES_START_DATE=START.isoformat(),
    )
    variables["REBATES_START_DATE_ASIA"] = ASIA_START.isoformat()
    for name in ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE", "REBATES_CREDENTIALS_BLOCK"):
        monkeypatch.delenv(name, raising=False)
    set_env(monkeypatch, variables)
    two_accounts.state.seed_file(EU.api_key, "api", START, SEEDED_END)
    two_accounts.state.seed_file(ASIA.api_key, "api", ASIA_START, ASIA_END)
    return data


def loaded_windows(data: Path) -> dict[str, int]:
    with duckdb.connect(str(data / "rebates.duckdb"), read_only=True) as db:
        rows = db.execute("SELECT window_id, rows_loaded FROM rebate_windows WHERE state = 'loaded'").fetchall()
    return {str(window_id): int(count) for window_id, count in rows}


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_sync_runs_every_account_in_turn_with_its_own_artifacts(
    accounts_env: Path, two_accounts: RunningSimulator, prefect_api: PostToApi
) -> None:
    state = sync_rebates(return_state=True)  # each account from its own start date to yesterday
    assert state.is_completed(), state.message
    reports = state.result()
    assert isinstance(reports, dict) and list(reports) == ["eu", "asia"]
    assert reports["eu"].adopted == [window("eu")] and reports["asia"].adopted == [window("asia")]
    loaded = loaded_windows(accounts_env)
    assert set(loaded) == {window("eu"), window("asia")} and all(loaded.values())

    name, parameters = run_name_and_parameters(state)
    assert name == f"sync eu+asia {START}..{YESTERDAY}"
    found = run_artifacts(prefect_api, flow_run_id(state))
    assert {"sync-summary-eu", "sync-summary-asia", "window-states-eu", "window-states-asia"} <= set(found)
    assert found["sync-summary-eu"]["data"].startswith(f"# sync eu+asia {START}..{YESTERDAY} (account eu)\n")
    asia_rows = json.loads(found["window-states-asia"]["data"])
    assert asia_rows[0]["window"] == window("asia")
    assert all(row["window"].startswith("asia:") for row in asia_rows)
    for account, sim in (("eu", EU), ("asia", ASIA)):  # each spent its own create hour on its own missing days
        created = reports[account].created
        assert created is not None and created.startswith(f"{account}:api:")
        assert len(two_accounts.state.ranges(api_key=sim.api_key)) == 2
    assert_no_secret(json.dumps(found), json.dumps(parameters, default=str))


def test_a_failing_account_does_not_stop_the_other_and_the_run_names_it(
    accounts_env: Path, two_accounts: RunningSimulator, prefect_api: PostToApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OKX_SECRET_KEY_EU", "wrong-secret-of-eu")
    state = sync_rebates(begin=START, end=ASIA_END, return_state=True)
    assert state.is_failed()
    assert "1 of 2 accounts failed (eu): eu: " in str(state.message)
    assert "check OKX_SECRET_KEY" in str(state.message)  # pipeline/okx names the unsuffixed variable (for now)
    assert set(loaded_windows(accounts_env)) == {window("asia")}  # asia ran after eu failed
    (event,) = [
        event
        for event in events_named(prefect_api, "rebates.pass.failed", "sync-rebates (account eu)")
        if str(flow_run_id(state)) in json.dumps(event["related"])
    ]
    assert event["resource"]["prefect.resource.id"] == "okx-rebates.pass.sync-rebates.eu"
    assert event["resource"]["rebates.account"] == "eu"
    assert event["payload"]["account"] == "eu" and "OKX_SECRET_KEY" in event["payload"]["reason"]
    summary = run_artifacts(prefect_api, flow_run_id(state))["sync-summary-eu"]["data"]
    assert "OKX_SECRET_KEY" in summary
    assert_no_secret(json.dumps(event), summary, str(state.message), "wrong-secret-of-eu")


def test_a_quarantined_windows_event_is_labelled_with_its_account(
    accounts_env: Path, two_accounts: RunningSimulator, prefect_api: PostToApi
) -> None:
    two_accounts.state.faults.inject(Fault.MALFORMED_FILE, 1, how="bad-amount")  # the first download: eu's
    state = sync_rebates(begin=START, end=SEEDED_END, account="eu", return_state=True)
    assert state.is_completed(), state.message
    (event,) = events_named(prefect_api, "rebates.window.quarantined", f"{window('eu')} (account eu)")
    assert event["resource"]["prefect.resource.id"] == f"okx-rebates.window.{window('eu')}"
    assert event["resource"]["rebates.account"] == "eu"


def test_one_account_only_and_an_unknown_account_is_refused(accounts_env: Path, two_accounts: RunningSimulator) -> None:
    state = sync_rebates(begin=ASIA_START, end=ASIA_END, account="asia", return_state=True)
    assert state.is_completed(), state.message
    assert isinstance(state.result(), SyncReport)
    assert set(loaded_windows(accounts_env)) == {window("asia")}
    assert run_name_and_parameters(state)[0] == f"sync asia {ASIA_START}..{ASIA_END}"
    refused = sync_rebates(account="moon", return_state=True)
    assert refused.is_failed()
    assert "account 'moon' is not configured: REBATES_ACCOUNTS names eu, asia" in str(refused.message)


def asia_credentials_in_a_block(block: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Save asia's credentials as the Secret block `block` and unset its variables (the block names nothing yet)."""
    Secret(
        value={"OKX_API_KEY": ASIA.api_key, "OKX_SECRET_KEY": ASIA.secret_key, "OKX_PASSPHRASE": ASIA.passphrase}
    ).save(block, overwrite=True)
    for name in ("OKX_API_KEY_ASIA", "OKX_SECRET_KEY_ASIA", "OKX_PASSPHRASE_ASIA"):
        monkeypatch.delenv(name)


def test_each_account_reads_its_own_secret_block_and_never_the_unsuffixed_one(
    accounts_env: Path, two_accounts: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    asia_credentials_in_a_block("okx-rebates-asia-test", monkeypatch)
    monkeypatch.setenv("REBATES_CREDENTIALS_BLOCK", "okx-rebates-asia-test")  # the unsuffixed: not asia's
    with pytest.raises(SettingsError, match="OKX_API_KEY_ASIA is not set"):
        prepare(run_settings("asia"))
    monkeypatch.setenv("REBATES_CREDENTIALS_BLOCK_ASIA", "okx-rebates-asia-test")
    assert run_settings("asia").require_credentials()[0].get_secret_value() == ASIA.api_key
    assert run_settings("eu").require_credentials()[0].get_secret_value() == EU.api_key
    state = sync_rebates(begin=ASIA_START, end=ASIA_END, account="asia", return_state=True)
    assert state.is_completed(), state.message
    assert set(loaded_windows(accounts_env)) == {window("asia")}
    monkeypatch.setenv("REBATES_CREDENTIALS_BLOCK_ASIA", "no-such-block")
    with pytest.raises(SettingsError, match="REBATES_CREDENTIALS_BLOCK_ASIA=no-such-block: no Prefect Secret block"):
        run_settings("asia")


def test_the_doctor_reads_an_accounts_credentials_from_its_secret_block(
    accounts_env: Path, two_accounts: RunningSimulator, flow_clock: FileClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rebates doctor` checks the credentials the flows will use, not only the variables (they may be unset)."""
    asia_credentials_in_a_block("okx-rebates-asia-doctor", monkeypatch)
    monkeypatch.setenv("REBATES_CREDENTIALS_BLOCK_ASIA", "okx-rebates-asia-doctor")
    checks = {check.name: check for check in run_doctor(None, flow_clock, account_loader=_secret_block_reader())}
    assert checks["credentials (asia)"] == Check(
        "credentials (asia)", True, "read from the Prefect Secret block 'okx-rebates-asia-doctor' "
        "(REBATES_CREDENTIALS_BLOCK_ASIA)"
    )  # fmt: skip
    assert checks["OKX API (asia)"].ok, checks["OKX API (asia)"].detail
    assert checks["credentials (eu)"].ok and "OKX_API_KEY_EU" in checks["credentials (eu)"].detail
    monkeypatch.setenv("REBATES_CREDENTIALS_BLOCK_ASIA", "no-such-block")
    checks = {check.name: check for check in run_doctor(None, flow_clock, account_loader=_secret_block_reader())}
    refused = checks["credentials (asia)"]
    assert not refused.ok and "REBATES_CREDENTIALS_BLOCK_ASIA=no-such-block: no Prefect Secret block" in refused.detail
    assert checks["OKX API (asia)"].detail == "not checked: set the credentials first"


def test_a_backfill_of_every_account_publishes_each_accounts_progress(
    accounts_env: Path, two_accounts: RunningSimulator, prefect_api: PostToApi
) -> None:
    state = backfill(begin=START, end=SEEDED_END, broker_type="api", max_hours=0, return_state=True)
    assert state.is_completed(), state.message
    found = run_artifacts(prefect_api, flow_run_id(state))
    assert found["backfill-progress-eu"]["data"] == 100.0  # OKX had eu's file
    assert found["backfill-progress-asia"]["data"] == 0.0  # asia's was just created, within max_hours=0
    assert "| unfinished in range | - |" in found["backfill-summary-eu"]["data"]
    created = f"| created | asia:api:{START:%Y%m%d}-{SEEDED_END:%Y%m%d} (created) |"
    assert created in found["backfill-summary-asia"]["data"]
    assert run_name_and_parameters(state)[0] == f"backfill eu+asia api {START}..{SEEDED_END}"


def test_build_reports_takes_an_account(
    accounts_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: PostToApi
) -> None:
    calls: list[tuple[Period, str | None]] = []
    fake = fake_report_module(calls)
    monkeypatch.setitem(sys.modules, "pipeline.report.run", fake)
    state = build_reports(day=date(2026, 10, 30), out_dir=str(tmp_path / "out"), account="eu", return_state=True)
    assert state.is_completed(), state.message
    assert fake.accounts == ["eu"]
    assert run_name_and_parameters(state)[0] == "reports 2026-10-30 of account eu"
    assert "reports-summary-eu" in run_artifacts(prefect_api, flow_run_id(state))
    assert build_reports(day=date(2026, 10, 30), account="moon", return_state=True).is_failed()


def test_retry_ids_go_to_their_own_account_and_another_accounts_are_refused() -> None:
    eu, asia = window("eu"), window("asia")
    assert retry_by_account([eu, asia], ["eu", "asia"]) == {"eu": [eu], "asia": [asia]}
    assert retry_by_account(None, ["eu"]) == {"eu": []}
    with pytest.raises(UsageError, match="is a window of account asia, and this run covers eu"):
        retry_by_account([asia], ["eu"])
    with pytest.raises(UsageError, match="retry: "):
        retry_by_account(["not-a-window"], ["eu"])


def test_artifact_keys_are_todays_for_the_default_account_and_suffixed_for_others() -> None:
    assert account_key("window-states", "default") == "window-states"
    assert account_key("window-states", "eu_2") == "window-states-eu-2"


def test_one_accounts_malformed_variable_fails_only_that_account(
    accounts_env: Path, two_accounts: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OKX_BASE_URL_EU", "http://not-loopback.example")  # plain http off loopback: refused
    state = sync_rebates(begin=ASIA_START, end=ASIA_END, return_state=True)
    assert state.is_failed()
    assert "1 of 2 accounts failed (eu): eu: OKX_BASE_URL_EU" in str(state.message)
    assert set(loaded_windows(accounts_env)) == {window("asia")}
