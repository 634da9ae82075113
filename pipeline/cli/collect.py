"""Commands that collect: sync, load, retry, status and the demo."""

from __future__ import annotations

import json
import logging
from contextlib import ExitStack
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from pipeline.domain import OVERDUE_AFTER, BrokerType

if TYPE_CHECKING:
    from pipeline.ledger import WindowRecord
    from pipeline.pass_types import SyncReport


from pipeline.cli.base import (
    AccountOption,
    Exit,
    app,
    clock_from_env,
    console,
    exit_codes,
    fail,
    parse_day,
    rebates_command,
    relative,
    settings_or_exit,
    when,
)


@app.command("sync")
def sync(
    begin: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD); default REBATES_START_DATE.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day (YYYY-MM-DD); default yesterday in REBATES_TZ.")] = None,
    broker_type: Annotated[BrokerType | None, typer.Option(help="Only this broker type.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Keep polling until every requested file is archived.")] = False,
    deadline: Annotated[int, typer.Option(help="With --wait, give up after this many minutes.", min=1)] = int(
        OVERDUE_AFTER.total_seconds() // 60
    ),  # passes.DEFAULT_WAIT_DEADLINE
    as_json: Annotated[bool, typer.Option("--json", help="Print the pass's report as JSON.")] = False,
    account: AccountOption = None,
) -> None:
    """Run one acquisition pass: discover OKX's files, create one if the hour allows, poll, download, archive.

    With several accounts (REBATES_ACCOUNTS), one pass per account, one after another; each its own create hour.

    Examples:

      rebates sync                      # the hourly pass: history first, then each new day

      rebates sync --account eu         # only account eu

      rebates sync --wait               # and wait (polling within OKX's limits) until requested files arrive

      rebates sync --begin 2025-01-01 --end 2025-03-31 --broker-type api
    """
    from pipeline.passes import sync_accounts

    settings = settings_or_exit()
    first, last = parse_day(begin), parse_day(end)
    clock = clock_from_env(settings)
    with exit_codes():
        with console.status("starting", spinner="dots") as status:
            runs = sync_accounts(
                settings,
                clock,
                account=account,
                begin=first,
                end=last,
                broker_type=broker_type,
                wait=wait,
                deadline=timedelta(minutes=deadline),
                progress=status.update,
            )
        several = len(settings.account_names) > 1
        if as_json:
            payload = {run.scope.account: asdict(run.report) for run in runs}
            console.print_json(json.dumps(payload if several else payload[runs[0].scope.account], default=str))
        else:
            for run in runs:
                print_report(run.report, clock.now(), account=run.scope.account if several else None)
        for run in runs:
            run.raise_failure()


def print_report(report: SyncReport, now: datetime, *, account: str | None = None) -> None:
    """The pass in a few lines: the steps that did something (the same rows as the flows' artifact)."""
    from pipeline.summary import summary_rows

    heading = f"sync {account} {report.begin} .. {report.end}" if account else f"sync {report.begin} .. {report.end}"
    console.print(f"[bold]{heading}[/]", highlight=False)
    for label, items in summary_rows([report]):
        if items:
            console.print(f"  {label}: {', '.join(items)}", highlight=False)
    console.print(f"  next create allowed: {when(report.create_next_at, now)}", highlight=False)
    for warning in report.warnings:
        console.print(f"  [yellow]warning:[/] {warning}", highlight=False)


@app.command("load")
def load(
    file: Annotated[
        Path,
        typer.Argument(help="A rebate file (csv, zip, xlsx or xls) obtained by hand.", exists=True, dir_okay=False),
    ],
    window: Annotated[
        str, typer.Option(help="The window it covers, e.g. api:20250101-20250131 (eu:api:… for account eu).")
    ],
) -> None:
    """Archive a rebate file by hand and load it as a window's rows (replacing what that window had).

    The window must be one the ledger has, or one that overlaps none of its windows (it is then added).

    Example: rebates load ~/Downloads/RebateDetails0101-0131.xlsx --window api:20250101-20250131
    """
    from pipeline.config import check_writable_paths
    from pipeline.ledger import open_ledger
    from pipeline.store.ingest import load_by_hand
    from pipeline.windows import RebateWindow

    settings = settings_or_exit()
    clock = clock_from_env(settings)
    try:
        target = RebateWindow.parse(window)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--window") from None
    with exit_codes():
        settings = settings.for_account(target.account)
        check_writable_paths(settings)
        with open_ledger(settings, clock) as ledger:
            outcome = load_by_hand(settings, ledger, file, target, clock)
    if outcome.result is not None:
        console.print(f"loaded {outcome.result.rows_loaded:,} rows into {outcome.window_id}", highlight=False)
        for warning in outcome.result.warnings:
            console.print(f"[yellow]warning:[/] {warning}", highlight=False)
        for part in outcome.result.skipped_parts:
            console.print(f"skipped {part}", highlight=False)
    else:
        fail(Exit.REJECTED, f"{outcome.window_id} {outcome.state.value}: {outcome.reason}")


@app.command("retry")
def retry(
    windows: Annotated[list[str], typer.Argument(help="Window ids, e.g. api:20250101-20250131 (see rebates status).")],
    wait: Annotated[bool, typer.Option("--wait", help="Keep polling until their files are archived.")] = False,
) -> None:
    """Download and load failed or quarantined windows again now, with fresh links from OKX.

    For a file quarantined after a one-off glitch (the file host answered an error page, a cut download), or once
    OKX has fixed a file it generated wrong. The window's earlier files stay in the archive. Then runs a pass.

    Example: rebates retry api:20250101-20250131
    """
    from pipeline.passes import prepare, retry_windows, sync_accounts

    settings = settings_or_exit()
    clock = clock_from_env(settings)
    with exit_codes():
        accounts = [name for name in dict.fromkeys(map(window_account, windows)) if name is not None]
        for name in accounts:
            prepare(settings.for_account(name))
        retried = retry_windows(settings, clock, windows)  # a malformed id stops here, so `accounts` names them all
        console.print(f"retrying {', '.join(retried)}", highlight=False)
        several = len(settings.account_names) > 1
        for name in accounts:
            with console.status("starting", spinner="dots") as status:
                (run,) = sync_accounts(settings, clock, account=name, wait=wait, progress=status.update)
            print_report(run.report, clock.now(), account=name if several else None)
            run.raise_failure()


def window_account(window_id: str) -> str | None:
    """The account a window id names (None when it is not a window id: `retry_windows` says why)."""
    from pipeline.windows import RebateWindow

    try:
        return RebateWindow.parse(window_id).account
    except ValueError:
        return None


@app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the ledger as JSON.")] = False,
    account: AccountOption = None,
) -> None:
    """Show every window's lifecycle and when each account's next create is allowed.

    Examples:

      rebates status

      rebates status --json | jq '.windows[] | select(.state == "failed")'
    """
    from pipeline.ledger import open_ledger

    settings = settings_or_exit()
    clock = clock_from_env(settings)
    with exit_codes():
        if not Path(settings.rebates_db).exists():
            console.print(f"no ledger yet at {settings.rebates_db}: run `rebates sync` first", highlight=False)
            return
        names = [settings.account_name(account)] if account is not None else list(settings.account_names)
        with ExitStack() as held:
            ledgers = [held.enter_context(open_ledger(settings.replace(rebates_account=name), clock)) for name in names]
            windows = [record for ledger in ledgers for record in ledger.windows()]
            next_create = {ledger.account: ledger.create_budget_next_at() for ledger in ledgers}
    now = clock.now()
    several = len(settings.account_names) > 1
    if as_json:
        payload: dict[str, object] = {"now": now, "windows": [asdict(record) for record in windows]}
        if several:
            payload["next_create_at_by_account"] = next_create
        else:
            payload["next_create_at"] = next_create[names[0]]
        console.print_json(json.dumps(payload, default=str))
        return
    table = Table("window", "kind", "state", "requested", "polled", "file", "rows", "tries", "last error")
    for record in windows:
        table.add_row(*status_row(record))
    console.print(table)
    for name, moment in next_create.items():
        prefix = f"{name}: " if several else ""
        console.print(f"{prefix}next create allowed: {when(moment, now)}", highlight=False)


def short_time(moment: datetime | None) -> str:
    """A time in a narrow table column."""
    return "-" if moment is None else f"{moment:%m-%d %H:%M}"


def status_row(record: WindowRecord) -> list[str]:
    """One window as the status table shows it."""
    short = short_time
    return [
        record.window_id,
        record.kind.value,
        record.state.value,
        short(record.server_requested_at or record.requested_at),
        short(record.polled_at),
        record.file_id.split("@")[-1] if record.file_id else "-",
        "-" if record.rows_loaded is None else f"{record.rows_loaded:,}",
        str(record.attempts or ""),
        record.last_error or "",
    ]


@app.command("demo")
def demo() -> None:
    """Run the sync flow against the embedded OKX simulator, moving its clock instead of waiting for OKX's hours.

    One `sync-rebates` flow run per simulated hour, on Prefect's temporary local server (no server to start),
    then the report. Writes only under ./demo-data (wiped first), Prefect's database included. Example: make demo
    """
    from flows.demo_home import use_demo_prefect_home  # imports no Prefect

    use_demo_prefect_home()  # before Prefect loads: it reads PREFECT_HOME once
    # Imported here: the demo runs the Prefect flow, and every other command stays free of Prefect.
    from flows.demo import closing_commands, run_demo

    with exit_codes():
        result = run_demo(console)
    logging.getLogger("prefect").setLevel(logging.WARNING)  # not "Stopping temporary server" at exit
    layout = result.settings.layout
    console.print(
        f"[green]demo done:[/] {result.loaded} of {result.windows} windows loaded ({result.rows:,} rows) in "
        f"{result.passes} sync-rebates flow runs ({result.hours_simulated} simulated hours). Query it with any "
        "DuckDB 1.4+ (`duckdb -readonly` the analysts' file below), Polars or Spark on the lake; open the HTML report.",
        highlight=False,
    )
    console.print(f"analysts: {relative(layout.analysts)}\nlake: {relative(layout.lake)}", highlight=False)
    console.print("Report on the demo's data (each command works as printed, from this folder):", highlight=False)
    for command in closing_commands(result, rebates_command(), relative):
        console.print(f"  {command}", highlight=False, markup=False)
