"""Commands that run and check the deployment: settings, serve, deployments, doctor, check-users, alerts, state."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pipeline.simulator.cli import simulator_command

if TYPE_CHECKING:
    from pipeline.config import Settings


from pipeline.cli.base import (
    AccountOption,
    Exit,
    app,
    clock_from_env,
    console,
    exit_codes,
    fail,
    plain,
    settings_or_exit,
)


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
    """REBATES_STATE_URL as user, host, port and database only: `set (postgresql://user@host:port/db)`, or `not set`."""
    from pydantic import SecretStr

    from pipeline.pg import describe_url

    if not isinstance(value, SecretStr):
        return "not set"
    return f"set ({describe_url(value.get_secret_value())})"


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


@app.command("serve")
def serve(limit: Annotated[int | None, typer.Option(help="Most flow runs at once.")] = None) -> None:
    """Run the hourly sync, the daily reports, the month-end statements and on-demand backfills from this one process
    (needs a Prefect server).

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
    backfill per account (each its own concurrency limit), the daily reports and the month-end statements.

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
    from pipeline.logs import first_line

    def read(account: str) -> Settings:
        try:
            return run_settings(account)
        except SettingsError:
            raise
        except Exception as exc:  # Prefect's API unreachable, say: the doctor reports it as the check's failure
            raise SettingsError(
                f"cannot read the account's Secret block ({CREDENTIALS_BLOCK_VARIABLE}…): {first_line(exc)}; is "
                "PREFECT_API_URL the server the flows use?"
            ) from None

    return read


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
        table.add_row(*("" if cell is None else escape(str(cell)) for cell in check.cells(with_account)))
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
