"""The `rebates simulator` command: run the simulated OKX on loopback for the demo and for manual runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from pipeline.domain import GENERATION_TIME
from pipeline.simulator.options import DEFAULT_PORT, ROTATE, FileShape, HeaderStyle, Layout


def _choices(kind: type[FileShape] | type[Layout] | type[HeaderStyle]) -> str:
    return ", ".join([*(member.value for member in kind), ROTATE])


def simulator_command(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = DEFAULT_PORT,
    ready_after: Annotated[
        float, typer.Option(help="Seconds a newly requested file stays 'ongoing' (OKX: about 7200).")
    ] = GENERATION_TIME.total_seconds(),
    shape: Annotated[str, typer.Option(help=f"File format: {_choices(FileShape)}.")] = FileShape.CSV.value,
    layout: Annotated[str, typer.Option(help=f"Columns: {_choices(Layout)}.")] = Layout.COLUMNS_16.value,
    header_style: Annotated[
        str, typer.Option(help=f"Header spelling: {_choices(HeaderStyle)}.")
    ] = HeaderStyle.DOCS.value,
    orders_per_day: Annotated[int, typer.Option(help="Rows generated per day.")] = 40,
    seed: Annotated[int, typer.Option(help="Seed of the file generator.")] = 0,
    broker_types: Annotated[
        str, typer.Option(help="Broker types of the account: api, oauth or api,oauth.")
    ] = "api,oauth",
    accounts: Annotated[
        str,
        typer.Option(
            help="Serve several accounts instead of the default one, e.g. eu,asia:api (name[:types joined by +]): "
            "keys, secrets, passphrases and files derived from each name, hosts 127.0.0.1 and localhost in turn.",
        ),
    ] = "",
    fake_clock: Annotated[
        bool,
        typer.Option(
            "--fake-clock",
            help='Start a fake clock at the current time, moved by POST /__sim__/clock/advance {"seconds": n}. '
            "Request timestamps are then not checked (a client elsewhere cannot share the fake time).",
        ),
    ] = False,
) -> None:
    """Run a simulated OKX (the FD broker rebate endpoints) on 127.0.0.1 for the demo and manual runs.

    Credentials (well-known, for development only): key sim-api-key, secret sim-secret-key, passphrase sim-passphrase.

    Control endpoints under /__sim__/ (state, clock/advance, faults, seed, reset): see pipeline/simulator/app.py.

    Several accounts (each its own keys, files, limits and host; the regional hosts OKX serves from):
    rebates simulator --accounts eu,asia:api prints the REBATES_ACCOUNTS, OKX_API_KEY_EU, ... lines to export.

    Example: rebates simulator --port 8765 --ready-after 5 --shape rotate --broker-types api
    """
    # Imported here: `rebates --help` lists this command without loading the simulator (uvicorn, openpyxl, xlwt).
    from pipeline.clock import Clock, FakeClock, SystemClock
    from pipeline.config import parse_broker_types
    from pipeline.simulator.server import serve
    from pipeline.simulator.state import SimAccount, SimulatorConfig, named_accounts, operator_variables

    try:
        types = parse_broker_types(broker_types)
        served = named_accounts(accounts, types) if accounts.strip() else (SimAccount(broker_types=types),)
        config = SimulatorConfig(
            accounts=served,
            ready_after=timedelta(seconds=ready_after),
            shape=FileShape(shape) if shape != ROTATE else ROTATE,
            layout=Layout(layout) if layout != ROTATE else ROTATE,
            header_style=HeaderStyle(header_style) if header_style != ROTATE else ROTATE,
            seed=seed,
            orders_per_day=orders_per_day,
            check_timestamps=not fake_clock,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    clock: Clock = FakeClock(datetime.now(UTC)) if fake_clock else SystemClock()

    def announce(base_url: str) -> None:
        typer.echo(f"OKX simulator listening on {base_url} (Ctrl+C to stop)")
        if fake_clock:
            typer.echo("Fake clock: advance it with POST /__sim__/clock/advance; timestamps are not checked.")
        typer.echo("Point the pipeline at it:")
        if accounts.strip():
            variables = operator_variables(served, int(base_url.rsplit(":", 1)[1]))
        else:
            (account,) = served
            variables = {
                "OKX_BASE_URL": base_url,
                "OKX_API_KEY": account.api_key,
                "OKX_SECRET_KEY": account.secret_key,
                "OKX_PASSPHRASE": account.passphrase,
                "REBATES_BROKER_TYPES": ",".join(account.broker_types),
            }
        for name, value in variables.items():
            typer.echo(f"  export {name}={value}")

    try:
        serve(config, port=port, clock=clock, on_ready=announce)
    except KeyboardInterrupt:
        typer.echo("OKX simulator stopped.")
    except OSError as exc:
        typer.echo(f"error: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
