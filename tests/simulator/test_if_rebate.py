"""The simulator's `GET if-rebate`: every `type`, the user errors, its own 2-a-second limit, and brokerType rules."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pipeline.clock import FakeClock
from pipeline.domain import IF_REBATE_PATH
from pipeline.simulator.state import DEFAULT_USERS, SimAccount, SimUser
from tests.simulator.conftest import API_ONLY, NOT_A_BROKER, SignedOkx, envelope


def ask(okx: SignedOkx, **params: str) -> tuple[int, str, list[dict[str, str]]]:
    return envelope(okx.request("GET", IF_REBATE_PATH, params=params))


@pytest.mark.parametrize("user", [user for user in DEFAULT_USERS if user.error is None], ids=lambda user: user.api_key)
def test_each_known_user_gets_its_type_and_fields(okx: SignedOkx, user: SimUser) -> None:
    status, code, data = ask(okx, apiKey=user.api_key, brokerType=user.broker_type.value)
    assert (status, code) == (200, "0")
    (item,) = data
    assert item["type"] == user.type
    assert item["lastRebate"] == user.last_rebate
    assert item["clientRebateRatio"] == user.client_rebate_ratio
    assert item["affiliated"] == ("true" if user.affiliated else "false")
    assert item["brokerCode"]


def test_the_default_users_cover_every_documented_type() -> None:
    assert {user.type for user in DEFAULT_USERS if user.error is None} == {"0", "1", "2", "3", "4"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"apiKey": "sim-user-frozen-0007", "brokerType": "api"}, (400, "53004")),
        ({"apiKey": "nobody-knows-this-key", "brokerType": "api"}, (400, "53010")),
        ({"apiKey": "sim-user-oauth-0006", "brokerType": "api"}, (400, "53010")),
        ({"brokerType": "api"}, (400, "50014")),
        ({"apiKey": "sim-user-earns-0001"}, (200, "50044")),
    ],
    ids=["frozen", "unknown", "other-broker-type", "no-key", "no-broker-type"],
)
def test_user_errors_answer_okxs_codes(okx: SignedOkx, params: dict[str, str], expected: tuple[int, str]) -> None:
    status, code, _ = ask(okx, **params)
    assert (status, code) == expected


def test_a_third_check_within_a_second_is_rate_limited(okx: SignedOkx, sim_clock: FakeClock) -> None:
    codes = [ask(okx, apiKey="sim-user-earns-0001", brokerType="api")[1] for _ in range(3)]
    assert codes == ["0", "0", "50011"]
    sim_clock.advance(1.0)
    assert ask(okx, apiKey="sim-user-earns-0001", brokerType="api")[1] == "0"


def test_an_account_of_one_broker_type_needs_no_broker_type_and_a_retail_account_is_refused(
    signed_for: Callable[[SimAccount], SignedOkx],
) -> None:
    assert ask(signed_for(API_ONLY), apiKey="sim-user-earns-0001")[1] == "0"
    assert ask(signed_for(NOT_A_BROKER), apiKey="sim-user-earns-0001")[1] == "59608"
