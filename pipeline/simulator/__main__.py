"""`python -m pipeline.simulator`: the `rebates simulator` command without the rest of the CLI."""

from __future__ import annotations

import typer

from pipeline.simulator.cli import simulator_command

if __name__ == "__main__":
    typer.run(simulator_command)
