"""`rebates doctor` against the simulator: every check passes when all is well, and each failure names its fix."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from typer.testing import CliRunner

import pipeline.doctor
from pipeline.cli import Exit, app, console
from pipeline.clock import FakeClock, epoch_ms
from pipeline.config import Settings
from pipeline.db import connect
from pipeline.doctor import Check, run_doctor
from pipeline.domain import PUBLIC_TIME_PATH, REBATE_PATH
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import (
    DEFAULT_API_KEY,
    DEFAULT_PASSPHRASE,
    DEFAULT_SECRET_KEY,
    SimAccount,
    SimulatorConfig,
)
from tests.conftest import accounts_variables, set_env
from tests.postgres import Cluster

pytestmark = pytest.mark.slow

CHECK_NAMES = ["settings", "credentials", "data directory", "database", "OKX API", "clock"]
WRONG_SECRET = "wrong-secret-4c1d9e"


@pytest.fixture
def fake_clock() -> FakeClock:
    """The shared fake clock, started at the real time: the simulator's HTTP Date header is the real time."""
    return FakeClock(datetime.now(UTC))


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def assert_no_secret(checks: list[Check], *secrets: str) -> None:
    text = json.dumps([check.detail for check in checks])
    for secret in (DEFAULT_SECRET_KEY, DEFAULT_PASSPHRASE, *secrets):
        assert secret not in text


def test_every_check_passes_against_the_simulator(sim_settings: Settings, fake_clock: FakeClock) -> None:
    checks = run_doctor(sim_settings, fake_clock)
    assert [check.name for check in checks] == CHECK_NAMES
    assert all(check.ok for check in checks), checks
    found = by_name(checks)
    assert "the loopback simulator" in found["settings"].detail
    assert "no database yet" in found["database"].detail
    assert "as broker type api" in found["OKX API"].detail
    assert PUBLIC_TIME_PATH in found["clock"].detail  # the simulator's own clock, not the HTTP Date header
    assert_no_secret(checks)


def test_skew_is_measured_against_the_simulators_fake_clock(sim_settings: Settings, fake_clock: FakeClock) -> None:
    behind = FakeClock(fake_clock.now() - timedelta(minutes=3))  # this machine's clock, 3 min behind the server's
    check = by_name(run_doctor(sim_settings, behind))["clock"]
    assert not check.ok
    assert "180 s behind the server's" in check.detail


def test_settings_are_loaded_from_the_environment(
    sim_settings: Settings, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OKX_API_KEY", DEFAULT_API_KEY)
    monkeypatch.setenv("OKX_SECRET_KEY", DEFAULT_SECRET_KEY)
    monkeypatch.setenv("OKX_PASSPHRASE", DEFAULT_PASSPHRASE)
    monkeypatch.setenv("OKX_BASE_URL", sim_settings.okx_base_url)
    monkeypatch.setenv("REBATES_BROKER_TYPES", "oauth")
    monkeypatch.setenv("REBATES_DATA_DIR", str(sim_settings.rebates_data_dir))
    monkeypatch.setenv("REBATES_DB", str(sim_settings.rebates_db))
    checks = run_doctor(None, fake_clock)
    assert all(check.ok for check in checks), checks
    assert "as broker type oauth" in by_name(checks)["OKX API"].detail


def test_a_malformed_setting_is_named_and_the_other_checks_wait(
    fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REBATES_TZ", "Mars/Olympus_Mons")
    checks = run_doctor(None, fake_clock)
    assert [check.name for check in checks] == CHECK_NAMES
    assert not any(check.ok for check in checks)
    assert "REBATES_TZ" in checks[0].detail
    assert all(check.detail.startswith("not checked") for check in checks[1:])


def test_missing_credentials_are_named_and_okx_is_not_called(
    sim_settings: Settings, fake_clock: FakeClock, simulator: RunningSimulator
) -> None:
    checks = by_name(run_doctor(sim_settings.replace(okx_passphrase=None), fake_clock))
    assert not checks["credentials"].ok
    assert "OKX_PASSPHRASE" in checks["credentials"].detail
    assert checks["OKX API"].detail.startswith("not checked")
    assert simulator.state.calls("GET", REBATE_PATH) == []


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"okx_secret_key": WRONG_SECRET}, "OKX_SECRET_KEY"),
        ({"okx_passphrase": WRONG_SECRET}, "OKX_PASSPHRASE"),
        ({"okx_api_key": WRONG_SECRET}, "OKX_API_KEY"),
        ({"okx_demo": True}, "OKX_DEMO"),
    ],
)
def test_refused_credentials_name_the_setting_to_fix(
    sim_settings: Settings, fake_clock: FakeClock, change: dict[str, object], names: str
) -> None:
    checks = run_doctor(sim_settings.replace(**change), fake_clock)
    found = by_name(checks)
    assert not found["OKX API"].ok
    assert names in found["OKX API"].detail
    assert found["clock"].ok  # a wrong key is not a wrong clock
    assert_no_secret(checks, WRONG_SECRET)


def test_a_broker_type_the_account_lacks_is_named(sim_settings: Settings, fake_clock: FakeClock) -> None:
    transport = okx_transport(fake_clock, rebate_answer={"code": "51000", "msg": "Parameter brokerType error"})
    check = by_name(run_doctor(sim_settings, fake_clock, transport=transport))["OKX API"]
    assert not check.ok
    assert "REBATES_BROKER_TYPES" in check.detail


def okx_transport(
    clock: FakeClock, *, server_offset: timedelta = timedelta(0), rebate_answer: dict[str, object] | None = None
) -> httpx.MockTransport:
    """A scripted OKX: its public time is the clock plus `server_offset`; the rebate list answers `rebate_answer`."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == PUBLIC_TIME_PATH:
            stamp = str(epoch_ms(clock.now() + server_offset))
            return httpx.Response(200, json={"code": "0", "msg": "", "data": [{"ts": stamp}]})
        assert request.url.path == REBATE_PATH
        answer = rebate_answer or {"code": "0", "msg": "", "data": []}
        return httpx.Response(200 if answer["code"] in ("0", "51000") else 400, json=answer)

    return httpx.MockTransport(handle)


def test_the_clock_passes_when_okx_agrees(sim_settings: Settings, fake_clock: FakeClock) -> None:
    check = by_name(run_doctor(sim_settings, fake_clock, transport=okx_transport(fake_clock)))["clock"]
    assert check.ok
    assert PUBLIC_TIME_PATH in check.detail


@pytest.mark.parametrize(("offset", "words"), [(timedelta(seconds=-45), "ahead of"), (timedelta(seconds=40), "behind")])
def test_a_skewed_clock_is_measured_and_the_fix_named(
    sim_settings: Settings, fake_clock: FakeClock, offset: timedelta, words: str
) -> None:
    transport = okx_transport(fake_clock, server_offset=offset)
    check = by_name(run_doctor(sim_settings, fake_clock, transport=transport))["clock"]
    assert not check.ok
    assert f"{abs(offset.total_seconds()):.0f} s {words}" in check.detail
    assert "NTP" in check.detail


def test_skew_is_read_from_the_date_header_when_the_server_has_no_time_endpoint(
    sim_settings: Settings, fake_clock: FakeClock
) -> None:
    server_now = fake_clock.now()
    fake_clock.advance(timedelta(minutes=2))

    def no_time_endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="Not Found", headers={"Date": format_datetime(server_now, usegmt=True)})

    check = run_doctor(sim_settings, fake_clock, transport=httpx.MockTransport(no_time_endpoint))[-1]
    assert (check.name, check.ok) == ("clock", False)
    assert "120 s ahead of the server's (the HTTP Date header" in check.detail


def test_an_unreachable_okx_is_reported(sim_settings: Settings, fake_clock: FakeClock) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    found = by_name(run_doctor(sim_settings, fake_clock, transport=httpx.MockTransport(refuse)))
    assert not found["OKX API"].ok
    assert "OKX_BASE_URL" in found["OKX API"].detail
    assert not found["clock"].ok
    assert "OKX_BASE_URL" in found["clock"].detail


def test_a_data_dir_that_is_not_a_directory_is_reported(
    sim_settings: Settings, fake_clock: FakeClock, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    settings = sim_settings.replace(rebates_data_dir=blocker, rebates_db=tmp_path / "db" / "rebates.duckdb")
    found = by_name(run_doctor(settings, fake_clock))
    assert not found["data directory"].ok
    assert "REBATES_DATA_DIR" in found["data directory"].detail
    assert found["OKX API"].detail.startswith("not checked")


def test_an_existing_database_is_opened_and_counted(sim_settings: Settings, fake_clock: FakeClock) -> None:
    with connect(sim_settings.rebates_db):
        pass  # creates the file and its schema
    check = by_name(run_doctor(sim_settings, fake_clock))["database"]
    assert check.ok
    assert "0 window(s)" in check.detail


def test_a_file_that_is_not_a_database_is_reported(sim_settings: Settings, fake_clock: FakeClock) -> None:
    sim_settings.rebates_db.parent.mkdir(parents=True, exist_ok=True)
    sim_settings.rebates_db.write_text("not a database")
    check = by_name(run_doctor(sim_settings, fake_clock))["database"]
    assert not check.ok
    assert "REBATES_DB" in check.detail


def test_a_database_held_by_another_process_is_reported_with_the_fix(
    sim_settings: Settings, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connect(sim_settings.rebates_db):
        pass
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; db = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(30)",
            str(sim_settings.rebates_db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setattr(pipeline.doctor, "DATABASE_WAIT_SECONDS", 0.3)
        check = by_name(run_doctor(sim_settings, fake_clock))["database"]
    finally:
        holder.kill()
        holder.wait(10)
    assert not check.ok
    assert f"process {holder.pid}" in check.detail
    assert "rebates sql" in check.detail


EU = SimAccount(api_key="eu-api-key-0001", secret_key="eu-secret-0001", passphrase="eu-pass-0001")
ASIA = SimAccount(api_key="asia-api-key-0002", secret_key="asia-secret-0002", passphrase="asia-pass-0002")


@pytest.fixture
def two_accounts(fake_clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSimulator]:
    """REBATES_ACCOUNTS=eu,asia in the environment, each with its own keys, against a simulator serving both."""
    with RunningSimulator(SimulatorConfig(accounts=(EU, ASIA), orders_per_day=5), clock=fake_clock) as running:
        data = tmp_path / "data"
        set_env(
            monkeypatch,
            accounts_variables(running.base_url, data, {"eu": EU, "asia": ASIA}, REBATES_BROKER_TYPES="api"),
        )
        yield running


def test_every_accounts_credentials_are_checked_with_one_signed_get_each(
    two_accounts: RunningSimulator, fake_clock: FakeClock
) -> None:
    checks = run_doctor(None, fake_clock)
    assert [check.name for check in checks] == [
        "settings",
        "credentials (eu)",
        "credentials (asia)",
        "data directory",
        "database",
        "OKX API (eu)",
        "OKX API (asia)",
        "clock (eu)",
        "clock (asia)",
    ]
    assert all(check.ok for check in checks), checks
    assert "accounts eu, asia" in checks[0].detail
    assert "OKX_API_KEY_ASIA, OKX_SECRET_KEY_ASIA and OKX_PASSPHRASE_ASIA are set" in checks[2].detail
    assert len(two_accounts.state.calls("GET", REBATE_PATH)) == 2
    assert_no_secret(checks, EU.secret_key, EU.passphrase, ASIA.secret_key, ASIA.passphrase)


def test_one_accounts_refused_or_missing_credentials_are_named_and_the_other_still_checked(
    two_accounts: RunningSimulator, fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OKX_SECRET_KEY_EU", WRONG_SECRET)
    monkeypatch.delenv("OKX_PASSPHRASE_ASIA")
    found = by_name(run_doctor(None, fake_clock))
    assert not found["OKX API (eu)"].ok and "OKX_SECRET_KEY" in found["OKX API (eu)"].detail
    assert not found["credentials (asia)"].ok and "OKX_PASSPHRASE_ASIA is not set" in found["credentials (asia)"].detail
    assert found["OKX API (asia)"].detail.startswith("not checked")
    assert found["credentials (eu)"].ok and found["clock (asia)"].ok
    assert_no_secret(list(found.values()), WRONG_SECRET)


STATE_PASSWORD = "pg#secret/0042"


@pytest.mark.parametrize("server", ["down", "refusing the password"])
def test_postgresql_down_or_refusing_fails_the_state_check_and_every_other_check_still_runs(
    simulator_env: Path,
    simulator: RunningSimulator,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    server: str,
) -> None:
    secret = quote(STATE_PASSWORD, safe="")
    if server == "down":
        url, where = f"postgresql://rebates:{secret}@127.0.0.1:{closed_port}/rebates", "Connection refused"
    else:
        cluster: Cluster = request.getfixturevalue("pg_cluster")
        url = cluster.password_database("the-right-one").replace("@", f":{secret}@", 1)
        where = "password authentication failed"
    monkeypatch.setenv("REBATES_STATE_URL", url)
    monkeypatch.setattr(console, "width", 400)  # each check on one line
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == Exit.UNEXPECTED and isinstance(result.exception, SystemExit), result.output
    lines = {line.split(":", 1)[0].strip(): line for line in result.output.splitlines()}
    described = url.replace(f":{secret}@", "@")
    assert lines["fail state"].startswith(f"fail state: PostgreSQL at {described} (REBATES_STATE_URL) is not reachable")
    assert where in lines["fail state"]
    for name in ("settings", "credentials", "data directory", "database", "shared paths", "clock"):
        assert f"ok   {name}" in lines, result.output
    assert lines["fail OKX API"].startswith("fail OKX API: not checked: the GET limiter keeps its slots in PostgreSQL")
    assert simulator.state.calls("GET", REBATE_PATH) == []  # no GET outside the budget every worker shares
    assert STATE_PASSWORD not in result.output and secret not in result.output
