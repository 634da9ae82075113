"""What logs and errors say: never a signed link (URL queries cut from HTTP libraries' lines), errors in one line."""

from __future__ import annotations

import logging
import re
from typing import Any

SIGNED_QUERY = re.compile(r"""(https?://[^\s?"'<>]+)\?[^\s"'<>]*""")
"""A URL's query: on a file link it holds the signature that makes the link a bearer token."""

HTTP_LOGGERS = ("httpx", "httpcore", "urllib3", "hpack")
"""The libraries that log request URLs (httpx at INFO: `HTTP Request: GET <url>`)."""


def redact_links(text: str) -> str:
    """`text` with the query of every http(s) URL in it replaced by `?...`."""
    return SIGNED_QUERY.sub(r"\1?...", text)


def install_link_redaction() -> None:
    """Make every log record from the HTTP libraries carry its message with URL queries cut out, in this process.

    Done where records are made (the record factory), so it holds whatever level, handler or logging
    configuration a worker, Prefect or an operator sets up later. Idempotent.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_links", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name.startswith(HTTP_LOGGERS):
            try:
                message = record.getMessage()
            except (TypeError, ValueError):
                return record
            redacted = redact_links(message)
            if redacted != message:
                record.msg, record.args = redacted, ()
        return record

    factory.redacts_links = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): what a one-line error quotes."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
