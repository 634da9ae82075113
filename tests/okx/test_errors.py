"""Error classification: every row of FACTS.md's table raises its class, and each message names what to fix."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pipeline.okx.errors import (
    CODES,
    OkxAuthError,
    OkxBrokerTypeError,
    OkxError,
    OkxMalformedAnswerError,
    OkxNotSentError,
    OkxOAuthError,
    OkxParameterError,
    OkxPermissionError,
    OkxRateLimitError,
    OkxTransientError,
    OkxUnknownCodeError,
    classify,
    data_or_raise,
    network_error,
)

PATH = "/api/v5/broker/fd/rebate-per-orders"
NOW = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


def envelope(code: str, msg: str = "", data: object = None) -> bytes:
    return json.dumps({"code": code, "msg": msg, "data": [] if data is None else data}).encode()


# (code, HTTP status, class, words the message must contain): FACTS.md's table, row by row.
FACTS_TABLE = [
    ("50011", 429, OkxRateLimitError, "rate limit"),
    ("50011", 200, OkxRateLimitError, "rate limit"),
    ("50013", 429, OkxTransientError, "retried"),
    ("50001", 503, OkxTransientError, "retried"),
    ("50026", 500, OkxTransientError, "retried"),
    ("50102", 401, OkxAuthError, "fix the machine clock"),
    ("50105", 401, OkxAuthError, "OKX_PASSPHRASE"),
    ("50111", 401, OkxAuthError, "OKX_API_KEY"),
    ("50113", 401, OkxAuthError, "OKX_SECRET_KEY"),
    ("50110", 401, OkxAuthError, "IP whitelist"),
    ("50101", 401, OkxAuthError, "OKX_DEMO"),
    ("50044", 200, OkxBrokerTypeError, "set REBATES_BROKER_TYPES to api or oauth"),
    ("59608", 200, OkxPermissionError, "only broker accounts"),
    ("50014", 200, OkxParameterError, "a bug on our side"),
    ("50014", 400, OkxParameterError, "a bug on our side"),
    ("51000", 200, OkxParameterError, "a bug on our side"),
    ("51000", 400, OkxParameterError, "a bug on our side"),
    ("50076", 200, OkxParameterError, "a bug on our side"),
    ("50076", 400, OkxParameterError, "a bug on our side"),
    ("50103", 401, OkxAuthError, "OKX_API_KEY"),
    ("50104", 401, OkxAuthError, "OKX_PASSPHRASE"),
]


@pytest.mark.parametrize(("code", "status", "kind", "fix"), FACTS_TABLE)
def test_each_known_code_raises_its_class_with_the_fix(code: str, status: int, kind: type[OkxError], fix: str) -> None:
    with pytest.raises(kind) as raised:
        data_or_raise("GET", PATH, status, envelope(code, "OKX's words"), now=NOW)
    assert type(raised.value) is kind
    assert fix in str(raised.value)
    assert raised.value.code == code
    assert raised.value.http_status == status
    assert code in str(raised.value) and "OKX's words" in str(raised.value) and PATH in str(raised.value)


@pytest.mark.parametrize("code", [str(code) for code in range(53000, 53018) if code != 53013])
def test_oauth_codes_raise_oauth_errors(code: str) -> None:
    assert type(classify("GET", PATH, 400, code, "Invalid token")) is OkxOAuthError


def test_oauth_permission_code_is_a_permission_error() -> None:
    assert type(classify("GET", PATH, 400, "53013", "no permission")) is OkxPermissionError


def test_code_table_is_data_covering_every_documented_code() -> None:
    documented = {row[0] for row in FACTS_TABLE} | {str(code) for code in range(53000, 53018)}
    assert documented <= CODES.keys()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (502, OkxTransientError),
        (500, OkxTransientError),
        (429, OkxRateLimitError),
        (401, OkxAuthError),
        (403, OkxPermissionError),
        (400, OkxParameterError),
        (404, OkxParameterError),
        (200, OkxUnknownCodeError),
    ],
)
def test_unknown_codes_are_classified_by_http_status(status: int, kind: type[OkxError]) -> None:
    assert type(classify("GET", PATH, status, "59999", "something new")) is kind


def test_a_known_code_wins_over_its_http_status() -> None:
    assert type(classify("GET", PATH, 429, "50013", "busy")) is OkxTransientError
    assert type(classify("GET", PATH, 500, "50113", "Invalid Sign")) is OkxAuthError


def test_unknown_code_message_quotes_okx_and_says_it_is_unknown() -> None:
    error = classify("GET", PATH, 200, "59999", "something new")
    assert "59999" in str(error) and "something new" in str(error) and "does not know" in str(error)


def test_success_returns_the_data_list() -> None:
    assert data_or_raise("GET", PATH, 200, envelope("0", data=[{"a": "b"}])) == [{"a": "b"}]


def test_code_zero_without_data_list_is_malformed() -> None:
    body = json.dumps({"code": "0", "msg": "", "data": {"result": "true"}}).encode()
    with pytest.raises(OkxMalformedAnswerError, match="no data list"):
        data_or_raise("POST", PATH, 200, body)


def test_non_json_error_page_is_classified_by_status() -> None:
    with pytest.raises(OkxTransientError, match="502 Bad Gateway"):
        data_or_raise("GET", PATH, 502, b"<html><body>502 Bad Gateway</body></html>")
    with pytest.raises(OkxRateLimitError):
        data_or_raise("GET", PATH, 429, b"Too Many Requests")


def test_non_envelope_200_is_malformed_and_quotes_a_truncated_excerpt() -> None:
    body = b"<html>" + b"x" * 5000 + b"</html>"
    with pytest.raises(OkxMalformedAnswerError) as raised:
        data_or_raise("GET", PATH, 200, body)
    message = str(raised.value)
    assert "<html>xxx" in message and "OKX_BASE_URL" in message
    assert len(message) < 600 and "</html>" not in message


def test_excerpt_cuts_signed_link_query_strings() -> None:
    body = b'{"code":"0","data":{"fileHref":"https://bucket.example/f.csv?Expires=1&Signature=SECRETSIG"}}'
    with pytest.raises(OkxMalformedAnswerError) as raised:
        data_or_raise("GET", PATH, 200, body)
    assert "https://bucket.example/f.csv?..." in str(raised.value)
    assert "SECRETSIG" not in str(raised.value)


def test_rate_limit_carries_retry_after_seconds_from_the_clock() -> None:
    with pytest.raises(OkxRateLimitError) as raised:
        data_or_raise("GET", PATH, 429, envelope("50011", "Rate limit reached"), retry_after="30", now=NOW)
    assert raised.value.retry_after == NOW + timedelta(seconds=30)


def test_rate_limit_carries_retry_after_http_date() -> None:
    with pytest.raises(OkxRateLimitError) as raised:
        data_or_raise("GET", PATH, 429, envelope("50011"), retry_after="Tue, 06 May 2031 07:10:00 GMT", now=NOW)
    assert raised.value.retry_after == datetime(2031, 5, 6, 7, 10, tzinfo=UTC)


def test_rate_limit_without_or_with_unreadable_retry_after_has_none() -> None:
    for header in (None, "soon"):
        with pytest.raises(OkxRateLimitError) as raised:
            data_or_raise("GET", PATH, 200, envelope("50011"), retry_after=header, now=NOW)
        assert raised.value.retry_after is None


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("timed out"),
        httpx.ReadError("connection reset"),
        httpx.RemoteProtocolError("peer closed connection"),
    ],
)
def test_timeouts_and_dropped_connections_are_transient(error: httpx.TransportError) -> None:
    classified = network_error("GET", PATH, error)
    assert type(classified) is OkxTransientError
    assert type(error).__name__ in str(classified) and "REBATES_HTTP_TIMEOUT" in str(classified)


@pytest.mark.parametrize(
    "error", [httpx.ConnectTimeout("timed out"), httpx.ConnectError("[Errno 111] Connection refused")]
)
def test_a_connection_that_never_opened_is_transient_and_known_not_sent(error: httpx.TransportError) -> None:
    classified = network_error("POST", PATH, error)
    assert isinstance(classified, OkxTransientError) and type(classified) is OkxNotSentError
    assert type(error).__name__ in str(classified) and "OKX_BASE_URL" in str(classified)


def test_a_protocol_error_never_quotes_the_header_it_complains_about() -> None:
    leaked = httpx.LocalProtocolError("Illegal header value b'secret-passphrase\\n'")
    classified = network_error("GET", PATH, leaked)
    assert "secret-passphrase" not in str(classified)
    assert "LocalProtocolError" in str(classified)


def test_a_request_that_cannot_be_sent_is_not_transient() -> None:
    classified = network_error("GET", PATH, httpx.UnsupportedProtocol("Request URL has an unsupported protocol"))
    assert type(classified) is OkxError
    assert "OKX_BASE_URL" in str(classified)
