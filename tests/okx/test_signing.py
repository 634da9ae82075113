"""Request signing: OKX's published known answer, and the timestamp format the server accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pipeline.okx.signing import okx_timestamp, parse_okx_timestamp, sign


def test_sign_reproduces_okx_known_answer() -> None:
    assert (
        sign("mock-secret", "2020-12-08T09:08:57.715Z", "GET", "/api/v5/account/balance?ccy=BTC")
        == "pS6nHuBl6Qc9S0h+soCkCVHaVHZzS19KqFpeI/doTlE="
    )


def test_sign_uppercases_the_method_and_covers_the_body() -> None:
    timestamp = "2020-12-08T09:08:57.715Z"
    path = "/api/v5/broker/fd/rebate-per-orders"
    body = b'{"begin":"20210623","end":"20210626"}'
    assert sign("mock-secret", timestamp, "post", path, body) == sign("mock-secret", timestamp, "POST", path, body)
    assert sign("mock-secret", timestamp, "POST", path, body) != sign("mock-secret", timestamp, "POST", path, b"{}")
    assert sign("mock-secret", timestamp, "POST", path, body) == sign(
        "mock-secret", timestamp, "POST", path, body.decode()
    )


def test_timestamp_is_utc_iso8601_with_milliseconds_and_z() -> None:
    moment = datetime(2020, 12, 8, 17, 8, 57, 715999, tzinfo=timezone(timedelta(hours=8)))
    assert okx_timestamp(moment) == "2020-12-08T09:08:57.715Z"


def test_timestamp_keeps_leading_zero_milliseconds() -> None:
    assert okx_timestamp(datetime(2021, 1, 2, 3, 4, 5, 7000, tzinfo=UTC)) == "2021-01-02T03:04:05.007Z"
    assert okx_timestamp(datetime(2021, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2021-01-02T03:04:05.000Z"


def test_timestamp_parses_back_to_the_same_millisecond() -> None:
    assert parse_okx_timestamp("2020-12-08T09:08:57.715Z") == datetime(2020, 12, 8, 9, 8, 57, 715000, tzinfo=UTC)
    with pytest.raises(ValueError, match="UTC"):
        parse_okx_timestamp("2020-12-08T09:08:57.715+08:00")
