"""The signed OKX client for the FD-broker endpoints: rebate files (create, list, get a link) and user rebate checks."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Annotated, Any, Literal, NamedTuple, Self, TypeVar
from urllib.parse import quote_plus, urlencode

import httpx
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictStr,
    StringConstraints,
    ValidationError,
)
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from pipeline.clock import Clock, SystemClock, from_epoch_ms
from pipeline.config import Settings, account_variable
from pipeline.domain import DATE_FORMAT, IF_REBATE_PATH, MAX_WINDOW_DAYS, REBATE_PATH, BrokerType
from pipeline.logs import install_link_redaction
from pipeline.okx.errors import (
    OkxError,
    OkxMalformedAnswerError,
    OkxNotSentError,
    OkxTransientError,
    data_or_raise,
    network_error,
)
from pipeline.okx.signing import okx_timestamp, sign

logger = logging.getLogger(__name__)
install_link_redaction()

BACKOFF_FIRST_SECONDS = 0.5
"""The first wait before retrying a transient error; it doubles each time, plus up to as much again of jitter."""

BACKOFF_MAX_SECONDS = 8.0
"""The longest wait between two attempts."""

LinkState = Literal["ongoing", "finished"]
"""`ongoing`: OKX is still generating the file; `finished`: `file_href` can be downloaded."""


def _epoch_ms(value: object) -> datetime | None:
    """An OKX millisecond timestamp (text or number) as an aware UTC datetime; None when absent or empty."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):  # given by name, already a moment
        return value
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
        raise ValueError("expected epoch milliseconds")
    return from_epoch_ms(value)


def _exact_decimal(value: object) -> Decimal | None:
    """An OKX decimal as written (text or an integer); None when absent or empty. Never through a float."""
    if value is None or value == "":
        return None
    if isinstance(value, bool | float):
        raise ValueError("expected a decimal number written as text")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError("expected a decimal number") from None


def _number_text(value: object) -> object:
    """OKX's small numbers as text: `0` and `"0"` alike."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _flag(value: object) -> object:
    """OKX's booleans: true / false, as JSON or as text."""
    return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value


EpochMs = Annotated[datetime | None, BeforeValidator(_epoch_ms)]
ExactDecimal = Annotated[Decimal | None, BeforeValidator(_exact_decimal)]
Flag = Annotated[StrictBool, BeforeValidator(_flag)]


class _OkxItem(BaseModel):
    """An item of an OKX answer's `data` list: fields by OKX's names (or ours), unknown ones ignored, immutable."""

    model_config = ConfigDict(frozen=True, validate_by_alias=True, validate_by_name=True, extra="ignore")


Item = TypeVar("Item", bound=_OkxItem)


class RebateLink(_OkxItem):
    """One rebate file OKX has generated or is generating: an item of GET rebate-per-orders."""

    state: LinkState
    file_href: Annotated[StrictStr, BeforeValidator(lambda value: "" if value is None else value)] = Field(
        "", alias="fileHref", repr=False
    )
    """The download link, valid for 2 hours; empty while ongoing. A signed URL: kept out of repr and logs."""
    begin_time: EpochMs = Field(None, alias="beginTime")
    """Start of the first day the file covers (`beginTime`)."""
    end_time: EpochMs = Field(None, alias="endTime")
    """Start of the last day the file covers (`endTime`)."""
    c_time: EpochMs = Field(None, alias="cTime")
    """When OKX first received a request for this range (`cTime`; equals the create call's `ts`)."""
    ts: EpochMs = None
    """When this link was generated (`ts`)."""


class CreateResult(_OkxItem):
    """OKX's answer to a create request."""

    existed: Flag = Field(alias="result")
    """True: a file for this range already exists; false: OKX started generating it (check after about 2 hours)."""
    first_requested_at: Annotated[datetime, BeforeValidator(_epoch_ms)] = Field(alias="ts")
    """When OKX first received a request for this range (`ts`)."""


class UserRebateInfo(_OkxItem):
    """OKX's answer to `GET if-rebate` for one user's API key."""

    type: Annotated[str, BeforeValidator(_number_text), StringConstraints(pattern=r"^[0-9]+$")]
    """Why the broker does or does not earn a rebate: 0 earns; 1 broker id expired; 2 VIP4/5 cap; 3 VIP6+; 4 MSA."""
    broker_code: Annotated[str, BeforeValidator(lambda value: value or "")] = Field("", alias="brokerCode")
    """The FD broker's code the user trades under."""
    affiliated: Annotated[StrictBool | None, BeforeValidator(lambda value: None if value == "" else _flag(value))] = (
        None
    )
    """Whether there is an affiliated rebate (None when OKX left it empty)."""
    client_rebate_ratio: ExactDecimal = Field(None, alias="clientRebateRatio")
    """The commission rebate ratio for the client."""
    last_rebate: ExactDecimal = Field(None, alias="lastRebate")
    """The account's monthly rebate amount; only for VIP4 and VIP5 users."""


def parse_item(model: type[Item], item: object, where: str) -> Item:
    """One `data` item as `model`, or OkxMalformedAnswerError saying which field was wrong and how."""
    if not isinstance(item, dict):
        raise OkxMalformedAnswerError(f"OKX answered {where} with an item of type {type(item).__name__}, not an object")
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        error = exc.errors()[0]
        field_name = ".".join(str(part) for part in error["loc"])
        if error["type"] == "missing":
            raise OkxMalformedAnswerError(f"OKX answered {where} without {field_name}") from None
        raise OkxMalformedAnswerError(
            f"OKX answered {where} with {field_name}={error['input']!r}: {error['msg']}"
        ) from None


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
    called before every HTTP attempt, retries included: the place for a rate limiter to wait. When it returns the
    moment its slot was granted, the request is signed with that moment: what the limiter spaced out is what OKX is
    told, even on a simulated clock another process moves between the grant and the signing.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
        before_request: Callable[[str, str], datetime | None] | None = None,
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
        return _first_item(CreateResult, data, f"POST {REBATE_PATH}")

    def list_rebate_links(self, broker_type: BrokerType | None) -> list[RebateLink]:
        """Every rebate file generated for this user, however it was requested, each with a fresh link."""
        query = {"type": "true"}
        if broker_type is not None:
            query["brokerType"] = broker_type.value
        data = self._request("GET", REBATE_PATH, query=query)
        return [parse_item(RebateLink, item, f"GET {REBATE_PATH}") for item in data]

    def get_rebate_link(self, begin: date, end: date, broker_type: BrokerType | None) -> list[RebateLink]:
        """The rebate file for exactly `begin`..`end` (both days included), with a fresh link; empty if none."""
        query = {"type": "false", **_range(begin, end)}
        if broker_type is not None:
            query["brokerType"] = broker_type.value
        data = self._request("GET", REBATE_PATH, query=query)
        return [parse_item(RebateLink, item, f"GET {REBATE_PATH}") for item in data]

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
        return _first_item(UserRebateInfo, data, f"GET {IF_REBATE_PATH}")

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
        granted = self._before_request(method, path) if self._before_request is not None else None
        answer = self._exchange(method, target, content, granted or self._clock.now())
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

    def _exchange(self, method: str, target: str, content: bytes, signed_at: datetime) -> _Answer | OkxError:
        """One HTTP exchange signed at `signed_at`. Errors are returned, not raised, so none carries the request (and
        its headers)."""
        timestamp = okx_timestamp(signed_at)
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


def _first_item(model: type[Item], data: list[Any], where: str) -> Item:
    """The one item an answer must hold."""
    if not data:
        raise OkxMalformedAnswerError(f"OKX answered {where} without a result item: got no data items")
    return parse_item(model, data[0], where)
