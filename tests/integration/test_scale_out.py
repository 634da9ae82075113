"""Two accounts, two worker processes sharing only the state and the shared paths, over simulated hours; SIGKILL."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.clock import FileClock
from pipeline.columns import AMOUNT_COLUMNS
from pipeline.db import connect
from pipeline.domain import GET_LIMIT, GET_WINDOW, REBATE_PATH, BrokerType
from pipeline.simulator.app import FILES_PATH
from pipeline.simulator.files import AMOUNT_COLUMNS as SOURCE_COLUMNS
from pipeline.simulator.files import generate_rows
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import Fault, SimAccount, SimulatorConfig, operator_variables
from pipeline.windows import RebateWindow

pytestmark = pytest.mark.integration

REBATES = Path(sys.executable).parent / "rebates"

START = datetime(2025, 3, 10, 4, 30, tzinfo=UTC)
"""12:30 at UTC+8: history from START_DATE to yesterday is one window per broker type of each account."""
START_DATE = date(2025, 3, 1)
HOUR = timedelta(hours=1)
HOURS = 3
"""Enough for every window to be created (one an hour per account), generated (READY_AFTER) and loaded."""
READY_AFTER = timedelta(minutes=50)
"""Shorter than an hour, so a file created in one hour is downloaded in the next."""
ORDERS_PER_DAY = 4

EU = SimAccount.named("eu", (BrokerType.API, BrokerType.OAUTH), host="127.0.0.1")
ASIA = SimAccount.named("asia", (BrokerType.API,), host="localhost")
ACCOUNTS = {account.name: account for account in (EU, ASIA)}
CREATES_PER_HOUR = {"eu": [1, 1, 0], "asia": [1, 0, 0]}
"""eu: its api and oauth windows in hours 0 and 1 (no hour idle while a window waits); asia: its one window."""
EXPECTED_WINDOWS = {
    "eu": {"eu:api:20250301-20250309", "eu:oauth:20250301-20250309"},
    "asia": {"asia:api:20250301-20250309"},
}


@pytest.fixture(params=["postgres", "embedded"])
def state_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The variables that choose where the workers share their state (ledger, create hours, GET limiters).

    `postgres`: REBATES_STATE_URL, a fresh database of the session's throwaway PostgreSQL 15 cluster: what workers
    on several machines share. `embedded`: the DuckDB file at REBATES_DB and the file-locked limiters under
    REBATES_DATA_DIR, shared by processes on one machine; nothing to set.
    """
    if request.param == "postgres":
        return {"REBATES_STATE_URL": request.getfixturevalue("state_url")}
    return {}


@dataclass
class Scenario:
    """The simulator on a shared FileClock, and two workers: separate working directories, one shared folder."""

    simulator: RunningSimulator
    clock: FileClock
    shared: Path
    workers: list[Path]
    env: dict[str, str]
    hour_starts: list[datetime] = field(default_factory=list)

    def start(self, worker: int) -> subprocess.Popen[str]:
        """`rebates sync` (every account) as worker `worker`, from its own directory."""
        return subprocess.Popen(
            [str(REBATES), "sync"],
            env={**os.environ, **self.env},
            cwd=self.workers[worker],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def hour(self, kill_mid_download: bool = False) -> None:
        """One simulated hour: both workers sync at once (one SIGKILLed mid-download if asked), then an hour passes."""
        self.hour_starts.append(self.clock.now())
        if kill_mid_download:
            self.simulator.state.faults.inject(Fault.STALLED_DOWNLOAD)
            victim = self.start(0)
            deadline = time.monotonic() + 60
            while self.simulator.state.faults.pending(Fault.STALLED_DOWNLOAD):
                assert victim.poll() is None and time.monotonic() < deadline, "worker 0 never started a download"
                time.sleep(0.05)
            survivor = self.start(1)
            victim.send_signal(signal.SIGKILL)
            assert victim.wait(10) == -signal.SIGKILL
            victim.communicate()
            finish([survivor])
        else:
            finish([self.start(worker) for worker in range(len(self.workers))])
        self.clock.advance(HOUR)

    def status(self) -> list[dict[str, str]]:
        """Every account's windows, as `rebates status --json` reads them from the shared state."""
        result = subprocess.run(
            [str(REBATES), "status", "--json"],
            env={**os.environ, **self.env},
            cwd=self.workers[0],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        windows: list[dict[str, str]] = json.loads(result.stdout)["windows"]
        return windows


def finish(runs: list[subprocess.Popen[str]]) -> None:
    """Wait for every run; each must exit 0."""
    for run in runs:
        out, err = run.communicate(timeout=180)
        assert run.returncode == 0, out + err


@pytest.fixture
def scenario(tmp_path: Path, state_env: dict[str, str]) -> Iterator[Scenario]:
    shared = tmp_path / "shared"
    workers = [tmp_path / "worker-a", tmp_path / "worker-b"]
    for folder in (shared, *workers):
        folder.mkdir()
    clock = FileClock.create(shared / "clock", START)
    config = SimulatorConfig(
        accounts=tuple(ACCOUNTS.values()),
        orders_per_day=ORDERS_PER_DAY,
        ready_after=READY_AFTER,
        check_timestamps=False,  # one worker's simulated wait may move the shared clock under another's call
    )
    with RunningSimulator(config, clock=clock) as simulator:
        port = int(simulator.base_url.rsplit(":", 1)[1])
        env = {
            **operator_variables(tuple(ACCOUNTS.values()), port),
            "OKX_BASE_URL": simulator.base_url,
            "REBATES_START_DATE": START_DATE.isoformat(),
            "REBATES_DATA_DIR": str(shared / "data"),
            "REBATES_DB": str(shared / "rebates.duckdb"),
            "REBATES_CLOCK_FILE": str(shared / "clock"),
            "REBATES_HTTP_RETRIES": "1",
            **state_env,
        }
        yield Scenario(simulator, clock, shared, workers, env)


def creates_by_hour(scenario: Scenario, account: SimAccount) -> list[int]:
    """The account's accepted creates in each simulated hour."""
    bounds = [*scenario.hour_starts, scenario.clock.now()]
    creates = [call.at for call in scenario.simulator.state.calls("POST", REBATE_PATH, api_key=account.api_key)]
    return [sum(1 for at in creates if begin <= at < end) for begin, end in itertools.pairwise(bounds)]


def totals(rows: list[tuple[str, int, *tuple[Decimal, ...]]]) -> dict[str, tuple[int, list[Decimal]]]:
    """(window_id, row count, amount sums...) rows added up per account (the account from the window id)."""
    summed: dict[str, tuple[int, list[Decimal]]] = {}
    for window_id, count, *amounts in rows:
        account = RebateWindow.parse(window_id).account
        before = summed.get(account, (0, [Decimal(0)] * len(amounts)))
        summed[account] = (before[0] + count, [a + b for a, b in zip(before[1], amounts, strict=True)])
    return summed


def simulated_totals(scenario: Scenario) -> dict[str, tuple[int, list[Decimal]]]:
    """What the simulator generated for each account: every range it was asked for, summed from the source text."""
    summed: dict[str, tuple[int, list[Decimal]]] = {}
    for name, account in ACCOUNTS.items():
        rows = [
            row
            for record in scenario.simulator.state.ranges(account.api_key)
            for row in generate_rows(scenario.simulator.state.file_spec(record))
        ]
        sums = [sum((Decimal(row[column]) for row in rows), Decimal(0)) for column in SOURCE_COLUMNS]
        summed[name] = (len(rows), sums)
    return summed


def assert_every_window_collected_once_with_exact_sums(scenario: Scenario) -> None:
    state = scenario.simulator.state
    windows = scenario.status()
    for name, account in ACCOUNTS.items():
        assert {w["window_id"] for w in windows if w["account"] == name} == EXPECTED_WINDOWS[name]
        assert {(r.broker_type.value, f"{r.begin:%Y%m%d}-{r.end:%Y%m%d}") for r in state.ranges(account.api_key)} == {
            tuple(window_id.split(":")[1:]) for window_id in EXPECTED_WINDOWS[name]
        }, "each window's file requested once, nothing else"
        assert creates_by_hour(scenario, account) == CREATES_PER_HOUR[name], name
        assert {call.host for call in state.calls(api_key=account.api_key)} == {account.host}
        # As sent: a GET in flight while the other worker's simulated wait moves the shared clock arrives late.
        gets = sorted(call.sent_at or call.at for call in state.calls("GET", REBATE_PATH, api_key=account.api_key))
        crowded = [(a, b) for a, b in zip(gets, gets[GET_LIMIT:], strict=False) if b - a < GET_WINDOW]
        assert not crowded, f"{name}: more than {GET_LIMIT} GETs in a rolling minute: {crowded}"
    assert {w["state"] for w in windows} == {"loaded"}, windows
    assert state.count(status=429) == 0, "OKX refused a call for its rate limit"

    sums = ", ".join(f"sum({column})" for column in AMOUNT_COLUMNS)
    lake = scenario.shared / "data" / "lake" / "rebate_details" / "**" / "*.parquet"
    with connect(Path(scenario.env["REBATES_DB"]), read_only=True) as db:
        loads = db.execute("SELECT window_id, count(*) FROM rebate_loads GROUP BY ALL").fetchall()
        stored = db.execute(f"SELECT window_id, count(*), {sums} FROM rebate_details GROUP BY ALL").fetchall()
        published = db.execute(
            f"SELECT window_id, count(*), {sums} FROM read_parquet('{lake}', hive_partitioning = true) GROUP BY ALL"
        ).fetchall()
    assert sorted(loads) == sorted((w, 1) for ids in EXPECTED_WINDOWS.values() for w in ids), "loaded exactly once"
    expected = simulated_totals(scenario)
    assert totals(stored) == expected
    assert totals(published) == expected
    assert not list((scenario.shared / "data").rglob("*.part")), "a partial download was left behind"


@pytest.mark.parametrize("state_env", ["postgres"], indirect=True)  # embedded: the kill scenario covers it
def test_two_workers_collect_two_accounts_over_simulated_hours(scenario: Scenario) -> None:
    for _ in range(HOURS):
        scenario.hour()
    assert_every_window_collected_once_with_exact_sums(scenario)


def test_a_worker_killed_mid_download_loses_and_doubles_nothing(scenario: Scenario) -> None:
    scenario.hour()
    scenario.hour(kill_mid_download=True)
    for _ in range(HOURS - 2):
        scenario.hour()
    assert_every_window_collected_once_with_exact_sums(scenario)
    downloads = scenario.simulator.state.calls("GET", FILES_PATH, api_key=EU.api_key)
    assert len(downloads) > len(EXPECTED_WINDOWS["eu"]), "the killed download was fetched again"
