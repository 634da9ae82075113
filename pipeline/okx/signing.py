"""OKX V5 request signing: base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body))."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime


def okx_timestamp(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and `Z`, e.g. `2020-12-08T09:08:57.715Z`."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_okx_timestamp(text: str) -> datetime:
    """Read an OK-ACCESS-TIMESTAMP back (raises ValueError when it is not one)."""
    if not text.endswith("Z"):
        raise ValueError(f"not a UTC ISO-8601 timestamp: {text!r}")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def sign(secret: str, timestamp: str, method: str, request_path: str, body: bytes | str = b"") -> str:
    """The OK-ACCESS-SIGN header for one request.

    `request_path` includes the query string for GET (`/api/v5/...?a=b`); `body` is the exact bytes sent
    (empty for GET). Signing the bytes that go on the wire, not a re-serialisation, is what keeps them equal.
    """
    payload = body.encode() if isinstance(body, str) else body
    message = timestamp.encode() + method.upper().encode() + request_path.encode() + payload
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()
