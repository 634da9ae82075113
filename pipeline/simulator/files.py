"""Deterministic OKX rebate-detail files for the simulator: realistic rows, every shape clients have met, and faults."""

from __future__ import annotations

import csv
import hashlib
import io
import random
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from enum import StrEnum
from functools import lru_cache

import fastexcel
import xlwt
from openpyxl import Workbook
from openpyxl.writer.excel import ExcelWriter

from pipeline.clock import epoch_ms
from pipeline.domain import OKX_DAY_TZ
from pipeline.simulator.options import FileShape, HeaderStyle, Layout

__all__ = [
    "AMOUNT_COLUMNS",
    "COLUMNS_14",
    "COLUMNS_16",
    "XLS_MAX_ROWS",
    "Corruption",
    "FileShape",
    "FileSpec",
    "HeaderStyle",
    "Layout",
    "build_rebate_file",
    "corrupt",
    "file_columns",
    "generate_rows",
    "render",
]


class Corruption(StrEnum):
    """Malformed variants of a good file, for fault injection."""

    TRUNCATE = "truncate"
    """Cut in the middle (text: halfway through the middle line, so that row is short)."""
    GARBAGE = "garbage"
    """An HTML error page instead of the file."""
    BAD_AMOUNT = "bad-amount"
    """The middle data row's `fee` becomes `abc` (a text cell in a spreadsheet)."""
    FLOAT_ORDID = "float-ordid"
    """One `ordId` as a spreadsheet keeps it: `2.87719838462505E+18` in text, a numeric cell in a workbook.

    The row is the first from the middle (wrapping round) whose id a double cannot hold exactly.
    """
    MISSING_COLUMN = "missing-column"
    """The `netFee` column is gone."""


COLUMNS_14: tuple[str, ...] = (
    "brokerCode",
    "level",
    "instId",
    "ordId",
    "spotTradeAmt",
    "derivativeTradeAmt",
    "fee",
    "netFee",
    "settlementFee",
    "brokerRebate",
    "suBrokerRebate",
    "userRebate",
    "affiliated",
    "ts",
)
COLUMNS_16: tuple[str, ...] = (
    "brokerCode",
    "level",
    "uid",
    "instId",
    "ordId",
    "clOrdId",
    *COLUMNS_14[4:],
)
AMOUNT_COLUMNS: tuple[str, ...] = COLUMNS_14[4:12]
"""The eight USDT amounts, written as exact decimal text (at most 10 decimals and 15 significant digits)."""

XLS_MAX_ROWS = 65_536
"""A legacy BIFF8 sheet holds at most this many rows, the header included."""

FIXED_FILE_TIME = datetime(2025, 1, 1)
"""The time pinned in zip entries and workbook properties, so the same spec gives the same bytes."""

FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
"""The days the generator covers: its order ids stay 19 digits within this range."""

MAX_ORDERS_PER_DAY = 500_000
"""Order ids hold a 19-bit index within the day."""

SHEET_TITLE = "RebateDetails"
BROKER_TYPES = ("", "api", "oauth")
BROKER_CODE_COUNTS = {"": 3, "api": 3, "oauth": 2}
USERS_PER_BROKER_TYPE = 50
MULTI_DAY_SHARE = 20
"""One order in this many (rounded up, per day) fills on two consecutive days."""

GARBAGE_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
)

Cell = str | int | float | None
"""A spreadsheet cell as written: text, a number, or blank."""

_ORD_ID_EPOCH = datetime(1999, 1, 1, tzinfo=UTC)
_ORD_ID_BASE = 10**18
_MAX_DECIMALS = 10
_MAX_DIGITS = 15
_DECIMALS = Context(prec=50, rounding=ROUND_HALF_EVEN)
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(frozen=True)
class FileSpec:
    """Everything that determines a rebate file's bytes.

    `begin` and `end` are both included, as days in `day_tz`. `broker_type` is `api`, `oauth`, or `""` for a broker
    of a single type. Rows depend only on (`seed`, `broker_type`, day, `orders_per_day`, `day_tz`), never on the
    window, so adjacent windows together hold exactly the rows of the window that covers both. Plain strings are
    accepted for the enum fields (e.g. from a query string) and converted.
    """

    begin: date
    end: date
    broker_type: str
    shape: FileShape = FileShape.CSV
    layout: Layout = Layout.COLUMNS_16
    header_style: HeaderStyle = HeaderStyle.DOCS
    seed: int = 0
    orders_per_day: int = 40
    day_tz: tzinfo = OKX_DAY_TZ

    def __post_init__(self) -> None:
        if self.end < self.begin:
            raise ValueError(f"end {self.end} is before begin {self.begin}")
        if self.begin < FIRST_DAY or self.end > LAST_DAY:
            raise ValueError(f"simulated rebate days run from {FIRST_DAY} to {LAST_DAY}")
        if str(self.broker_type) not in BROKER_TYPES:
            raise ValueError(f"broker_type {self.broker_type!r} is not 'api', 'oauth' or '' (a single-type broker)")
        if not 0 <= self.orders_per_day <= MAX_ORDERS_PER_DAY:
            raise ValueError(f"orders_per_day must be between 0 and {MAX_ORDERS_PER_DAY:,}")
        object.__setattr__(self, "broker_type", str(self.broker_type))
        object.__setattr__(self, "shape", FileShape(self.shape))
        object.__setattr__(self, "layout", Layout(self.layout))
        object.__setattr__(self, "header_style", HeaderStyle(self.header_style))


def file_columns(layout: Layout, header_style: HeaderStyle) -> tuple[tuple[str, str], ...]:
    """The file's columns in order, each as (canonical camelCase name, header text as written)."""
    layout, header_style = Layout(layout), HeaderStyle(header_style)
    names = list(COLUMNS_16 if layout is Layout.COLUMNS_16 else COLUMNS_14)
    if header_style is HeaderStyle.TITLE:
        names.remove("brokerRebate")
        names.insert(names.index("netFee"), "brokerRebate")
        return tuple((name, name[0].upper() + name[1:]) for name in names)
    if header_style is HeaderStyle.SUB_BROKER:
        return tuple((name, "subBrokerRebate" if name == "suBrokerRebate" else name) for name in names)
    return tuple((name, name) for name in names)


def build_rebate_file(spec: FileSpec) -> bytes:
    """The bytes of the rebate file `spec` describes."""
    return render(generate_rows(spec), spec)


def generate_rows(spec: FileSpec) -> list[dict[str, str]]:
    """The rows, day by day and by `ts` within a day, as the text written into a CSV (keys: `COLUMNS_16`).

    Each day has exactly `orders_per_day` new orders, plus the second day of the previous day's orders that filled
    over midnight (one in 20 per day, rounded up). Such an order has one row per day: same `ordId`, user and
    instrument, its own amounts and `ts` (the last fill that day, epoch milliseconds inside that day in `day_tz`).
    """
    rows: list[dict[str, str]] = []
    with localcontext(_DECIMALS):
        carried = _day_orders(spec, spec.begin - timedelta(days=1))[1]
        day = spec.begin
        while day <= spec.end:
            first, next_carried = _day_orders(spec, day)
            rows.extend(sorted(first + carried, key=lambda row: (int(row["ts"]), row["ordId"])))
            carried = next_carried
            day += timedelta(days=1)
    return rows


def render(rows: list[dict[str, str]], spec: FileSpec) -> bytes:
    """Write `rows` (as `generate_rows` gives them) in the shape, layout and header style of `spec`."""
    columns = file_columns(spec.layout, spec.header_style)
    header = [written for _, written in columns]
    if spec.shape in (FileShape.XLSX, FileShape.XLS):
        if spec.shape is FileShape.XLS:
            _require_xls_room(len(rows))
        cells = [[_cell(name, row[name]) for name, _ in columns] for row in rows]
        return _write_xlsx(header, cells) if spec.shape is FileShape.XLSX else _write_xls(header, cells)
    table = [[row[name] for name, _ in columns] for row in rows]
    if spec.shape is FileShape.ZIP_CSV:
        inner = _write_csv(header, table, FileShape.CSV)
        return _zip_single(f"{SHEET_TITLE}{spec.begin:%m%d}-{spec.end:%m%d}.csv", inner)
    return _write_csv(header, table, spec.shape)


def corrupt(data: bytes, how: str) -> bytes:
    """A malformed variant of a good rebate file (see `Corruption`); the shape is detected from the bytes.

    Raises ValueError for an unknown `how`, for bytes that are no rebate file, and for a fault that needs a data
    row (`bad-amount`, `float-ordid`) in a file that has none.
    """
    try:
        kind = Corruption(how)
    except ValueError:
        raise ValueError(f"unknown corruption {how!r}; expected one of {[c.value for c in Corruption]}") from None
    if kind is Corruption.GARBAGE:
        return GARBAGE_PAGE
    shape = _detect_shape(data)
    if kind is Corruption.TRUNCATE:
        return _truncate(data, shape)
    if shape is FileShape.ZIP_CSV:
        name, inner = _unzip_single(data)
        return _zip_single(name, corrupt(inner, how))
    if shape in (FileShape.XLSX, FileShape.XLS):
        header, cells = _damage(*_read_spreadsheet(data), kind, in_spreadsheet=True)
        return _write_xlsx(header, cells) if shape is FileShape.XLSX else _write_xls(header, cells)
    text_header, table = _read_csv(data)
    damaged_header, damaged = _damage(text_header, [list[Cell](row) for row in table], kind, in_spreadsheet=False)
    return _write_csv(damaged_header, [[str(cell) for cell in row] for row in damaged], shape)


# --- rows -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _User:
    uid: str
    broker_code: str
    level: str
    affiliated: bool
    sub_broker: bool


@dataclass(frozen=True)
class _Instrument:
    inst_id: str
    spot: bool
    price: Decimal
    tick: int
    """Decimals of the price."""
    lot: int
    """Decimals of the quantity."""
    fee_rates: tuple[Decimal, ...]


_SPOT = (
    ("BTC-USDT", "60000", 1, 5),
    ("ETH-USDT", "3000", 2, 4),
    ("SOL-USDT", "150", 3, 3),
    ("OKB-USDT", "45", 3, 2),
    ("DOGE-USDT", "0.15", 5, 0),
    ("XRP-USDT", "0.6", 4, 1),
)
_SWAP = (
    ("BTC-USDT-SWAP", "60000", 1, 3),
    ("ETH-USDT-SWAP", "3000", 2, 2),
    ("SOL-USDT-SWAP", "150", 3, 1),
    ("DOGE-USDT-SWAP", "0.15", 5, 0),
    ("BTC-USD-SWAP", "60000", 1, 0),
)
_FUTURES = (("BTC-USD", "60000"), ("ETH-USD", "3000"), ("BTC-USDT", "60000"))
_OPTIONS = (("BTC-USD", "60000", 5000), ("ETH-USD", "3000", 100))
_SPOT_FEES = tuple(Decimal(rate) for rate in ("0.001", "0.0008", "0.0009", "0.0006"))
_DERIVATIVE_FEES = tuple(Decimal(rate) for rate in ("0.0005", "0.0002", "0.0003", "0.00045"))
_OPTION_FEES = tuple(Decimal(rate) for rate in ("0.0003", "0.0002"))
_LEVELS = ("Lv1", "Lv1", "Lv1", "Lv2", "Lv2", "Lv3", "Lv4", "Lv5", "VIP1", "VIP2", "VIP3", "VIP4", "VIP5", "VIP8")
_REBATE_SHARES = tuple(Decimal(share) for share in ("0.2", "0.25", "0.3", "0.4", "0.5"))


def _rng(*parts: object) -> random.Random:
    """A generator seeded from a stable hash of `parts` (Python's `hash()` is salted per process)."""
    digest = hashlib.sha256("|".join(("okx-rebates-simulator", *map(str, parts))).encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


@lru_cache(maxsize=64)
def _broker_codes(seed: int, broker_type: str) -> tuple[str, ...]:
    rng = _rng(seed, broker_type, "broker-codes")
    return tuple(
        "".join(rng.choice("0123456789abcdef") for _ in range(12))
        + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
        for _ in range(BROKER_CODE_COUNTS[broker_type])
    )


@lru_cache(maxsize=64)
def _users(seed: int, broker_type: str) -> tuple[_User, ...]:
    """The broker's customers, stable across days; one in ten has no level."""
    rng = _rng(seed, broker_type, "users")
    codes = _broker_codes(seed, broker_type)
    uids: set[str] = set()
    users = []
    for index in range(USERS_PER_BROKER_TYPE):
        digits = rng.randint(15, 18)
        uid = str(rng.randint(10 ** (digits - 1), 10**digits - 1))
        while uid in uids:
            uid = str(rng.randint(10 ** (digits - 1), 10**digits - 1))
        uids.add(uid)
        users.append(
            _User(
                uid=uid,
                broker_code=codes[index % len(codes)],
                level="" if index % 10 == 0 else rng.choice(_LEVELS),
                affiliated=rng.randrange(100) < 20,
                sub_broker=rng.randrange(100) < 10,
            )
        )
    rng.shuffle(users)
    return tuple(users)


def _day_bounds(day: date, tz: tzinfo) -> tuple[int, int]:
    """The day's start in epoch milliseconds and its length in milliseconds (23 or 25 hours on a DST change)."""
    start = epoch_ms(datetime.combine(day, time(), tzinfo=tz))
    return start, epoch_ms(datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)) - start


def _day_orders(spec: FileSpec, day: date) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Orders first filled on `day`: their rows on `day`, and the next day's rows of those that fill over midnight."""
    rng = _rng(spec.seed, spec.broker_type, day.isoformat())
    users = _users(spec.seed, spec.broker_type)
    start_ms, length_ms = _day_bounds(day, spec.day_tz)
    next_start_ms, next_length_ms = _day_bounds(day + timedelta(days=1), spec.day_tz)
    count = spec.orders_per_day
    multi_day = set(rng.sample(range(count), -(-count // MULTI_DAY_SHARE)))
    first: list[dict[str, str]] = []
    second: list[dict[str, str]] = []
    for index in range(count):
        user = rng.choice(users)
        instrument = _instrument(rng, day)
        created_ms = start_ms + rng.randrange(length_ms)
        last_fill_ms = created_ms + rng.randrange(start_ms + length_ms - created_ms)
        order = {
            "brokerCode": user.broker_code,
            "level": user.level,
            "uid": user.uid,
            "instId": instrument.inst_id,
            "ordId": _ord_id(created_ms, spec.broker_type, index),
            "clOrdId": _cl_ord_id(rng),
            "affiliated": "true" if user.affiliated else "false",
        }
        first.append(_row(order, _amounts(rng, instrument, user), last_fill_ms))
        if index in multi_day:
            second.append(_row(order, _amounts(rng, instrument, user), next_start_ms + rng.randrange(next_length_ms)))
    return first, second


def _row(order: dict[str, str], amounts: dict[str, str], ts_ms: int) -> dict[str, str]:
    values = {**order, **amounts, "ts": str(ts_ms)}
    return {name: values[name] for name in COLUMNS_16}


def _ord_id(created_ms: int, broker_type: str, index: int) -> str:
    """A 19-digit id growing with time like OKX's, unique per (creation ms, broker type, index within the day)."""
    sequence = (BROKER_TYPES.index(broker_type) << 19) | index
    return str(_ORD_ID_BASE + ((created_ms - epoch_ms(_ORD_ID_EPOCH)) << 21 | sequence))


def _cl_ord_id(rng: random.Random) -> str:
    if rng.randrange(2):
        return ""
    return rng.choice("abcdefghijklmnopqrstuvwxyz") + "".join(rng.choice(_ALNUM) for _ in range(rng.randint(8, 20)))


def _instrument(rng: random.Random, day: date) -> _Instrument:
    """SPOT, SWAP, FUTURES or OPTION (about 35/45/10/10 %), with expiries that follow `day`."""
    pick = rng.randrange(100)
    if pick < 35:
        inst_id, price, tick, lot = rng.choice(_SPOT)
        return _Instrument(inst_id, True, Decimal(price), tick, lot, _SPOT_FEES)
    if pick < 80:
        inst_id, price, tick, lot = rng.choice(_SWAP)
        return _Instrument(inst_id, False, Decimal(price), tick, lot, _DERIVATIVE_FEES)
    if pick < 90:
        underlying, price = rng.choice(_FUTURES)
        inst_id = f"{underlying}-{_quarterly_expiry(day):%y%m%d}"
        return _Instrument(inst_id, False, Decimal(price), 1, 0, _DERIVATIVE_FEES)
    underlying, price, strike_step = rng.choice(_OPTIONS)
    expiry = _quarterly_expiry(day) if rng.randrange(2) else _next_friday(day)
    strike = (int(price) // strike_step + rng.randint(-4, 4)) * strike_step
    inst_id = f"{underlying}-{expiry:%y%m%d}-{strike}-{rng.choice('CP')}"
    return _Instrument(inst_id, False, Decimal(price), 1, 1, _OPTION_FEES)


def _next_friday(day: date) -> date:
    return day + timedelta(days=(4 - day.weekday()) % 7 or 7)


def _quarterly_expiry(day: date) -> date:
    """The first last-Friday-of-a-quarter-month after `day`."""
    year, month = day.year, day.month
    while True:
        if month % 3 == 0:
            following = date(year + month // 12, month % 12 + 1, 1)
            last_friday = following - timedelta(days=(following.weekday() - 4) % 7 or 7)
            if last_friday > day:
                return last_friday
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _amounts(rng: random.Random, instrument: _Instrument, user: _User) -> dict[str, str]:
    """One row's eight amounts as exact decimals: fee negative, netFee |fee| less discounts, rebates shares of it."""
    notional = _notional(rng, instrument)
    fee = _fit(-notional * rng.choice(instrument.fee_rates))
    settlement = _fit(-fee * _factor(rng, 80, 80))
    net = _fit(settlement * _factor(rng, 70, 30))
    broker_rebate = _fit(net * rng.choice(_REBATE_SHARES))
    sub_broker_rebate = _fit(net * Decimal("0.1")) if user.sub_broker else Decimal(0)
    user_rebate = _fit(net * Decimal(rng.randint(5, 20)).scaleb(-2)) if user.affiliated else Decimal(0)
    return {
        "spotTradeAmt": _text(notional if instrument.spot else Decimal(0)),
        "derivativeTradeAmt": _text(Decimal(0) if instrument.spot else notional),
        "fee": _text(fee),
        "netFee": _text(net),
        "settlementFee": _text(settlement),
        "brokerRebate": _text(broker_rebate),
        "suBrokerRebate": _text(sub_broker_rebate),
        "userRebate": _text(user_rebate),
    }


def _notional(rng: random.Random, instrument: _Instrument) -> Decimal:
    """Trade volume in USDT, price x quantity: 5 % dust (down to 1e-9), 5 % large (10^5 to 10^6), else 5 to 20,000."""
    pick = rng.randrange(100)
    if pick < 5:
        return _fit(Decimal(rng.randint(1, 99_999)).scaleb(-rng.randint(7, 9)))
    jitter = Decimal(rng.randint(9_700, 10_300)).scaleb(-4)
    price = (instrument.price * jitter).quantize(Decimal(1).scaleb(-instrument.tick))
    lot = Decimal(1).scaleb(-instrument.lot)
    low, high = (Decimal(100_000), Decimal(1_000_000)) if pick < 10 else (Decimal(5), Decimal(20_000))
    quantity = lot * rng.randint(max(1, int(low / (price * lot))), max(1, int(high / (price * lot))))
    return _fit(price * quantity)


def _factor(rng: random.Random, percent_whole: int, lowest_percent: int) -> Decimal:
    """1 with probability `percent_whole` %, else a two-decimal share from `lowest_percent` % to 99 %."""
    if rng.randrange(100) < percent_whole:
        return Decimal(1)
    return Decimal(rng.randint(lowest_percent, 99)).scaleb(-2)


def _fit(value: Decimal) -> Decimal:
    """Round half-even to at most 10 decimals and 15 significant digits, dropping trailing zeros."""
    if value.is_zero():
        return Decimal(0)
    exponent = max(-_MAX_DECIMALS, value.adjusted() - (_MAX_DIGITS - 1))
    rounded = value.quantize(Decimal(1).scaleb(exponent))
    return Decimal(0) if rounded.is_zero() else rounded.normalize()


def _text(value: Decimal) -> str:
    """Plain decimal text without exponent; zero is `0`."""
    return "0" if value.is_zero() else format(value, "f")


# --- writing and reading the shapes ---------------------------------------------------------------------------


def _spreadsheet_number(text: str) -> float:
    """The one place a float appears: a numeric spreadsheet cell for decimal text.

    Exact by construction: text of at most 15 significant digits round-trips through a double, so the cell's
    shortest repr is the same decimal value.
    """
    return float(text)


def _cell(name: str, text: str) -> Cell:
    """How a real file types a value: amounts and ts as numbers, ids and codes as text, empty as blank."""
    if text == "":
        return None
    if name in AMOUNT_COLUMNS:
        return _spreadsheet_number(text)
    if name == "ts":
        return int(text)
    return text


def _detect_shape(data: bytes) -> FileShape:
    """Which shape `data` is, from its first bytes (and, for a zip, whether it is a workbook)."""
    if data.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return FileShape.XLSX if "[Content_Types].xml" in archive.namelist() else FileShape.ZIP_CSV
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        return FileShape.XLS
    if data.startswith(b"\xef\xbb\xbf"):
        return FileShape.CSV_BOM
    if data.lstrip().startswith(b"<"):
        raise ValueError("these bytes are markup (an error page?), not a rebate file")
    return FileShape.CSV_CRLF if b"\r\n" in data else FileShape.CSV


def _write_csv(header: Sequence[str], rows: Iterable[Sequence[str]], shape: FileShape) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n" if shape is FileShape.CSV_CRLF else "\n")
    writer.writerow(header)
    writer.writerows(rows)
    prefix = b"\xef\xbb\xbf" if shape is FileShape.CSV_BOM else b""
    return prefix + buffer.getvalue().encode("utf-8")


def _read_csv(data: bytes) -> tuple[list[str], list[list[str]]]:
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    if not lines:
        raise ValueError("an empty file has no header to damage")
    return lines[0], lines[1:]


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_FILE_TIME.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _zip_single(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(_zip_info(name), content)
    return buffer.getvalue()


def _unzip_single(data: bytes) -> tuple[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        if len(names) != 1:
            raise ValueError(f"expected a zip holding one CSV, found {names}")
        return names[0], archive.read(names[0])


def _write_xlsx(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    """An .xlsx with one sheet; properties and zip entry times pinned, so the bytes depend only on the cells."""
    workbook = Workbook(write_only=True)
    workbook.properties.created = FIXED_FILE_TIME
    workbook.properties.modified = FIXED_FILE_TIME
    workbook.properties.creator = "OKX"
    sheet = workbook.create_sheet(SHEET_TITLE)
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    written = io.BytesIO()
    # ExcelWriter rather than Workbook.save, which stamps `modified` with the current time; then the zip entries'
    # times (openpyxl takes the clock's) are pinned by copying them into a fresh archive.
    ExcelWriter(workbook, zipfile.ZipFile(written, "w", zipfile.ZIP_DEFLATED)).save()
    pinned = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(written.getvalue())) as source, zipfile.ZipFile(pinned, "w") as target:
        for name in source.namelist():
            target.writestr(_zip_info(name), source.read(name))
    return pinned.getvalue()


def _require_xls_room(data_rows: int) -> None:
    if data_rows + 1 > XLS_MAX_ROWS:
        raise ValueError(
            f"an .xls sheet holds at most {XLS_MAX_ROWS:,} rows; this file needs {data_rows + 1:,}: "
            "use a shorter window, fewer orders per day, or another shape"
        )


def _write_xls(header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> bytes:
    """A legacy BIFF8 .xls with one sheet (at most 65,536 rows, the header included)."""
    _require_xls_room(len(rows))
    workbook = xlwt.Workbook(encoding="utf-8")
    sheet = workbook.add_sheet(SHEET_TITLE)
    for row_index, row in enumerate([list[Cell](header), *rows]):
        for column_index, value in enumerate(row):
            if value is not None:
                sheet.write(row_index, column_index, value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _read_spreadsheet(data: bytes) -> tuple[list[str], list[list[Cell]]]:
    """The header and the cells of a workbook's first sheet, as calamine types them."""
    frame = fastexcel.read_excel(data).load_sheet(0, header_row=0, schema_sample_rows=None).to_polars()
    return [str(name) for name in frame.columns], [list(row) for row in frame.rows()]


# --- damage ---------------------------------------------------------------------------------------------------


def _damage(
    header: list[str], rows: list[list[Cell]], kind: Corruption, *, in_spreadsheet: bool
) -> tuple[list[str], list[list[Cell]]]:
    """Apply a table-level fault (bad-amount, float-ordid, missing-column) to a copy of the header and rows."""
    header, rows = list(header), [list(row) for row in rows]
    if kind is Corruption.MISSING_COLUMN:
        drop = _column_index(header, "netFee")
        return header[:drop] + header[drop + 1 :], [row[:drop] + row[drop + 1 :] for row in rows]
    if kind not in (Corruption.BAD_AMOUNT, Corruption.FLOAT_ORDID):
        raise ValueError(f"{kind.value!r} is not a table-level fault")
    if not rows:
        raise ValueError(f"{kind.value!r} needs a data row, and this file has none")
    middle = len(rows) // 2
    if kind is Corruption.BAD_AMOUNT:
        rows[middle][_column_index(header, "fee")] = "abc"
        return header, rows
    column = _column_index(header, "ordId")
    row = next((row for row in rows[middle:] + rows[:middle] if not _fits_a_double(str(row[column]))), rows[middle])
    ord_id = str(row[column])
    row[column] = _spreadsheet_number(ord_id) if in_spreadsheet else _as_spreadsheet_shows(ord_id)
    return header, rows


def _fits_a_double(ord_id: str) -> bool:
    """Whether a spreadsheet's float keeps this id exactly (some ids are multiples of the double's spacing)."""
    return int(_spreadsheet_number(ord_id)) == int(ord_id)


def _column_index(header: Sequence[str], name: str) -> int:
    wanted = name.lower()
    for index, written in enumerate(header):
        if written.strip().lower() == wanted:
            return index
    raise ValueError(f"the file has no {name} column to damage")


def _as_spreadsheet_shows(ord_id: str) -> str:
    """An id as a spreadsheet displays a number: 15 significant digits, e.g. `2.87719838462505E+18`."""
    mantissa, exponent = f"{Decimal(ord_id):.14E}".split("E")
    return f"{mantissa.rstrip('0').rstrip('.')}E{exponent}"


_LINE = re.compile(rb"[^\r\n]*")


def _truncate(data: bytes, shape: FileShape) -> bytes:
    """Cut the bytes in the middle; text is cut halfway through the line at the middle, so that row is short."""
    middle = len(data) // 2
    if shape in (FileShape.CSV, FileShape.CSV_BOM, FileShape.CSV_CRLF):
        line_start = data.rfind(b"\n", 0, middle) + 1
        line = _LINE.match(data, line_start)
        assert line is not None
        return data[: line_start + max(1, len(line.group()) // 2)]
    return data[:middle]
