"""The signed OKX client for the FD-broker endpoints: rebate files (create, list, get a link) and user rebate checks."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any, Literal, NamedTuple, Self, cast, get_args
from urllib.parse import quote_plus, urlencode

import httpx
from pydantic import SecretStr
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from pipeline.clock import Clock, SystemClock, from_epoch_ms
from pipeline.config import Settings, account_variable
from pipeline.logs import install_link_redaction
from pipeline.okx.errors import (
    OkxError,
    OkxMalformedAnswerError,
    OkxNotSentError,
    OkxTransientError,
    data_or_raise,
    network_error,
)
from pipeline.okx.limits import DATE_FORMAT, IF_REBATE_PATH, MAX_WINDOW_DAYS, REBATE_PATH, BrokerType
from pipeline.okx.signing import okx_timestamp, sign

logger = logging.getLogger(__name__)
install_link_redaction()

BACKOFF_FIRST_SECONDS = 0.5
"""The first wait before retrying a transient error; it doubles each time, plus up to as much again of jitter."""

BACKOFF_MAX_SECONDS = 8.0
"""The longest wait between two attempts."""

LinkState = Literal["ongoing", "finished"]
"""`ongoing`: OKX is still generating the file; `finished`: `file_href` can be downloaded."""


@dataclass(frozen=True)
class RebateLink:
    """One rebate file OKX has generated or is generating: an item of GET rebate-per-orders."""

    state: LinkState
    file_href: str = field(repr=False)
    """The download link, valid for 2 hours; empty while ongoing. A signed URL: kept out of repr and logs."""
    begin_time: datetime | None
    """Start of the first day the file covers (`beginTime`)."""
    end_time: datetime | None
    """Start of the last day the file covers (`endTime`)."""
    c_time: datetime | None
    """When OKX first received a request for this range (`cTime`; equals the create call's `ts`)."""
    ts: datetime | None
    """When this link was generated (`ts`)."""


@dataclass(frozen=True)
class CreateResult:
    """OKX's answer to a create request."""

    existed: bool
    """True: a file for this range already exists; false: OKX started generating it (check after about 2 hours)."""
    first_requested_at: datetime
    """When OKX first received a request for this range (`ts`)."""


@dataclass(frozen=True)
class UserRebateInfo:
    """OKX's answer to `GET if-rebate` for one user's API key."""

    type: str
    """Why the broker does or does not earn a rebate: 0 earns; 1 broker id expired; 2 VIP4/5 cap; 3 VIP6+; 4 MSA."""
    broker_code: str
    """The FD broker's code the user trades under."""
    affiliated: bool | None
    """Whether there is an affiliated rebate (None when OKX left it empty)."""
    client_rebate_ratio: Decimal | None
    """The commission rebate ratio for the client."""
    last_rebate: Decimal | None
    """The account's monthly rebate amount; only for VIP4 and VIP5 users."""


ACCOUNT_VARIABLES = re.compile(r"\b(?:OKX_API_KEY|OKX_SECRET_KEY|OKX_PASSPHRASE|OKX_BASE_URL|REBATES_BROKER_TYPES)\b")
"""The variables an error may tell to check that each account has its own of."""


def mask_key(key: str) -> str:
    """An API key as it may be shown: its last 4 characters only (nothing of a key of 8 characters or fewer)."""
    return "****" + (key[-4:] if len(key) > 8 else "")


class _Answer(NamedTuple):
    """The parts of an HTTP response the classifier needs, so nothing holding the request headers lives on."""

    http_status: int
    body: bytes
    retry_after: str | None


class OkxClient:
    """Signed calls to OKX's FD-broker rebate endpoints, retrying transient errors and raising `OkxError` for the rest.

    `clock` gives the signing timestamp and does the waiting between retries (a `FakeClock` makes them instant).
    `transport` replaces the network (tests pass an `httpx.MockTransport`). `before_request(method, path)` is
    called before every HTTP attempt, retries included: the place for a rate limiter to wait.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
        before_request: Callable[[str, str], None] | None = None,
    ) -> None:
        self._api_key, self._secret_key, self._passphrase = settings.require_credentials()
        self._account = settings.rebates_account if settings.rebates_accounts else None
        self._base_url = settings.okx_base_url
        self._demo = settings.okx_demo
        self._retries = settings.rebates_http_retries
        self._clock: Clock = clock or SystemClock()
        self._before_request = before_request
        self._http = httpx.Client(
            base_url=settings.okx_base_url, timeout=settings.rebates_http_timeout, transport=transport
        )

    def __repr__(self) -> str:
        return f"OkxClient(base_url={self._base_url!r}, demo={self._demo})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def create_rebate_file(self, begin: date, end: date, broker_type: BrokerType | None) -> CreateResult:
        """Ask OKX to generate the rebate file for `begin`..`end` (both days included). OKX allows one per hour.

        `broker_type` is required by OKX only when the broker is both an API and an OAuth broker; None omits it.
        """
        body = _range(begin, end)
        if broker_type is not None:
            body["brokerType"] = broker_type.value
        # Retried only when the request never left: once it may have reached OKX, a second POST could spend the
        # next hour (the ledger's `requesting` recovery asks OKX with a GET instead).
        data = self._request("POST", REBATE_PATH, body=body, retry_on=OkxNotSentError)
        return _create_result(data, f"POST {REBATE_PATH}")

    def list_rebate_links(self, broker_type: BrokerType | None) -> list[RebateLink]:
        """Every rebate file generated for this user, however it was requested, each with a fresh link."""
        query = {"type": "true"}
        if broker_type is not None:
            query["brokerType"] = broker_type.value
        data = self._request("GET", REBATE_PATH, query=query)
        return [_rebate_link(item, f"GET {REBATE_PATH}") for item in data]

    def get_rebate_link(self, begin: date, end: date, broker_type: BrokerType | None) -> list[RebateLink]:
        """The rebate file for exactly `begin`..`end` (both days included), with a fresh link; empty if none."""
        query = {"type": "false", **_range(begin, end)}
        if broker_type is not None:
            query["brokerType"] = broker_type.value
        data = self._request("GET", REBATE_PATH, query=query)
        return [_rebate_link(item, f"GET {REBATE_PATH}") for item in data]

    def user_rebate_info(self, user_api_key: SecretStr, broker_type: BrokerType | None) -> UserRebateInfo:
        """Whether the user with this API key earns the broker a rebate, and if not why (OKX allows 2 a second).

        The user's key travels only in the signed query: an error's message shows its last 4 characters instead.
        """
        key = user_api_key.get_secret_value()
        query = {"apiKey": key}
        if broker_type is not None:
            query["brokerType"] = broker_type.value
        try:
            data = self._request("GET", IF_REBATE_PATH, query=query)
        except OkxError as exc:
            exc.args = (str(exc).replace(quote_plus(key), mask_key(key)).replace(key, mask_key(key)),)
            raise exc from None
        return _user_rebate_info(data, f"GET {IF_REBATE_PATH}")

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: dict[str, str] | None = None,
        retry_on: type[OkxError] = OkxTransientError,
    ) -> list[Any]:
        """Send one call, retrying errors of type `retry_on`; the query and body are encoded once and signed as sent."""
        target = f"{path}?{urlencode(query)}" if query else path
        content = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""

        def log_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            logger.warning(
                "OKX %s %s failed (%s); retry %d of %d in %.1f s",
                method,
                path,
                _reason(error),
                state.attempt_number,
                self._retries,
                state.upcoming_sleep,
            )

        retrying = Retrying(
            sleep=self._clock.sleep,
            stop=stop_after_attempt(self._retries + 1),
            wait=wait_exponential_jitter(
                multiplier=BACKOFF_FIRST_SECONDS, max=BACKOFF_MAX_SECONDS, jitter=BACKOFF_FIRST_SECONDS
            ),
            retry=retry_if_exception_type(retry_on),
            before_sleep=log_retry,
            reraise=True,
        )
        return retrying(self._attempt, method, path, target, content)

    def _attempt(self, method: str, path: str, target: str, content: bytes) -> list[Any]:
        if self._before_request is not None:
            self._before_request(method, path)
        answer = self._exchange(method, target, content)
        if isinstance(answer, OkxError):
            raise self._for_account(answer)
        try:
            return data_or_raise(
                method, target, answer.http_status, answer.body, retry_after=answer.retry_after, now=self._clock.now()
            )
        except OkxError as exc:
            raise self._for_account(exc) from None

    def _for_account(self, error: OkxError) -> OkxError:
        """With several accounts, the variables an error tells to check are this account's: OKX_API_KEY_EU."""
        if self._account is not None and error.args:
            named = ACCOUNT_VARIABLES.sub(
                lambda found: account_variable(found.group(0).lower(), self._account or ""), str(error.args[0])
            )
            error.args = (named, *error.args[1:])
        return error

    def _exchange(self, method: str, target: str, content: bytes) -> _Answer | OkxError:
        """One signed HTTP exchange. Errors are returned, not raised, so none carries the request (and its headers)."""
        timestamp = okx_timestamp(self._clock.now())
        headers = {
            "OK-ACCESS-KEY": self._api_key.get_secret_value(),
            "OK-ACCESS-SIGN": sign(self._secret_key.get_secret_value(), timestamp, method, target, content),
            "OK-ACCESS-TIMESTAMP": timestamp,
            "OK-ACCESS-PASSPHRASE": self._passphrase.get_secret_value(),
            "Content-Type": "application/json",
        }
        if self._demo:
            headers["x-simulated-trading"] = "1"
        try:
            response = self._http.request(method, target, content=content or None, headers=headers)
        except httpx.TransportError as exc:
            return network_error(method, target, exc)
        return _Answer(response.status_code, response.content, response.headers.get("Retry-After"))


def _range(begin: date, end: date) -> dict[str, str]:
    """`begin` / `end` as OKX takes them, refusing a range OKX would reject anyway."""
    days = (end - begin).days + 1
    if days < 1:
        raise ValueError(f"begin {begin} is after end {end}")
    if days > MAX_WINDOW_DAYS:
        raise ValueError(f"{begin}..{end} is {days} days; OKX takes at most {MAX_WINDOW_DAYS} per request")
    return {"begin": begin.strftime(DATE_FORMAT), "end": end.strftime(DATE_FORMAT)}


def _reason(error: BaseException | None) -> str:
    """What a retry log line says about the failure: OKX's code and HTTP status, or the network error."""
    if isinstance(error, OkxError) and error.code:
        return f"code {error.code}, HTTP {error.http_status}"
    if isinstance(error, OkxError) and error.http_status is not None:
        return f"HTTP {error.http_status}"
    return str(error)


def _create_result(data: list[Any], where: str) -> CreateResult:
    item = data[0] if data and isinstance(data[0], dict) else None
    if item is None:
        raise OkxMalformedAnswerError(f"OKX answered {where} without a result item: got {len(data)} data items")
    result = item.get("result")
    if result not in ("true", "false", True, False):
        raise OkxMalformedAnswerError(f"OKX answered {where} with result {result!r}, expected 'true' or 'false'")
    first_requested_at = _time(item, "ts", where)
    if first_requested_at is None:
        raise OkxMalformedAnswerError(f"OKX answered {where} without ts (when the range was first requested)")
    return CreateResult(existed=result in ("true", True), first_requested_at=first_requested_at)


def _rebate_link(item: object, where: str) -> RebateLink:
    if not isinstance(item, dict):
        raise OkxMalformedAnswerError(f"OKX answered {where} with a link item of type {type(item).__name__}")
    state = item.get("state")
    if state not in get_args(LinkState):
        raise OkxMalformedAnswerError(
            f"OKX answered {where} with a link in state {state!r}; this client knows {', '.join(get_args(LinkState))}"
        )
    file_href = item.get("fileHref") or ""
    if not isinstance(file_href, str):
        raise OkxMalformedAnswerError(f"OKX answered {where} with a fileHref that is {type(file_href).__name__}")
    return RebateLink(
        state=cast(LinkState, state),
        file_href=file_href,
        begin_time=_time(item, "beginTime", where),
        end_time=_time(item, "endTime", where),
        c_time=_time(item, "cTime", where),
        ts=_time(item, "ts", where),
    )


def _time(item: dict[str, Any], key: str, where: str) -> datetime | None:
    """An OKX millisecond timestamp field as an aware UTC datetime; None when absent or empty."""
    value = item.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
        raise OkxMalformedAnswerError(f"OKX answered {where} with {key}={value!r}, expected epoch milliseconds")
    return from_epoch_ms(value)


def _user_rebate_info(data: list[Any], where: str) -> UserRebateInfo:
    item = data[0] if data and isinstance(data[0], dict) else None
    if item is None:
        raise OkxMalformedAnswerError(f"OKX answered {where} without an item: got {len(data)} data items")
    kind = item.get("type")
    if isinstance(kind, bool) or not isinstance(kind, str | int) or not str(kind).isdigit():
        raise OkxMalformedAnswerError(f"OKX answered {where} with type {kind!r}, expected a number such as '0'")
    affiliated = item.get("affiliated")
    if affiliated not in (True, False, "true", "false", "", None):
        raise OkxMalformedAnswerError(f"OKX answered {where} with affiliated {affiliated!r}, expected true or false")
    return UserRebateInfo(
        type=str(kind),
        broker_code=str(item.get("brokerCode") or ""),
        affiliated=None if affiliated in ("", None) else affiliated in (True, "true"),
        client_rebate_ratio=_decimal(item, "clientRebateRatio", where),
        last_rebate=_decimal(item, "lastRebate", where),
    )


def _decimal(item: dict[str, Any], key: str, where: str) -> Decimal | None:
    """An OKX decimal text field; None when absent or empty."""
    value = item.get(key)
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise OkxMalformedAnswerError(f"OKX answered {where} with {key}={value!r}, expected a decimal number") from None
