"""The OKX client: what it signs is what it sends, which errors it retries, and how it reads OKX's answers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr

from pipeline.clock import FakeClock, from_epoch_ms
from pipeline.config import SettingsError
from pipeline.domain import REBATE_PATH, BrokerType
from pipeline.okx.client import CreateResult, OkxClient, RebateLink, UserRebateInfo
from pipeline.okx.errors import (
    OkxAuthError,
    OkxBrokerTypeError,
    OkxError,
    OkxMalformedAnswerError,
    OkxOAuthError,
    OkxParameterError,
    OkxPermissionError,
    OkxRateLimitError,
    OkxTransientError,
    OkxUnknownCodeError,
)
from pipeline.okx.signing import okx_timestamp, sign

MakeClient = Callable[..., OkxClient]

# The docs' response examples, verbatim.
DOCS_FILE_HREF = (
    "http://okg-pri-hk.oss-cn-hongkong.aliyuncs.com/okex/broker/pap/brokerRebateInfo/"
    "2c0ca94923dca9f53659507ee20a1f/2022-05-16/RebateDetails/RebateDetails0510-0513.xls"
    "?Expires=1652880844&OSSAccessKeyId=LTAIKNPwWs7ASPZn4iaa&Signature=ro%2BD2OMAgVzDrfguxjIM%2FY%3D"
)
DOCS_GET_EXAMPLE = {
    "code": "0",
    "data": [{"fileHref": DOCS_FILE_HREF, "state": "finished", "ts": "1646892328000"}],
    "msg": "",
}
DOCS_POST_EXAMPLE = {"code": "0", "data": [{"result": "true", "ts": "1646892328000"}], "msg": ""}


def okx(code: str = "0", data: list[object] | None = None, *, status: int = 200, msg: str = "") -> httpx.Response:
    return httpx.Response(status, json={"code": code, "msg": msg, "data": data or []})


def assert_signed_as_sent(request: httpx.Request, secret: str) -> None:
    """Recompute OK-ACCESS-SIGN from what the transport received: the path and query on the wire, the body bytes."""
    expected = sign(
        secret, request.headers["OK-ACCESS-TIMESTAMP"], request.method, request.url.raw_path.decode(), request.content
    )
    assert request.headers["OK-ACCESS-SIGN"] == expected


def test_list_signs_exactly_the_path_and_query_sent(
    make_okx_client: MakeClient, okx_sent: list[httpx.Request], okx_credentials: dict[str, str]
) -> None:
    make_okx_client([okx()]).list_rebate_links(None)
    (request,) = okx_sent
    assert request.method == "GET"
    assert request.url.raw_path == f"{REBATE_PATH}?type=true".encode()
    assert request.content == b""
    assert_signed_as_sent(request, okx_credentials["okx_secret_key"])


def test_get_sends_type_begin_end_and_broker_type_in_fixed_order_and_signs_them(
    make_okx_client: MakeClient, okx_sent: list[httpx.Request], okx_credentials: dict[str, str]
) -> None:
    make_okx_client([okx()]).get_rebate_link(date(2024, 1, 1), date(2024, 6, 28), BrokerType.OAUTH)
    (request,) = okx_sent
    assert request.url.raw_path == f"{REBATE_PATH}?type=false&begin=20240101&end=20240628&brokerType=oauth".encode()
    assert_signed_as_sent(request, okx_credentials["okx_secret_key"])


def test_get_omits_broker_type_when_unset(make_okx_client: MakeClient, okx_sent: list[httpx.Request]) -> None:
    make_okx_client([okx()]).get_rebate_link(date(2024, 1, 1), date(2024, 1, 31), None)
    assert okx_sent[0].url.raw_path == f"{REBATE_PATH}?type=false&begin=20240101&end=20240131".encode()


def test_list_sends_broker_type_when_set(make_okx_client: MakeClient, okx_sent: list[httpx.Request]) -> None:
    make_okx_client([okx()]).list_rebate_links(BrokerType.API)
    assert okx_sent[0].url.params == httpx.QueryParams({"type": "true", "brokerType": "api"})


def test_create_signs_the_exact_body_bytes_sent(
    make_okx_client: MakeClient, okx_sent: list[httpx.Request], okx_credentials: dict[str, str]
) -> None:
    make_okx_client([httpx.Response(200, json=DOCS_POST_EXAMPLE)]).create_rebate_file(
        date(2021, 6, 23), date(2021, 6, 26), None
    )
    (request,) = okx_sent
    assert request.method == "POST"
    assert request.url.raw_path == REBATE_PATH.encode()
    assert request.content == b'{"begin":"20210623","end":"20210626"}'
    assert request.headers["Content-Type"] == "application/json"
    assert_signed_as_sent(request, okx_credentials["okx_secret_key"])


def test_create_adds_broker_type_only_when_set(make_okx_client: MakeClient, okx_sent: list[httpx.Request]) -> None:
    client = make_okx_client([httpx.Response(200, json=DOCS_POST_EXAMPLE)])
    client.create_rebate_file(date(2021, 6, 23), date(2021, 6, 26), BrokerType.API)
    assert okx_sent[0].content == b'{"begin":"20210623","end":"20210626","brokerType":"api"}'


def test_every_request_carries_the_okx_headers(
    make_okx_client: MakeClient, okx_sent: list[httpx.Request], okx_credentials: dict[str, str]
) -> None:
    make_okx_client([okx()]).list_rebate_links(None)
    headers = okx_sent[0].headers
    assert headers["OK-ACCESS-KEY"] == okx_credentials["okx_api_key"]
    assert headers["OK-ACCESS-PASSPHRASE"] == okx_credentials["okx_passphrase"]
    assert headers["Content-Type"] == "application/json"
    assert "x-simulated-trading" not in headers


def test_demo_setting_adds_the_simulated_trading_header(
    make_okx_client: MakeClient, okx_sent: list[httpx.Request]
) -> None:
    make_okx_client([okx()], okx_demo=True).list_rebate_links(None)
    assert okx_sent[0].headers["x-simulated-trading"] == "1"


def test_timestamp_comes_from_the_injected_clock(
    make_okx_client: MakeClient, okx_sent: list[httpx.Request], okx_clock: FakeClock
) -> None:
    make_okx_client([okx()]).list_rebate_links(None)
    assert okx_sent[0].headers["OK-ACCESS-TIMESTAMP"] == okx_timestamp(okx_clock.now()) == "2031-05-06T07:08:09.123Z"


def test_each_retry_is_signed_afresh_with_the_clock_after_backoff(
    make_okx_client: MakeClient, okx_sent: list[httpx.Request], okx_credentials: dict[str, str], okx_clock: FakeClock
) -> None:
    start = okx_clock.now()
    make_okx_client([okx("50001", status=503), okx()]).list_rebate_links(None)
    first, second = okx_sent
    assert first.headers["OK-ACCESS-TIMESTAMP"] == okx_timestamp(start)
    assert second.headers["OK-ACCESS-TIMESTAMP"] == okx_timestamp(okx_clock.now())
    assert okx_clock.now() > start
    assert_signed_as_sent(second, okx_credentials["okx_secret_key"])


def test_every_call_has_the_configured_timeout(make_okx_client: MakeClient, okx_sent: list[httpx.Request]) -> None:
    make_okx_client([okx()], rebates_http_timeout=7.5).list_rebate_links(None)
    assert okx_sent[0].extensions["timeout"] == {"connect": 7.5, "read": 7.5, "write": 7.5, "pool": 7.5}


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("50011", 429, OkxRateLimitError),
        ("50011", 200, OkxRateLimitError),
        ("50102", 401, OkxAuthError),
        ("50113", 401, OkxAuthError),
        ("59608", 200, OkxPermissionError),
        ("50044", 200, OkxBrokerTypeError),
        ("51000", 400, OkxParameterError),
        ("53002", 400, OkxOAuthError),
        ("59999", 200, OkxUnknownCodeError),
    ],
)
def test_non_transient_errors_are_raised_at_once_without_retry(
    make_okx_client: MakeClient, okx_sent: list[httpx.Request], code: str, status: int, kind: type[OkxError]
) -> None:
    with pytest.raises(kind):
        make_okx_client([okx(code, status=status), okx()]).list_rebate_links(None)
    assert len(okx_sent) == 1


@pytest.mark.parametrize(
    "failure",
    [
        okx("50001", status=503),
        okx("50013", status=429),
        okx("50026", status=500),
        httpx.Response(502, text="<html>Bad Gateway</html>"),
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ReadTimeout("timed out"),
    ],
)
def test_transient_errors_are_retried_up_to_the_setting(
    make_okx_client: MakeClient,
    okx_sent: list[httpx.Request],
    okx_clock: FakeClock,
    failure: httpx.Response | httpx.TransportError,
) -> None:
    start = okx_clock.now()
    with pytest.raises(OkxTransientError):
        make_okx_client([failure], rebates_http_retries=3).list_rebate_links(None)
    assert len(okx_sent) == 4
    assert timedelta(seconds=0.5 + 1 + 2) <= okx_clock.now() - start <= timedelta(seconds=3 * 8)


def test_backoff_waits_are_capped(make_okx_client: MakeClient, okx_clock: FakeClock) -> None:
    start = okx_clock.now()
    with pytest.raises(OkxTransientError):
        make_okx_client([okx("50001", status=503)], rebates_http_retries=10).list_rebate_links(None)
    assert okx_clock.now() - start <= timedelta(seconds=10 * 8)
    assert okx_clock.now() - start >= timedelta(seconds=0.5 + 1 + 2 + 4 + 6 * 8)


def test_zero_retries_means_one_attempt(make_okx_client: MakeClient, okx_sent: list[httpx.Request]) -> None:
    with pytest.raises(OkxTransientError):
        make_okx_client([okx("50001", status=503)], rebates_http_retries=0).list_rebate_links(None)
    assert len(okx_sent) == 1


def test_a_transient_error_then_success_returns_the_answer(
    make_okx_client: MakeClient, okx_sent: list[httpx.Request]
) -> None:
    links = make_okx_client([okx("50013", status=429), httpx.Response(200, json=DOCS_GET_EXAMPLE)]).list_rebate_links(
        None
    )
    assert len(okx_sent) == 2
    assert [link.state for link in links] == ["finished"]


def test_each_retry_is_logged_with_method_path_and_code(
    make_okx_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pipeline.okx.client")
    with pytest.raises(OkxTransientError):
        make_okx_client([okx("50026", status=500)], rebates_http_retries=2).list_rebate_links(None)
    retries = [record for record in caplog.records if record.name == "pipeline.okx.client"]
    assert len(retries) == 2
    for record in retries:
        assert record.levelno == logging.WARNING
        assert f"GET {REBATE_PATH}" in record.getMessage() and "50026" in record.getMessage()


def test_before_request_runs_before_every_attempt_including_retries(
    make_okx_client: MakeClient, okx_sent: list[httpx.Request]
) -> None:
    calls: list[tuple[str, str, int]] = []

    def before_request(method: str, path: str) -> None:
        calls.append((method, path, len(okx_sent)))

    client = make_okx_client([okx("50001", status=503), okx("50001", status=503), okx()], before_request=before_request)
    client.list_rebate_links(None)
    assert calls == [("GET", REBATE_PATH, 0), ("GET", REBATE_PATH, 1), ("GET", REBATE_PATH, 2)]


def test_before_request_waiting_on_the_clock_is_reflected_in_the_timestamp(
    make_okx_client: MakeClient, okx_sent: list[httpx.Request], okx_clock: FakeClock
) -> None:
    client = make_okx_client([okx()], before_request=lambda method, path: okx_clock.sleep(45))
    client.list_rebate_links(None)
    assert okx_sent[0].headers["OK-ACCESS-TIMESTAMP"] == okx_timestamp(okx_clock.now())


def test_a_request_is_signed_at_the_moment_its_slot_was_granted(
    make_okx_client: MakeClient, okx_sent: list[httpx.Request], okx_clock: FakeClock
) -> None:
    """What the limiter spaced out is what OKX is told, though a shared simulated clock moved after the grant."""
    granted = okx_clock.now()

    def before_request(method: str, path: str) -> datetime:
        okx_clock.advance(60)  # another process's simulated wait, between the grant and the signing
        return granted

    make_okx_client([okx()], before_request=before_request).list_rebate_links(None)
    assert okx_sent[0].headers["OK-ACCESS-TIMESTAMP"] == okx_timestamp(granted)


def test_rate_limit_error_carries_retry_after_from_the_client_clock(
    make_okx_client: MakeClient, okx_clock: FakeClock
) -> None:
    limited = httpx.Response(429, json={"code": "50011", "msg": "Rate limit reached", "data": []})
    limited.headers["Retry-After"] = "60"
    with pytest.raises(OkxRateLimitError) as raised:
        make_okx_client([limited]).create_rebate_file(date(2024, 1, 1), date(2024, 1, 31), None)
    assert raised.value.retry_after == okx_clock.now() + timedelta(seconds=60)


def test_parses_the_docs_get_example(make_okx_client: MakeClient) -> None:
    (link,) = make_okx_client([httpx.Response(200, json=DOCS_GET_EXAMPLE)]).list_rebate_links(None)
    assert link == RebateLink(
        state="finished",
        file_href=DOCS_FILE_HREF,
        begin_time=None,
        end_time=None,
        c_time=None,
        ts=datetime(2022, 3, 10, 6, 5, 28, tzinfo=UTC),
    )


def test_parses_the_docs_post_example(make_okx_client: MakeClient) -> None:
    result = make_okx_client([httpx.Response(200, json=DOCS_POST_EXAMPLE)]).create_rebate_file(
        date(2021, 6, 23), date(2021, 6, 26), None
    )
    assert result == CreateResult(existed=True, first_requested_at=from_epoch_ms(1646892328000))


def test_create_reads_false_as_being_generated(make_okx_client: MakeClient) -> None:
    result = make_okx_client([okx(data=[{"result": "false", "ts": "1671638400000"}])]).create_rebate_file(
        date(2022, 12, 22), date(2022, 12, 22), None
    )
    assert result.existed is False
    assert result.first_requested_at == datetime(2022, 12, 21, 16, tzinfo=UTC)


def test_parses_every_link_field_as_aware_utc_and_empty_as_none(make_okx_client: MakeClient) -> None:
    items: list[object] = [
        {
            "fileHref": "https://bucket.example/RebateDetails1222-1222.csv?Signature=x",
            "beginTime": "1671638400000",
            "endTime": "1671638400000",
            "cTime": "1671700000000",
            "ts": "1671710000000",
            "state": "finished",
        },
        {"fileHref": "", "beginTime": "", "endTime": "", "cTime": "1671700000000", "ts": "", "state": "ongoing"},
        {"state": "ongoing"},
    ]
    finished, ongoing, bare = make_okx_client([okx(data=items)]).list_rebate_links(None)
    assert finished.begin_time == datetime(2022, 12, 21, 16, tzinfo=UTC)
    assert finished.begin_time is not None and finished.begin_time.utcoffset() == timedelta(0)
    assert finished.c_time == from_epoch_ms(1671700000000) and finished.ts == from_epoch_ms(1671710000000)
    assert (ongoing.state, ongoing.file_href, ongoing.begin_time, ongoing.ts) == ("ongoing", "", None, None)
    assert ongoing.c_time == from_epoch_ms(1671700000000)
    assert bare == RebateLink(state="ongoing", file_href="", begin_time=None, end_time=None, c_time=None, ts=None)


def test_link_repr_leaves_out_the_signed_file_href(make_okx_client: MakeClient) -> None:
    (link,) = make_okx_client([httpx.Response(200, json=DOCS_GET_EXAMPLE)]).list_rebate_links(None)
    assert "Signature" not in repr(link) and "aliyuncs" not in repr(link)


@pytest.mark.parametrize(
    ("items", "complaint"),
    [
        ([{"state": "pending", "fileHref": ""}], "state='pending': Input should be 'ongoing' or 'finished'"),
        ([{"fileHref": ""}], "without state"),
        ([{"state": "finished", "ts": "yesterday"}], "ts='yesterday'"),
        ([{"state": "finished", "fileHref": 42}], "fileHref"),
        (["not an object"], "an item of type str, not an object"),
    ],
)
def test_a_malformed_link_is_a_clear_error(make_okx_client: MakeClient, items: list[object], complaint: str) -> None:
    with pytest.raises(OkxMalformedAnswerError, match=complaint):
        make_okx_client([okx(data=items)]).list_rebate_links(None)


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ([], "without a result item"),
        ([{"result": "maybe", "ts": "1"}], "result='maybe'"),
        ([{"result": "true"}], "without ts"),
    ],
)
def test_a_malformed_create_answer_is_a_clear_error(
    make_okx_client: MakeClient, data: list[object], complaint: str
) -> None:
    with pytest.raises(OkxMalformedAnswerError, match=complaint):
        make_okx_client([okx(data=data)]).create_rebate_file(date(2024, 1, 1), date(2024, 1, 2), None)


def test_a_non_json_answer_is_a_clear_error(make_okx_client: MakeClient) -> None:
    with pytest.raises(OkxMalformedAnswerError, match="not with its JSON envelope: '<html>login page"):
        make_okx_client([httpx.Response(200, text="<html>login page</html>")]).list_rebate_links(None)


def test_ranges_okx_would_refuse_are_stopped_before_sending(
    make_okx_client: MakeClient, okx_sent: list[httpx.Request]
) -> None:
    client = make_okx_client([okx()])
    with pytest.raises(ValueError, match="after"):
        client.create_rebate_file(date(2024, 2, 1), date(2024, 1, 31), None)
    with pytest.raises(ValueError, match="181 days"):
        client.get_rebate_link(date(2024, 1, 1), date(2024, 6, 29), None)
    assert okx_sent == []


def test_a_180_day_range_is_accepted(make_okx_client: MakeClient, okx_sent: list[httpx.Request]) -> None:
    make_okx_client([okx()]).get_rebate_link(date(2024, 1, 1), date(2024, 6, 28), None)
    assert len(okx_sent) == 1


def test_missing_credentials_stop_the_client_naming_the_setting(make_okx_client: MakeClient) -> None:
    with pytest.raises(SettingsError, match="OKX_PASSPHRASE"):
        make_okx_client([okx()], okx_passphrase="")


def test_repr_shows_base_url_and_demo_flag_only(make_okx_client: MakeClient) -> None:
    assert repr(make_okx_client([okx()], okx_demo=True)) == "OkxClient(base_url='https://okx.test', demo=True)"


def test_context_manager_closes_the_connections(make_okx_client: MakeClient) -> None:
    with make_okx_client([okx()]) as client:
        client.list_rebate_links(None)
    with pytest.raises(RuntimeError, match="closed"):
        client.list_rebate_links(None)


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("peer closed"), okx("50001", status=503)],
    ids=["read timeout", "dropped mid-answer", "503"],
)
def test_a_create_that_may_have_reached_okx_is_never_sent_twice(
    make_okx_client: MakeClient, okx_sent: list[httpx.Request], failure: httpx.Response | httpx.TransportError
) -> None:
    with pytest.raises(OkxTransientError):
        make_okx_client(
            [failure, okx(data=[{"result": "false", "ts": "1"}])], rebates_http_retries=4
        ).create_rebate_file(date(2024, 1, 1), date(2024, 1, 31), None)
    assert [request.method for request in okx_sent] == ["POST"]


def test_a_create_whose_connection_never_opened_is_sent_again(
    make_okx_client: MakeClient, okx_sent: list[httpx.Request]
) -> None:
    answers: list[httpx.Response | httpx.TransportError] = [
        httpx.ConnectError("[Errno 111] Connection refused"),
        okx(data=[{"result": "false", "ts": "1671638400000"}]),
    ]
    result = make_okx_client(answers, rebates_http_retries=2).create_rebate_file(
        date(2024, 1, 1), date(2024, 1, 2), None
    )
    assert result.existed is False
    assert len(okx_sent) == 2


def test_an_if_rebate_answer_is_read_exactly_and_a_float_amount_refused(make_okx_client: MakeClient) -> None:
    answer = {"type": 2, "brokerCode": "ab12", "affiliated": "", "clientRebateRatio": "0.3", "lastRebate": "12.5"}
    info = make_okx_client([okx(data=[answer])]).user_rebate_info(SecretStr("key"), None)
    assert info == UserRebateInfo(
        type="2", broker_code="ab12", affiliated=None, client_rebate_ratio=Decimal("0.3"), last_rebate=Decimal("12.5")
    )
    floated = {**answer, "lastRebate": 12.5}
    with pytest.raises(
        OkxMalformedAnswerError, match=r"lastRebate=12\.5: Value error, expected a decimal number written"
    ):
        make_okx_client([okx(data=[floated])]).user_rebate_info(SecretStr("key"), None)
