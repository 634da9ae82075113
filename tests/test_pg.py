"""REBATES_STATE_URL is read as libpq reads it and shown as user, host, port and database only, by every command."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from typer.testing import CliRunner

import pipeline.cli
from pipeline.cli import app
from pipeline.db import connect
from pipeline.pg import UNREADABLE_URL, StateUnavailableError, describe_url, open_connection, redact
from tests.postgres import PASSWORD_ROLE, Cluster

pytestmark = pytest.mark.slow

PASSWORD = "Qz#7/kW@9?xV%Jm"
"""A password with every character a URL reads otherwise: `#` `/` `@` `?` `%`."""

ENCODED = quote(PASSWORD, safe="")


def with_password(url: str, form: str) -> str:
    """`postgresql://user@host:port/db` with PASSWORD in it, written the way `form` says."""
    scheme, _, rest = url.partition("://")
    user, _, where = rest.partition("@")
    if form == "query":
        return f"{url}?password={ENCODED}"
    written = {
        "percent-encoded": ENCODED,
        "as libpq takes it": PASSWORD.replace("%", "%25").replace("/", "%2F").replace("@", "%40"),  # `#`, `?` raw
        "not encoded": PASSWORD,  # libpq reads it as host `user`, port `Qz#7`, database `kW@9?...`
    }[form]
    return f"{scheme}://{user}:{written}@{where}"


FORMS = ("percent-encoded", "as libpq takes it", "query", "not encoded")


def leaks(text: str) -> set[str]:
    """Every piece of the password (or of its percent-encoding) of 4 characters or more that `text` shows."""
    pieces = {
        secret[start:end]
        for secret in (PASSWORD, ENCODED)
        for start in range(len(secret))
        for end in range(start + 4, len(secret) + 1)
    }
    return {piece for piece in pieces if piece in text}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://rebates:pw@db.example:5433/rebates", "postgresql://rebates@db.example:5433/rebates"),
        (with_password("postgresql://u@db:5432/d", "percent-encoded"), "postgresql://u@db:5432/d"),
        (with_password("postgresql://u@db:5432/d", "as libpq takes it"), "postgresql://u@db:5432/d"),
        (with_password("postgresql://u@db:5432/d", "query"), "postgresql://u@db:5432/d"),
        (with_password("postgresql://u@db:5432/d", "not encoded"), UNREADABLE_URL),
        ("postgresql://u:a/b@db/d", UNREADABLE_URL),  # host u, port a, database b@db/d
        ("postgresql://u:a@b@db/d", UNREADABLE_URL),  # password a, host b@db
        ("postgresql://u:1234/x@db/d", UNREADABLE_URL),  # port 1234 (a piece of the password), database x@db/d
        ("postgresql://u:pw@db:notaport/d", UNREADABLE_URL),
        ("postgresql://u:p%zz@db/d", UNREADABLE_URL),  # libpq refuses the escape; its message quotes it
        ("postgres://u:pw@h1:5432,h2:5433/d?sslmode=require", "postgresql://u@h1:5432,h2:5433/d"),
        ("postgresql://u:pw@[::1]:5432/d", "postgresql://u@[::1]:5432/d"),
        ("postgresql://u:pw@/d?host=/var/run/postgresql", "postgresql://u@/d?host=/var/run/postgresql"),
        ("postgresql://db.example", "postgresql://db.example/"),
    ],
)
def test_a_url_is_shown_as_user_host_port_and_database_as_libpq_reads_it(url: str, shown: str) -> None:
    assert describe_url(url) == shown
    assert not leaks(shown)


@pytest.mark.parametrize("form", FORMS)
def test_redact_removes_the_password_however_it_is_written(form: str) -> None:
    url = with_password("postgresql://rebates@db:5432/rebates", form)
    message = f"could not connect to {url}: password={PASSWORD} / {ENCODED} / {PASSWORD[:8]}"
    assert not leaks(redact(message, url))


def test_an_unreadable_url_is_never_given_to_the_driver() -> None:
    with pytest.raises(StateUnavailableError) as refused:
        open_connection("postgresql://u:pw#%zz-not-hex@127.0.0.1:1/d")  # libpq's message would quote the password
    assert "zz-not-hex" not in str(refused.value) and "percent-encoded" in str(refused.value)


COMMANDS = [
    ["settings"],
    ["state"],
    ["state", "migrate"],
    ["doctor"],
    ["sync"],
    ["status"],
    ["retry", "api:20250101-20250105"],
    ["load", "rebates.csv", "--window", "api:20250101-20250105"],
    ["report", "--month", "2025-01"],
    ["check-users", "users.csv"],
    ["deployments", "--out", "deployments.yaml"],
]
"""Every command that reads REBATES_STATE_URL (serve, demo and alerts start Prefect; sql reads the lake only)."""


@pytest.fixture
def run_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> Callable[[str], Iterator[tuple[list[str], str]]]:
    """Run every command with this REBATES_STATE_URL and -v; yield each one's stdout, stderr and log records."""
    monkeypatch.setenv("OKX_BASE_URL", f"http://127.0.0.1:{closed_port}")  # OKX down too: nothing waits for it
    for name in ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE"):
        monkeypatch.setenv(name, f"{name.lower()}-for-the-test")
    monkeypatch.setenv("REBATES_START_DATE", "2025-01-01")
    monkeypatch.setenv("REBATES_HTTP_RETRIES", "0")
    monkeypatch.setenv("REBATES_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REBATES_DB", str(tmp_path / "data" / "rebates.duckdb"))
    with connect(tmp_path / "data" / "rebates.duckdb"):
        pass  # a DuckDB ledger to migrate, show and report on
    (tmp_path / "rebates.csv").write_text("not a rebate file\n")
    (tmp_path / "users.csv").write_text("apiKey\nuser-key-0001\n")
    records: list[str] = []

    class Collector(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record) + (record.exc_text or ""))

    configure = pipeline.cli.configure_logging

    def configure_and_collect(verbose: bool) -> None:
        configure(verbose)
        logging.getLogger().addHandler(Collector())
        logging.getLogger().setLevel(logging.DEBUG)

    monkeypatch.setattr(pipeline.cli, "configure_logging", configure_and_collect)
    monkeypatch.setattr(pipeline.cli.console, "width", 300)
    monkeypatch.setattr(pipeline.cli.err_console, "width", 300)

    def run(url: str) -> Iterator[tuple[list[str], str]]:
        monkeypatch.setenv("REBATES_STATE_URL", url)
        for argv in COMMANDS:
            records.clear()
            result = CliRunner().invoke(app, ["-v", *argv])
            shown = result.stdout + result.stderr + "\n".join(records) + repr(result.exception)
            yield argv, shown

    return run


@pytest.mark.parametrize("form", FORMS)
def test_no_command_shows_the_password_when_postgresql_is_down(
    run_every_command: Callable[[str], Iterator[tuple[list[str], str]]], closed_port: int, form: str
) -> None:
    url = with_password(f"postgresql://rebates@127.0.0.1:{closed_port}/rebates", form)
    shown = dict((" ".join(argv), text) for argv, text in run_every_command(url))
    for command, text in shown.items():
        assert not leaks(text), (command, leaks(text))
    where = UNREADABLE_URL if form == "not encoded" else f"postgresql://rebates@127.0.0.1:{closed_port}/rebates"
    assert f"set ({where})" in shown["settings"]
    assert f"state: PostgreSQL at {where} (REBATES_STATE_URL)" in shown["state"]
    assert "fail state:" in shown["doctor"] and "REBATES_STATE_URL" in shown["doctor"]


@pytest.mark.parametrize("password", ["wrong-password-0000", PASSWORD])
def test_no_command_shows_the_password_to_a_server_that_asks_for_it(
    run_every_command: Callable[[str], Iterator[tuple[list[str], str]]], pg_cluster: Cluster, password: str
) -> None:
    url = with_password(pg_cluster.password_database(password), "as libpq takes it")
    shown = dict((" ".join(argv), text) for argv, text in run_every_command(url))
    for command, text in shown.items():
        assert not leaks(text), (command, leaks(text))
    if password != PASSWORD:
        assert f'password authentication failed for user "{PASSWORD_ROLE}"' in shown["sync"]
        assert "fail state:" in shown["doctor"]
    else:
        assert "ok   state:" in shown["doctor"]
        assert "rebate_windows: copied 0, already there 0" in shown["state migrate"]
