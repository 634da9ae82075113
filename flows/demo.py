"""The demo: the sync flow against the embedded OKX simulator, an hourly run per simulated hour, then the report."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from prefect.logging.handlers import PrefectConsoleHandler
from prefect.settings import temporary_settings
from rich.console import Console
from rich.table import Table

from flows.demo_home import DEMO_DIR, clear_demo_data
from flows.runtime import pinned
from flows.sync import sync_rebates
from pipeline.clock import FakeClock, SystemClock
from pipeline.config import Settings, load_settings
from pipeline.db import connect
from pipeline.domain import CREATE_INTERVAL, GENERATION_TIME
from pipeline.ledger import Ledger, WindowState
from pipeline.pass_types import SyncReport
from pipeline.report.model import Period
from pipeline.report.run import write_reports
from pipeline.simulator.options import ROTATE
from pipeline.simulator.server import RunningSimulator
from pipeline.simulator.state import DEFAULT_API_KEY, DEFAULT_PASSPHRASE, DEFAULT_SECRET_KEY, SimulatorConfig
from pipeline.sqlfiles import sql_text
from pipeline.windows import yesterday

DEMO_HOURS = GENERATION_TIME + CREATE_INTERVAL
"""The simulated time the demo's collection takes: one create an hour (api, then oauth), each file ready 2 hours later.

The simulated clock starts this long before now, so the loads end about when the demo does: a report run afterwards
on the system clock never shows a load later than its own Generated at.
"""


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
    period: Period
    """The days collected: the demo's first day to its last."""


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
    console: Console,
    *,
    directory: Path = DEMO_DIR,
    history_days: int = 28,
    max_hours: int = 12,
    start: datetime | None = None,
) -> DemoResult:
    """Collect `history_days` of history from the simulator: a `sync-rebates` flow run per simulated hour.

    The flow runs in this process, on Prefect's temporary local server when no PREFECT_API_URL is set (Prefect
    starts it, 10-20 s), with the demo's settings and the simulator's clock pinned (flows.runtime). `start`: the
    simulated clock's first moment (default DEMO_HOURS before now).
    """
    clear_demo_data(directory)
    clock = FakeClock(start or SystemClock().now() - DEMO_HOURS)
    config = SimulatorConfig(shape=ROTATE, layout=ROTATE, orders_per_day=60)
    passes = 0
    with RunningSimulator(config, clock=clock) as simulator:
        settings = demo_settings(simulator.base_url, directory, history_days, clock)
        ledger = Ledger(settings.rebates_db, clock)
        # The last day is fixed when the demo starts: its simulated hours may cross midnight in REBATES_TZ, which would
        # otherwise add each broker type's new day as more windows (and a day the report calls missing).
        last_day = yesterday(clock.now(), settings.rebates_tz)
        console.print(f"[bold]OKX simulator[/] at {simulator.base_url}; collecting {history_days} days of history")
        with console.status("starting Prefect (its temporary local server takes 10-20 s)", spinner="dots") as status:
            show = status.update
            with pinned(settings, clock), prefect_logs_to(lambda message: show(f"hour {passes - 1}: {message}")):
                for hour in range(max_hours):
                    passes += 1
                    state = sync_rebates(end=last_day, return_state=True)
                    report = state.result()  # a failed run raises its error here
                    assert isinstance(report, SyncReport)  # the demo has one account: one report
                    if report.created:
                        console.print(f"  hour {hour}: sync-rebates asked OKX to generate {report.created}")
                    windows = ledger.windows()
                    if windows and all(record.is_done for record in windows):
                        break
                    clock.advance(CREATE_INTERVAL)
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
        f"database: {settings.rebates_db} (the pipeline's own; analysts read the lake)\narchive:  {settings.layout.raw}"
    )
    rows = sum(record.rows_loaded or 0 for record in loaded)
    period = Period(settings.rebates_start_date or last_day, last_day)
    with console.status("writing the commission report (xlsx, csv, html)", spinner="dots"):
        reports = write_reports(settings, period, clock=clock)
    shown = [path for path in reports if path.suffix in {".xlsx", ".html"}]
    console.print(
        "reports:  " + "\n          ".join(str(path) for path in shown) + f"\n          {reports[1].parent}/ (csv)"
    )
    return DemoResult(settings, passes, passes - 1, len(windows), len(loaded), rows, tuple(reports), period)


def fullest_month(period: Period) -> Period:
    """The calendar month holding the most of `period`'s days (the later one on a tie): what to report on."""
    months = {(day.year, day.month) for day in period.day_list()}
    year, month = max(
        months, key=lambda key: (sum(1 for day in period.day_list() if (day.year, day.month) == key), key)
    )
    return Period.month(year, month)


def closing_commands(result: DemoResult, rebates: str, relative: Callable[[Path], str]) -> list[str]:
    """The commands the demo ends with: a month's report and statements, then a query, each working as printed.

    `rebates` is how the command is run from here (`.venv/bin/rebates`); `relative` writes a path as seen from here.
    The reports need REBATES_DB as well as REBATES_DATA_DIR: the demo's database is not at its default place.
    """
    settings = result.settings
    data = f"REBATES_DATA_DIR={relative(settings.rebates_data_dir)}"
    database = f"REBATES_DB={relative(settings.rebates_db)}"
    month = fullest_month(result.period).label
    query = "SELECT inst_type, count(*) AS orders, sum(broker_rebate) AS broker_rebate FROM rebate_orders GROUP BY ALL"
    return [
        f"{data} {database} {rebates} report --month {month}",
        f"{data} {database} {rebates} statements --month {month}",
        f'{data} {rebates} sql -c "{query}"',
    ]


def totals_table(settings: Settings) -> Table:
    """Commission by broker type and instrument type, from the analysts' view."""
    table = Table("broker type", "instrument", title="Commission")
    for amount in ("orders", "net fee (USDT)", "broker rebate (USDT)"):
        table.add_column(amount, justify="right")
    with connect(settings.rebates_db) as db:
        rows = db.execute(sql_text("reports/demo_summary.sql")).fetchall()
    for broker_type, inst_type, orders, net_fee, broker_rebate in rows:
        table.add_row(broker_type, inst_type, f"{orders:,}", f"{net_fee:,.2f}", f"{broker_rebate:,.2f}")
    return table


@contextmanager
def prefect_logs_to(show: Callable[[str], None]) -> Iterator[None]:
    """Show the runs' and the pipeline's INFO lines through `show` (the spinner), and only warnings on the console.

    Prefect and the pipeline print every step to the console; in the demo that would scroll the progress away.
    Prefect's telemetry is switched off too (the temporary server would report, and fail, with no internet).
    """
    consoles = [
        handler
        for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if isinstance(handler, PrefectConsoleHandler) or logger is logging.getLogger()
    ]
    levels = [handler.level for handler in consoles]
    spinner = _Spinner(show)
    sources = [logging.getLogger(name) for name in ("prefect.flow_runs", "prefect.task_runs", "pipeline")]
    for handler in consoles:
        handler.setLevel(logging.WARNING)
    for logger in sources:
        logger.addHandler(spinner)
    try:
        # A busy machine can take longer than Prefect's default 20 s to start the temporary server.
        updates = {"server.analytics_enabled": False, "server.ephemeral.startup_timeout_seconds": 120}
        with temporary_settings(updates=updates):
            yield
    finally:
        for logger in sources:
            logger.removeHandler(spinner)
        for handler, level in zip(consoles, levels, strict=True):
            handler.setLevel(level)


class _Spinner(logging.Handler):
    """A logging handler that hands each INFO line to the spinner."""

    def __init__(self, show: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.show = show

    def emit(self, record: logging.LogRecord) -> None:
        self.show(record.getMessage())
