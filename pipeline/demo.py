"""The demo: the whole pipeline against the embedded OKX simulator, with its clock moved instead of waiting hours."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipeline.clock import FakeClock, SystemClock
from pipeline.config import Settings, load_settings
from pipeline.db import connect, sql_text
from pipeline.ledger import Ledger, WindowState
from pipeline.okx.limits import CREATE_INTERVAL
from pipeline.okx.simulator import (
    DEFAULT_API_KEY,
    DEFAULT_PASSPHRASE,
    DEFAULT_SECRET_KEY,
    ROTATE,
    RunningSimulator,
    SimulatorConfig,
)
from pipeline.report.model import Period
from pipeline.report.run import write_reports
from pipeline.sync import syncer_for
from pipeline.windows import yesterday

FINAL_STATES = (WindowState.LOADED, WindowState.QUARANTINED)

DEMO_DIR = Path("demo-data")
"""Where the demo writes (never REBATES_DATA_DIR, so it cannot touch real data); wiped at each start."""


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced."""

    settings: Settings
    passes: int
    hours_simulated: int
    windows: int
    loaded: int
    rows: int
    reports: tuple[Path, ...]


def demo_settings(base_url: str, directory: Path, history_days: int, clock: FakeClock) -> Settings:
    """Settings for the simulator's well-known account, collecting the last `history_days` days."""
    start = yesterday(clock.now(), load_settings().rebates_tz) - timedelta(days=history_days - 1)
    return load_settings(
        okx_api_key=DEFAULT_API_KEY,
        okx_secret_key=DEFAULT_SECRET_KEY,
        okx_passphrase=DEFAULT_PASSPHRASE,
        okx_base_url=base_url,
        rebates_broker_types="api,oauth",
        rebates_data_dir=directory,
        rebates_db=directory / "rebates.duckdb",
        rebates_start_date=start,
    )


def run_demo(
    console: Console, *, directory: Path = DEMO_DIR, history_days: int = 28, max_hours: int = 12
) -> DemoResult:
    """Collect `history_days` of history from the simulator, one pass per simulated hour, until all is archived."""
    if directory.exists():
        shutil.rmtree(directory)
    clock = FakeClock(SystemClock().now())
    config = SimulatorConfig(shape=ROTATE, layout=ROTATE, orders_per_day=60)
    passes = 0
    with RunningSimulator(config, clock=clock) as simulator:
        settings = demo_settings(simulator.base_url, directory, history_days, clock)
        ledger = Ledger(settings.rebates_db, clock)
        console.print(f"[bold]OKX simulator[/] at {simulator.base_url}; collecting {history_days} days of history")
        with console.status("starting", spinner="dots") as status:
            syncer = syncer_for(settings, clock, progress=lambda message: status.update(f"hour {passes}: {message}"))
            try:
                for hour in range(max_hours):
                    passes += 1
                    report = syncer.run()
                    if report.created:
                        console.print(f"  hour {hour}: asked OKX to generate {report.created}")
                    windows = ledger.windows()
                    if windows and all(record.state in FINAL_STATES for record in windows):
                        break
                    clock.advance(CREATE_INTERVAL)
            finally:
                syncer.close()
    windows = ledger.windows()
    table = Table("window", "kind", "state", "archived file", "rows")
    files = {archived.window_id: archived for archived in ledger.files()}
    for record in windows:
        archived = files.get(record.window_id)
        table.add_row(
            record.window_id,
            record.kind.value,
            record.state.value,
            Path(archived.path).name if archived else "-",
            "-" if record.rows_loaded is None else f"{record.rows_loaded:,}",
        )
    console.print(table)
    console.print(totals_table(settings))
    loaded = [record for record in windows if record.state is WindowState.LOADED]
    console.print(
        f"database: {settings.rebates_db}\nanalysts' snapshot: {settings.snapshot_path}\n"
        f"archive:  {settings.rebates_data_dir / 'raw'}"
    )
    rows = sum(record.rows_loaded or 0 for record in loaded)
    period = Period(
        settings.rebates_start_date or yesterday(clock.now(), settings.rebates_tz),
        yesterday(clock.now(), settings.rebates_tz),
    )
    with console.status("writing the commission report (xlsx, csv, html)", spinner="dots"):
        reports = write_reports(settings, period, clock=clock)
    shown = [path for path in reports if path.suffix in {".xlsx", ".html"}]
    console.print(
        "reports:  " + "\n          ".join(str(path) for path in shown) + f"\n          {reports[1].parent}/ (csv)"
    )
    return DemoResult(settings, passes, passes - 1, len(windows), len(loaded), rows, tuple(reports))


def totals_table(settings: Settings) -> Table:
    """Commission by broker type and instrument type, from the analysts' view."""
    table = Table("broker type", "instrument", "orders", "net fee (USDT)", "broker rebate (USDT)", title="Commission")
    with connect(settings.rebates_db) as db:
        rows = db.execute(sql_text("reports/demo_summary.sql")).fetchall()
    for broker_type, inst_type, orders, net_fee, broker_rebate in rows:
        table.add_row(broker_type, inst_type, f"{orders:,}", f"{net_fee:,.2f}", f"{broker_rebate:,.6f}")
    return table
