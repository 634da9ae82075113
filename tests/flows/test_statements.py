"""The month-end statements flow: a statement per broker code after a sync, its manifest and its artifact."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from flows.statements import build_statements, statements_period
from flows.sync import sync_rebates
from pipeline.report.model import Period
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import DEFAULT_API_KEY
from tests.flows.test_flows import (  # noqa: F401 - flow_env is a fixture
    SEEDED_END,
    START,
    PostToApi,
    artifact,
    flow_env,
    run_name_and_parameters,
)


def test_the_month_is_the_one_named() -> None:
    assert statements_period("2025-02") == Period.month(2025, 2)  # else Period.last_ended_month (tests/report)


@pytest.mark.usefixtures("flow_env")
def test_build_statements_writes_a_statement_per_code_the_manifest_and_an_artifact(
    flow_simulator: RunningSimulator, prefect_api: PostToApi, tmp_path: Path
) -> None:
    flow_simulator.state.seed_file(DEFAULT_API_KEY, "api", START, SEEDED_END)
    assert sync_rebates(begin=START, end=SEEDED_END, return_state=True).is_completed()
    month = f"{START:%Y-%m}"
    state = build_statements(month=month, return_state=True)
    assert state.is_completed(), state.message
    written = [Path(path) for path in state.result()]
    manifest = tmp_path / "data" / "reports" / f"statements_{month}" / "manifest.csv"  # flow_env's data directory
    assert written[-1] == manifest
    with manifest.open(encoding="utf-8", newline="") as handle:
        codes = [row["broker_code"] for row in csv.DictReader(handle)]
    assert codes and all(any(code in path.name for path in written) for code in codes)
    assert all(path.is_file() for path in written)
    name, _ = run_name_and_parameters(state)
    assert name == f"statements {month}"
    markdown = artifact(prefect_api, state, "statements-summary")
    assert all(f"| {code} |" in markdown for code in codes)
    assert str(manifest) in markdown
