"""The command line's shared parts: the app, its consoles, exit codes, logging, settings, clock and small helpers."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler

if TYPE_CHECKING:
    from pipeline.clock import Clock
    from pipeline.config import Settings

# Every other import sits inside the command that needs it (pipeline/cli/__init__.py says why).


app = typer.Typer(
    name="rebates",
    help="Collect, keep and report OKX Fully Disclosed broker rebate files.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

AccountOption = Annotated[
    str | None, typer.Option(help="Only this OKX account (a name in REBATES_ACCOUNTS); default: every account.")
]


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


def clock_from_env(settings: Settings | None = None) -> Clock:
    """The clock every command uses: the system's, or the shared `FileClock` that REBATES_CLOCK_FILE names.

    The file clock is for tests and demos against the simulator only: it is refused (exit 2) unless OKX_BASE_URL and
    every account's base URL are loopback, so a simulated time can never reach the real OKX.
    """
    from pipeline.clock_file import clock_from_env as chosen_clock
    from pipeline.config import SettingsError

    try:
        return chosen_clock(lambda: settings or settings_or_exit())
    except SettingsError as exc:
        fail(Exit.CONFIG, str(exc))


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
    """The documented exit code for a pipeline error, and its message (None: an unexpected error, a bug).

    The first row of `exit_codes_by_type` whose types `exc` is an instance of decides; none matching is a bug.
    """
    from pipeline.ledger import OverlapError

    for kinds, code in exit_codes_by_type():
        if isinstance(exc, kinds):
            if isinstance(exc, OverlapError):
                return code, f"{exc}: a window must match one in the ledger exactly or share no day with any"
            return code, str(exc)  # every one of these messages is written for people and holds no secret
    return Exit.UNEXPECTED, None


def exit_codes_by_type() -> list[tuple[tuple[type[Exception], ...], Exit]]:
    """The pipeline's errors by the exit code each means, most specific first (imported only when one happened)."""
    from pipeline.config import SettingsError
    from pipeline.db import DatabaseLockedError, DatabaseUnusableError
    from pipeline.ledger import OverlapError
    from pipeline.okx.errors import OkxAuthError, OkxBrokerTypeError, OkxError, OkxOAuthError, OkxPermissionError
    from pipeline.pg import StateUnavailableError
    from pipeline.state import MigrationConflictError

    return [
        (
            (SettingsError, DatabaseUnusableError, OverlapError, StateUnavailableError, MigrationConflictError),
            Exit.CONFIG,
        ),
        ((OkxAuthError, OkxPermissionError, OkxBrokerTypeError, OkxOAuthError), Exit.OKX_REFUSED),
        ((DatabaseLockedError,), Exit.DATABASE_LOCKED),
        ((OkxError,), Exit.UNEXPECTED),
    ]


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


def plain(value: object) -> str:
    """A setting's value for people: `api,oauth` for a tuple, `not set` for None."""
    if value is None:
        return "not set"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value) or "(empty)"
    return str(value)


def rebates_command() -> str:
    """How to run `rebates` from here: the virtualenv's script when this runs from one (it is not on PATH)."""
    script = Path(sys.executable).with_name("rebates")
    return relative(script) if script.exists() else "rebates"


def relative(path: Path) -> str:
    """A path as seen from the current directory, for lines people copy."""
    return os.path.relpath(path)
