"""Fixtures for the simulator's contract tests: one running simulator per module, reset per test, and a raw signer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from pipeline.clock import Clock, FakeClock
from pipeline.domain import REBATE_PATH, BrokerType
from pipeline.okx.signing import okx_timestamp, sign
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import DEFAULT_ACCOUNT, SimAccount, SimulatorConfig

SIM_START = datetime(2025, 3, 1, tzinfo=UTC)

API_ONLY = SimAccount(api_key="api-only-key", secret_key="api-only-secret", broker_types=(BrokerType.API,))
OAUTH_ONLY = SimAccount(api_key="oauth-only-key", secret_key="oauth-only-secret", broker_types=(BrokerType.OAUTH,))
NOT_A_BROKER = SimAccount(api_key="retail-key", secret_key="retail-secret", broker_types=(), is_broker=False)
ACCOUNTS = (DEFAULT_ACCOUNT, API_ONLY, OAUTH_ONLY, NOT_A_BROKER)


@dataclass
class SignedOkx:
    """Raw OKX requests signed as FACTS.md describes, with every part overridable to provoke each error."""

    base_url: str
    clock: Clock
    account: SimAccount
    http: httpx.Client

    def request(
        self,
        method: str,
        path: str = REBATE_PATH,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | bytes | None = None,
        timestamp: str | None = None,
        skew: timedelta = timedelta(0),
        headers: Mapping[str, str | None] | None = None,
        signed_path: str | None = None,
        signed_body: bytes | None = None,
        signed_method: str | None = None,
    ) -> httpx.Response:
        """Send one request; `headers` values of None remove that header; `signed_*` sign something else."""
        request_path = path + ("?" + urlencode(params) if params else "")
        raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
        stamp = timestamp if timestamp is not None else okx_timestamp(self.clock.now() + skew)
        signature = sign(
            self.account.secret_key,
            stamp,
            signed_method or method,
            signed_path if signed_path is not None else request_path,
            signed_body if signed_body is not None else raw,
        )
        sent: dict[str, str | None] = {
            "OK-ACCESS-KEY": self.account.api_key,
            "OK-ACCESS-SIGN": signature,
            "OK-ACCESS-TIMESTAMP": stamp,
            "OK-ACCESS-PASSPHRASE": self.account.passphrase,
            "Content-Type": "application/json",
            **(headers or {}),
        }
        final = {name: value for name, value in sent.items() if value is not None}
        return self.http.request(method, self.base_url + request_path, headers=final, content=raw)

    def create(self, begin: str, end: str, broker_type: str | None = "api") -> httpx.Response:
        """POST a create for begin..end (YYYYMMDD), with brokerType unless None."""
        body = {"begin": begin, "end": end} | ({"brokerType": broker_type} if broker_type is not None else {})
        return self.request("POST", body=body)

    def links(self, **params: str) -> httpx.Response:
        """GET the download links with these query parameters."""
        return self.request("GET", params=params)


def envelope(response: httpx.Response) -> tuple[int, str, list[dict[str, str]]]:
    """(HTTP status, OKX code, data) of an OKX answer."""
    payload = response.json()
    assert set(payload) == {"code", "msg", "data"}
    assert isinstance(payload["code"], str)
    return response.status_code, payload["code"], payload["data"]


@pytest.fixture(scope="module")
def module_simulator() -> Iterator[RunningSimulator]:
    """One simulator (on a fake clock) for the whole module: starting one per test would cost 0.2 s each."""
    with RunningSimulator(SimulatorConfig(accounts=ACCOUNTS), clock=FakeClock(SIM_START)) as running:
        yield running


@pytest.fixture
def sim(module_simulator: RunningSimulator) -> Iterator[RunningSimulator]:
    """The module's simulator with nothing remembered: no ranges, budgets, faults or calls (its clock moves on)."""
    module_simulator.state.reset()
    yield module_simulator
    module_simulator.state.reset()


@pytest.fixture
def sim_clock(sim: RunningSimulator) -> FakeClock:
    """The simulator's fake clock."""
    assert isinstance(sim.clock, FakeClock)
    return sim.clock


@pytest.fixture
def sim_http() -> Iterator[httpx.Client]:
    """A plain httpx client (no base URL, so file links are fetched exactly as given)."""
    with httpx.Client(timeout=5) as client:
        yield client


@pytest.fixture
def signed_for(sim: RunningSimulator, sim_http: httpx.Client) -> Callable[[SimAccount], SignedOkx]:
    """A signer for any account against the module's simulator."""

    def make(account: SimAccount) -> SignedOkx:
        return SignedOkx(base_url=sim.base_url, clock=sim.clock, account=account, http=sim_http)

    return make


@pytest.fixture
def okx(signed_for: Callable[[SimAccount], SignedOkx]) -> SignedOkx:
    """Signed requests as the default account (an api + oauth broker)."""
    return signed_for(DEFAULT_ACCOUNT)
