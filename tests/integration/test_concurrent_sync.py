"""Two `rebates sync` processes started at the same moment make one create between them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from pipeline.clock import SystemClock
from pipeline.domain import REBATE_PATH
from pipeline.ledger import Ledger, WindowState
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import SimulatorConfig
from pipeline.windows import yesterday

pytestmark = pytest.mark.integration

REBATES = Path(sys.executable).parent / "rebates"


def test_two_processes_at_once_make_one_create(
    tmp_path: Path, operator_env: Callable[[RunningSimulator, Path], dict[str, str]]
) -> None:
    clock = SystemClock()
    config = SimulatorConfig(orders_per_day=3, ready_after=timedelta(hours=2))
    with RunningSimulator(config, clock=clock) as simulator:
        data = tmp_path / "data"
        env = {**os.environ, **operator_env(simulator, data)}
        runs = [
            subprocess.Popen(
                [str(REBATES), "sync"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=120) for run in runs]
        for run, (out, err) in zip(runs, outputs, strict=True):
            assert run.returncode == 0, out + err

        creates = simulator.state.calls("POST", REBATE_PATH)
        assert len(creates) == 1, creates
        assert creates[0].code == "0"
        windows = Ledger(data / "rebates.duckdb", clock).windows()
        requested = [record for record in windows if record.state in (WindowState.REQUESTED, WindowState.ONGOING)]
        assert len(requested) == 1, windows  # ongoing when the other pass's discovery saw the file at OKX
        assert windows[-1].end_date == yesterday(clock.now(), config.day_tz)
