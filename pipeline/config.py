"""Settings from the environment and an optional `.env`: the names operators and deployments set."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipeline.domain import BrokerType


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming the variable and what it expects."""


class UsageError(SettingsError):
    """An option, argument or path given to a command is wrong; found before any OKX call or database write."""


_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

DEFAULT_ACCOUNT = "default"
"""The one account's name when REBATES_ACCOUNTS is not set: OKX_API_KEY & co. speak for it."""

_ACCOUNT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

ACCOUNT_FIELDS = (
    "okx_api_key",
    "okx_secret_key",
    "okx_passphrase",
    "okx_base_url",
    "rebates_broker_types",
    "rebates_start_date",
)
"""The settings each account has its own of: variable `<FIELD>_<NAME>`, e.g. `OKX_API_KEY_EU` for account `eu`."""

ACCOUNT_REQUIRED = frozenset({"okx_api_key", "okx_secret_key", "okx_passphrase"})
"""An account's own credentials never fall back to the unsuffixed ones: that would spend another account's budget."""

DEFAULT_LOCK_TIMEOUT = 300.0
"""REBATES_DB_LOCK_TIMEOUT's default: seconds to wait while another process holds the database."""


def parse_timezone(value: Any) -> tzinfo:
    """Read `UTC+8`, `+08:00`, `UTC` or an IANA name such as `Asia/Shanghai` as a tzinfo."""
    if isinstance(value, tzinfo):
        return value
    text = str(value).strip()
    if text.upper() in {"UTC", "GMT", "Z"}:
        return UTC
    match = _OFFSET.match(text)
    if match:
        sign, hours, minutes = match.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if offset > timedelta(hours=14):
            raise ValueError(f"offset {text!r} is beyond ±14 hours")
        return timezone(-offset if sign == "-" else offset)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{text!r} is neither an offset like UTC+8 nor a timezone name") from exc


def _comma_items(value: Any) -> list[str]:
    """A comma-separated setting (or a list of values) as its items, trimmed and lower-cased, empty ones dropped."""
    items = [str(item) for item in value] if isinstance(value, (tuple, list)) else str(value or "").split(",")
    return [item for item in (part.strip().lower() for part in items) if item]


def parse_accounts(value: Any) -> tuple[str, ...]:
    """Read `REBATES_ACCOUNTS=eu,asia` as account names: lower-case, a letter then letters, digits or `_`, unique."""
    names: list[str] = []
    for name in _comma_items(value):
        if not _ACCOUNT_NAME.match(name):
            raise ValueError(f"{name!r} is not an account name (a letter, then up to 31 letters, digits or _)")
        if name in names:
            raise ValueError(f"{name!r} is named twice")
        names.append(name)
    return tuple(names)


def account_variable(field: str, account: str) -> str:
    """The variable an account's own setting is read from: `okx_api_key`, `eu` → `OKX_API_KEY_EU`."""
    return f"{field.upper()}_{account.upper()}"


CREDENTIALS_BLOCK_VARIABLE = "REBATES_CREDENTIALS_BLOCK"
"""Names a Prefect Secret block holding the OKX credentials, used instead of OKX_API_KEY & co. when set (the flows read
it: flows/runtime.py). With REBATES_ACCOUNTS, each account names its own: `REBATES_CREDENTIALS_BLOCK_<NAME>` (never
the unsuffixed one, which would spend another account's budget)."""


def credentials_block_variable(settings: Settings) -> str:
    """The variable naming the account's Secret block: REBATES_CREDENTIALS_BLOCK, or `…_<NAME>` for a named one."""
    if settings.rebates_account == DEFAULT_ACCOUNT and not settings.rebates_accounts:
        return CREDENTIALS_BLOCK_VARIABLE
    return account_variable(CREDENTIALS_BLOCK_VARIABLE, settings.rebates_account)


def parse_broker_types(value: Any) -> tuple[BrokerType, ...]:
    """Read `""`, `api`, `oauth` or `api,oauth` (any order, any case) as a tuple of broker types."""
    types: list[BrokerType] = []
    for item in _comma_items(value):
        try:
            broker_type = BrokerType(item)
        except ValueError:
            raise ValueError(f"{item!r} is not a broker type") from None
        if broker_type not in types:
            types.append(broker_type)
    return tuple(sorted(types))


_HOST_NAME = re.compile(r"^\.?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")


def parse_file_hosts(value: Any) -> tuple[str, ...]:
    """Read `REBATES_FILE_HOSTS=files.example.com,.cdn.example.net`: host names, or suffixes starting with a dot.

    Each needs at least two labels (`.com` alone would let any host in) and is a name, not an address.
    """
    hosts: list[str] = []
    for host in _comma_items(value):
        if not _HOST_NAME.match(host) or host.removeprefix(".").replace(".", "").isdigit():
            raise ValueError(f"{host!r} is not a host name like files.example.com or a suffix like .example.com")
        if host not in hosts:
            hosts.append(host)
    return tuple(hosts)


TimeZone = Annotated[tzinfo, BeforeValidator(parse_timezone), PlainSerializer(str)]
BrokerTypes = Annotated[tuple[BrokerType, ...], NoDecode, BeforeValidator(parse_broker_types)]
AccountNames = Annotated[tuple[str, ...], NoDecode, BeforeValidator(parse_accounts)]
FileHostNames = Annotated[tuple[str, ...], NoDecode, BeforeValidator(parse_file_hosts)]

# What each setting expects, in the words the one-line error uses.
EXPECTATIONS: dict[str, str] = {
    "okx_api_key": "the API key of the OKX broker account",
    "okx_secret_key": "the secret key created with that API key",
    "okx_passphrase": "the passphrase chosen when the API key was created",
    "okx_base_url": "an https URL such as https://www.okx.com (http only for a loopback simulator)",
    "okx_demo": "true or false (send x-simulated-trading: 1 for a demo-trading key)",
    "rebates_broker_types": "empty, api, oauth or api,oauth",
    "rebates_db": "a path to the DuckDB file",
    "rebates_data_dir": "a directory for raw files, quarantine and reports",
    "rebates_tz": "an offset like UTC+8 or a timezone name like Asia/Shanghai",
    "rebates_start_date": "a date as YYYY-MM-DD (the first day of history to collect)",
    "rebates_http_timeout": "seconds to wait for OKX, a positive number",
    "rebates_http_retries": "how many times to retry a transient OKX error, 0 to 10",
    "rebates_max_download_bytes": "the largest rebate file to download, in bytes",
    "rebates_download_deadline": "seconds one download may take in all, a positive number",
    "rebates_file_hosts": "empty, or host names (files.example.com) and suffixes (.example.com), comma-separated, "
    "that may serve rebate files over https besides OKX's own",
    "rebates_max_unzipped_bytes": "the most a zipped rebate file may hold once uncompressed, in bytes",
    "rebates_db_lock_timeout": "seconds to wait while another process holds the database",
    "rebates_poll_interval": "seconds between two polls of the same window while waiting",
    "rebates_db_memory_limit": "DuckDB's memory limit while loading, e.g. 2GiB (past it, DuckDB spills to disk)",
    "rebates_db_threads": "how many threads DuckDB may use while loading, 1 to 64",
    "rebates_accounts": "empty (one account) or account names like eu,asia (letters, digits, _)",
    "rebates_account": "default, or one of the names in REBATES_ACCOUNTS",
    "rebates_state_url": "a postgresql://user:password@host:port/database URL (shared state), or empty",
}
SECRET_FIELDS = frozenset({"okx_api_key", "okx_secret_key", "okx_passphrase", "rebates_state_url"})


@dataclass(frozen=True)
class DataLayout:
    """The data directory's layout, named once: every module asks here for where its files go."""

    root: Path

    RAW: ClassVar[str] = "raw"
    """The archive of every downloaded file, kept forever (paths in rebate_files are relative to `root`)."""

    @property
    def raw(self) -> Path:
        """The archive: `raw/<broker type>/<begin>_<end>_<sha8>.<ext>`."""
        return self.root / self.RAW

    @property
    def tmp(self) -> Path:
        """Partial downloads and copies on their way into the archive (renamed in when whole)."""
        return self.root / "tmp"

    @property
    def state(self) -> Path:
        """Cross-process state: the GET limiter's slots and its lock."""
        return self.root / "state"

    @property
    def lake(self) -> Path:
        """What analysts read: the tables as Parquet, `<table>/broker_type=<t>/<day column>=<day>/data.parquet`."""
        return self.root / "lake"

    @property
    def lake_staging(self) -> Path:
        """Where a publish writes files before renaming them into the lake (inside it: same filesystem, atomic)."""
        return self.lake / ".staging"

    @property
    def analysts(self) -> Path:
        """The analysts' entry point: a small DuckDB file of views over the lake, next to the lake's folders."""
        return self.lake / "analysts.duckdb"

    @property
    def reports(self) -> Path:
        """Where `rebates report` and the reports flow write by default."""
        return self.root / "reports"


class Settings(BaseSettings):
    """Every setting the pipeline reads. Field `okx_api_key` is the variable `OKX_API_KEY`, and so on."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False, frozen=True
    )

    okx_api_key: SecretStr | None = None
    okx_secret_key: SecretStr | None = None
    okx_passphrase: SecretStr | None = None
    okx_base_url: str = "https://www.okx.com"
    okx_demo: bool = False
    rebates_broker_types: BrokerTypes = ()
    rebates_db: Path = Path("data/rebates.duckdb")
    rebates_data_dir: Path = Path("data")
    rebates_tz: TimeZone = timezone(timedelta(hours=8))
    rebates_start_date: date | None = None
    rebates_http_timeout: float = Field(default=30.0, gt=0)
    rebates_http_retries: int = Field(default=4, ge=0, le=10)
    rebates_max_download_bytes: int = Field(default=2 * 1024**3, gt=0)
    rebates_download_deadline: float = Field(default=1800.0, gt=0)
    rebates_file_hosts: FileHostNames = ()
    rebates_max_unzipped_bytes: int = Field(default=8 * 1024**3, gt=0)
    rebates_db_lock_timeout: float = Field(default=DEFAULT_LOCK_TIMEOUT, ge=0)
    rebates_poll_interval: float = Field(default=300.0, ge=30)
    rebates_db_memory_limit: str = Field(default="2GiB", pattern=r"^\s*[0-9]+(\.[0-9]+)?\s*([KMGT]i?B)\s*$")
    rebates_db_threads: int = Field(default=2, ge=1, le=64)
    rebates_accounts: AccountNames = ()
    rebates_account: str = ""
    """Which account these settings speak for (`for_account` sets it; the credentials above are that account's).

    Empty: the first configured account (`default` without REBATES_ACCOUNTS)."""
    rebates_state_url: SecretStr | None = None
    """PostgreSQL holding the ledger and the OKX budgets, shared by every worker; None: the embedded DuckDB."""

    @property
    def account_names(self) -> tuple[str, ...]:
        """Every configured account, in REBATES_ACCOUNTS's order (`default` alone without it)."""
        return self.rebates_accounts or (DEFAULT_ACCOUNT,)

    def account_name(self, name: str) -> str:
        """`name` as configured (trimmed, lower case), reading no account's variables; a UsageError if it is not."""
        wanted = name.strip().lower()
        if wanted not in self.account_names:
            raise UsageError(
                f"account {name!r} is not configured: REBATES_ACCOUNTS names {', '.join(self.account_names)}"
            )
        return wanted

    def for_account(self, name: str) -> Settings:
        """These settings speaking for account `name`: its own credentials, host, broker types and start date.

        Without REBATES_ACCOUNTS the only account is `default`, read from the unsuffixed variables as always. With
        it, each account reads `OKX_API_KEY_<NAME>` & co. (environment first, then `.env`); the optional ones
        (`OKX_BASE_URL`, `REBATES_BROKER_TYPES`, `REBATES_START_DATE`) fall back to the unsuffixed value, the
        credentials never do. A name that is not configured is a UsageError.
        """
        wanted = self.account_name(name)
        if not self.rebates_accounts:
            return self if self.rebates_account == wanted else self.replace(rebates_account=wanted)
        found = _account_values(wanted)
        changes: dict[str, Any] = {field: None for field in ACCOUNT_REQUIRED} | found | {"rebates_account": wanted}
        try:
            return self.replace(**changes)
        except SettingsError as exc:
            message = str(exc)
            for field in ACCOUNT_FIELDS:
                if message.startswith(field.upper() + ":"):
                    message = account_variable(field, wanted) + message[len(field) :]
                    break
            raise SettingsError(message) from None

    @property
    def layout(self) -> DataLayout:
        """Where everything under REBATES_DATA_DIR lives."""
        return DataLayout(self.rebates_data_dir)

    @field_validator("okx_api_key", "okx_secret_key", "okx_passphrase")
    @classmethod
    def _credential_is_clean(cls, value: SecretStr | None) -> SecretStr | None:
        """A credential goes into a request header verbatim: a pasted newline or space would break (and leak) it."""
        if value is None:
            return None
        text = value.get_secret_value()
        if text != text.strip():
            raise ValueError("it starts or ends with whitespace (a copy-paste newline?)")
        if not all(" " < char < "\x7f" for char in text):
            raise ValueError("it holds a control character, a space or a non-ASCII character")
        return value

    @field_validator("okx_base_url")
    @classmethod
    def _base_url_is_safe(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("not an http(s) URL")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError("plain http would send credentials in clear; only loopback may use http")
        if parts.path not in {"", "/"} or parts.query:
            raise ValueError("give the host only, without a path")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("rebates_state_url")
    @classmethod
    def _state_url_is_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        scheme = urlsplit(value.get_secret_value().strip()).scheme
        if scheme not in {"postgresql", "postgres"}:
            raise ValueError("not a postgresql:// URL")
        return SecretStr(value.get_secret_value().strip())

    @model_validator(mode="after")
    def _account_is_configured(self) -> Settings:
        name = self.rebates_account.strip().lower() or self.account_names[0]
        if name not in self.account_names:
            raise ValueError(f"account {name!r} is not in REBATES_ACCOUNTS ({', '.join(self.account_names)})")
        if name != self.rebates_account:
            object.__setattr__(self, "rebates_account", name)
        return self

    def replace(self, **changes: Any) -> Settings:
        """These settings with some changed, validated like any others (SettingsError when one is malformed)."""
        return load_settings(**{**{name: getattr(self, name) for name in type(self).model_fields}, **changes})

    def require_credentials(self) -> tuple[SecretStr, SecretStr, SecretStr]:
        """Return (api key, secret key, passphrase), or stop with the first one that is missing."""
        for name in ("okx_api_key", "okx_secret_key", "okx_passphrase"):
            value = getattr(self, name)
            if value is None or not value.get_secret_value():
                variable = account_variable(name, self.rebates_account) if self.rebates_accounts else name.upper()
                raise SettingsError(f"{variable} is not set: {EXPECTATIONS[name]}")
        assert self.okx_api_key and self.okx_secret_key and self.okx_passphrase
        return self.okx_api_key, self.okx_secret_key, self.okx_passphrase


def set_variables() -> dict[str, str]:
    """Every variable set, by upper-case name: the environment's, over `.env`'s (the order pydantic-settings reads)."""
    dotenv = {key.upper(): value for key, value in dotenv_values(".env").items() if value is not None}
    return dotenv | {key.upper(): value for key, value in os.environ.items()}


def _account_values(account: str) -> dict[str, str]:
    """The account's own variables that are set, by settings field."""
    present = set_variables()
    found: dict[str, str] = {}
    for field in ACCOUNT_FIELDS:
        value = present.get(account_variable(field, account))
        if value is not None and (value.strip() or field in ACCOUNT_REQUIRED):
            found[field] = value
    return found


def select_accounts(settings: Settings, account: str | None = None) -> list[Settings]:
    """The settings of each account a command covers: `account` alone, or every configured one in order.

    A name that is not configured, or an account whose own variables are missing or malformed, stops here, before
    any OKX call.
    """
    names = [account] if account else list(settings.account_names)
    return [settings.for_account(name) for name in names]


def describe_error(error: ValidationError) -> str:
    """Turn pydantic's report into one line naming the variable, what it expects, and (never for secrets) the value."""
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "settings"
    expected = EXPECTATIONS.get(field, first["msg"])
    detail = first.get("ctx", {}).get("error") or first["msg"]
    if field in SECRET_FIELDS:
        reason = str(first.get("ctx", {}).get("error") or "")
        return f"{field.upper()}: expected {expected}" + (f" ({reason}; the value is not shown)" if reason else "")
    return f"{field.upper()}: expected {expected}; got {first.get('input')!r} ({detail})"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, raising `SettingsError` with one line if any is missing or malformed."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_error(exc)) from None


def check_writable_paths(settings: Settings) -> None:
    """Stop with a UsageError unless REBATES_DB and REBATES_DATA_DIR can be written (before any OKX call).

    Creates the directories (a pass would) and a throwaway file in each: only a real write proves it, also for
    root on a read-only mount.
    """
    db = Path(settings.rebates_db)
    if db.is_dir():
        raise UsageError(f"REBATES_DB={db} is a directory: give the path of the DuckDB file, e.g. {db}/rebates.duckdb")
    for name, path in (("REBATES_DB", db.parent), ("REBATES_DATA_DIR", Path(settings.rebates_data_dir))):
        check_writable_dir(name, path)


def check_writable_dir(name: str, path: Path) -> None:
    """`path` is (or can be made) a directory this process can write in; else a UsageError naming `name`."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(
            f"{name}: cannot write in {path} ({reason}); choose another place or fix its permissions"
        ) from None
