"""The `rebates` command line: one entry point for operators, the demo and the simulator."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, datetime, timedelta
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from pipeline.okx.limits import OVERDUE_AFTER, BrokerType
from pipeline.simulator.cli import simulator_command

if TYPE_CHECKING:
    from pipeline.acquire.steps import SyncReport
    from pipeline.clock import Clock
    from pipeline.config import Settings
    from pipeline.ledger import WindowRecord
    from pipeline.store.analysts import QueryResult

# Every other import sits inside the command that needs it: `rebates --help` and `rebates status` load neither
# Prefect, the simulator's server, polars nor the report writers.

app = typer.Typer(
    name="rebates",
    help="Collect, keep and report OKX Fully Disclosed broker rebate files.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)
AccountOption = Annotated[
    str | None, typer.Option(help="Only this OKX account (a name in REBATES_ACCOUNTS); default: every account.")
]
err_console = Console(stderr=True, soft_wrap=True)


class Exit(IntEnum):
    """The exit codes, also tabled in the README."""

    OK = 0
    """The pass did what it could (waiting for OKX or for the hourly budget is not an error)."""
    UNEXPECTED = 1
    """Something this program did not expect: a bug, or an OKX answer it cannot read. Run with -v for details."""
    CONFIG = 2
    """A setting is missing or malformed."""
    OKX_REFUSED = 3
    """OKX refused the credentials, the permission, or the broker type: fix the setting the message names."""
    DATABASE_LOCKED = 4
    """Another process kept the database file past REBATES_DB_LOCK_TIMEOUT."""
    REJECTED = 5
    """`rebates load`: the file was quarantined (the message says why) or did not load."""


QUIET_LOGGERS = {
    "httpx": logging.WARNING,  # its INFO lines print every URL, signed file links included
    "httpcore": logging.WARNING,
    "uvicorn": logging.WARNING,
    "uvicorn.error": logging.WARNING,
    "uvicorn.access": logging.WARNING,
    "fastexcel": logging.ERROR,  # warns once per all-empty column of every legacy xls it reads
}
"""Libraries whose lower levels would leak signed links or drown the output, and the level each starts at."""


def configure_logging(verbose: bool) -> None:
    """Our own INFO lines (debug with -v) through rich on stderr; libraries only from WARNING."""
    handler = RichHandler(console=err_console, show_path=False, markup=False, rich_tracebacks=verbose)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler], force=True)
    logging.getLogger("pipeline").setLevel(logging.DEBUG if verbose else logging.INFO)
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False,
) -> None:
    """Collect, keep and report OKX Fully Disclosed broker rebate files."""
    configure_logging(verbose)


def fail(code: Exit, message: str) -> NoReturn:
    """Print one line to stderr and exit with `code`."""
    err_console.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(int(code))


def settings_or_exit() -> Settings:
    """Load the settings, or print the one-line reason and exit with Exit.CONFIG."""
    from pipeline.config import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        fail(Exit.CONFIG, str(exc))


CLOCK_FILE_VARIABLE = "REBATES_CLOCK_FILE"
"""A testing and demo hook: every command reads the time from this file (a `FileClock`) instead of the system's."""


def clock_from_env(settings: Settings | None = None) -> Clock:
    """The clock every command uses: the system's, or the shared `FileClock` that REBATES_CLOCK_FILE names.

    The file clock is for tests and demos against the simulator only: it is refused unless OKX_BASE_URL and every
    account's base URL are loopback, so a simulated time can never reach the real OKX.
    """
    from pipeline.clock import FileClock, SystemClock
    from pipeline.config import LOOPBACK_HOSTS, SettingsError

    path = os.environ.get(CLOCK_FILE_VARIABLE, "").strip()
    if not path:
        return SystemClock()
    settings = settings or settings_or_exit()
    try:
        hosts = {"OKX_BASE_URL": settings.okx_base_url} | {
            f"OKX_BASE_URL_{name.upper()}": settings.for_account(name).okx_base_url
            for name in settings.rebates_accounts
        }
    except SettingsError as exc:
        fail(Exit.CONFIG, str(exc))
    for variable, url in hosts.items():
        if urlsplit(url).hostname not in LOOPBACK_HOSTS:
            fail(
                Exit.CONFIG,
                f"{CLOCK_FILE_VARIABLE} is a testing hook for the simulator only; {variable}={url} is not loopback: "
                f"unset {CLOCK_FILE_VARIABLE}",
            )
    return FileClock(path)


@contextmanager
def exit_codes() -> Iterator[None]:
    """Turn the pipeline's errors into one line and the documented exit code."""
    try:
        yield
    except typer.Exit:
        raise
    except Exception as exc:
        code, message = exit_code_for(exc)
        if code is Exit.UNEXPECTED and message is None:
            logging.getLogger(__name__).debug("unexpected error", exc_info=True)
            message = f"unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)"
        fail(code, message or str(exc))


def exit_code_for(exc: Exception) -> tuple[Exit, str | None]:
    """The documented exit code for a pipeline error, and its message (None: an unexpected error, a bug)."""
    from pipeline.config import SettingsError
    from pipeline.db import DatabaseLockedError, DatabaseUnusableError
    from pipeline.ledger import OverlapError
    from pipeline.okx.errors import OkxAuthError, OkxBrokerTypeError, OkxError, OkxOAuthError, OkxPermissionError

    if isinstance(exc, SettingsError | DatabaseUnusableError):
        return Exit.CONFIG, str(exc)
    if isinstance(exc, OverlapError):
        return Exit.CONFIG, f"{exc}: a window must match one in the ledger exactly or share no day with any"
    if isinstance(exc, OkxAuthError | OkxPermissionError | OkxBrokerTypeError | OkxOAuthError):
        return Exit.OKX_REFUSED, str(exc)
    if isinstance(exc, DatabaseLockedError):
        return Exit.DATABASE_LOCKED, str(exc)
    if isinstance(exc, OkxError):
        return Exit.UNEXPECTED, str(exc)
    if type(exc).__name__ in {"StateUnavailableError", "MigrationConflictError"}:
        return Exit.CONFIG, str(exc)  # pipeline.pg / pipeline.state: their messages never hold the password
    return Exit.UNEXPECTED, None


def parse_day(value: str | None) -> date | None:
    """A YYYY-MM-DD option."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date as YYYY-MM-DD") from None


def when(moment: datetime | None, now: datetime) -> str:
    """A time for people: UTC, with how far away it is."""
    if moment is None:
        return "-"
    delta = moment - now
    minutes = round(abs(delta.total_seconds()) / 60)
    relative = "now" if minutes == 0 else (f"in {minutes} min" if delta > timedelta(0) else f"{minutes} min ago")
    return f"{moment:%Y-%m-%d %H:%M} UTC ({relative})"


@app.command("settings")
def show_settings() -> None:
    """Show the effective settings, and with REBATES_ACCOUNTS each account's own (secrets only as set / not set).

    Example: rebates settings
    """
    from pipeline.config import EXPECTATIONS, SECRET_FIELDS, Settings

    settings = settings_or_exit()
    table = Table("variable", "value", "expects")
    for field in Settings.model_fields:
        value = getattr(settings, field)
        if field == "rebates_state_url":
            shown = state_url_shown(value)
        elif field in SECRET_FIELDS:
            shown = "set" if value is not None else "not set"
        else:
            shown = str(value)
        table.add_row(field.upper(), shown, EXPECTATIONS.get(field, ""))
    layout = settings.layout
    table.add_row("(lake)", str(layout.lake), "what analysts read: Parquet, republished after every load")
    table.add_row("(analysts)", str(layout.analysts), "the analysts' entry point: `rebates sql`, or any DuckDB 1.4+")
    console.print(table)
    if settings.rebates_accounts:
        console.print(accounts_table(settings))


def state_url_shown(value: object) -> str:
    """REBATES_STATE_URL without its user or password: `set (host:port/database)`, or `not set`."""
    from urllib.parse import urlsplit

    from pydantic import SecretStr

    if not isinstance(value, SecretStr):
        return "not set"
    parts = urlsplit(value.get_secret_value())
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"set ({parts.hostname or '?'}{port}{parts.path or ''})"


def plain(value: object) -> str:
    """A setting's value for people: `api,oauth` for a tuple, `not set` for None."""
    if value is None:
        return "not set"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value) or "(empty)"
    return str(value)


def accounts_table(settings: Settings) -> Table:
    """Each account's own variables: set or not (secrets never shown), and what the account then uses."""
    from pipeline.config import (
        ACCOUNT_FIELDS,
        CREDENTIALS_BLOCK_VARIABLE,
        SECRET_FIELDS,
        SettingsError,
        account_variable,
        set_variables,
    )

    present = set_variables()
    table = Table("account", "variable", "set", "the account uses", title="Accounts (REBATES_ACCOUNTS)")
    for name in settings.account_names:
        try:
            chosen = settings.for_account(name)
        except SettingsError as exc:
            table.add_row(name, "", "", f"[red]{escape(str(exc))}[/]")
            continue
        for field in (*ACCOUNT_FIELDS, "credentials_block"):
            variable = account_variable(CREDENTIALS_BLOCK_VARIABLE if field == "credentials_block" else field, name)
            is_set = variable in present
            block = account_variable(CREDENTIALS_BLOCK_VARIABLE, name) in present
            if field == "credentials_block":
                uses = f"Secret block {present[variable]}" if is_set else "the variables"
            elif field in SECRET_FIELDS:
                found = getattr(chosen, field) is not None
                uses = "set" if found else ("from the Secret block" if block else "[red]not set[/]")
            else:
                uses = plain(getattr(chosen, field)) + ("" if is_set else f" (from {field.upper()})")
            table.add_row(name, variable, "yes" if is_set else "no", uses)
    return table


app.command("simulator")(simulator_command)


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
        ledger = open_ledger(settings, clock)
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


@app.command("report")
def report(
    month: Annotated[str | None, typer.Option(help="The month, YYYY-MM (default: last month).")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD), with --to.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD), with --from.")] = None,
    broker_code: Annotated[str | None, typer.Option(help="Only this broker code.")] = None,
    account: AccountOption = None,
    out: Annotated[Path | None, typer.Option(help="Folder to write to (default REBATES_DATA_DIR/reports).")] = None,
    formats: Annotated[str, typer.Option("--format", help="Any of xlsx,csv,html.")] = "xlsx,csv,html",
) -> None:
    """Write the commission report for a month or a day range: an Excel workbook, CSV tables and one HTML page.

    Days are trade_date in REBATES_TZ. Each report compares with the previous period and reconciles every
    window's file totals with what the database holds. Without --account the report covers every account together,
    with a table by account when more than one has rows; with it, that account alone, named in the file names
    (commission_eu_2025-01.xlsx) and the heading.

    Examples:

      rebates report --month 2025-01

      rebates report --month 2025-01 --account eu

      rebates report --from 2025-01-01 --to 2025-01-15 --broker-code 656204a3b0e9BCDE --format html
    """
    from pipeline.config import check_writable_dir
    from pipeline.report.model import Period
    from pipeline.report.run import parse_formats, write_reports

    settings = settings_or_exit()
    clock = clock_from_env(settings)
    first, last = parse_day(date_from), parse_day(date_to)
    try:
        chosen = parse_formats(formats)
        if month is not None and (first or last):
            raise ValueError("give --month or --from/--to, not both")
        if (first is None) != (last is None):
            raise ValueError("--from and --to go together")
        if first is not None and last is not None:
            period = Period(first, last)
        elif month is not None:
            period = Period.parse_month(month)
        else:
            this_month = clock.now().astimezone(settings.rebates_tz).date().replace(day=1)
            period = Period.month(this_month.year, this_month.month).previous()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with exit_codes():
        if not Path(settings.rebates_db).exists():
            fail(Exit.CONFIG, f"no database at {settings.rebates_db} (REBATES_DB): run `rebates sync` first")
        if account is not None and account.lower() not in settings.account_names:
            settings.for_account(account)  # the UsageError naming the configured accounts
        check_writable_dir("--out", out or settings.layout.reports)
        written = write_reports(
            settings,
            period,
            broker_code=broker_code,
            out_dir=out,
            formats=chosen,
            clock=clock,
            account=account.lower() if account else None,
        )
    for path in written:
        console.print(str(path), highlight=False)


@app.command("serve")
def serve(limit: Annotated[int | None, typer.Option(help="Most flow runs at once.")] = None) -> None:
    """Run the hourly sync, the daily reports and on-demand backfills from this one process (needs a Prefect server).

    The single-process alternative to `prefect deploy --all` plus a worker (see docs/operations.md).

    Example: PREFECT_API_URL=http://127.0.0.1:4200/api rebates serve
    """
    from flows.serve import serve_all  # here, not at the top: pipeline/ stays free of Prefect until asked

    with exit_codes():
        serve_all(limit=limit)


@app.command("deployments")
def deployments(
    out: Annotated[Path | None, typer.Option(help="Write the YAML to this file instead of printing it.")] = None,
    pool: Annotated[str, typer.Option(help="The work pool the deployments run on.")] = "rebates-process",
    timezone: Annotated[
        str | None, typer.Option(help="The schedules' IANA timezone; default REBATES_TZ's (UTC+8: Etc/GMT-8).")
    ] = None,
    image: Annotated[str | None, typer.Option(help="Docker / Kubernetes pools: the image each run starts.")] = None,
    volume: Annotated[
        list[str] | None, typer.Option(help="Docker pools: HOST:CONTAINER[:ro] to mount (repeat it).")
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option(help="NAME=VALUE for each run's environment (repeat it); never a secret.")
    ] = None,
) -> None:
    """Write the prefect.yaml deployments for the accounts in REBATES_ACCOUNTS: an hourly sync and an on-demand
    backfill per account (each its own concurrency limit), and the daily reports.

    Nothing secret is written (a secret --env is refused): each account's credentials stay in the worker's
    environment, Secret blocks or a Kubernetes Secret. `prefect deploy --all` ignores --job-variable on its own
    command line, hence --image, --volume and --env here.

    Example, from the repository root:

      rebates deployments --out prefect.accounts.yaml

      prefect deploy --all --prefect-file prefect.accounts.yaml
    """
    from flows.deployments import JobOptions, deployments_yaml, schedule_timezone  # no Prefect: names and YAML

    settings = settings_or_exit()
    try:
        schedule_tz = timezone or schedule_timezone(settings.rebates_tz)
    except ValueError as exc:
        fail(Exit.CONFIG, f"{exc}, or pass --timezone")
    pairs = [item.partition("=") for item in env or []]
    if any(not name or not sep for name, sep, _ in pairs):
        fail(Exit.CONFIG, "--env takes NAME=VALUE")
    try:
        jobs = JobOptions(image, tuple(volume or ()), {name: value for name, _, value in pairs})
    except ValueError as exc:
        fail(Exit.CONFIG, f"--env {exc}")
    text = deployments_yaml(settings.rebates_accounts, schedule_tz, pool, jobs, file=str(out or "FILE"))
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(Exit.CONFIG, f"--out {out}: {exc.strerror or exc}")
    names = ", ".join(settings.rebates_accounts) or "the default account"
    console.print(
        f"wrote {out} for {names}: prefect deploy --all --prefect-file {out} (from the repository root)",
        highlight=False,
    )


@app.command("doctor")
def doctor() -> None:
    """Check the settings, the credentials (one signed GET), the clock, the data directory and the database.

    Each failure says in plain words what is wrong and how to fix it. Example: rebates doctor
    """
    from pipeline.config import CREDENTIALS_BLOCK_VARIABLE, set_variables
    from pipeline.doctor import run_doctor

    # Credentials held in a Prefect Secret block are read as the flows read them (that loads Prefect: only then).
    blocks = any(
        name.startswith(CREDENTIALS_BLOCK_VARIABLE) and value.strip() for name, value in set_variables().items()
    )
    checks = run_doctor(None, clock_from_env(), account_loader=_secret_block_reader() if blocks else None)
    for check in checks:
        mark = "[green]ok  [/]" if check.ok else "[red]fail[/]"
        console.print(f"{mark} {check.name}: {escape(check.detail)}", highlight=False)
    if not all(check.ok for check in checks):
        raise typer.Exit(int(Exit.UNEXPECTED))


def _secret_block_reader() -> Callable[[str], Settings]:
    """An account's settings as the flows read them: its credentials from its Secret block when one is named."""
    from flows.runtime import run_settings
    from pipeline.config import CREDENTIALS_BLOCK_VARIABLE, SettingsError

    def read(account: str) -> Settings:
        try:
            return run_settings(account)
        except SettingsError:
            raise
        except Exception as exc:  # Prefect's API unreachable, say: the doctor reports it as the check's failure
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise SettingsError(
                f"cannot read the account's Secret block ({CREDENTIALS_BLOCK_VARIABLE}…): {first}; is PREFECT_API_URL "
                "the server the flows use?"
            ) from None

    return read


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
        if account is not None and account.lower() not in settings.account_names:
            settings.for_account(account)  # the UsageError naming the configured accounts
        names = [account.lower()] if account else list(settings.account_names)
        ledgers = [open_ledger(settings.replace(rebates_account=name), clock) for name in names]
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
    from flows.demo import run_demo

    with exit_codes():
        result = run_demo(console)
    logging.getLogger("prefect").setLevel(logging.WARNING)  # not "Stopping temporary server" at exit
    layout = result.settings.layout
    console.print(
        f"[green]demo done:[/] {result.loaded} of {result.windows} windows loaded ({result.rows:,} rows) in "
        f"{result.passes} sync-rebates flow runs ({result.hours_simulated} simulated hours). Query it with "
        f"`REBATES_DATA_DIR={relative(result.settings.rebates_data_dir)} rebates sql`, any DuckDB 1.4+ "
        "(`duckdb -readonly` the analysts' file below), Polars or Spark on the lake; or open the HTML report.",
        highlight=False,
    )
    console.print(f"analysts: {relative(layout.analysts)}\nlake: {relative(layout.lake)}", highlight=False)


def relative(path: Path) -> str:
    """A path as seen from the current directory, for lines people copy."""
    return os.path.relpath(path)


class SqlFormat(StrEnum):
    """How `rebates sql -c` prints a result."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


@app.command("sql")
def sql(
    command: Annotated[
        str | None, typer.Option("-c", "--command", help="Run this SQL, print the result, exit.")
    ] = None,
    output: Annotated[SqlFormat, typer.Option("--format", help="table, csv or json.")] = SqlFormat.TABLE,
) -> None:
    """Query the analysts' lake read-only, with nothing else installed (an interactive prompt without -c).

    It opens the analysts' entry point (REBATES_DATA_DIR/lake/analysts.duckdb): rebate_details, rebate_orders,
    rebate_windows, coverage and the daily_commission_by_* views, read from the Parquet lake, while the pipeline runs.
    Amounts print exactly (csv and json as decimal text).

    Examples:

      rebates sql -c "SELECT inst_type, sum(broker_rebate) FROM rebate_details GROUP BY ALL"

      rebates sql -c "FROM coverage WHERE NOT complete" --format csv > incomplete.csv

      rebates sql
    """
    from pipeline.store.analysts import NoEntryPointError, QueryError, explain, open_entry_point, run_query

    settings = settings_or_exit()
    try:
        connection = open_entry_point(settings.layout.analysts)
    except NoEntryPointError as exc:
        fail(Exit.CONFIG, str(exc))
    with connection:
        if command is not None:
            try:
                result = run_query(connection, command)
            except QueryError as exc:
                fail(Exit.UNEXPECTED, explain(exc))
            print_result(result, output)
            return
        console.print(
            f"{settings.layout.analysts} (read-only). End a statement with ;  Quit with .quit or Ctrl-D.",
            highlight=False,
        )
        for statement in read_statements():
            try:
                print_result(run_query(connection, statement), SqlFormat.TABLE)
            except QueryError as exc:
                err_console.print(f"[red]error:[/] {escape(explain(exc))}", highlight=False)


def read_statements() -> Iterator[str]:
    """Statements typed at the prompt, each ended by `;` (possibly over several lines), until .quit or end of input."""
    lines: list[str] = []
    while True:
        try:
            line = input("rebates> " if not lines else "    ...> ")
        except EOFError:
            return
        if not lines and line.strip() in {".quit", ".exit"}:
            return
        lines.append(line)
        if line.rstrip().endswith(";"):
            yield "\n".join(lines)
            lines = []


def print_result(result: QueryResult, output: SqlFormat) -> None:
    """A query's result on stdout: a table for people, or CSV / JSON with exact decimal text for programs."""
    from pipeline.store.analysts import as_csv, as_json, text

    if output is SqlFormat.CSV:
        console.file.write(as_csv(result))
    elif output is SqlFormat.JSON:
        console.file.write(as_json(result) + "\n")
    elif result.columns:
        table = Table(*result.columns)
        for row in result.rows:
            table.add_row(*(escape(text(value)) if value is not None else "NULL" for value in row))
        console.print(table, highlight=False)
        console.print(f"{len(result.rows):,} row(s)", highlight=False)


@app.command("check-users")
def check_users(
    users_file: Annotated[Path, typer.Argument(help="A .csv or .xlsx with an apiKey column (and brokerType).")],
    out: Annotated[Path, typer.Option(help="Where to write the result: .xlsx or .csv.")] = Path(
        "user-rebate-check.xlsx"
    ),
    account: AccountOption = None,
) -> None:
    """Ask OKX whether each user's API key earns the broker a rebate, and if not why (2 checks a second).

    The file needs a header row with an apiKey column; a brokerType column (api / oauth) is needed when the broker
    is both, and an account column (a name in REBATES_ACCOUNTS) checks a row with that account only. Keys are shown
    and written with their last 4 characters only. An error for one user is written in its row and the others are
    still checked. With several accounts, each account in turn, and the result has an account column.

    Example: rebates check-users users.xlsx --out checked.xlsx --account eu
    """
    from pipeline.users import UsersFileError, check_accounts_users, columns, read_users, write_checks

    settings = settings_or_exit()
    with_account = account is None and len(settings.account_names) > 1
    with exit_codes():
        try:
            users = read_users(users_file)
            with console.status("asking OKX about each user", spinner="dots") as spinner:
                checks, refused = check_accounts_users(
                    settings, clock_from_env(settings), users, account=account, progress=spinner.update
                )
            written = write_checks(checks, out, with_account=with_account)
        except UsersFileError as exc:
            fail(Exit.CONFIG, str(exc))
    table = Table(*columns(with_account), title="User rebate check")
    for check in checks:
        table.add_row(*("" if cell is None else str(cell) for cell in check.cells(with_account)))
    console.print(table)
    failed = sum(1 for check in checks if check.info is None)
    console.print(
        f"{len(checks) - failed} of {len(checks)} users checked ({failed} with an error in their row); "
        f"written to {written}",
        highlight=False,
    )
    if refused:
        fail(Exit.OKX_REFUSED, "; ".join(f"account {name}: {reason}" for name, reason in refused.items()))


alerts_app = typer.Typer(help="Prefect automations that send the pipeline's alerts to a notification block.")
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("install")
def alerts_install(
    block: Annotated[str, typer.Option(help="The notification block's name (or type-slug/name), e.g. brokers-slack.")],
) -> None:
    """Create (or replace) the automations that notify BLOCK of quarantined windows, overdue files, refused creates,
    failed passes and crashed runs, on the Prefect server PREFECT_API_URL names.

    Example: rebates alerts install --block brokers-slack (docs/operations.md: making the block)
    """
    from flows.alerts import install  # here, not at the top: pipeline/ stays free of Prefect until asked

    with exit_codes():
        try:
            names = install(block)
        except LookupError as exc:
            fail(Exit.CONFIG, str(exc.args[0]))
    for name in names:
        console.print(f"installed automation [bold]{escape(name)}[/] → {escape(block)}", highlight=False)


state_app = typer.Typer(
    help="Where the ledger and the limiters live (REBATES_STATE_URL), and moving them to PostgreSQL.",
    invoke_without_command=True,
)
app.add_typer(state_app, name="state")


@state_app.callback()
def state_show(ctx: typer.Context) -> None:
    """Show where the state is: embedded (DuckDB and files) or PostgreSQL (host and database, never the password).

    Example: rebates state
    """
    if ctx.invoked_subcommand is not None:
        return
    from pipeline.state import describe_state

    settings = settings_or_exit()
    console.print(f"state: {escape(describe_state(settings))}", highlight=False, soft_wrap=True)


@state_app.command("migrate")
def state_migrate() -> None:
    """Copy the single-machine ledger in REBATES_DB (windows, events, create attempts, files) into the PostgreSQL
    database REBATES_STATE_URL names. Running it again changes nothing; rows that conflict stop it before anything is
    written. Stop every `rebates sync` and worker first.

    Example: REBATES_STATE_URL=postgresql://rebates@db/rebates rebates state migrate
    """
    from pipeline.state import describe_state, migrate

    settings = settings_or_exit()
    with exit_codes():
        results = migrate(settings)
    for result in results:
        console.print(f"{result.name}: copied {result.copied}, already there {result.already_there}", highlight=False)
    console.print(f"state: {escape(describe_state(settings))}", highlight=False, soft_wrap=True)
