"""The simulator authenticates like OKX V5: signed headers, 30 s timestamp tolerance, and OKX's error codes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from pipeline.clock import FakeClock
from pipeline.domain import REBATE_PATH, TIMESTAMP_TOLERANCE
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import SimAccount, SimulatorConfig
from tests.simulator.conftest import API_ONLY, NOT_A_BROKER, SIM_START, SignedOkx, envelope


def test_a_signed_get_with_a_query_string_is_accepted(okx: SignedOkx) -> None:
    assert envelope(okx.links(type="true", brokerType="api")) == (200, "0", [])


def test_a_signed_post_with_a_body_is_accepted(okx: SignedOkx) -> None:
    status, code, data = envelope(okx.create("20250101", "20250131", "oauth"))
    assert (status, code, data[0]["result"]) == (200, "0", "false")


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("OK-ACCESS-KEY", "50103"),
        ("OK-ACCESS-PASSPHRASE", "50104"),
        ("OK-ACCESS-TIMESTAMP", "50107"),
        ("OK-ACCESS-SIGN", "50106"),
    ],
)
def test_a_missing_auth_header_is_rejected_with_its_own_code(okx: SignedOkx, header: str, code: str) -> None:
    assert envelope(okx.request("GET", params={"type": "true"}, headers={header: None}))[:2] == (401, code)


def test_an_unknown_api_key_is_50111(okx: SignedOkx) -> None:
    assert envelope(okx.request("GET", params={"type": "true"}, headers={"OK-ACCESS-KEY": "nobody"}))[:2] == (
        401,
        "50111",
    )


def test_a_wrong_passphrase_is_50105(okx: SignedOkx) -> None:
    response = okx.request("GET", params={"type": "true"}, headers={"OK-ACCESS-PASSPHRASE": "not-it"})
    assert envelope(response)[:2] == (401, "50105")


def test_a_signature_over_another_body_is_50113(okx: SignedOkx) -> None:
    response = okx.request(
        "POST", body={"begin": "20250101", "end": "20250102", "brokerType": "api"}, signed_body=b'{"begin":"x"}'
    )
    assert envelope(response)[:2] == (401, "50113")


def test_the_signature_must_cover_the_query_string(okx: SignedOkx) -> None:
    response = okx.request("GET", params={"type": "true", "brokerType": "api"}, signed_path=REBATE_PATH)
    assert envelope(response)[:2] == (401, "50113")


def test_a_signature_made_with_another_secret_is_50113(signed_for: Callable[[SimAccount], SignedOkx]) -> None:
    impostor = SimAccount(api_key=API_ONLY.api_key, secret_key="guessed", broker_types=API_ONLY.broker_types)
    assert envelope(signed_for(impostor).links(type="true"))[:2] == (401, "50113")


def test_the_signature_covers_the_method(okx: SignedOkx) -> None:
    response = okx.request("GET", params={"type": "true", "brokerType": "api"}, signed_method="POST")
    assert envelope(response)[:2] == (401, "50113")


@pytest.mark.parametrize("seconds", [-30, 30])
def test_a_timestamp_exactly_30_seconds_off_is_accepted(okx: SignedOkx, seconds: int) -> None:
    assert timedelta(seconds=abs(seconds)) == TIMESTAMP_TOLERANCE
    response = okx.request("GET", params={"type": "true", "brokerType": "api"}, skew=timedelta(seconds=seconds))
    assert envelope(response)[:2] == (200, "0")


@pytest.mark.parametrize("milliseconds", [-30_001, 30_001])
def test_a_timestamp_more_than_30_seconds_off_is_50102(okx: SignedOkx, milliseconds: int) -> None:
    response = okx.request(
        "GET", params={"type": "true", "brokerType": "api"}, skew=timedelta(milliseconds=milliseconds)
    )
    assert envelope(response)[:2] == (401, "50102")


def test_an_unparsable_timestamp_is_50112(okx: SignedOkx) -> None:
    response = okx.request("GET", params={"type": "true"}, timestamp="yesterday")
    assert envelope(response)[:2] == (401, "50112")


def test_an_account_that_is_not_a_broker_gets_59608(signed_for: Callable[[SimAccount], SignedOkx]) -> None:
    assert envelope(signed_for(NOT_A_BROKER).links(type="true"))[:2] == (200, "59608")


def test_live_keys_refuse_the_demo_trading_header(okx: SignedOkx) -> None:
    response = okx.request("GET", params={"type": "true"}, headers={"x-simulated-trading": "1"})
    assert envelope(response)[:2] == (401, "50101")


def test_demo_keys_need_the_demo_trading_header() -> None:
    clock = FakeClock(SIM_START)
    with RunningSimulator(SimulatorConfig(demo_only=True), clock=clock) as demo, httpx.Client() as http:
        okx = SignedOkx(base_url=demo.base_url, clock=clock, account=demo.config.accounts[0], http=http)
        live = okx.links(type="true", brokerType="api")
        simulated = okx.request(
            "GET", params={"type": "true", "brokerType": "api"}, headers={"x-simulated-trading": "1"}
        )
    assert envelope(live)[:2] == (401, "50101")
    assert envelope(simulated)[:2] == (200, "0")


def test_a_rejected_signature_spends_no_create_budget(okx: SignedOkx, sim: RunningSimulator) -> None:
    okx.request("POST", body={"begin": "20250101", "end": "20250102", "brokerType": "api"}, signed_body=b"{}")
    assert envelope(okx.create("20250101", "20250102"))[:2] == (200, "0")
    assert sim.state.count("POST", REBATE_PATH, code="50113") == 1
