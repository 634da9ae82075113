"""`rebates doctor`: check the settings, OKX credentials, clock, data directory and database, each with its fix."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import duckdb
import httpx

from pipeline.clock import Clock, from_epoch_ms
from pipeline.config import (
    CREDENTIALS_BLOCK_VARIABLE,
    LOOPBACK_HOSTS,
    Settings,
    SettingsError,
    account_variable,
    credentials_block_variable,
    load_settings,
    set_variables,
)
from pipeline.db import DatabaseLockedError, DatabaseUnusableError, connect
from pipeline.domain import GET_LIMIT, PUBLIC_TIME_PATH, TIMESTAMP_TOLERANCE
from pipeline.okx.client import OkxClient
from pipeline.okx.errors import OkxError, OkxParameterError, OkxRateLimitError
from pipeline.okx.throttle import open_limiter
from pipeline.pg import StateUnavailableError, describe_url, open_connection, schema_is_current

CLOCK_SKEW_LIMIT = TIMESTAMP_TOLERANCE / 3
"""The skew the doctor accepts: a third of OKX's TIMESTAMP_TOLERANCE, so drift is caught before OKX refuses requests."""

DATABASE_WAIT_SECONDS = 5.0
"""How long the doctor waits for a database another process holds (a sync holds it for seconds at most)."""

DOCTOR_HTTP_RETRIES = 1
"""Retries of a transient OKX error during the check: enough for a blip, short enough to answer quickly."""

STATE_LIMITER = "the GET limiter keeps its slots in PostgreSQL (REBATES_STATE_URL)"
"""Why the OKX check needs PostgreSQL when the state is shared: its GET must count against every worker's budget."""


@dataclass(frozen=True)
class Check:
    """One check's outcome; `detail` says in plain words what was found and, when it failed, how to fix it."""

    name: str
    ok: bool
    detail: str


def run_doctor(
    settings: Settings | None,
    clock: Clock,
    *,
    transport: httpx.BaseTransport | None = None,
    account_loader: Callable[[str], Settings] | None = None,
) -> list[Check]:
    """Run every check in order; `settings=None` loads them from the environment (and `.env`) as a check too.

    `transport` replaces the network for OKX calls (tests pass an `httpx.MockTransport`). `account_loader` gives an
    account's settings with its credentials (the CLI passes the flows' reader, which takes them from the account's
    Secret block when REBATES_CREDENTIALS_BLOCK names one); without it, from the variables. A check that cannot run
    because an earlier one failed is listed as failed with the reason it was not run.
    """
    if settings is None:
        try:
            settings = load_settings()
        except SettingsError as exc:
            reason = "not checked: the settings must load first"
            return [
                Check("settings", False, f"{exc} (set it in the environment or in .env, then run this again)"),
                *(Check(name, False, reason) for name in ("credentials", "data directory", "database", "OKX API")),
                Check("clock", False, reason),
            ]
    checks = [Check("settings", True, describe_settings(settings))]
    accounts = account_settings(settings, account_loader)
    credentials = {
        name: check_credentials(chosen) if isinstance(chosen, Settings) else Check("credentials", False, chosen)
        for name, chosen in accounts.items()
    }
    data_dir = check_data_dir(settings)
    checks += [named(check, name, settings) for name, check in credentials.items()]
    checks += [data_dir, check_database(settings)]
    state = check_state(settings) if settings.rebates_state_url is not None else None
    if state is not None:
        checks += [state, check_shared_paths(settings)]
    for name, chosen in accounts.items():
        if not isinstance(chosen, Settings) or not credentials[name].ok:
            okx = Check("OKX API", False, "not checked: set the credentials first")
        elif state is not None and not state.ok:
            okx = Check("OKX API", False, f"not checked: {STATE_LIMITER}, which failed its check (see state)")
        elif not data_dir.ok:
            okx = Check("OKX API", False, "not checked: the GET limiter keeps its state in REBATES_DATA_DIR")
        else:
            okx = check_okx(chosen, clock, transport=transport)
        checks.append(named(okx, name, settings))
    for name, chosen in accounts.items():
        if isinstance(chosen, Settings):
            clock_check = check_clock(chosen, clock, transport=transport)
        else:
            clock_check = Check("clock", False, "not checked: the account's settings must load first")
        checks.append(named(clock_check, name, settings))
    return checks


def account_settings(settings: Settings, loader: Callable[[str], Settings] | None = None) -> dict[str, Settings | str]:
    """Each configured account's settings, or why they do not load (a malformed OKX_BASE_URL_<NAME>, a Secret block
    that is not there, say). `loader` reads an account's settings with its credentials (default: `for_account`)."""
    found: dict[str, Settings | str] = {}
    for name in settings.account_names:
        try:
            found[name] = loader(name) if loader is not None else settings.for_account(name)
        except SettingsError as exc:
            fix = (
                ""
                if CREDENTIALS_BLOCK_VARIABLE in str(exc)
                else " (set it in the environment or in .env, then run this again)"
            )
            found[name] = f"{exc}{fix}"
    return found


def named(check: Check, account: str, settings: Settings) -> Check:
    """The check named for its account (`OKX API (eu)`) when REBATES_ACCOUNTS names the accounts; as it is without."""
    if not settings.rebates_accounts:
        return check
    return Check(f"{check.name} ({account})", check.ok, check.detail)


def describe_settings(settings: Settings) -> str:
    """The settings that decide where the pipeline talks to and writes, in one line (no secret)."""
    host = httpx.URL(settings.okx_base_url).host
    target = "the loopback simulator" if host in LOOPBACK_HOSTS else "OKX"
    types = ",".join(settings.rebates_broker_types) or "(one broker type, none sent)"
    start = settings.rebates_start_date or "not set (rebates sync needs it or --begin)"
    accounts = f", accounts {', '.join(settings.rebates_accounts)}" if settings.rebates_accounts else ""
    return (
        f"loaded: {target} at {settings.okx_base_url}{' (demo trading)' if settings.okx_demo else ''}, "
        f"broker types {types}, REBATES_TZ {settings.rebates_tz}, start date {start}{accounts}"
    )


def check_credentials(settings: Settings) -> Check:
    """The three OKX credentials are set (their values are never shown)."""
    try:
        settings.require_credentials()
    except SettingsError as exc:
        return Check("credentials", False, str(exc))
    block_variable = credentials_block_variable(settings)
    block = set_variables().get(block_variable, "").strip()
    if block:
        return Check("credentials", True, f"read from the Prefect Secret block {block!r} ({block_variable})")
    names = ("okx_api_key", "okx_secret_key", "okx_passphrase")
    variables = [
        account_variable(name, settings.rebates_account) if settings.rebates_accounts else name.upper()
        for name in names
    ]
    return Check("credentials", True, f"{variables[0]}, {variables[1]} and {variables[2]} are set")


def check_data_dir(settings: Settings) -> Check:
    """REBATES_DATA_DIR exists (or can be created) and a file can be written in it."""
    directory = settings.rebates_data_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".doctor-") as probe:
            probe.write(b"ok")
            probe.flush()
    except OSError as exc:
        return Check(
            "data directory",
            False,
            f"REBATES_DATA_DIR={directory} is not a writable directory ({exc.strerror or exc}): create it and give "
            "this user write permission, or point REBATES_DATA_DIR somewhere writable",
        )
    free_gib = shutil.disk_usage(directory).free / 1024**3
    return Check("data directory", True, f"REBATES_DATA_DIR={directory} is writable ({free_gib:.1f} GiB free)")


def check_database(settings: Settings) -> Check:
    """REBATES_DB opens for writing within a few seconds, or can be created; the connection is closed at once."""
    path = Path(settings.rebates_db)
    if not path.exists():
        parent = next((folder for folder in (path.parent, *path.parent.parents) if folder.exists()), Path("/"))
        if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            return Check("database", True, f"no database yet at REBATES_DB={path}: the first `rebates sync` creates it")
        return Check(
            "database",
            False,
            f"REBATES_DB={path} cannot be created: {parent} is not writable; fix its permissions or move REBATES_DB",
        )
    try:
        with connect(path, lock_timeout=DATABASE_WAIT_SECONDS) as db:
            row = db.execute("SELECT count(*) FROM rebate_windows").fetchone()
    except (DatabaseLockedError, DatabaseUnusableError) as exc:
        return Check("database", False, str(exc))
    except duckdb.Error as exc:
        return Check(
            "database",
            False,
            f"REBATES_DB={path} does not open for writing ({type(exc).__name__}: {exc}): check the file's "
            "permissions and that it is this pipeline's DuckDB file",
        )
    windows = row[0] if row else 0
    return Check("database", True, f"REBATES_DB={path} opens for writing ({windows} window(s) in the ledger)")


def check_state(settings: Settings) -> Check:
    """REBATES_STATE_URL: PostgreSQL answers, takes the state schema (as any worker would) and it is current."""
    assert settings.rebates_state_url is not None
    url = settings.rebates_state_url.get_secret_value()
    where = describe_url(url)
    try:
        connection = open_connection(url)
    except StateUnavailableError as exc:
        return Check("state", False, str(exc))
    try:
        current = schema_is_current(connection)
        version = connection.execute("SHOW server_version").fetchone()
    finally:
        connection.close()
    if not current:
        return Check("state", False, f"PostgreSQL at {where} does not hold this version's state schema")
    return Check(
        "state", True, f"PostgreSQL {version[0] if version else '?'} at {where} answers; the state schema is current"
    )


def check_shared_paths(settings: Settings) -> Check:
    """With shared state every worker writes REBATES_DATA_DIR and the DuckDB file's folder: both must be writable."""
    problems = []
    for label, folder in (("REBATES_DATA_DIR", settings.rebates_data_dir), ("REBATES_DB's folder",
                                                                            settings.rebates_db.parent)):  # fmt: skip
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-") as probe:
                probe.write(b"ok")
        except OSError as exc:
            problems.append(f"{label} ({folder}) is not writable ({exc.strerror or exc})")
    if problems:
        return Check(
            "shared paths",
            False,
            "; ".join(problems) + ": mount the shared storage at the same path on every worker, writable by this user",
        )
    return Check(
        "shared paths",
        True,
        f"REBATES_DATA_DIR={settings.rebates_data_dir} and {settings.rebates_db.parent} are writable (every worker "
        "must see the same storage there)",
    )


def check_okx(settings: Settings, clock: Clock, *, transport: httpx.BaseTransport | None = None) -> Check:
    """One signed GET (list the rebate files) through the shared GET limiter: proves key, secret, passphrase, type."""
    broker_type = settings.rebates_broker_types[0] if settings.rebates_broker_types else None
    limiter = open_limiter(settings, clock)
    quick = settings.replace(rebates_http_retries=min(settings.rebates_http_retries, DOCTOR_HTTP_RETRIES))
    as_type = f" as broker type {broker_type}" if broker_type else ""
    try:
        with (
            closing(limiter),
            OkxClient(quick, clock=clock, transport=transport, before_request=limiter.before_request) as client,
        ):
            links = client.list_rebate_links(broker_type)
    except OkxRateLimitError:
        limiter.penalize()
        return Check(
            "OKX API",
            False,
            f"OKX rate-limited the check (50011): another process used this minute's {GET_LIMIT} GETs; run the doctor "
            "again in a minute",
        )
    except OkxParameterError as exc:
        if broker_type is None:
            return Check("OKX API", False, str(exc))
        return Check(
            "OKX API",
            False,
            f"OKX refused broker type {broker_type} (code {exc.code}, HTTP {exc.http_status}): set "
            "REBATES_BROKER_TYPES to the types this broker account has (api, oauth or api,oauth)",
        )
    except OkxError as exc:
        return Check("OKX API", False, str(exc))
    except StateUnavailableError as exc:
        return Check("OKX API", False, f"not checked: {STATE_LIMITER}: {exc}")
    return Check("OKX API", True, f"OKX accepted a signed request{as_type}: it lists {len(links)} rebate file(s)")


def check_clock(settings: Settings, clock: Clock, *, transport: httpx.BaseTransport | None = None) -> Check:
    """This machine's clock against OKX's: OKX refuses a signed request more than TIMESTAMP_TOLERANCE off (50102)."""
    try:
        with httpx.Client(
            base_url=settings.okx_base_url, timeout=settings.rebates_http_timeout, transport=transport
        ) as http:
            before = clock.now()
            response = http.get(PUBLIC_TIME_PATH)
            after = clock.now()
    except httpx.TransportError as exc:
        return Check(
            "clock",
            False,
            f"could not read the time of {settings.okx_base_url} ({type(exc).__name__}): check the network and "
            "OKX_BASE_URL",
        )
    server = server_time(response)
    if server is None:
        return Check("clock", False, f"{settings.okx_base_url} answered without a time to compare with")
    moment, source = server
    skew = (before + (after - before) / 2) - moment
    seconds = abs(skew.total_seconds())
    if abs(skew) <= CLOCK_SKEW_LIMIT:
        return Check("clock", True, f"within {seconds:.1f} s of the server's clock ({source})")
    direction = "ahead of" if skew > timedelta(0) else "behind"
    return Check(
        "clock",
        False,
        f"this machine's clock is {seconds:.0f} s {direction} the server's ({source}); OKX refuses signed requests "
        f"more than {TIMESTAMP_TOLERANCE.total_seconds():.0f} s off (50102): enable time sync (NTP, e.g. "
        "`timedatectl set-ntp true`)",
    )


def server_time(response: httpx.Response) -> tuple[datetime, str] | None:
    """The server's time from OKX's public time endpoint, else from the HTTP `Date` header (to the second)."""
    try:
        envelope = response.json()
        stamp = envelope["data"][0]["ts"]
        if response.status_code == 200 and envelope.get("code") == "0":
            return from_epoch_ms(stamp), f"GET {PUBLIC_TIME_PATH}"
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        pass
    header = response.headers.get("Date")
    if not header:
        return None
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return moment + timedelta(milliseconds=500), "the HTTP Date header, to the second"
