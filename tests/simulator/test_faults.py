"""Faults switched on at run time affect exactly the next N requests of their kind, the way a client would see them."""

from __future__ import annotations

import logging
from datetime import date

import httpx
import pytest

from pipeline.clock import FakeClock
from pipeline.domain import GENERATION_TIME, REBATE_PATH
from pipeline.simulator.files import Corruption, corrupt
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import Fault, Faults
from tests.simulator.conftest import SignedOkx, envelope

pytestmark = pytest.mark.slow


def seeded_href(sim: RunningSimulator, okx: SignedOkx) -> str:
    """The link to a ready seeded file (one GET)."""
    sim.state.seed_file("sim-api-key", "api", date(2025, 1, 1), date(2025, 1, 31))
    [item] = envelope(okx.links(type="false", begin="20250101", end="20250131", brokerType="api"))[2]
    return item["fileHref"]


def test_server_error_answers_503_50001_for_the_next_n_calls(okx: SignedOkx, sim: RunningSimulator) -> None:
    sim.state.faults.inject(Fault.SERVER_ERROR, times=2)
    first, second = okx.create("20250101", "20250131"), okx.links(type="true", brokerType="api")
    assert [envelope(first)[:2], envelope(second)[:2]] == [(503, "50001"), (503, "50001")]
    assert envelope(okx.create("20250101", "20250131"))[:2] == (200, "0")


def test_busy_answers_429_50013_without_spending_budget(okx: SignedOkx, sim: RunningSimulator) -> None:
    sim.state.faults.inject(Fault.BUSY)
    assert envelope(okx.create("20250101", "20250131"))[:2] == (429, "50013")
    assert envelope(okx.create("20250101", "20250131"))[:2] == (200, "0")
    assert sim.state.faults.pending(Fault.BUSY) == 0


def test_a_truncated_download_announces_the_full_length_and_breaks_the_client(
    okx: SignedOkx, sim: RunningSimulator, sim_http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    href = seeded_href(sim, okx)
    sim.state.faults.inject(Fault.TRUNCATED_DOWNLOAD)
    with (
        caplog.at_level(logging.WARNING),
        pytest.raises(httpx.RemoteProtocolError, match="without sending complete message body"),
    ):
        sim_http.get(href)
    whole = sim_http.get(href)
    assert whole.status_code == 200
    assert len(whole.content) == int(whole.headers["content-length"]) > 0
    assert not [record for record in caplog.records if record.name.startswith("uvicorn")]


def test_a_truncated_download_sends_part_of_the_announced_length(
    okx: SignedOkx, sim: RunningSimulator, sim_http: httpx.Client
) -> None:
    href = seeded_href(sim, okx)
    sim.state.faults.inject(Fault.TRUNCATED_DOWNLOAD)
    received = b""
    with sim_http.stream("GET", href) as response, pytest.raises(httpx.RemoteProtocolError):
        announced = int(response.headers["content-length"])
        for chunk in response.iter_raw():
            received += chunk
    assert 0 < len(received) < announced


def test_a_stalled_download_sends_part_then_holds_the_client_until_it_goes(
    okx: SignedOkx, sim: RunningSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    href = seeded_href(sim, okx)
    sim.state.faults.inject(Fault.STALLED_DOWNLOAD)
    received = b""
    with (
        caplog.at_level(logging.WARNING),
        httpx.Client(timeout=httpx.Timeout(5, read=0.5)) as impatient,
        impatient.stream("GET", href) as response,
        pytest.raises(httpx.ReadTimeout),
    ):
        announced = int(response.headers["content-length"])
        for chunk in response.iter_raw():
            received += chunk
    assert 0 < len(received) < announced
    assert sim.state.faults.pending(Fault.STALLED_DOWNLOAD) == 0
    assert httpx.get(href, timeout=5).status_code == 200
    assert not [record for record in caplog.records if record.name.startswith("uvicorn")]


def test_an_expired_link_fault_hands_out_links_that_are_already_expired(
    okx: SignedOkx, sim: RunningSimulator, sim_http: httpx.Client, sim_clock: FakeClock
) -> None:
    sim.state.faults.inject(Fault.EXPIRED_LINK)
    stale = seeded_href(sim, okx)
    response = sim_http.get(stale)
    assert response.status_code == 403
    assert "Request has expired." in response.text
    [item] = envelope(okx.links(type="false", begin="20250101", end="20250131", brokerType="api"))[2]
    assert sim_http.get(item["fileHref"]).status_code == 200


@pytest.mark.parametrize("how", list(Corruption))
def test_a_malformed_file_fault_serves_the_corrupted_file_once(
    okx: SignedOkx, sim: RunningSimulator, sim_http: httpx.Client, how: Corruption
) -> None:
    href = seeded_href(sim, okx)
    good = sim_http.get(href).content
    sim.state.faults.inject(Fault.MALFORMED_FILE, how=how)
    bad = sim_http.get(href)
    assert bad.status_code == 200
    assert bad.content == corrupt(good, how.value) != good
    assert sim_http.get(href).content == good


def test_faults_are_counted_down_per_request(sim: RunningSimulator, okx: SignedOkx) -> None:
    sim.state.faults.inject(Fault.SERVER_ERROR, times=3)
    okx.links(type="true", brokerType="api")
    assert sim.state.faults.pending(Fault.SERVER_ERROR) == 2
    assert sim.state.count("GET", REBATE_PATH, status=503, code="50001") == 1


def test_a_fault_affects_only_its_own_kind_of_request(
    okx: SignedOkx, sim: RunningSimulator, sim_http: httpx.Client, sim_clock: FakeClock
) -> None:
    sim.state.faults.inject(Fault.TRUNCATED_DOWNLOAD)
    okx.create("20250101", "20250131")
    sim_clock.advance(GENERATION_TIME)
    assert envelope(okx.links(type="true", brokerType="api"))[:2] == (200, "0")
    assert sim.state.faults.pending(Fault.TRUNCATED_DOWNLOAD) == 1


def test_a_malformed_file_fault_needs_a_corruption() -> None:
    faults = Faults()
    with pytest.raises(ValueError, match="how="):
        faults.inject(Fault.MALFORMED_FILE)
    with pytest.raises(ValueError, match="takes no how"):
        faults.inject(Fault.BUSY, how=Corruption.GARBAGE)
    with pytest.raises(ValueError):
        faults.inject("no-such-fault")
    assert faults.snapshot() == {}
