"""The flows against the simulator: what they create and load, the artifacts they publish, and no secret anywhere."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import duckdb
import pytest
import yaml  # type: ignore[import-untyped]  # no stubs in the locked dev set
from prefect import Flow, State
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import TaskRun
from prefect.flows import load_flow_from_entrypoint
from prefect.states import Failed

import flows.reports
import flows.serve
import flows.sync
from flows.policy import retry_if_database_locked, retry_if_transient
from flows.reports import build_reports, report_periods
from flows.runtime import run_settings
from flows.serve import deployments, schedule_timezone
from flows.sync import backfill, load, sync_rebates
from pipeline.config import CREDENTIALS_BLOCK_VARIABLE, SettingsError, parse_timezone
from pipeline.db import DatabaseLockedError
from pipeline.okx.errors import OkxAuthError, OkxTransientError
from pipeline.pass_types import SyncReport
from pipeline.report.model import Period
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import DEFAULT_API_KEY, DEFAULT_PASSPHRASE, DEFAULT_SECRET_KEY
from pipeline.windows import yesterday
from tests.conftest import make_operator_env, set_env
from tests.now import TESTS_NOW

REPO = Path(__file__).resolve().parents[2]
PostToApi = Callable[[str, dict[str, Any]], Any]
WRONG_SECRET = "wrong-secret-5e0b7a"

YESTERDAY = yesterday(TESTS_NOW, parse_timezone("UTC+8"))  # the flows' clock (`flow_clock`) reads TESTS_NOW too
START = YESTERDAY - timedelta(days=29)
SEEDED_END = START + timedelta(days=9)
SEEDED = f"api:{START:%Y%m%d}-{SEEDED_END:%Y%m%d}"
REST = f"api:{SEEDED_END + timedelta(days=1):%Y%m%d}-{YESTERDAY:%Y%m%d}"


@pytest.fixture
def flow_env(flow_simulator: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """OKX_* and REBATES_* in the environment for `flow_simulator`, as a worker has them; returns the data directory."""
    data = tmp_path / "data"
    set_env(monkeypatch, make_operator_env(flow_simulator, data) | {"REBATES_START_DATE": START.isoformat()})
    return data


def flow_run_id(state: State[Any]) -> UUID:
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    return run_id


def artifact(prefect_api: PostToApi, state: State[Any], key: str) -> str:
    """The markdown of the run's artifact with this key."""
    found = prefect_api("/artifacts/filter", {"flow_runs": {"id": {"any_": [str(flow_run_id(state))]}}, "limit": 20})
    (markdown,) = [item["data"] for item in found if item["key"] == key]
    assert isinstance(markdown, str)
    return markdown


def run_name_and_parameters(state: State[Any]) -> tuple[str, dict[str, Any]]:
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id(state))
    return run.name, run.parameters


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (DEFAULT_SECRET_KEY, DEFAULT_PASSPHRASE, WRONG_SECRET, "Signature="):
            assert secret not in text


def rows_in(data: Path) -> int:
    with duckdb.connect(str(data / "rebates.duckdb"), read_only=True) as db:
        row = db.execute("SELECT count(*) FROM rebate_details").fetchone()
    assert row is not None
    return int(row[0])


# ------------------------------------------------------------------------------------------- definitions


def test_every_flow_module_imports_and_defines_its_flows() -> None:
    for found in (flows.sync.sync_rebates, flows.sync.backfill, flows.reports.build_reports):
        assert isinstance(found, Flow)
    assert [found.name for found in (sync_rebates, backfill, build_reports)] == [
        "sync-rebates",
        "backfill",
        "build-reports",
    ]


def prefect_yaml() -> dict[str, Any]:
    loaded = yaml.safe_load((REPO / "prefect.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_every_prefect_yaml_entrypoint_resolves_to_a_flow() -> None:
    entries = prefect_yaml()["deployments"]
    assert len(entries) == 4
    for entry in entries:
        path, _, name = entry["entrypoint"].partition(":")
        loaded: Flow[..., Any] = load_flow_from_entrypoint(f"{REPO / path}:{name}")
        assert isinstance(loaded, Flow), entry["entrypoint"]
        assert entry["work_pool"]["name"] == "rebates-process"


def test_prefect_yaml_and_rebates_serve_declare_the_same_deployments() -> None:
    served = {
        (deployment.flow_name, deployment.name): [
            (schedule.schedule.cron, schedule.schedule.timezone)  # type: ignore[union-attr]
            for schedule in deployment.schedules or []
        ]
        for deployment in deployments("Asia/Shanghai")
    }
    declared = {}
    for entry in prefect_yaml()["deployments"]:
        flow: Flow[..., Any] = load_flow_from_entrypoint(str(REPO / entry["entrypoint"]))
        declared[(flow.name, entry["name"])] = [
            (schedule["cron"], schedule["timezone"]) for schedule in entry.get("schedules", [])
        ]
    assert declared == served
    assert {deployment.entrypoint for deployment in deployments("UTC")} == {
        "flows.sync.sync_rebates",
        "flows.sync.backfill",
        "flows.reports.build_reports",
        "flows.statements.build_statements",
    }


@pytest.mark.parametrize(
    ("setting", "name"),
    [("UTC+8", "Etc/GMT-8"), ("-05:00", "Etc/GMT+5"), ("UTC", "UTC"), ("Asia/Shanghai", "Asia/Shanghai")],
)
def test_rebates_tz_becomes_the_schedules_timezone(setting: str, name: str) -> None:
    assert schedule_timezone(parse_timezone(setting)) == name


def test_a_fractional_offset_has_no_schedule_timezone() -> None:
    with pytest.raises(ValueError, match="REBATES_TZ"):
        schedule_timezone(parse_timezone("UTC+5:30"))


def test_the_report_periods_are_the_day_and_on_a_months_last_day_the_month() -> None:
    assert report_periods(date(2026, 11, 23)) == [Period(date(2026, 11, 23), date(2026, 11, 23))]
    assert report_periods(date(2024, 2, 29)) == [Period(date(2024, 2, 29), date(2024, 2, 29)), Period.month(2024, 2)]


def test_only_a_held_database_makes_prefect_retry_a_task() -> None:
    no_run = cast(TaskRun, None)
    assert retry_if_database_locked(load, no_run, Failed(data=DatabaseLockedError("held")))
    assert not retry_if_database_locked(load, no_run, Failed(data=ValueError("a bug")))


def test_only_a_transient_failure_makes_prefect_retry_a_get_step() -> None:
    no_run = cast(TaskRun, None)
    assert retry_if_transient(load, no_run, Failed(data=OkxTransientError("50001 service unavailable")))
    assert retry_if_transient(load, no_run, Failed(data=DatabaseLockedError("held")))
    assert not retry_if_transient(load, no_run, Failed(data=OkxAuthError("50113 invalid sign")))


# ------------------------------------------------------------------------------------------- sync


def test_sync_rebates_adopts_creates_loads_and_publishes_its_summary(
    flow_env: Path, flow_simulator: RunningSimulator, prefect_api: PostToApi
) -> None:
    flow_simulator.state.seed_file(DEFAULT_API_KEY, "api", START, SEEDED_END)
    state = sync_rebates(return_state=True)
    assert state.is_completed(), state.message
    report = state.result()
    assert isinstance(report, SyncReport)
    assert report.adopted == [SEEDED]
    assert report.created == REST
    assert report.loaded[SEEDED] == rows_in(flow_env) > 0

    name, parameters = run_name_and_parameters(state)
    assert name == f"sync {START}..{YESTERDAY}"
    markdown = artifact(prefect_api, state, "sync-summary")
    assert markdown.startswith(f"# sync {START}..{YESTERDAY}\n")
    for expected in (
        f"| adopted (files OKX already had) | {SEEDED} |",
        f"| created | {REST} (created) |",
        f"| loaded (rows) | {SEEDED}: {report.loaded[SEEDED]:,} |",
        f"| pending (waiting for OKX) | {REST} |",
        "| next create allowed | 20",
    ):
        assert expected in markdown
    assert_no_secret(markdown, json.dumps(parameters, default=str))


def test_a_refused_pass_still_publishes_its_summary_and_fails_the_run(
    flow_env: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: PostToApi
) -> None:
    monkeypatch.setenv("OKX_SECRET_KEY", WRONG_SECRET)
    state = sync_rebates(begin=START, end=SEEDED_END, return_state=True)
    assert state.is_failed()
    markdown = artifact(prefect_api, state, "sync-summary")
    assert "OKX_SECRET_KEY" in markdown
    name, parameters = run_name_and_parameters(state)
    assert name == f"sync {START}..{SEEDED_END}"
    assert parameters == {
        "begin": START.isoformat(),
        "end": SEEDED_END.isoformat(),
        "broker_type": None,
        "retry": None,
        "account": None,
    }
    assert_no_secret(markdown, str(state.message), json.dumps(parameters, default=str))


def test_credentials_can_come_from_a_prefect_secret_block(
    flow_env: Path, flow_simulator: RunningSimulator, monkeypatch: pytest.MonkeyPatch, prefect_api: PostToApi
) -> None:
    Secret(
        value={
            "OKX_API_KEY": DEFAULT_API_KEY,
            "OKX_SECRET_KEY": DEFAULT_SECRET_KEY,
            "OKX_PASSPHRASE": DEFAULT_PASSPHRASE,
        }
    ).save("okx-rebates-test", overwrite=True)
    for name in ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE"):
        monkeypatch.delenv(name)
    monkeypatch.setenv(CREDENTIALS_BLOCK_VARIABLE, "okx-rebates-test")
    flow_simulator.state.seed_file(DEFAULT_API_KEY, "api", START, SEEDED_END)
    state = sync_rebates(begin=START, end=SEEDED_END, return_state=True)
    assert state.is_completed(), state.message
    assert rows_in(flow_env) > 0
    assert_no_secret(artifact(prefect_api, state, "sync-summary"))


def test_a_missing_or_malformed_secret_block_is_named(flow_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CREDENTIALS_BLOCK_VARIABLE, "no-such-block")
    with pytest.raises(SettingsError, match="no Prefect Secret block has that name"):
        run_settings()
    Secret(value={"OKX_API_KEY": DEFAULT_API_KEY}).save("okx-rebates-partial", overwrite=True)
    monkeypatch.setenv(CREDENTIALS_BLOCK_VARIABLE, "okx-rebates-partial")
    with pytest.raises(SettingsError, match="OKX_SECRET_KEY, OKX_PASSPHRASE"):
        run_settings()


# ------------------------------------------------------------------------------------------- backfill


def test_backfill_finishes_in_one_pass_when_okx_has_the_files(
    flow_env: Path, flow_simulator: RunningSimulator, prefect_api: PostToApi
) -> None:
    flow_simulator.state.seed_file(DEFAULT_API_KEY, "api", START, SEEDED_END)
    state = backfill(begin=START, end=SEEDED_END, broker_type="api", return_state=True)
    assert state.is_completed(), state.message
    reports = state.result()
    assert isinstance(reports, list)
    assert len(reports) == 1
    assert rows_in(flow_env) > 0
    name, _ = run_name_and_parameters(state)
    assert name == f"backfill api {START}..{SEEDED_END}"
    markdown = artifact(prefect_api, state, "backfill-summary")
    assert "| unfinished in range | - |" in markdown
    assert "| passes | 1 completed |" in markdown


def test_backfill_stops_at_max_hours_and_lists_what_is_unfinished(
    flow_env: Path, flow_simulator: RunningSimulator, prefect_api: PostToApi
) -> None:
    state = backfill(begin=START, end=SEEDED_END, max_hours=0, return_state=True)
    assert state.is_completed(), state.message
    markdown = artifact(prefect_api, state, "backfill-summary")
    assert f"| created | {SEEDED} (created) |" in markdown
    assert f"| unfinished in range | {SEEDED}: requested |" in markdown
    assert len(flow_simulator.state.calls("POST")) == 1


def test_backfill_refuses_a_reversed_range(flow_env: Path) -> None:
    state = backfill(begin=SEEDED_END, end=START, return_state=True)
    assert state.is_failed()
    assert f"--begin {SEEDED_END} is after --end {START}" in str(state.message)


# ------------------------------------------------------------------------------------------- reports


def fake_report_module(calls: list[tuple[Period, str | None]]) -> types.ModuleType:
    """A stand-in for pipeline.report.run that records what it is asked for: the flow's part, without the writers."""
    module = types.ModuleType("pipeline.report.run")
    accounts: list[str | None] = []
    module.accounts = accounts  # type: ignore[attr-defined]

    def write_reports(
        settings: Any,
        period: Period,
        *,
        broker_code: str | None = None,
        out_dir: Path | None = None,
        account: str | None = None,
        **_: Any,
    ) -> list[Path]:
        calls.append((period, broker_code))
        accounts.append(account)
        path = (out_dir or settings.layout.reports) / f"commission_{period.label}.xlsx"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"xlsx")
        return [path]

    module.write_reports = write_reports  # type: ignore[attr-defined]
    return module


def test_build_reports_writes_the_day_and_on_the_first_the_month(
    flow_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_api: PostToApi
) -> None:
    calls: list[tuple[Period, str | None]] = []
    monkeypatch.setitem(sys.modules, "pipeline.report.run", fake_report_module(calls))
    state = build_reports(day=date(2026, 10, 31), out_dir=str(tmp_path / "out"), return_state=True)
    assert state.is_completed(), state.message
    assert calls == [(Period(date(2026, 10, 31), date(2026, 10, 31)), None), (Period.month(2026, 10), None)]
    paths = state.result()
    assert paths == [
        str(tmp_path / "out" / "commission_2026-10-31..2026-10-31.xlsx"),
        str(tmp_path / "out" / "commission_2026-10.xlsx"),
    ]
    name, _ = run_name_and_parameters(state)
    assert name == "reports 2026-10-31 + month 2026-10"
    markdown = artifact(prefect_api, state, "reports-summary")
    assert f"| 2026-10-31 | {paths[0]} |" in markdown
    assert f"| 2026-10 | {paths[1]} |" in markdown


def test_build_reports_defaults_to_yesterday(flow_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Period, str | None]] = []
    monkeypatch.setitem(sys.modules, "pipeline.report.run", fake_report_module(calls))
    state = build_reports(broker_code="ABC", return_state=True)
    assert state.is_completed(), state.message
    assert calls[0] == (Period(YESTERDAY, YESTERDAY), "ABC")


def test_build_reports_writes_real_reports_after_a_sync(flow_env: Path, flow_simulator: RunningSimulator) -> None:
    pytest.importorskip("pipeline.report.run", reason="the report writers (pipeline.report.run) are not built yet")
    flow_simulator.state.seed_file(DEFAULT_API_KEY, "api", START, SEEDED_END)
    assert sync_rebates(begin=START, end=SEEDED_END, return_state=True).is_completed()
    state = build_reports(day=START + timedelta(days=1), return_state=True)
    assert state.is_completed(), state.message
    written = [Path(path) for path in state.result()]
    assert {path.suffix for path in written} == {".xlsx", ".csv", ".html"}
    assert all(path.is_file() and path.is_relative_to(flow_env / "reports") for path in written)
