"""`rebates sync` and `rebates status` as an operator runs them: exit codes, output, and nothing secret printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from pipeline.clock import SystemClock
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import DEFAULT_API_KEY, DEFAULT_PASSPHRASE, DEFAULT_SECRET_KEY, SimulatorConfig

pytestmark = pytest.mark.integration

REBATES = Path(sys.executable).parent / "rebates"


@pytest.fixture
def live_simulator() -> Iterator[RunningSimulator]:
    with RunningSimulator(SimulatorConfig(orders_per_day=3), clock=SystemClock()) as running:
        yield running


def rebates(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REBATES), *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_sync_archives_and_status_reports_without_printing_secrets_or_signed_links(
    live_simulator: RunningSimulator, tmp_path: Path, operator_env: Callable[[RunningSimulator, Path], dict[str, str]]
) -> None:
    live_simulator.state.seed_file(DEFAULT_API_KEY, "api", date(2025, 1, 1), date(2025, 1, 31))
    env = operator_env(live_simulator, tmp_path / "data")
    synced = rebates("-v", "sync", env=env, cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr
    assert "downloaded: api:20250101-20250131" in synced.stdout
    assert "loaded: api:20250101-20250131" in synced.stdout
    status = rebates("status", "--json", env=env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    states = {window["window_id"]: window["state"] for window in json.loads(status.stdout)["windows"]}
    assert states["api:20250101-20250131"] == "loaded"
    table = rebates("status", env=env, cwd=tmp_path)
    assert "next create allowed" in table.stdout
    for output in (synced, status, table):
        text = output.stdout + output.stderr
        assert DEFAULT_SECRET_KEY not in text
        assert DEFAULT_PASSPHRASE not in text
        assert "Signature=" not in text


def test_a_wrong_secret_exits_3_naming_the_setting(
    live_simulator: RunningSimulator, tmp_path: Path, operator_env: Callable[[RunningSimulator, Path], dict[str, str]]
) -> None:
    env = {**operator_env(live_simulator, tmp_path / "data"), "OKX_SECRET_KEY": "not-the-secret"}
    result = rebates("sync", env=env, cwd=tmp_path)
    assert result.returncode == 3
    assert "OKX_SECRET_KEY" in result.stderr
    assert "not-the-secret" not in result.stdout + result.stderr


def test_a_missing_start_date_exits_2(
    live_simulator: RunningSimulator, tmp_path: Path, operator_env: Callable[[RunningSimulator, Path], dict[str, str]]
) -> None:
    env = {**operator_env(live_simulator, tmp_path / "data"), "REBATES_START_DATE": ""}
    result = rebates("sync", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "REBATES_START_DATE" in result.stderr


def test_status_before_any_sync_says_what_to_do(tmp_path: Path) -> None:
    result = rebates("status", env={"REBATES_DB": str(tmp_path / "none.duckdb")}, cwd=tmp_path)
    assert result.returncode == 0
    assert "run `rebates sync` first" in result.stdout
