"""The `rebates` command line: one entry point for operators, the demo and the simulator."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipeline.config import EXPECTATIONS, SECRET_FIELDS, Settings, SettingsError, load_settings

app = typer.Typer(
    name="rebates",
    help="Collect, keep and report OKX Fully Disclosed broker rebate files.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

EXIT_CONFIG = 2
"""Exit code for a missing or malformed setting (see the README's table of exit codes)."""


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False,
) -> None:
    """Collect, keep and report OKX Fully Disclosed broker rebate files."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def settings_or_exit() -> Settings:
    """Load the settings, or print the one-line reason and exit with EXIT_CONFIG."""
    try:
        return load_settings()
    except SettingsError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(EXIT_CONFIG) from None


@app.command("settings")
def show_settings() -> None:
    """Show the effective settings (secrets only as set / not set).

    Example: rebates settings
    """
    settings = settings_or_exit()
    table = Table("variable", "value", "expects")
    for field in Settings.model_fields:
        value = getattr(settings, field)
        shown = ("set" if value is not None else "not set") if field in SECRET_FIELDS else str(value)
        table.add_row(field.upper(), shown, EXPECTATIONS.get(field, ""))
    console.print(table)
