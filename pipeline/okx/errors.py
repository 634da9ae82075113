"""What went wrong talking to OKX: one exception class per kind of failure, and the one place that decides which."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from pipeline.domain import CREATE_INTERVAL, GET_LIMIT, GET_WINDOW, TIMESTAMP_TOLERANCE

EXCERPT_CHARS = 200
"""How much of an unexpected answer an error message quotes."""

_URL_QUERY = re.compile(r"(https?://[^\s\"'?]+)\?[^\s\"']*")


class OkxError(Exception):
    """OKX did not give the answer asked for; the message says what to fix."""

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


class OkxTransientError(OkxError):
    """OKX is busy or unreachable for a moment (5xx, 50001, 50013, 50026, network errors, timeouts): retried."""


class OkxNotSentError(OkxTransientError):
    """The connection failed before the request went out: OKX never saw it, so even a create may be sent again."""


class OkxRateLimitError(OkxError):
    """A rate limit was hit (50011, or HTTP 429 without a transient code): wait, never retry at once."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        retry_after: datetime | None = None,
    ) -> None:
        super().__init__(message, code=code, http_status=http_status)
        self.retry_after = retry_after
        """The earliest time the server said to ask again, when it said one (a Retry-After header)."""


class OkxAuthError(OkxError):
    """The credentials, the clock or the calling IP were refused: an operator must fix a setting."""


class OkxPermissionError(OkxError):
    """The credentials are valid but the account or key may not use this endpoint."""


class OkxBrokerTypeError(OkxError):
    """The broker is both an API and an OAuth broker, and the request did not say which (50044)."""


class OkxParameterError(OkxError):
    """OKX refused the request's parameters: a bug on our side, not something to retry."""


class OkxOAuthError(OkxError):
    """An OAuth token or authorisation error (53000-53017)."""


class OkxUnknownCodeError(OkxError):
    """An error code this client does not know; the message quotes OKX's own words."""


class OkxMalformedAnswerError(OkxError):
    """The answer was not the documented envelope or lacked a field the client needs."""


_TRANSIENT = "temporary on OKX's side; retried with backoff up to REBATES_HTTP_RETRIES times, then try again later"
_OUR_BUG = "a bug on our side (the request's parameters), not a setting; report it with this message"
_OUR_SIGNING_BUG = "a bug in this client's request signing, not a setting; report it with this message"


def _minutes(span: timedelta) -> str:
    """`60 minutes`, `1 minute`: an OKX limit's span in words."""
    minutes = round(span.total_seconds() / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


CODES: dict[str, tuple[type[OkxError], str]] = {
    "50001": (OkxTransientError, _TRANSIENT),
    "50013": (OkxTransientError, _TRANSIENT),
    "50026": (OkxTransientError, _TRANSIENT),
    "50011": (
        OkxRateLimitError,
        f"rate limit reached: wait before asking again (a create is allowed once per {_minutes(CREATE_INTERVAL)}, "
        f"a link request {GET_LIMIT} times per {_minutes(GET_WINDOW)}); never retry a create inside its hour",
    ),
    "50100": (OkxAuthError, "the API key is frozen: contact OKX support or create a new key and set OKX_API_KEY"),
    "50101": (
        OkxAuthError,
        "the API key does not match the environment: set OKX_DEMO=true for a demo-trading key "
        "or OKX_DEMO=false for a live one",
    ),
    "50102": (
        OkxAuthError,
        f"the request timestamp is more than {TIMESTAMP_TOLERANCE.total_seconds():.0f} s from OKX's clock: fix the "
        "machine clock (enable NTP sync)",
    ),
    "50103": (OkxAuthError, "no API key was sent: set OKX_API_KEY"),
    "50104": (OkxAuthError, "no passphrase was sent: set OKX_PASSPHRASE"),
    "50105": (OkxAuthError, "the passphrase is wrong: check OKX_PASSPHRASE (the one chosen when the key was created)"),
    "50106": (OkxAuthError, _OUR_SIGNING_BUG),
    "50107": (OkxAuthError, _OUR_SIGNING_BUG),
    "50110": (
        OkxAuthError,
        "this machine's IP is not in the API key's IP whitelist: add its public IP to the key on OKX",
    ),
    "50111": (OkxAuthError, "the API key is invalid: check OKX_API_KEY"),
    "50112": (OkxAuthError, _OUR_SIGNING_BUG),
    "50113": (
        OkxAuthError,
        "the signature was rejected: check OKX_SECRET_KEY (it must be the secret created with OKX_API_KEY)",
    ),
    "50119": (OkxAuthError, "OKX does not know this API key: check OKX_API_KEY and OKX_DEMO (live vs demo key)"),
    "50044": (
        OkxBrokerTypeError,
        "this broker is both an API and an OAuth broker: set REBATES_BROKER_TYPES to api or oauth "
        "(or api,oauth to collect both)",
    ),
    "59608": (
        OkxPermissionError,
        "only broker accounts may use this API: OKX_API_KEY must be a key of the FD broker's main account",
    ),
    "50014": (OkxParameterError, _OUR_BUG),
    "51000": (OkxParameterError, _OUR_BUG),
    "50076": (OkxParameterError, f"the date range is too long for OKX; {_OUR_BUG}"),
    **{
        str(code): (
            OkxOAuthError,
            "OKX refused the OAuth authorisation: renew the OAuth token or the broker's OAuth application settings",
        )
        for code in range(53000, 53018)
    },
    # Inside the OAuth range, but a permission the key or token lacks rather than a broken token.
    "53013": (
        OkxPermissionError,
        "this key or token has no permission for this API: grant it Read permission on OKX",
    ),
}
"""Each OKX error code this client knows: the class it raises and what the operator should do."""


def classify(
    method: str,
    path: str,
    http_status: int | None,
    code: str | None,
    msg: str,
    *,
    retry_after: datetime | None = None,
) -> OkxError:
    """The error for a failed answer: by its code when known, else by its HTTP status, else unknown."""
    where = f"OKX refused {method} {path} ({_describe(code, http_status, msg)})"
    if code in CODES:
        kind, fix = CODES[code]
    elif http_status is not None and http_status >= 500:
        kind, fix = OkxTransientError, _TRANSIENT
    elif http_status == 429:
        kind, fix = OkxRateLimitError, CODES["50011"][1]
    elif http_status == 401:
        kind, fix = OkxAuthError, "check OKX_API_KEY, OKX_SECRET_KEY, OKX_PASSPHRASE and OKX_DEMO"
    elif http_status == 403:
        kind, fix = OkxPermissionError, "the key may not use this API: check its permissions and IP whitelist on OKX"
    elif http_status is not None and 400 <= http_status < 500:
        kind, fix = OkxParameterError, _OUR_BUG
    else:
        kind, fix = OkxUnknownCodeError, "an error code this client does not know: look it up in OKX's error-code list"
    message = f"{where}: {fix}"
    if kind is OkxRateLimitError:
        return OkxRateLimitError(message, code=code, http_status=http_status, retry_after=retry_after)
    return kind(message, code=code, http_status=http_status)


def data_or_raise(
    method: str,
    path: str,
    http_status: int,
    body: bytes,
    *,
    retry_after: str | None = None,
    now: datetime | None = None,
) -> list[Any]:
    """Return the `data` list of a successful OKX answer, or raise the `OkxError` that says what to fix.

    `retry_after` is the raw Retry-After header, if any; `now` (the client's clock) turns its seconds into a time.
    """
    envelope = _load_envelope(body)
    code = _text(envelope.get("code")) if envelope is not None else None
    msg = (_text(envelope.get("msg")) or "") if envelope is not None else ""
    if envelope is None or code is None:
        if http_status >= 400:
            raise classify(method, path, http_status, None, _excerpt(body), retry_after=_when(retry_after, now))
        raise OkxMalformedAnswerError(
            f"OKX answered {method} {path} with HTTP {http_status} but not with its JSON envelope: {_excerpt(body)!r}; "
            "check OKX_BASE_URL points at the OKX API",
            http_status=http_status,
        )
    if code != "0" or not 200 <= http_status < 300:
        raise classify(method, path, http_status, code, msg, retry_after=_when(retry_after, now))
    data = envelope.get("data")
    if not isinstance(data, list):
        raise OkxMalformedAnswerError(
            f"OKX answered {method} {path} with code 0 but no data list: {_excerpt(body)!r}",
            code=code,
            http_status=http_status,
        )
    return data


def network_error(method: str, path: str, error: httpx.TransportError) -> OkxError:
    """The error for a request that got no answer: timeouts and dropped connections are transient, the rest not.

    Only the error's type is named for a protocol error: httpx quotes the offending header there, and the headers
    carry the credentials.
    """
    detail = "" if isinstance(error, httpx.ProtocolError) else str(error)
    what = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
        return OkxNotSentError(
            f"could not connect to OKX for {method} {path} ({what}): {_TRANSIENT}; "
            "if it persists, check the network, OKX_BASE_URL and any proxy"
        )
    if isinstance(error, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError):
        return OkxTransientError(
            f"no answer from OKX for {method} {path} ({what}): {_TRANSIENT}; "
            "if it persists, check the network and OKX_BASE_URL, or raise REBATES_HTTP_TIMEOUT"
        )
    return OkxError(f"could not send {method} {path} to OKX ({what}): check OKX_BASE_URL and any proxy settings")


def _load_envelope(body: bytes) -> dict[str, Any] | None:
    try:
        loaded = json.loads(body)
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) else None


def _text(value: object) -> str | None:
    """OKX writes codes as strings; accept a bare number too, and nothing else."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _describe(code: str | None, http_status: int | None, msg: str) -> str:
    parts = [f"code {code}" if code else "no code", f"HTTP {http_status}" if http_status is not None else "no HTTP"]
    if msg:
        parts.append(repr(msg[:EXCERPT_CHARS]))
    return ", ".join(parts)


def _excerpt(body: bytes) -> str:
    """The start of an answer, with URL query strings (signed download links) cut out."""
    text = _URL_QUERY.sub(r"\1?...", body[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace"))
    return text[:EXCERPT_CHARS] + ("..." if len(text) > EXCERPT_CHARS or len(body) > EXCERPT_CHARS * 4 else "")


def _when(retry_after: str | None, now: datetime | None) -> datetime | None:
    """Read a Retry-After header (seconds, or an HTTP date) as the time to ask again; None when absent or unreadable."""
    if not retry_after:
        return None
    text = retry_after.strip()
    if text.isdigit():
        return now + timedelta(seconds=int(text)) if now is not None else None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else None
