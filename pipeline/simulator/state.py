"""The simulator's configuration and its mutable, thread-safe state: accounts, ranges, budgets, faults, call log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import zlib
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any, Literal, TypeVar

from pipeline.clock import Clock, FakeClock, epoch_ms
from pipeline.config import account_variable, parse_accounts
from pipeline.domain import (
    CREATE_INTERVAL,
    DATE_FORMAT,
    GENERATION_TIME,
    GET_LIMIT,
    GET_WINDOW,
    IF_REBATE_LIMIT,
    IF_REBATE_WINDOW,
    OKX_DAY_TZ,
    BrokerType,
)
from pipeline.simulator.files import (
    Corruption,
    FileShape,
    FileSpec,
    HeaderStyle,
    Layout,
    build_rebate_file,
)
from pipeline.simulator.options import ROTATE

DEFAULT_API_KEY = "sim-api-key"
DEFAULT_SECRET_KEY = "sim-secret-key"  # noqa: S105 - a well-known development credential, not a secret
DEFAULT_PASSPHRASE = "sim-passphrase"  # noqa: S105 - a well-known development credential, not a secret

STALL_LIMIT = timedelta(seconds=60)
"""The longest a stalled download waits (real time) for its client to go before the simulator ends it."""

OSS_ACCESS_KEY_ID = "LTAIsimulatorOSSkey"
"""The `OSSAccessKeyId` every simulated file link carries (object-store style, opaque to clients)."""

EXTENSIONS: dict[FileShape, str] = {
    FileShape.CSV: "csv",
    FileShape.CSV_BOM: "csv",
    FileShape.CSV_CRLF: "csv",
    FileShape.ZIP_CSV: "zip",
    FileShape.XLSX: "xlsx",
    FileShape.XLS: "xls",
}
"""The extension a link names for each shape: the real container for zip/xlsx/xls, `.csv` for text."""


class Fault(StrEnum):
    """Misbehaviours that can be switched on for the next N requests."""

    SERVER_ERROR = "server-error"
    """The next N /api/v5 calls answer HTTP 503 with code 50001."""
    BUSY = "busy"
    """The next N /api/v5 calls answer HTTP 429 with code 50013."""
    TRUNCATED_DOWNLOAD = "truncated-download"
    """The next N file downloads announce the full Content-Length, send part of the body, then close."""
    EXPIRED_LINK = "expired-link"
    """The next N links handed out by GET are already expired."""
    STALLED_DOWNLOAD = "stalled-download"
    """The next N file downloads send part of the body, then nothing more until the client goes (at most
    STALL_LIMIT): a download in progress to kill a worker in, at a moment the test knows."""
    MALFORMED_FILE = "malformed-file"
    """The next N files served are `corrupt(data, how)` (garbage if `how` needs a row and the file has none)."""
    SHORT_RANGE = "short-range"
    """The next N GETs for one range of two days or more (type=false) answer with the file of the first half of its
    days (a range of its own, as if requested from the dashboard at the same time): other days than were asked."""
    LOST_CREATE = "lost-create"
    """The next N creates are answered as accepted (`result` false) but OKX forgets them: the range is never listed."""


@dataclass(frozen=True)
class SimAccount:
    """One OKX user with one API key. `broker_types` is one or both of api/oauth; `is_broker=False` gets 59608.

    `name` is how tests and the call log tell accounts apart. `seed` makes its files (None: the simulator's
    `SimulatorConfig.seed`, so the default account's files are what they always were); give each account its own
    so their order ids, broker codes and amounts differ. `host`, when set, is the only host name (as in the
    request's Host, e.g. `localhost`) the account's key is valid on: OKX serves regions from different hosts, and a
    key used on another region's host is unknown there (50111).
    """

    api_key: str = DEFAULT_API_KEY
    secret_key: str = DEFAULT_SECRET_KEY
    passphrase: str = DEFAULT_PASSPHRASE
    broker_types: tuple[BrokerType, ...] = (BrokerType.API, BrokerType.OAUTH)
    is_broker: bool = True
    name: str = "default"
    seed: int | None = None
    host: str | None = None

    def __post_init__(self) -> None:
        types = tuple(sorted({BrokerType(str(value)) for value in self.broker_types}))
        if self.is_broker and not types:
            raise ValueError("a broker account needs at least one broker type (api, oauth or both)")
        object.__setattr__(self, "broker_types", types)

    @classmethod
    def named(
        cls, name: str, broker_types: tuple[BrokerType, ...] = (BrokerType.API, BrokerType.OAUTH), **fields: Any
    ) -> SimAccount:
        """An account whose key, secret, passphrase and file seed derive from `name` (well-known, like the default's).

        `named("eu")` has key `sim-api-key-eu`, secret `sim-secret-key-eu`, passphrase `sim-passphrase-eu`.
        """
        derived: dict[str, Any] = {
            "api_key": f"{DEFAULT_API_KEY}-{name}",
            "secret_key": f"{DEFAULT_SECRET_KEY}-{name}",
            "passphrase": f"{DEFAULT_PASSPHRASE}-{name}",
            "seed": account_seed(name),
        }
        return cls(**(derived | fields), broker_types=broker_types, name=name)

    def data_seed(self, default: int) -> int:
        """The seed of this account's files: its own, or `default` (the simulator's) when it has none."""
        return default if self.seed is None else self.seed

    def __repr__(self) -> str:
        return (
            f"SimAccount(name={self.name!r}, api_key={self.api_key!r}, broker_types={self.broker_types!r}, "
            f"is_broker={self.is_broker}, host={self.host!r})"
        )


REGION_HOSTS = ("127.0.0.1", "localhost")
"""Loopback host names that reach one simulator as if they were OKX's regional hosts: named accounts take turns."""


def named_accounts(spec: str, broker_types: tuple[BrokerType, ...]) -> tuple[SimAccount, ...]:
    """Accounts from `eu,asia:api` (a name, optionally `:` broker types joined by `+`; `broker_types` otherwise).

    Each has credentials and data of its own (`SimAccount.named`) and a host of its own in turn from REGION_HOSTS.
    """
    items = [part.strip().partition(":") for part in spec.split(",") if part.strip()]
    names = parse_accounts([name for name, _, _ in items])
    if not names:
        raise ValueError("--accounts needs one or more account names, e.g. eu,asia:api")
    return tuple(
        SimAccount.named(
            name,
            tuple(BrokerType(kind.strip()) for kind in types.split("+")) if types else broker_types,
            host=REGION_HOSTS[index % len(REGION_HOSTS)],
        )
        for index, (name, (_, _, types)) in enumerate(zip(names, items, strict=True))
    )


def operator_variables(accounts: tuple[SimAccount, ...], port: int) -> dict[str, str]:
    """What an operator exports to point `rebates` at these accounts of a simulator listening on `port`."""
    variables = {"REBATES_ACCOUNTS": ",".join(account.name for account in accounts)}
    for account in accounts:
        values = {
            "okx_api_key": account.api_key,
            "okx_secret_key": account.secret_key,
            "okx_passphrase": account.passphrase,
            "okx_base_url": f"http://{account.host or REGION_HOSTS[0]}:{port}",
            "rebates_broker_types": ",".join(account.broker_types),
        }
        variables |= {account_variable(field, account.name): value for field, value in values.items()}
    return variables


def account_seed(name: str) -> int:
    """A file seed derived from an account's name: stable across runs and processes, different per name."""
    return int.from_bytes(hashlib.sha256(f"okx-rebates-simulator-account|{name}".encode()).digest()[:4], "big")


DEFAULT_ACCOUNT = SimAccount()
"""The ready-made account: key `sim-api-key`, secret `sim-secret-key`, passphrase `sim-passphrase`, api + oauth."""


@dataclass(frozen=True)
class SimUser:
    """A user trading under the broker, as `GET if-rebate` describes them; `error` answers that OKX code instead."""

    api_key: str
    type: str = "0"
    """0 earns the broker a rebate; 1 broker id expired; 2 VIP4/5 monthly cap reached; 3 VIP6 or above; 4 MSA."""
    broker_type: BrokerType = BrokerType.API
    affiliated: bool = False
    client_rebate_ratio: str = "0"
    last_rebate: str = ""
    error: str | None = None

    def __repr__(self) -> str:
        return f"SimUser(type={self.type!r}, broker_type={self.broker_type!r}, error={self.error!r})"


DEFAULT_USERS = (
    SimUser("sim-user-earns-0001", "0", client_rebate_ratio="0.2"),
    SimUser("sim-user-expired-0002", "1"),
    SimUser("sim-user-vip-cap-0003", "2", client_rebate_ratio="0.1", last_rebate="1234.5"),
    SimUser("sim-user-vip6-0004", "3"),
    SimUser("sim-user-msa-0005", "4"),
    SimUser("sim-user-oauth-0006", "0", broker_type=BrokerType.OAUTH, affiliated=True, client_rebate_ratio="0.3"),
    SimUser("sim-user-frozen-0007", error="53004"),
)
"""Users the simulator knows for `GET if-rebate`: one of each `type`, an OAuth user, and a frozen account."""


E = TypeVar("E", bound=StrEnum)

ShapeOption = FileShape | Literal["rotate"]
LayoutOption = Layout | Literal["rotate"]
HeaderStyleOption = HeaderStyle | Literal["rotate"]


@dataclass(frozen=True)
class SimulatorConfig:
    """How the simulated OKX behaves. Every field has a default that makes the demo work out of the box.

    accounts: the users the simulator knows (default: `DEFAULT_ACCOUNT`, an api + oauth broker).
    ready_after: how long a newly requested file stays `ongoing` (default: OKX's 2 hours, `GENERATION_TIME`).
    shape / layout / header_style: the file's format, or "rotate" to pick one per range deterministically.
    seed / orders_per_day: passed to the file generator (`seed` for the accounts without a seed of their own).
    demo_only: the keys are demo-trading keys (requests must send `x-simulated-trading: 1`); default live keys.
    day_tz: the timezone of OKX's day boundaries (`beginTime`/`endTime` and the rows of the file).
    check_timestamps: reject OK-ACCESS-TIMESTAMP off by more than 30 s (off only for a fake clock in another process).
    users: the users `GET if-rebate` knows (default: `DEFAULT_USERS`).
    """

    accounts: tuple[SimAccount, ...] = (DEFAULT_ACCOUNT,)
    ready_after: timedelta = GENERATION_TIME
    shape: ShapeOption = FileShape.CSV
    layout: LayoutOption = Layout.COLUMNS_16
    header_style: HeaderStyleOption = HeaderStyle.DOCS
    seed: int = 0
    orders_per_day: int = 40
    demo_only: bool = False
    day_tz: tzinfo = OKX_DAY_TZ
    check_timestamps: bool = True
    users: tuple[SimUser, ...] = DEFAULT_USERS

    def __post_init__(self) -> None:
        if not self.accounts:
            raise ValueError("the simulator needs at least one account")
        keys = [account.api_key for account in self.accounts]
        if len(set(keys)) != len(keys):
            raise ValueError("two simulator accounts share an API key")
        if self.ready_after < timedelta(0):
            raise ValueError("ready_after cannot be negative")
        if self.orders_per_day < 0:
            raise ValueError("orders_per_day cannot be negative")
        object.__setattr__(self, "shape", _option(FileShape, self.shape))
        object.__setattr__(self, "layout", _option(Layout, self.layout))
        object.__setattr__(self, "header_style", _option(HeaderStyle, self.header_style))

    def account(self, api_key: str) -> SimAccount | None:
        """The account with this API key, if any."""
        return next((account for account in self.accounts if account.api_key == api_key), None)

    def user(self, api_key: str) -> SimUser | None:
        """The user with this API key, for `GET if-rebate`, if any."""
        return next((user for user in self.users if user.api_key == api_key), None)


def _option(kind: type[E], value: E | str) -> E | Literal["rotate"]:
    if value == ROTATE:
        return ROTATE
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join([*(member.value for member in kind), ROTATE])
        raise ValueError(f"{value!r} is not one of {choices}") from None


def _rotate(kind: type[E], value: E | Literal["rotate"], salt: str) -> E:
    if value != ROTATE:
        return kind(value)
    members = list(kind)
    return members[zlib.crc32(salt.encode()) % len(members)]


RangeKey = tuple[str, BrokerType, date, date]
"""(API key, broker type, begin, end): what makes two requests ask for the same file."""


@dataclass(frozen=True)
class RangeRecord:
    """One file OKX knows about: requested once (by the API or the dashboard), `ongoing` until `ready_at`."""

    api_key: str
    broker_type: BrokerType
    begin: date
    end: date
    requested_at: datetime
    ready_at: datetime
    token: str
    origin: Literal["api", "dashboard"]

    @property
    def key(self) -> RangeKey:
        """The identity of this range."""
        return (self.api_key, self.broker_type, self.begin, self.end)

    def is_finished(self, now: datetime) -> bool:
        """Whether generation is over at `now`."""
        return now >= self.ready_at


@dataclass(frozen=True)
class CallRecord:
    """One request the simulator answered: `code` is OKX's code ("0" on success), None for file downloads."""

    method: str
    path: str
    status: int
    code: str | None
    at: datetime
    api_key: str | None = None
    """The account the call was for: its OK-ACCESS-KEY when that names an account, a download's range's account."""
    host: str = ""
    """The host name the request was sent to (its Host header, without the port)."""
    sent_at: datetime | None = None
    """When the client signed it (OK-ACCESS-TIMESTAMP), for signed calls. On a clock several processes share, a call
    in flight while another process's simulated wait moves the clock arrives (`at`) after it was sent."""


def _spend(counted: deque[datetime], now: datetime, window: timedelta, limit: int) -> bool:
    """Count a call at `now` if fewer than `limit` were counted in the `window` before it.

    `now` may be earlier than a call counted before it (a call signed earlier that arrived later: `_counted_at` in
    app.py), so the window is filtered, not trimmed from its oldest end; later calls count as inside it.
    """
    recent = [moment for moment in counted if moment > now - window]
    counted.clear()
    counted.extend(recent)
    if len(counted) >= limit:
        return False
    counted.append(now)
    return True


@dataclass
class _Budget:
    last_create: datetime | None = None
    gets: deque[datetime] = field(default_factory=deque)
    if_rebate: deque[datetime] = field(default_factory=deque)


class Faults:
    """Faults to inject into the next requests; thread-safe. `inject(Fault.BUSY, times=2)` affects two calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: dict[Fault, deque[Corruption | None]] = defaultdict(deque)

    def inject(self, fault: Fault | str, times: int = 1, *, how: Corruption | str | None = None) -> None:
        """Affect the next `times` requests of the kind `fault` applies to; MALFORMED_FILE needs `how`."""
        kind = Fault(fault)
        if times < 1:
            raise ValueError("times must be at least 1")
        corruption = Corruption(how) if how is not None else None
        if kind is Fault.MALFORMED_FILE and corruption is None:
            raise ValueError("malformed-file needs how= one of " + ", ".join(member.value for member in Corruption))
        if kind is not Fault.MALFORMED_FILE and corruption is not None:
            raise ValueError(f"{kind.value} takes no how=")
        with self._lock:
            self._queued[kind].extend([corruption] * times)

    def take(self, fault: Fault) -> tuple[bool, Corruption | None]:
        """Use one injection of `fault` if any is left: (whether one was used, its corruption)."""
        with self._lock:
            queue = self._queued[fault]
            if not queue:
                return False, None
            return True, queue.popleft()

    def pending(self, fault: Fault | str) -> int:
        """How many requests `fault` will still affect."""
        with self._lock:
            return len(self._queued[Fault(fault)])

    def clear(self) -> None:
        """Switch every fault off."""
        with self._lock:
            self._queued.clear()

    def snapshot(self) -> dict[str, int]:
        """Pending counts by fault name, for the control endpoint."""
        with self._lock:
            return {fault.value: len(queue) for fault, queue in self._queued.items() if queue}


class SimulatorState:
    """Everything the simulator remembers. Thread-safe: uvicorn's thread serves while tests mutate from theirs."""

    def __init__(self, config: SimulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.faults = Faults()
        self._lock = threading.Lock()
        self._link_secret = secrets.token_bytes(32)
        self._ranges: dict[RangeKey, RangeRecord] = {}
        self._budgets: dict[str, _Budget] = defaultdict(_Budget)
        self._calls: list[CallRecord] = []
        self._files: dict[RangeKey, bytes] = {}
        self._deliberate_truncations = 0

    # Accounts and rate limits

    def account(self, api_key: str) -> SimAccount | None:
        """The account with this API key, if any."""
        return self.config.account(api_key)

    def data_seed(self, api_key: str) -> int:
        """The seed of the files this account's ranges hold."""
        account = self.account(api_key)
        return account.data_seed(self.config.seed) if account is not None else self.config.seed

    def try_spend_create(self, api_key: str, now: datetime) -> bool:
        """Count one create call if the account's hourly budget allows it; a refused call changes nothing."""
        with self._lock:
            budget = self._budgets[api_key]
            if budget.last_create is not None and now - budget.last_create < CREATE_INTERVAL:
                return False
            budget.last_create = now
            return True

    def try_spend_get(self, api_key: str, now: datetime) -> bool:
        """Count one GET call if fewer than GET_LIMIT were counted in the rolling GET_WINDOW before `now`."""
        with self._lock:
            return _spend(self._budgets[api_key].gets, now, GET_WINDOW, GET_LIMIT)

    def try_spend_if_rebate(self, api_key: str, now: datetime) -> bool:
        """Count one if-rebate call if fewer than IF_REBATE_LIMIT were counted in the IF_REBATE_WINDOW before `now`."""
        with self._lock:
            return _spend(self._budgets[api_key].if_rebate, now, IF_REBATE_WINDOW, IF_REBATE_LIMIT)

    def create_next_at(self, api_key: str) -> datetime | None:
        """When this account may create again (None: it may now, or has never created)."""
        with self._lock:
            last = self._budgets[api_key].last_create
        if last is None:
            return None
        return last + CREATE_INTERVAL

    # Ranges and files

    def request_range(
        self,
        api_key: str,
        broker_type: BrokerType,
        begin: date,
        end: date,
        now: datetime,
        *,
        origin: Literal["api", "dashboard"] = "api",
    ) -> tuple[RangeRecord, bool]:
        """The record for this range and whether this call created it (first request: ongoing until ready)."""
        key: RangeKey = (api_key, BrokerType(broker_type), begin, end)
        with self._lock:
            existing = self._ranges.get(key)
            if existing is not None:
                return existing, False
            record = RangeRecord(
                api_key=api_key,
                broker_type=BrokerType(broker_type),
                begin=begin,
                end=end,
                requested_at=now,
                ready_at=now + self.config.ready_after,
                token=secrets.token_hex(16),
                origin=origin,
            )
            self._ranges[key] = record
            return record, True

    def seed_file(
        self,
        account_key: str,
        broker_type: BrokerType | str,
        begin: date,
        end: date,
        requested_at: datetime | None = None,
    ) -> RangeRecord:
        """Add a file as if requested from the broker dashboard at `requested_at` (default: just ready now).

        It is `ongoing` until `requested_at + ready_after`, like any other; it spends no create budget.
        """
        if self.account(account_key) is None:
            raise ValueError(f"no simulator account has the API key {account_key!r}")
        if begin > end:
            raise ValueError("begin is after end")
        when = requested_at if requested_at is not None else self.clock.now() - self.config.ready_after
        record, _ = self.request_range(account_key, BrokerType(broker_type), begin, end, when, origin="dashboard")
        return record

    def find_range(self, api_key: str, broker_type: BrokerType, begin: date, end: date) -> RangeRecord | None:
        """The record for exactly this range, if it was ever requested."""
        with self._lock:
            return self._ranges.get((api_key, broker_type, begin, end))

    def range_by_token(self, token: str) -> RangeRecord | None:
        """The record a file link's token names, if any."""
        with self._lock:
            return next((record for record in self._ranges.values() if record.token == token), None)

    def ranges(self, api_key: str | None = None, broker_type: BrokerType | None = None) -> list[RangeRecord]:
        """Known ranges, newest request first, optionally for one account and broker type."""
        with self._lock:
            records = [
                record
                for record in self._ranges.values()
                if (api_key is None or record.api_key == api_key)
                and (broker_type is None or record.broker_type == broker_type)
            ]
        return sorted(records, key=lambda record: (record.requested_at, record.begin, record.end), reverse=True)

    def file_spec(self, record: RangeRecord) -> FileSpec:
        """What the generator builds for this range ("rotate" options resolved per range, deterministically)."""
        salt = f"{record.broker_type}:{record.begin:{DATE_FORMAT}}-{record.end:{DATE_FORMAT}}"
        return FileSpec(
            begin=record.begin,
            end=record.end,
            broker_type=record.broker_type.value,
            shape=_rotate(FileShape, self.config.shape, "shape:" + salt),
            layout=_rotate(Layout, self.config.layout, "layout:" + salt),
            header_style=_rotate(HeaderStyle, self.config.header_style, "header:" + salt),
            seed=self.data_seed(record.api_key),
            orders_per_day=self.config.orders_per_day,
            day_tz=self.config.day_tz,
        )

    def file_name(self, record: RangeRecord) -> str:
        """The object name in a link, as OKX names it: `RebateDetails<MMDD>-<MMDD>.<ext>`."""
        extension = EXTENSIONS[self.file_spec(record).shape]
        return f"RebateDetails{record.begin:%m%d}-{record.end:%m%d}.{extension}"

    def file_bytes(self, record: RangeRecord) -> bytes:
        """The file for this range, generated once and kept."""
        with self._lock:
            cached = self._files.get(record.key)
        if cached is not None:
            return cached
        data = build_rebate_file(self.file_spec(record))
        with self._lock:
            return self._files.setdefault(record.key, data)

    def link_signature(self, token: str, name: str, expires: int) -> str:
        """The `Signature` a link for this object and expiry carries (HMAC with a per-instance secret)."""
        message = f"GET\n{expires}\n/{token}/{name}".encode()
        digest = hmac.new(self._link_secret, message, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    # Call log

    def record_call(
        self,
        method: str,
        path: str,
        status: int,
        code: str | None,
        at: datetime,
        *,
        api_key: str | None = None,
        host: str = "",
        sent_at: datetime | None = None,
    ) -> None:
        """Append one answered request to the log."""
        with self._lock:
            self._calls.append(CallRecord(method, path, status, code, at, api_key=api_key, host=host, sent_at=sent_at))

    def calls(
        self, method: str | None = None, path: str | None = None, *, api_key: str | None = None
    ) -> list[CallRecord]:
        """The logged calls, oldest first, optionally only one method, path and/or account (by API key)."""
        with self._lock:
            return [
                call
                for call in self._calls
                if (method is None or call.method == method.upper())
                and (path is None or call.path == path)
                and (api_key is None or call.api_key == api_key)
            ]

    def count(
        self, method: str | None = None, path: str | None = None, *, status: int | None = None, code: str | None = None
    ) -> int:
        """How many logged calls match every given filter."""
        return sum(
            1
            for call in self.calls(method, path)
            if (status is None or call.status == status) and (code is None or call.code == code)
        )

    # Bookkeeping for the deliberately truncated downloads (so the server can keep its log quiet about them)

    def note_deliberate_truncation(self) -> None:
        """Remember that the response being sent is cut short on purpose."""
        with self._lock:
            self._deliberate_truncations += 1

    def consume_deliberate_truncation(self) -> bool:
        """Whether an unfinished response was one cut short on purpose (and forget it)."""
        with self._lock:
            if self._deliberate_truncations <= 0:
                return False
            self._deliberate_truncations -= 1
            return True

    # Whole-state operations

    def reset(self) -> None:
        """Forget every range, budget, fault, call and cached file (the configuration and clock stay)."""
        self.faults.clear()
        with self._lock:
            self._ranges.clear()
            self._budgets.clear()
            self._calls.clear()
            self._files.clear()
            self._deliberate_truncations = 0

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready view of the state, for `GET /__sim__/state`."""
        now = self.clock.now()
        counts: dict[str, int] = defaultdict(int)
        calls = self.calls()
        for call in calls:
            counts[f"{call.method} {call.path}"] += 1
        return {
            "clock": {"now": now.isoformat(), "nowMs": epoch_ms(now), "fake": isinstance(self.clock, FakeClock)},
            "ranges": [
                {
                    "apiKey": record.api_key,
                    "brokerType": record.broker_type.value,
                    "begin": f"{record.begin:{DATE_FORMAT}}",
                    "end": f"{record.end:{DATE_FORMAT}}",
                    "cTime": str(epoch_ms(record.requested_at)),
                    "readyAt": str(epoch_ms(record.ready_at)),
                    "state": "finished" if record.is_finished(now) else "ongoing",
                    "origin": record.origin,
                }
                for record in self.ranges()
            ],
            "counts": dict(counts),
            "calls": [
                {
                    "method": c.method,
                    "path": c.path,
                    "status": c.status,
                    "code": c.code,
                    "ts": str(epoch_ms(c.at)),
                    "apiKey": c.api_key,
                    "host": c.host,
                }
                for c in calls
            ],
            "faults": self.faults.snapshot(),
            "createNextAt": {
                account.api_key: (str(epoch_ms(next_at)) if (next_at := self.create_next_at(account.api_key)) else None)
                for account in self.config.accounts
            },
        }
