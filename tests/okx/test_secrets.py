"""Secrets stay secret: no log line, exception or repr from the client shows the secret key, passphrase or signature."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.clock import FakeClock
from pipeline.config import Settings
from pipeline.okx.client import OkxClient
from pipeline.okx.errors import OkxAuthError, OkxError, OkxRateLimitError, OkxTransientError

pytestmark = pytest.mark.slow

SIGNED_LINK = "https://bucket.example/RebateDetails0101-0131.csv?Expires=1&OSSAccessKeyId=AK&Signature=LINKSIG"


class ScriptedOkxServer(ThreadingHTTPServer):
    """A real HTTP server on loopback answering from a script, so httpx and httpcore log as they would in production."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.script: list[tuple[int, dict[str, object]]] = []
        self.signatures: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ScriptedHandler(BaseHTTPRequestHandler):
    server: ScriptedOkxServer

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer()

    def _answer(self) -> None:
        self.server.signatures.append(self.headers["OK-ACCESS-SIGN"])
        script = self.server.script
        status, envelope = script.pop(0) if len(script) > 1 else script[0]
        body = json.dumps(envelope).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: the server's own access log is not under test."""


@pytest.fixture
def okx_server() -> Iterator[ScriptedOkxServer]:
    server = ScriptedOkxServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def exception_texts(error: BaseException) -> list[str]:
    """The str and repr of an exception and of everything in its __cause__ / __context__ chain."""
    texts: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(vars(current))]
        pending += [current.__cause__, current.__context__]
    return texts


def test_no_secret_reaches_logs_exceptions_or_reprs(
    okx_server: ScriptedOkxServer,
    closed_port: int,
    make_okx_settings: Callable[..., Settings],
    okx_credentials: dict[str, str],
    okx_clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for logger in (None, "httpx", "httpcore", "pipeline"):
        caplog.set_level(logging.DEBUG, logger=logger)
    settings = make_okx_settings(okx_base_url=okx_server.base_url, rebates_http_retries=2)
    texts = [repr(settings), str(settings), repr(settings.model_dump())]
    scenarios: list[tuple[list[tuple[int, dict[str, object]]], type[OkxError] | None]] = [
        ([(200, {"code": "0", "msg": "", "data": [{"fileHref": SIGNED_LINK, "state": "finished"}]})], None),
        ([(401, {"code": "50113", "msg": "Invalid Sign", "data": []})], OkxAuthError),
        ([(503, {"code": "50001", "msg": "Service temporarily unavailable", "data": []})], OkxTransientError),
        ([(429, {"code": "50011", "msg": "Rate limit reached", "data": []})], OkxRateLimitError),
    ]
    with OkxClient(settings, clock=okx_clock) as client:
        texts += [repr(client), str(client), repr(vars(client))]
        for script, expected in scenarios:
            okx_server.script = script
            if expected is None:
                texts += [repr(link) for link in client.list_rebate_links(None)]
                continue
            with pytest.raises(expected) as raised:
                client.get_rebate_link(date(2025, 1, 1), date(2025, 1, 31), None)
            texts += exception_texts(raised.value)
        okx_server.script = [(200, {"code": "0", "msg": "", "data": [{"result": "false", "ts": "1"}]})]
        texts.append(repr(client.create_rebate_file(date(2025, 1, 1), date(2025, 1, 31), None)))

    offline = make_okx_settings(okx_base_url=f"http://127.0.0.1:{closed_port}", rebates_http_retries=2)
    with OkxClient(offline, clock=okx_clock) as client, pytest.raises(OkxTransientError) as raised:
        client.list_rebate_links(None)
    texts += exception_texts(raised.value)

    texts.append(caplog.text)
    texts += [repr(vars(record)) for record in caplog.records]
    everything = "\n".join(texts)
    assert any(record.name.startswith("httpcore") for record in caplog.records), "httpcore debug logs were captured"
    assert len(okx_server.signatures) == 1 + 1 + 3 + 1 + 1
    assert "50001" in everything and "Invalid Sign" in everything, "the texts under test were collected"
    for secret in (okx_credentials["okx_secret_key"], okx_credentials["okx_passphrase"], *okx_server.signatures):
        assert secret not in everything
    assert "LINKSIG" not in everything


def test_exceptions_from_network_errors_do_not_carry_the_request(
    closed_port: int, make_okx_settings: Callable[..., Settings], okx_clock: FakeClock
) -> None:
    offline = make_okx_settings(okx_base_url=f"http://127.0.0.1:{closed_port}", rebates_http_retries=0)
    with OkxClient(offline, clock=okx_clock) as client, pytest.raises(OkxTransientError) as raised:
        client.list_rebate_links(None)
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    assert "ConnectError" in str(raised.value)


def test_client_attributes_hold_no_plain_secret(
    make_okx_settings: Callable[..., Settings], okx_credentials: dict[str, str], okx_clock: FakeClock
) -> None:
    with OkxClient(make_okx_settings(), clock=okx_clock) as client:
        shown = [repr(value) for value in vars(client).values()] + [str(value) for value in vars(client).values()]
    for secret in okx_credentials.values():
        assert not any(secret in text for text in shown)
