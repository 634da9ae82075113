"""Several accounts on one simulator: each its own keys, data, limits and regional host; the default unchanged."""

from __future__ import annotations

import csv
import io
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.clock import FakeClock, from_epoch_ms
from pipeline.domain import IF_REBATE_PATH, REBATE_PATH, BrokerType
from pipeline.simulator.files import FileSpec, build_rebate_file
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import (
    DEFAULT_ACCOUNT,
    SimAccount,
    SimulatorConfig,
    named_accounts,
    operator_variables,
)
from tests.simulator.conftest import SIM_START, SignedOkx, envelope
from tests.simulator.test_process import Output

EU = SimAccount.named("eu", (BrokerType.API, BrokerType.OAUTH), host="127.0.0.1")
ASIA = SimAccount.named("asia", (BrokerType.API,), host="localhost")


@pytest.fixture
def regions() -> Iterator[RunningSimulator]:
    config = SimulatorConfig(accounts=(EU, ASIA), orders_per_day=6, ready_after=timedelta(0))
    with RunningSimulator(config, clock=FakeClock(SIM_START)) as running:
        yield running


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


def signed(sim: RunningSimulator, account: SimAccount, http: httpx.Client) -> SignedOkx:
    """Requests as `account`, sent to its own regional host."""
    return SignedOkx(base_url=sim.url_at(account.host or "127.0.0.1"), clock=sim.clock, account=account, http=http)


def download(okx: SignedOkx, broker_type: str) -> list[dict[str, str]]:
    """Create 2025-01-01..02 for `broker_type`, fetch its link and read the file's rows."""
    assert envelope(okx.create("20250101", "20250102", broker_type))[:2] == (200, "0")
    (item,) = envelope(okx.links(type="false", begin="20250101", end="20250102", brokerType=broker_type))[2]
    return list(csv.DictReader(io.StringIO(okx.http.get(item["fileHref"]).text)))


def test_the_default_account_serves_exactly_the_files_it_always_did() -> None:
    with RunningSimulator(SimulatorConfig(orders_per_day=6), clock=FakeClock(SIM_START)) as sim:
        record = sim.state.seed_file(DEFAULT_ACCOUNT.api_key, "api", date(2025, 1, 1), date(2025, 1, 2))
        expected = build_rebate_file(FileSpec(date(2025, 1, 1), date(2025, 1, 2), "api", seed=0, orders_per_day=6))
        assert sim.state.file_bytes(record) == expected


def test_each_account_has_its_own_orders_broker_codes_and_amounts(
    regions: RunningSimulator, http: httpx.Client
) -> None:
    eu_rows = download(signed(regions, EU, http), "api")
    asia_rows = download(signed(regions, ASIA, http), "api")
    assert len(eu_rows) == len(asia_rows) > 0
    assert not {row["ordId"] for row in eu_rows} & {row["ordId"] for row in asia_rows}
    assert not {row["brokerCode"] for row in eu_rows} & {row["brokerCode"] for row in asia_rows}
    assert [row["fee"] for row in eu_rows] != [row["fee"] for row in asia_rows]
    assert EU.seed is not None and ASIA.seed is not None
    spec = FileSpec(date(2025, 1, 1), date(2025, 1, 2), "api", seed=ASIA.seed, orders_per_day=6)
    assert regions.state.file_bytes(regions.state.ranges(ASIA.api_key)[0]) == build_rebate_file(spec)


def test_each_account_is_answered_on_its_own_host_only(regions: RunningSimulator, http: httpx.Client) -> None:
    assert regions.url_at("localhost") != regions.base_url
    asia = signed(regions, ASIA, http)
    assert envelope(asia.links(type="true"))[:2] == (200, "0")
    elsewhere = SignedOkx(base_url=regions.base_url, clock=regions.clock, account=ASIA, http=http)
    assert envelope(elsewhere.links(type="true"))[:2] == (401, "50111")
    download(signed(regions, EU, http), "oauth")
    hosts = {(call.api_key, call.host) for call in regions.state.calls() if call.status == 200}
    assert hosts == {(ASIA.api_key, "localhost"), (EU.api_key, "127.0.0.1")}
    assert [call.api_key for call in regions.state.calls("GET", "/files")] == [EU.api_key]


def test_limits_are_per_account(regions: RunningSimulator, http: httpx.Client) -> None:
    eu, asia = signed(regions, EU, http), signed(regions, ASIA, http)
    assert envelope(eu.create("20250101", "20250101", "api"))[1] == "0"
    assert envelope(eu.create("20250102", "20250102", "api"))[1] == "50011"
    assert envelope(asia.create("20250101", "20250101", "api"))[1] == "0"
    assert [envelope(eu.links(type="true", brokerType="api"))[1] for _ in range(3)] == ["0", "0", "50011"]
    assert [envelope(asia.links(type="true"))[1] for _ in range(2)] == ["0", "0"]
    checks = [asia.request("GET", IF_REBATE_PATH, params={"apiKey": "sim-user-earns-0001"}) for _ in range(3)]
    assert [envelope(check)[1] for check in checks] == ["0", "0", "50011"]
    eu_check = eu.request("GET", IF_REBATE_PATH, params={"apiKey": "sim-user-earns-0001", "brokerType": "api"})
    assert envelope(eu_check)[1] == "0"
    assert len(regions.state.calls("POST", REBATE_PATH, api_key=EU.api_key)) == 2


def test_named_accounts_take_credentials_and_hosts_from_their_names() -> None:
    eu, asia = named_accounts("eu, asia:api", (BrokerType.API, BrokerType.OAUTH))
    assert (eu.name, eu.api_key, eu.host, eu.broker_types) == ("eu", "sim-api-key-eu", "127.0.0.1", EU.broker_types)
    assert (asia.name, asia.host, asia.broker_types) == ("asia", "localhost", (BrokerType.API,))
    assert eu.seed != asia.seed
    variables = operator_variables((eu, asia), 8765)
    assert variables["REBATES_ACCOUNTS"] == "eu,asia"
    assert variables["OKX_API_KEY_ASIA"] == "sim-api-key-asia"
    assert variables["OKX_PASSPHRASE_EU"] == "sim-passphrase-eu"
    assert variables["OKX_BASE_URL_EU"] == "http://127.0.0.1:8765"
    assert variables["OKX_BASE_URL_ASIA"] == "http://localhost:8765"
    assert variables["REBATES_BROKER_TYPES_ASIA"] == "api"
    with pytest.raises(ValueError, match="named twice"):
        named_accounts("eu,eu", (BrokerType.API,))


def test_the_command_refuses_a_bad_account_list() -> None:
    result = CliRunner().invoke(app, ["simulator", "--accounts", "eu,9x"])
    assert result.exit_code == 2
    assert "not an account name" in result.output


@pytest.mark.integration
def test_the_command_prints_each_accounts_variables_and_serves_them_on_their_hosts(http: httpx.Client) -> None:
    command = [sys.executable, "-m", "pipeline.simulator", "--port", "0", "--fake-clock", "--accounts", "eu,asia:api"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        output = Output(process)
        lines = [output.next_line(15)]
        while "REBATES_BROKER_TYPES_ASIA" not in lines[-1]:
            lines.append(output.next_line(5))
        exported = dict(line.strip().removeprefix("export ").split("=", 1) for line in lines if "export " in line)
        assert exported["REBATES_ACCOUNTS"] == "eu,asia"
        assert exported["OKX_BASE_URL_ASIA"].startswith("http://localhost:")
        asia = SimAccount(
            api_key=exported["OKX_API_KEY_ASIA"],
            secret_key=exported["OKX_SECRET_KEY_ASIA"],
            passphrase=exported["OKX_PASSPHRASE_ASIA"],
            broker_types=(BrokerType.API,),
        )
        state = http.get(exported["OKX_BASE_URL_EU"] + "/__sim__/state").json()
        clock = FakeClock(from_epoch_ms(state["clock"]["nowMs"]))
        okx = SignedOkx(base_url=exported["OKX_BASE_URL_ASIA"], clock=clock, account=asia, http=http)
        assert envelope(okx.links(type="true"))[:2] == (200, "0")
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()
