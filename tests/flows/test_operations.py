"""What operators rely on: alert events on a real (temporary) server, window-state and progress artifacts, limits."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no stubs in the locked dev set

from flows.policy import BACKFILL_TIMEOUT, REPORTS_TIMEOUT, STATEMENTS_TIMEOUT, SYNC_TIMEOUT
from flows.reports import build_reports
from flows.serve import ONE_AT_A_TIME, deployments
from flows.statements import build_statements
from flows.sync import backfill, sync_rebates
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import DEFAULT_API_KEY, Fault
from tests.flows.test_flows import (  # noqa: F401 - flow_env is a fixture
    REPO,
    SEEDED,
    SEEDED_END,
    START,
    PostToApi,
    assert_no_secret,
    flow_env,
    flow_run_id,
)

EVENT_TIMEOUT = 30.0


def run_artifacts(prefect_api: PostToApi, run_id: object) -> dict[str, Any]:
    found = prefect_api("/artifacts/filter", {"flow_runs": {"id": {"any_": [str(run_id)]}}, "limit": 20})
    return {item["key"]: item for item in found}


def events_named(prefect_api: PostToApi, name: str, subject: str) -> list[dict[str, Any]]:
    """The events with this name about this window or pass, waiting for the server to store them."""
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    deadline = time.monotonic() + EVENT_TIMEOUT
    while True:
        page = prefect_api(
            "/events/filter", {"filter": {"event": {"name": [name]}, "occurred": {"since": since}}, "limit": 50}
        )
        found = [event for event in page["events"] if event["resource"]["prefect.resource.name"] == subject]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


@pytest.mark.usefixtures("flow_env")
def test_a_quarantined_window_reaches_the_server_as_an_event_and_shows_in_the_window_table(
    flow_simulator: RunningSimulator, prefect_api: PostToApi
) -> None:
    flow_simulator.state.seed_file(DEFAULT_API_KEY, "api", START, SEEDED_END)
    flow_simulator.state.faults.inject(Fault.MALFORMED_FILE, 1, how="bad-amount")  # real bad data: quarantined
    state = sync_rebates(begin=START, end=SEEDED_END, return_state=True)
    assert state.is_completed(), state.message
    (event,) = events_named(prefect_api, "rebates.window.quarantined", SEEDED)
    assert event["resource"]["prefect.resource.id"] == f"okx-rebates.window.{SEEDED}"
    assert event["payload"]["window"] == SEEDED and event["payload"]["reason"]
    assert str(flow_run_id(state)) in json.dumps(event["related"])  # Prefect relates it to the run
    table = run_artifacts(prefect_api, flow_run_id(state))["window-states"]
    assert table["type"] == "table"
    rows = json.loads(table["data"])
    assert [(row["window"], row["state"]) for row in rows] == [(SEEDED, "quarantined")]
    assert_no_secret(json.dumps(event), table["data"])


@pytest.mark.usefixtures("flow_env")
def test_a_failed_pass_is_an_event_naming_the_fix(
    flow_simulator: RunningSimulator, prefect_api: PostToApi, monkeypatch: Any
) -> None:
    monkeypatch.setenv("OKX_PASSPHRASE", "not-the-passphrase")
    state = sync_rebates(begin=START, end=SEEDED_END, return_state=True)
    assert state.is_failed()
    events = events_named(prefect_api, "rebates.pass.failed", "sync-rebates")
    assert any("OKX_PASSPHRASE" in event["payload"]["reason"] for event in events)
    assert_no_secret(json.dumps(events))


@pytest.mark.usefixtures("flow_env")
def test_a_backfill_publishes_its_progress(flow_simulator: RunningSimulator, prefect_api: PostToApi) -> None:
    flow_simulator.state.seed_file(DEFAULT_API_KEY, "api", START, SEEDED_END)
    state = backfill(begin=START, end=SEEDED_END, broker_type="api", return_state=True)
    assert state.is_completed(), state.message
    found = run_artifacts(prefect_api, flow_run_id(state))
    assert found["backfill-progress"]["type"] == "progress"
    assert found["backfill-progress"]["data"] == 100.0
    assert [row["state"] for row in json.loads(found["window-states"]["data"])] == ["loaded"]


def test_every_flow_has_a_timeout_and_the_hourly_one_ends_before_the_next_hour() -> None:
    assert sync_rebates.timeout_seconds == SYNC_TIMEOUT.total_seconds() < 3600
    assert backfill.timeout_seconds == BACKFILL_TIMEOUT.total_seconds()
    assert build_reports.timeout_seconds == REPORTS_TIMEOUT.total_seconds()
    assert build_statements.timeout_seconds == STATEMENTS_TIMEOUT.total_seconds()


def test_every_deployment_runs_one_at_a_time_and_drops_an_overlapping_run_in_yaml_and_serve() -> None:
    declared = yaml.safe_load((REPO / "prefect.yaml").read_text())
    for entry in declared["deployments"]:
        assert entry["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}, entry["name"]
    assert ONE_AT_A_TIME.limit == 1 and ONE_AT_A_TIME.collision_strategy.value == "CANCEL_NEW"
    for deployment in deployments("UTC"):
        assert deployment.concurrency_limit == 1
        assert deployment.concurrency_options is not None
        assert deployment.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    assert declared["pull"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $REBATES_HOME }}"}}
    ]
