"""The simulator as a server: loopback only, ephemeral ports, clean stop, and the /__sim__ control endpoints."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import httpx
import pytest

from pipeline.clock import FakeClock, epoch_ms
from pipeline.domain import REBATE_PATH
from pipeline.simulator.app import SimulatorApp
from pipeline.simulator.server import RunningSimulator, serve
from pipeline.simulator.state import Fault
from tests.simulator.conftest import SIM_START, SignedOkx, envelope


def test_two_simulators_run_side_by_side_on_free_loopback_ports_and_stop_cleanly(sim_http: httpx.Client) -> None:
    before = set(threading.enumerate())
    with RunningSimulator() as one, RunningSimulator() as two:
        assert one.base_url.startswith("http://127.0.0.1:")
        assert one.base_url != two.base_url
        assert sim_http.get(one.base_url + "/__sim__/state").status_code == 200
        assert sim_http.get(two.base_url + "/__sim__/state").status_code == 200
    assert set(threading.enumerate()) == before
    with pytest.raises(httpx.ConnectError), httpx.Client() as fresh:
        fresh.get(one.base_url + "/__sim__/state")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com"])  # noqa: S104 - the refusal is the point
def test_the_simulator_refuses_to_listen_beyond_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        serve(host=host, port=0)


def test_control_state_reports_ranges_calls_and_clock(
    sim: RunningSimulator, okx: SignedOkx, sim_http: httpx.Client
) -> None:
    okx.create("20250101", "20250131")
    okx.create("20250201", "20250228")
    state = sim_http.get(sim.base_url + "/__sim__/state").json()
    assert state["clock"] == {"now": sim.clock.now().isoformat(), "nowMs": epoch_ms(sim.clock.now()), "fake": True}
    assert state["counts"] == {f"POST {REBATE_PATH}": 2}
    assert [(call["status"], call["code"]) for call in state["calls"]] == [(200, "0"), (429, "50011")]
    assert [(item["begin"], item["state"]) for item in state["ranges"]] == [("20250101", "ongoing")]


def test_control_advance_moves_the_fake_clock(
    sim: RunningSimulator, sim_clock: FakeClock, sim_http: httpx.Client
) -> None:
    before = sim_clock.now()
    response = sim_http.post(sim.base_url + "/__sim__/clock/advance", json={"seconds": 3600})
    assert response.status_code == 200
    assert sim_clock.now() - before == timedelta(hours=1)
    assert response.json()["nowMs"] == epoch_ms(sim_clock.now())
    assert sim_http.post(sim.base_url + "/__sim__/clock/advance", json={"seconds": -1}).status_code == 400


def test_control_advance_refuses_a_real_clock(sim_http: httpx.Client) -> None:
    with RunningSimulator() as running:
        assert sim_http.post(running.base_url + "/__sim__/clock/advance", json={"seconds": 1}).status_code == 409


def test_control_faults_and_seed_and_reset(sim: RunningSimulator, sim_http: httpx.Client) -> None:
    faults = sim_http.post(sim.base_url + "/__sim__/faults", json={"fault": "busy", "times": 2})
    assert faults.json() == {"faults": {"busy": 2}}
    malformed = {"fault": "malformed-file", "times": 1, "how": "bad-amount"}
    assert sim_http.post(sim.base_url + "/__sim__/faults", json=malformed).status_code == 200
    assert sim_http.post(sim.base_url + "/__sim__/faults", json={"fault": "malformed-file"}).status_code == 400
    assert sim.state.faults.pending(Fault.MALFORMED_FILE) == 1
    requested = epoch_ms(sim.clock.now())
    seed = {"brokerType": "oauth", "begin": "20240101", "end": "20240131", "requestedAt": requested}
    seeded = sim_http.post(sim.base_url + "/__sim__/seed", json=seed)
    assert seeded.status_code == 200
    assert seeded.json()["cTime"] == str(requested)
    [record] = sim.state.ranges()
    assert (record.broker_type, record.origin) == ("oauth", "dashboard")
    assert sim_http.post(sim.base_url + "/__sim__/seed", json={"begin": "2024"}).status_code == 400
    assert sim_http.post(sim.base_url + "/__sim__/reset").status_code == 200
    assert sim.state.ranges() == []
    assert sim.state.faults.pending(Fault.BUSY) == 0


def test_control_endpoints_answer_loopback_clients_only() -> None:
    app = SimulatorApp(clock=FakeClock(SIM_START))

    async def status_from(client: tuple[str, int], method: str, path: str) -> int:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
            return (await http.request(method, path)).status_code

    assert asyncio.run(status_from(("203.0.113.7", 50000), "GET", "/__sim__/state")) == 403
    assert asyncio.run(status_from(("203.0.113.7", 50000), "POST", "/__sim__/reset")) == 403
    assert asyncio.run(status_from(("127.0.0.1", 50000), "GET", "/__sim__/state")) == 200


def test_links_are_built_from_the_address_the_client_used(okx: SignedOkx, sim: RunningSimulator) -> None:
    sim.state.seed_file("sim-api-key", "api", okx.clock.now().date() - timedelta(days=40), okx.clock.now().date())
    localhost = SignedOkx(
        base_url=sim.base_url.replace("127.0.0.1", "localhost"), clock=okx.clock, account=okx.account, http=okx.http
    )
    [item] = envelope(localhost.links(type="true", brokerType="api"))[2]
    assert item["fileHref"].startswith(localhost.base_url + "/files/")
