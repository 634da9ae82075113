"""Run the simulator under uvicorn on loopback: in a background thread (`RunningSimulator`) or blocking (`serve`)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import uvicorn

from pipeline.clock import Clock, SystemClock
from pipeline.config import LOOPBACK_HOSTS
from pipeline.simulator.app import SimulatorApp
from pipeline.simulator.options import DEFAULT_PORT
from pipeline.simulator.state import SimulatorConfig, SimulatorState

STARTUP_TIMEOUT = 10.0
"""Seconds to wait for uvicorn to listen (or to stop) before giving up."""

_UNFINISHED_RESPONSE = "ASGI callable returned without completing response."


class _QuietDeliberateTruncation(logging.Filter):
    """Drop uvicorn's error line for a download the simulator cut short on purpose (the TRUNCATED_DOWNLOAD fault)."""

    def __init__(self, state: SimulatorState) -> None:
        super().__init__()
        self._state = state

    def filter(self, record: logging.LogRecord) -> bool:
        deliberate = (
            record.getMessage().startswith(_UNFINISHED_RESPONSE) and self._state.consume_deliberate_truncation()
        )
        return not deliberate


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on a loopback host; refuses anything else (the simulator's credentials are public)."""
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"the simulator listens on loopback only ({', '.join(sorted(LOOPBACK_HOSTS))}), not {host!r}")
    address = "127.0.0.1" if host == "localhost" else host
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP proto: asyncio then sets TCP_NODELAY
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def _base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app: SimulatorApp) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        http="h11",
        loop="asyncio",
        ws="none",
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)


class RunningSimulator:
    """The simulator serving on 127.0.0.1 in a background thread, as a context manager.

    `port=0` (the default) picks a free port; `.base_url` is e.g. `http://127.0.0.1:54321`. `.state` is the live
    state (faults, ranges, call log), `.clock` the clock every decision uses (pass a FakeClock in tests).
    """

    def __init__(self, config: SimulatorConfig | None = None, *, clock: Clock | None = None, port: int = 0) -> None:
        self.config = config or SimulatorConfig()
        self.clock: Clock = clock or SystemClock()
        self.app = SimulatorApp(self.config, clock=self.clock)
        self.state = self.app.state
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._filter = _QuietDeliberateTruncation(self.state)
        self.base_url = ""

    def url_at(self, host: str) -> str:
        """This simulator's base URL under another loopback name, e.g. `localhost`: how regional hosts are simulated."""
        if host not in LOOPBACK_HOSTS or not self.base_url:
            raise ValueError(f"the running simulator answers loopback names only, not {host!r}")
        return f"http://{host}:{urlsplit(self.base_url).port}"

    def start(self) -> None:
        """Listen and serve in a background thread; return once connections are accepted."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already running")
        sock = _bind("127.0.0.1", self._port)
        self.base_url = _base_url(sock)
        server = _server(self.app)
        logging.getLogger("uvicorn.error").addFilter(self._filter)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="okx-simulator", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError("the OKX simulator did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(STARTUP_TIMEOUT)
            if thread.is_alive():
                raise RuntimeError("the OKX simulator did not stop")
        logging.getLogger("uvicorn.error").removeFilter(self._filter)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def serve(
    config: SimulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    clock: Clock | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted (Ctrl+C / SIGTERM). `on_ready(base_url)` runs once the port is listening."""
    app = SimulatorApp(config, clock=clock)
    sock = _bind(host, port)
    quiet = _QuietDeliberateTruncation(app.state)
    logging.getLogger("uvicorn.error").addFilter(quiet)
    try:
        if on_ready is not None:
            on_ready(_base_url(sock))
        _server(app).run(sockets=[sock])
    finally:
        sock.close()
        logging.getLogger("uvicorn.error").removeFilter(quiet)
