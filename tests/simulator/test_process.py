"""The simulator as its own process (`python -m pipeline.simulator`), driven through /__sim__, and its CLI."""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

import httpx
import pytest
import typer
from typer.testing import CliRunner

from pipeline.clock import FakeClock, from_epoch_ms
from pipeline.domain import BrokerType
from pipeline.simulator.cli import simulator_command
from pipeline.simulator.state import SimAccount
from tests.simulator.conftest import SignedOkx, envelope

BASE_URL = re.compile(r"http://127\.0\.0\.1:\d+")


class Output:
    """The lines a process prints, read by a thread so a test can wait for one with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def next_line(self, timeout: float) -> str:
        """The next line, or fail after `timeout` seconds or at the end of the output."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail("the simulator process printed nothing in time")
        if line is None:
            pytest.fail("the simulator process ended its output")
        return line

    def rest(self) -> str:
        """Everything printed until the process closed its output."""
        self._thread.join(10)
        lines: list[str] = []
        while not self._lines.empty():
            line = self._lines.get_nowait()
            if line is not None:
                lines.append(line)
        return "".join(lines)


@pytest.fixture
def simulator_process() -> Iterator[tuple[subprocess.Popen[str], list[str], Output]]:
    """`python -m pipeline.simulator` on a free port with a fake clock; yields it, its banner and its output."""
    command = [sys.executable, "-m", "pipeline.simulator", "--port", "0", "--fake-clock", "--ready-after", "60"]
    process = subprocess.Popen([*command, "--broker-types", "api"], stdout=subprocess.PIPE, text=True)
    try:
        output = Output(process)
        banner = [output.next_line(15)]
        while "REBATES_BROKER_TYPES" not in banner[-1]:
            banner.append(output.next_line(5))
        yield process, banner, output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.integration
def test_a_simulator_process_is_driven_through_its_control_endpoints(
    simulator_process: tuple[subprocess.Popen[str], list[str], Output],
) -> None:
    process, banner, output = simulator_process
    match = BASE_URL.search(banner[0])
    assert match is not None, banner
    base_url = match.group(0)
    assert f"export OKX_BASE_URL={base_url}" in "\n".join(banner)
    assert "export REBATES_BROKER_TYPES=api" in "\n".join(banner)

    with httpx.Client(base_url=base_url, timeout=5) as control, httpx.Client(timeout=5) as http:
        seeded = control.post("/__sim__/seed", json={"begin": "20250101", "end": "20250131"})
        assert seeded.status_code == 200
        state = control.get("/__sim__/state").json()
        assert state["clock"]["fake"] is True
        clock = FakeClock(from_epoch_ms(state["clock"]["nowMs"]))
        api_only = SimAccount(broker_types=(BrokerType.API,))
        okx = SignedOkx(base_url=base_url, clock=clock, account=api_only, http=http)

        assert envelope(okx.create("20250201", "20250228", None))[2][0]["result"] == "false"
        advanced = control.post("/__sim__/clock/advance", json={"seconds": 60}).json()
        clock.set(from_epoch_ms(advanced["nowMs"]))
        items = envelope(okx.links(type="true"))[2]
        assert [item["state"] for item in items] == ["finished", "finished"]
        assert http.get(items[0]["fileHref"]).status_code == 200

        control.post("/__sim__/faults", json={"fault": "server-error", "times": 1})
        clock.set(from_epoch_ms(control.post("/__sim__/clock/advance", json={"seconds": 60}).json()["nowMs"]))
        assert envelope(okx.links(type="true"))[:2] == (503, "50001")
        assert control.get("/__sim__/state").json()["counts"] == {
            "POST /api/v5/broker/fd/rebate-per-orders": 1,
            "GET /api/v5/broker/fd/rebate-per-orders": 2,
            "GET /files": 1,
        }

    process.send_signal(signal.SIGINT)
    assert process.wait(10) == 0
    assert "stopped" in output.rest()


cli = typer.Typer()
cli.command()(simulator_command)
runner = CliRunner()


def test_the_command_help_shows_an_example_and_the_credentials() -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "Example: rebates simulator" in result.output
    assert "sim-api-key" in result.output
    for option in ("--port", "--ready-after", "--shape", "--layout", "--broker-types", "--fake-clock", "--seed"):
        assert option in result.output


@pytest.mark.parametrize(
    "arguments", [["--shape", "docx"], ["--layout", "15"], ["--broker-types", "retail"], ["--ready-after", "-1"]]
)
def test_a_bad_option_is_a_usage_error(arguments: list[str]) -> None:
    assert runner.invoke(cli, arguments).exit_code == 2


def test_a_port_in_use_is_reported_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(cli, ["--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
