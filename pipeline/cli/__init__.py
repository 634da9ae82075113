"""The `rebates` command line: one entry point for operators, the demo and the simulator, in groups of commands.

`base` holds the app and what every command shares (exit codes, logging, settings, the clock); `collect`, `reports`
and `operate` each register their commands on it. Every heavy import sits inside the command that needs it:
`rebates --help` and `rebates status` load neither Prefect, the simulator's server, polars nor the report writers.
"""

from __future__ import annotations

from pipeline.cli import collect, operate, reports
from pipeline.cli.base import Exit, app, clock_from_env, configure_logging, console, err_console

__all__ = [
    "Exit",
    "app",
    "clock_from_env",
    "collect",
    "configure_logging",
    "console",
    "err_console",
    "operate",
    "reports",
]
