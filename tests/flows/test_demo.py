"""The demo runs the sync flow per simulated hour, loads and reports four weeks, quietly, under its own folder."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.settings import temporary_settings
from rich.console import Console

from flows.demo import DEMO_HOURS, closing_commands, fullest_month, prefect_logs_to, run_demo
from pipeline.report.model import Period


def sync_flow_runs() -> list[str]:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["sync-rebates"])), limit=200)
    return [run.name for run in runs if run.state is not None and run.state.is_completed()]


def test_the_demo_runs_the_sync_flow_loads_every_window_and_writes_the_reports(tmp_path: Path) -> None:
    before = len(sync_flow_runs())
    output = io.StringIO()
    # Half an hour before midnight in UTC+8: the demo's simulated hours cross it, and still collect its 10 days only.
    before_midnight = datetime.combine(date.today(), time(15, 30), tzinfo=UTC)
    result = run_demo(
        Console(file=output, width=120), directory=tmp_path / "demo", history_days=10, start=before_midnight
    )
    assert result.windows == result.loaded == 2  # api and oauth, one history window each
    # The default start leads now by exactly the simulated hours, so the loads are never stamped in the future.
    assert timedelta(hours=result.hours_simulated) == DEMO_HOURS
    assert result.rows > 0
    assert len(sync_flow_runs()) - before == result.passes  # every pass was a completed sync-rebates flow run
    assert {path.suffix for path in result.reports} == {".xlsx", ".csv", ".html"}
    assert all(path.is_relative_to(tmp_path / "demo") and path.exists() for path in result.reports)
    assert "Commission" in output.getvalue()
    assert "asked OKX to generate" in output.getvalue()
    assert not (tmp_path / "data").exists()
    rebates = str(Path(sys.executable).with_name("rebates"))
    for command in closing_commands(result, rebates, os.path.relpath):
        # Through a shell, exactly as a person pastes them: the printed line is what is tested.
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120, check=False)  # noqa: S602
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        assert "reconciled" in done.stdout or "row(s)" in done.stdout, (command, done.stdout)


def test_the_demo_reports_on_the_month_holding_most_of_its_days() -> None:
    assert fullest_month(Period(date(2026, 11, 8), date(2026, 12, 5))) == Period.month(2026, 11)
    assert fullest_month(Period(date(2026, 11, 20), date(2026, 12, 17))) == Period.month(2026, 12)


def test_the_demo_shows_the_runs_lines_on_its_spinner_and_only_warnings_on_the_console() -> None:
    console = io.StringIO()
    handler = logging.StreamHandler(console)
    logging.getLogger().addHandler(handler)
    shown: list[str] = []
    try:
        with temporary_settings(updates={"logging.to_api.when_missing_flow": "ignore"}), prefect_logs_to(shown.append):
            logging.getLogger("prefect.task_runs").info("listing OKX's files (api)")
            logging.getLogger("pipeline.store.load").info("loaded 12 rows")
            logging.getLogger("pipeline.store.load").warning("a warning stays on the console")
        assert handler.level == logging.NOTSET  # restored
    finally:
        logging.getLogger().removeHandler(handler)
    assert shown[:2] == ["listing OKX's files (api)", "loaded 12 rows"]
    assert console.getvalue() == "a warning stays on the console\n"


def test_the_demo_command_keeps_prefects_database_under_demo_data(tmp_path: Path) -> None:
    """`rebates demo` sets PREFECT_HOME before Prefect loads, so nothing lands in ~/.prefect."""
    script = (
        "from flows.demo_home import use_demo_prefect_home; use_demo_prefect_home()\n"
        "from prefect.settings import get_current_settings\n"
        "settings = get_current_settings()\n"
        "print(settings.home)\n"
        "print(settings.server.database.connection_url.get_secret_value())\n"
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
    env["HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    home, database = done.stdout.strip().splitlines()[-2:]
    assert Path(home) == tmp_path / "demo-data" / "prefect"
    assert database.endswith(str(tmp_path / "demo-data" / "prefect" / "prefect.db"))
    assert not (tmp_path / "home" / ".prefect").exists()
