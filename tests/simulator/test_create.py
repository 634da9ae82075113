"""POST rebate-per-orders (create) as documented: 1 per hour per user, ≤180 days, brokerType rules, result/ts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from pipeline.clock import FakeClock, epoch_ms
from pipeline.domain import CREATE_INTERVAL, REBATE_PATH
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import SimAccount
from tests.simulator.conftest import API_ONLY, OAUTH_ONLY, SignedOkx, envelope

RATE_LIMIT_MSG = "Rate limit reached. Please refer to API documentation and throttle requests accordingly."


def test_a_new_range_answers_false_with_the_time_it_was_first_requested(okx: SignedOkx, sim_clock: FakeClock) -> None:
    status, code, data = envelope(okx.create("20250101", "20250131"))
    assert (status, code) == (200, "0")
    assert data == [{"result": "false", "ts": str(epoch_ms(sim_clock.now()))}]


def test_a_second_create_within_the_hour_is_429_50011(okx: SignedOkx, sim_clock: FakeClock) -> None:
    okx.create("20250101", "20250131")
    sim_clock.advance(CREATE_INTERVAL - timedelta(seconds=1))
    response = okx.create("20250201", "20250228")
    assert envelope(response)[:2] == (429, "50011")
    assert response.json()["msg"] == RATE_LIMIT_MSG


def test_create_is_allowed_again_an_hour_after_the_last_accepted_one(
    okx: SignedOkx, sim_clock: FakeClock, sim: RunningSimulator
) -> None:
    okx.create("20250101", "20250131")
    sim_clock.advance(timedelta(minutes=30))
    assert envelope(okx.create("20250201", "20250228"))[:2] == (429, "50011")
    sim_clock.advance(timedelta(minutes=30))
    assert envelope(okx.create("20250201", "20250228"))[:2] == (200, "0")
    assert sim.state.count("POST", REBATE_PATH, code="0") == 2


def test_the_hour_is_shared_by_both_broker_types(okx: SignedOkx) -> None:
    okx.create("20250101", "20250131", "api")
    assert envelope(okx.create("20250101", "20250131", "oauth"))[:2] == (429, "50011")


def test_the_hour_is_per_user(okx: SignedOkx, signed_for: Callable[[SimAccount], SignedOkx]) -> None:
    okx.create("20250101", "20250131", "api")
    assert envelope(signed_for(API_ONLY).create("20250101", "20250131", None))[:2] == (200, "0")


def test_an_existing_range_answers_true_with_the_first_request_time(okx: SignedOkx, sim_clock: FakeClock) -> None:
    first = envelope(okx.create("20250101", "20250131"))[2][0]["ts"]
    sim_clock.advance(CREATE_INTERVAL)
    status, code, data = envelope(okx.create("20250101", "20250131"))
    assert (status, code) == (200, "0")
    assert data == [{"result": "true", "ts": first}]
    assert first != str(epoch_ms(sim_clock.now()))


def test_asking_again_for_an_existing_range_still_spends_the_hour(okx: SignedOkx, sim_clock: FakeClock) -> None:
    okx.create("20250101", "20250131")
    sim_clock.advance(CREATE_INTERVAL)
    okx.create("20250101", "20250131")
    assert envelope(okx.create("20250201", "20250228"))[:2] == (429, "50011")


def test_a_range_is_one_file_per_broker_type(okx: SignedOkx, sim_clock: FakeClock) -> None:
    okx.create("20250101", "20250131", "api")
    sim_clock.advance(CREATE_INTERVAL)
    assert envelope(okx.create("20250101", "20250131", "oauth"))[2][0]["result"] == "false"


def test_180_days_are_accepted(okx: SignedOkx) -> None:
    assert envelope(okx.create("20250101", "20250629"))[:2] == (200, "0")


def test_181_days_are_rejected(okx: SignedOkx) -> None:
    assert envelope(okx.create("20250101", "20250630"))[:2] == (400, "50076")


def test_a_single_day_is_a_range(okx: SignedOkx) -> None:
    assert envelope(okx.create("20221222", "20221222"))[:2] == (200, "0")


def test_begin_after_end_is_51000(okx: SignedOkx) -> None:
    assert envelope(okx.create("20250201", "20250131"))[:2] == (400, "51000")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"end": "20250131", "brokerType": "api"}, "50014"),
        ({"begin": "", "end": "20250131", "brokerType": "api"}, "50014"),
        ({"begin": "20250101", "brokerType": "api"}, "50014"),
        ({"begin": "2025-01-01", "end": "20250131", "brokerType": "api"}, "51000"),
        ({"begin": "20250230", "end": "20250301", "brokerType": "api"}, "51000"),
        ({"begin": 20250101, "end": "20250131", "brokerType": "api"}, "51000"),
    ],
)
def test_a_missing_or_malformed_date_is_rejected(okx: SignedOkx, body: dict[str, object], code: str) -> None:
    assert envelope(okx.request("POST", body=body))[:2] == (400, code)


def test_a_body_that_is_not_json_is_50002(okx: SignedOkx) -> None:
    assert envelope(okx.request("POST", body=b"begin=20250101"))[:2] == (400, "50002")


def test_a_dual_broker_must_name_the_broker_type(okx: SignedOkx) -> None:
    response = okx.create("20250101", "20250131", None)
    assert envelope(response)[:2] == (200, "50044")
    assert response.json()["msg"] == "Must select one broker type"


def test_a_single_type_broker_may_leave_the_broker_type_out(
    signed_for: Callable[[SimAccount], SignedOkx], sim: RunningSimulator
) -> None:
    assert envelope(signed_for(OAUTH_ONLY).create("20250101", "20250131", None))[:2] == (200, "0")
    assert [record.broker_type for record in sim.state.ranges(OAUTH_ONLY.api_key)] == ["oauth"]


def test_a_broker_type_the_account_does_not_have_is_51000(signed_for: Callable[[SimAccount], SignedOkx]) -> None:
    assert envelope(signed_for(API_ONLY).create("20250101", "20250131", "oauth"))[:2] == (400, "51000")


def test_a_create_rejected_for_its_parameters_still_spends_the_hour(okx: SignedOkx) -> None:
    okx.create("20250101", "20250131", None)
    assert envelope(okx.create("20250101", "20250131", "api"))[:2] == (429, "50011")


def test_the_call_log_counts_exactly_one_accepted_create(okx: SignedOkx, sim: RunningSimulator) -> None:
    okx.create("20250101", "20250131")
    okx.create("20250101", "20250131")
    calls = sim.state.calls("POST", REBATE_PATH)
    assert [(call.status, call.code) for call in calls] == [(200, "0"), (429, "50011")]
    assert sim.state.count("POST", REBATE_PATH, status=200) == 1
