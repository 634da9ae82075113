"""`python -m pipeline.okx.simulator`: the `rebates simulator` command without the rest of the CLI."""

from __future__ import annotations

import typer

from pipeline.okx.simulator.cli import simulator_command

if __name__ == "__main__":
    typer.run(simulator_command)
