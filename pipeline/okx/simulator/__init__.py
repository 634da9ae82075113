"""A simulated OKX (FD broker rebate endpoints) on loopback, for the demo and the tests."""

from __future__ import annotations

from pipeline.okx.simulator.app import SimulatorApp
from pipeline.okx.simulator.server import RunningSimulator, serve
from pipeline.okx.simulator.state import (
    DEFAULT_ACCOUNT,
    DEFAULT_API_KEY,
    DEFAULT_PASSPHRASE,
    DEFAULT_SECRET_KEY,
    ROTATE,
    CallRecord,
    Fault,
    Faults,
    RangeRecord,
    SimAccount,
    SimulatorConfig,
    SimulatorState,
)

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_API_KEY",
    "DEFAULT_PASSPHRASE",
    "DEFAULT_SECRET_KEY",
    "ROTATE",
    "CallRecord",
    "Fault",
    "Faults",
    "RangeRecord",
    "RunningSimulator",
    "SimAccount",
    "SimulatorApp",
    "SimulatorConfig",
    "SimulatorState",
    "serve",
]
