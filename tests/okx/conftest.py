"""Fixtures for the OKX client tests: settings with recognisable secrets, a far-off fake clock, a scripted transport."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pipeline.clock import FakeClock
from pipeline.config import Settings, load_settings
from pipeline.okx.client import OkxClient

OKX_TEST_CREDENTIALS = {
    "okx_api_key": "test-api-key-3b8a0c",
    "okx_secret_key": "test-secret-key-9f2c41",
    "okx_passphrase": "test-passphrase-7d1e55",
}


@pytest.fixture
def okx_credentials() -> dict[str, str]:
    """The API key, secret key and passphrase every client test signs with: distinctive, so leaks are findable."""
    return dict(OKX_TEST_CREDENTIALS)


@pytest.fixture
def make_okx_settings(okx_credentials: dict[str, str]) -> Callable[..., Settings]:
    """Settings with the test credentials and a non-loopback https base URL; keyword arguments override."""

    def make(**overrides: Any) -> Settings:
        return load_settings(**{**okx_credentials, "okx_base_url": "https://okx.test", **overrides})

    return make


@pytest.fixture
def okx_clock() -> FakeClock:
    """A clock years away from the real one, so a timestamp read from the system clock would show."""
    return FakeClock(datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC))


@pytest.fixture
def okx_sent() -> list[httpx.Request]:
    """Every request the scripted transport received, in order."""
    return []


@pytest.fixture
def make_okx_client(
    make_okx_settings: Callable[..., Settings], okx_clock: FakeClock, okx_sent: list[httpx.Request]
) -> Iterator[Callable[..., OkxClient]]:
    """A client on a transport that answers from `answers` in order, repeating the last one, and records requests.

    An answer is an `httpx.Response` or an `httpx.TransportError` to raise. Other keyword arguments are settings,
    except `before_request`, which goes to the client.
    """
    clients: list[OkxClient] = []

    def make(
        answers: list[httpx.Response | httpx.TransportError],
        *,
        before_request: Callable[[str, str], datetime | None] | None = None,
        **settings: Any,
    ) -> OkxClient:
        script = list(answers)

        def handle(request: httpx.Request) -> httpx.Response:
            request.read()
            okx_sent.append(request)
            answer = script.pop(0) if len(script) > 1 else script[0]
            if isinstance(answer, httpx.TransportError):
                raise answer
            return answer

        client = OkxClient(
            make_okx_settings(**settings),
            clock=okx_clock,
            transport=httpx.MockTransport(handle),
            before_request=before_request,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
