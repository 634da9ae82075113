"""A real `prefect server start`: serve and a worker run the sync flow, late runs are dropped, alerts notify."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from pipeline.clock import FileClock
from pipeline.clock_file import CLOCK_FILE_VARIABLE
from pipeline.config import parse_timezone
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import DEFAULT_API_KEY, DEFAULT_PASSPHRASE, DEFAULT_SECRET_KEY, Fault, SimulatorConfig
from pipeline.windows import yesterday
from tests.conftest import make_operator_env
from tests.now import TESTS_NOW, clock_at_tests_now

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
POOL = "rebates-process"
DEPLOYMENTS = [("sync-rebates", "hourly"), ("backfill", "on-demand"), ("build-reports", "daily")]
SERVER_START_TIMEOUT = 90.0
RUN_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
LOG_FLUSH_TIMEOUT = 15.0
BUSY_TIMEOUT = 15.0
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

YESTERDAY = yesterday(TESTS_NOW, parse_timezone("UTC+8"))  # the workers' clock (`live_simulator`) reads it too
START = YESTERDAY - timedelta(days=20)
SEEDED_END = START + timedelta(days=6)
SEEDED = f"api:{START:%Y%m%d}-{SEEDED_END:%Y%m%d}"


@dataclass(frozen=True)
class PrefectServer:
    """A running `prefect server start`: its API URL, and the environment that points a process at it."""

    api_url: str
    env: dict[str, str]
    home: Path

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.api_url}{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST only the fields given.

        A 503 (SQLite busy while another process writes, e.g. a runner registering its deployments) is retried.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            response = httpx.post(f"{self.api_url}{path}", json=body, timeout=30)
            if response.status_code != 503 or time.monotonic() > deadline:
                response.raise_for_status()
                return response.json()
            time.sleep(0.5)

    def rejects_null_filters(self) -> bool:
        """Whether this server refuses the `"limit": null` that Prefect's own client and CLI send."""
        return httpx.post(f"{self.api_url}/flow_runs/filter", json={"limit": None}, timeout=30).status_code == 422


def test_the_server_accepts_the_null_filters_prefects_own_client_sends(prefect_server: PrefectServer) -> None:
    """FastAPI >= 0.151 makes Prefect's server answer 422 to them and breaks `prefect deploy` (3.9.1 caps it)."""
    assert not prefect_server.rejects_null_filters()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(command: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """A background process in its own process group, its output to `log`."""
    with log.open("wb") as output:
        return subprocess.Popen(
            command, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Interrupt the process group, then kill it if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(STOP_TIMEOUT)


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """`prefect server start` on a free loopback port, its own PREFECT_HOME, no UI, no scheduler, no analytics."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {name: value for name, value in os.environ.items() if not name.startswith(("OKX_", "REBATES_", "PREFECT_"))}
    env |= {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "COLUMNS": "200",
    }
    log = home / "server.log"
    command = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server = start([*command, "--no-ui", "--no-scheduler"], env=env, cwd=home, log=log)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            try:
                if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, f"prefect server exited:\n{tail(log)}"
            assert time.monotonic() < deadline, (
                f"prefect server not healthy after {SERVER_START_TIMEOUT} s:\n{tail(log)}"
            )
            time.sleep(0.25)
        yield PrefectServer(api_url, env, home)
    finally:
        stop(server)


@pytest.fixture(scope="module")
def work_pool(prefect_server: PrefectServer) -> str:
    """The process work pool prefect.yaml names."""
    created = prefect(prefect_server, "work-pool", "create", POOL, "--type", "process", "--overwrite")
    assert created.returncode == 0, created.stdout + created.stderr
    return POOL


@pytest.fixture
def live_simulator(tmp_path: Path) -> Iterator[RunningSimulator]:
    """The OKX simulator on a shared clock at TESTS_NOW, with one finished file for the flow to adopt and load.

    The workers read the same clock (REBATES_CLOCK_FILE, `operator_env`): their flows' "yesterday" is the one this
    module computed, whatever the hour.
    """
    with RunningSimulator(SimulatorConfig(orders_per_day=3), clock=clock_at_tests_now(tmp_path / "clock")) as running:
        running.state.seed_file(DEFAULT_API_KEY, "api", START, SEEDED_END)
        yield running


def operator_env(simulator: RunningSimulator, data: Path) -> dict[str, str]:
    """What an operator exports for the worker or `rebates serve` (and the simulator's clock, for the test)."""
    assert isinstance(simulator.clock, FileClock)
    return make_operator_env(simulator, data) | {
        CLOCK_FILE_VARIABLE: str(simulator.clock.path),
        "REBATES_START_DATE": START.isoformat(),
        "REBATES_HOME": str(REPO),  # prefect.yaml's pull step: the checkout on the worker's machine
    }


def assert_one_at_a_time(found: dict[str, Any]) -> None:
    """The deployment allows one run at a time and cancels a run that would overlap it."""
    assert found["global_concurrency_limit"]["limit"] == 1
    assert found["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"


def prefect(server: PrefectServer, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "prefect"), *args],
        env=server.env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def deployment(server: PrefectServer, flow_name: str, name: str, *, timeout: float = 0.0) -> dict[str, Any]:
    """The deployment, waiting up to `timeout` seconds for it to appear."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"{server.api_url}/deployments/name/{flow_name}/{name}", timeout=30)
        if response.status_code == 200:
            found: dict[str, Any] = response.json()
            return found
        assert time.monotonic() < deadline, f"deployment {flow_name}/{name} not found ({response.status_code})"
        time.sleep(0.25)


def run_and_wait(
    server: PrefectServer, deployment_id: str, processes: list[tuple[subprocess.Popen[bytes], Path]]
) -> Any:
    """Trigger a run of the deployment and wait for a final state, failing early if a process dies."""
    run = server.post(f"/deployments/{deployment_id}/create_flow_run", {})
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        found = server.get(f"/flow_runs/{run['id']}")
        if found["state"] and found["state"]["type"] in FINAL_STATES:
            return found
        for process, log in processes:
            assert process.poll() is None, f"{process.args!r} exited:\n{tail(log)}"
        assert time.monotonic() < deadline, "the flow run did not finish:\n" + "\n".join(
            tail(log) for _, log in processes
        )
        time.sleep(0.5)


def assert_synced(server: PrefectServer, run: dict[str, Any], data: Path) -> None:
    """The run completed, loaded the seeded file's rows, and published its summary; nothing secret is on the server."""
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert run["name"] == f"sync {START}..{YESTERDAY}"
    with duckdb.connect(str(data / "rebates.duckdb"), read_only=True) as db:
        row = db.execute("SELECT count(*) FROM rebate_details").fetchone()
    assert row is not None and row[0] > 0
    artifacts = server.post("/artifacts/filter", {"flow_runs": {"id": {"any_": [run["id"]]}}, "limit": 10})
    (summary,) = [item["data"] for item in artifacts if item["key"] == "sync-summary"]
    assert f"| adopted (files OKX already had) | {SEEDED} |" in summary
    assert f"| loaded (rows) | {SEEDED}: {row[0]:,} |" in summary
    expected = [f"downloading {SEEDED}", "published the analysts' lake"]  # task's, pipeline's own
    deadline = time.monotonic() + LOG_FLUSH_TIMEOUT  # a run's last log lines reach the API a moment after its state
    while True:
        logs = server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}, "limit": 200})
        messages = [log["message"] for log in logs]
        if all(any(line in message for message in messages) for line in expected):
            break
        assert time.monotonic() < deadline, messages
        time.sleep(0.5)
    stored = json.dumps([run, artifacts, logs])
    for secret in (DEFAULT_SECRET_KEY, DEFAULT_PASSPHRASE, "Signature="):
        assert secret not in stored


def test_rebates_serve_registers_three_deployments_and_runs_the_sync(
    prefect_server: PrefectServer, live_simulator: RunningSimulator, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = prefect_server.env | operator_env(live_simulator, data) | {"PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    log = tmp_path / "serve.log"
    serve_command = [sys.executable, "-c", "from flows.serve import serve_all; serve_all()"]
    served = start(serve_command, env=env, cwd=tmp_path, log=log)  # anywhere: the flows load by module name
    try:
        found = {name: deployment(prefect_server, *name, timeout=60) for name in DEPLOYMENTS}
        hourly = found[("sync-rebates", "hourly")]
        assert [item["schedule"]["cron"] for item in hourly["schedules"]] == ["5 * * * *"]
        assert hourly["schedules"][0]["schedule"]["timezone"] == "Etc/GMT-8"  # REBATES_TZ's default, UTC+8
        assert hourly["entrypoint"] == "flows.sync.sync_rebates"
        for item in found.values():
            assert_one_at_a_time(item)
        run = run_and_wait(prefect_server, hourly["id"], [(served, log)])
        assert_synced(prefect_server, run, data)  # before stopping: the run's process may still be sending its logs
    finally:
        stop(served)


def test_prefect_deploy_all_creates_the_three_deployments(prefect_server: PrefectServer, work_pool: str) -> None:
    deployed = prefect(prefect_server, "--no-prompt", "deploy", "--all")
    output = deployed.stdout + deployed.stderr
    assert deployed.returncode == 0, output
    found = {name: deployment(prefect_server, flow_name, name) for flow_name, name in DEPLOYMENTS}
    for item in found.values():
        assert item["work_pool_name"] == work_pool
        assert item["job_variables"] == {"env": {"PREFECT_LOGGING_EXTRA_LOGGERS": "pipeline"}}
        assert item["pull_steps"] == [
            {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $REBATES_HOME }}"}}
        ]  # resolved on the worker when a run starts, not where `prefect deploy` ran
        assert_one_at_a_time(item)
    schedules = {
        name: [(entry["schedule"]["cron"], entry["schedule"]["timezone"]) for entry in item["schedules"]]
        for name, item in found.items()
    }
    assert schedules == {
        "hourly": [("5 * * * *", "Asia/Shanghai")],
        "on-demand": [],
        "daily": [("30 6 * * *", "Asia/Shanghai")],
    }
    assert found["on-demand"]["parameters"] == {"max_hours": 24}


def test_the_generated_per_account_file_deploys_one_limited_deployment_per_account(
    prefect_server: PrefectServer, work_pool: str, tmp_path: Path
) -> None:
    generated = tmp_path / "prefect.accounts.yaml"
    env = prefect_server.env | {"REBATES_ACCOUNTS": "eu,asia", "REBATES_TZ": "Asia/Shanghai"}
    written = subprocess.run(
        [str(BIN / "rebates"), "deployments", "--out", str(generated)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert written.returncode == 0, written.stdout + written.stderr
    deployed = prefect(prefect_server, "--no-prompt", "deploy", "--all", "--prefect-file", str(generated))
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    for account in ("eu", "asia"):
        hourly = deployment(prefect_server, "sync-rebates", f"hourly-{account}")
        backfill = deployment(prefect_server, "backfill", f"on-demand-{account}")
        assert hourly["parameters"] == {"account": account}
        assert backfill["parameters"] == {"max_hours": 24, "account": account}
        assert [(item["schedule"]["cron"], item["schedule"]["timezone"]) for item in hourly["schedules"]] == [
            ("5 * * * *", "Asia/Shanghai")
        ]
        for item in (hourly, backfill):
            assert item["work_pool_name"] == work_pool
            assert_one_at_a_time(item)
    limits = {
        deployment(prefect_server, "sync-rebates", f"hourly-{account}")["global_concurrency_limit"]["id"]
        for account in ("eu", "asia")
    }
    assert len(limits) == 2  # each account's hourly sync has a limit of its own: neither waits for the other


def test_a_process_worker_runs_the_deployed_sync(
    prefect_server: PrefectServer, work_pool: str, live_simulator: RunningSimulator, tmp_path: Path
) -> None:
    deployed = prefect(prefect_server, "--no-prompt", "deploy", "--name", "hourly")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    hourly = deployment(prefect_server, "sync-rebates", "hourly")
    assert hourly["work_pool_name"] == work_pool
    assert hourly["entrypoint"] == "flows/sync.py:sync_rebates"
    data = tmp_path / "data"
    env = prefect_server.env | operator_env(live_simulator, data) | {"PREFECT_WORKER_QUERY_SECONDS": "1"}
    log = tmp_path / "worker.log"
    worker = start(
        [str(BIN / "prefect"), "worker", "start", "--pool", work_pool, "--type", "process"],
        env=env,
        cwd=tmp_path,
        log=log,
    )
    try:
        run = run_and_wait(prefect_server, hourly["id"], [(worker, log)])
        assert_synced(prefect_server, run, data)
    finally:
        stop(worker)


def final_states(
    server: PrefectServer, run_ids: list[str], processes: list[tuple[subprocess.Popen[bytes], Path]]
) -> list[str]:
    """The runs' final state types, waiting for all of them."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        states = [server.get(f"/flow_runs/{run_id}")["state"] for run_id in run_ids]
        if all(state and state["type"] in FINAL_STATES for state in states):
            return [state["type"] for state in states]
        for process, log in processes:
            assert process.poll() is None, f"{process.args!r} exited:\n{tail(log)}"
        assert time.monotonic() < deadline, f"runs not final: {states}\n" + "\n".join(tail(log) for _, log in processes)
        time.sleep(0.5)


def test_hourly_runs_that_went_late_while_no_worker_ran_are_dropped_not_replayed(
    prefect_server: PrefectServer, work_pool: str, live_simulator: RunningSimulator, tmp_path: Path
) -> None:
    deployed = prefect(prefect_server, "--no-prompt", "deploy", "--name", "hourly")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    hourly = deployment(prefect_server, "sync-rebates", "hourly")
    outage = datetime.now(UTC) - timedelta(hours=3)
    run_ids = [
        prefect_server.post(
            f"/deployments/{hourly['id']}/create_flow_run",
            {
                "state": {
                    "type": "SCHEDULED",
                    "state_details": {"scheduled_time": (outage + timedelta(hours=hour)).isoformat()},
                }
            },
        )["id"]
        for hour in range(3)
    ]  # three hourly runs due while no worker was up
    data = tmp_path / "data"
    env = prefect_server.env | operator_env(live_simulator, data) | {"PREFECT_WORKER_QUERY_SECONDS": "1"}
    log = tmp_path / "worker.log"
    worker = start(
        [str(BIN / "prefect"), "worker", "start", "--pool", work_pool, "--type", "process"],
        env=env,
        cwd=tmp_path,
        log=log,
    )
    try:
        states = final_states(prefect_server, run_ids, [(worker, log)])
    finally:
        stop(worker)
    assert sorted(states) == ["CANCELLED", "CANCELLED", "COMPLETED"], tail(log)


class _Hook(BaseHTTPRequestHandler):
    """Records every POST body it receives (a notification block's webhook)."""

    received: list[str]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        type(self).received.append(self.rfile.read(length).decode())
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP endpoint that keeps what is POSTed to it: (url, bodies)."""
    received: list[str] = []
    handler = type("Hook", (_Hook,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()


def test_an_installed_automation_notifies_the_block_when_a_window_is_quarantined(
    prefect_server: PrefectServer,
    live_simulator: RunningSimulator,
    webhook: tuple[str, list[str]],
    tmp_path: Path,
) -> None:
    url, received = webhook
    make_block = (
        "from prefect.blocks.notifications import CustomWebhookNotificationBlock as B; "
        f"B(name='brokers', url={url!r}, json_data={{'subject': '{{{{subject}}}}', 'body': '{{{{body}}}}'}})"
        ".save('brokers-hook', overwrite=True)"
    )
    made = subprocess.run(
        [sys.executable, "-c", make_block],
        env=prefect_server.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    installed = subprocess.run(
        [str(BIN / "rebates"), "alerts", "install", "--block", "brokers-hook"],
        env=prefect_server.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "okx-rebates: window quarantined" in installed.stdout
    again = subprocess.run(
        [str(BIN / "rebates"), "alerts", "install", "--block", "brokers-hook"],
        env=prefect_server.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    named = prefect_server.post(
        "/automations/filter", {"automations": {"name": {"any_": ["okx-rebates: window quarantined"]}}}
    )
    assert len(named) == 1  # installing twice replaces, never duplicates

    live_simulator.state.faults.inject(Fault.MALFORMED_FILE, 1, how="bad-amount")  # real bad data: quarantined
    env = prefect_server.env | operator_env(live_simulator, tmp_path / "data")
    synced = subprocess.run(
        [
            sys.executable,
            "-c",
            "from flows.sync import sync_rebates; sync_rebates(end=__import__('datetime').date.fromisoformat("
            + repr(SEEDED_END.isoformat())
            + "))",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert synced.returncode == 0, synced.stdout[-2000:] + synced.stderr[-2000:]
    deadline = time.monotonic() + RUN_TIMEOUT
    while not any(SEEDED in body and "quarantined" in body for body in received):
        assert time.monotonic() < deadline, f"no notification arrived; got {received}"
        time.sleep(0.5)
    (body,) = [body for body in received if SEEDED in body]
    assert "okx-rebates: a rebate file was quarantined" in body
    for secret in (DEFAULT_SECRET_KEY, DEFAULT_PASSPHRASE, "Signature="):
        assert secret not in body
