"""The row rules, one definition for both readers, and the Polars checks and casts that apply them to a batch."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal, localcontext

import polars as pl

from pipeline.columns import AMOUNT_COLUMNS
from pipeline.sqlfiles import sql_literal
from pipeline.store.headers import EXTRA, NAMELESS, TEXT_COLUMNS, FilePart
from pipeline.store.rejection import (
    DAMAGED,
    NOT_AN_OKX_FILE,
    SPREADSHEET_IDS,
    RejectedFile,
    shorten,
)

AMOUNT_DTYPE = pl.Decimal(38, 18)
"""DuckDB's DECIMAL(38,18): at most `MAX_INTEGER_DIGITS` integer digits and `MAX_DECIMAL_PLACES` decimal places."""

FRAME_SCHEMA = pl.Schema(
    {
        "source_row": pl.Int64(),
        **{name: pl.String() for name in TEXT_COLUMNS},
        **{name: AMOUNT_DTYPE for name in AMOUNT_COLUMNS},
        "affiliated": pl.Boolean(),
        "ts": pl.Datetime("ms", "UTC"),
        "trade_date": pl.Date(),
        "extra": pl.String(),
    }
)
"""The parsed frame's columns, in order."""


# --- the row rules: one definition for this module's checks and for DuckDB's fast path ----------------------------
# The exact reader below checks a batch with Polars and names the first row that breaks a rule. The fast path
# (sql/load/insert_csv.sql, sql/load/plain_amount.sql) checks the same rules in DuckDB as it reads a CSV, from
# `{rules.<name>}` placeholders that `fast_path_sql` fills from here, and stops with error() at a value that breaks
# one; the load then reads the file here, which loads it or names the row. Where the fast path is stricter on
# purpose (`ValueRule.fast`), a value it refuses is still loaded, by the exact reader.


@dataclass(frozen=True)
class ValueRule:
    """The text one column's values must be: `pattern`, matched whole (Rust's regex and DuckDB's RE2 agree on it)."""

    pattern: str
    problem: str
    """Ends the message naming a value that breaks the rule: `not an order id (digits only): <what to do>`."""
    fast: str | None = None
    """A stricter pattern the fast path takes instead, on purpose; None when it takes `pattern`."""

    @property
    def fast_pattern(self) -> str:
        return self.pattern if self.fast is None else self.fast


REQUIRED_VALUES: tuple[str, ...] = ("broker_code", "inst_id", "ord_id", *AMOUNT_COLUMNS, "affiliated", "ts")
"""Columns where an empty value rejects the file. DuckDB's reader reads an empty value as NULL, which each fast-path
check below refuses, and rebate_details' NOT NULL refuses for brokerCode and instId."""
REQUIRED_PROBLEM = f"but every row needs a value: {DAMAGED}"

ORD_ID = ValueRule(r"[0-9]+", f"not an order id (digits only): if a spreadsheet saved the file, {SPREADSHEET_IDS}")

AFFILIATED_FLAGS = {"true": True, "false": False}
"""The values of `affiliated`, compared in lower case (a spreadsheet writes TRUE)."""
AFFILIATED_PROBLEM = f"not true or false: {DAMAGED}"

TS = ValueRule(
    r"[0-9]{1,18}",
    f"not epoch milliseconds: {DAMAGED}",
    fast=r"[0-9]{13}",  # every plausible time has 13 digits: one written with leading zeros goes to the exact reader
)
MIN_TS_MS = 1_420_070_400_000
"""2015-01-01 UTC in epoch milliseconds: no OKX broker rebate is older."""
MAX_TS_MS = 4_102_444_800_000
"""2100-01-01 UTC: a later `ts` is not a time OKX wrote. The fast path checks both bounds with the window's
(`fast_path_ts_range`)."""
_PLAUSIBLE_TS_TEXT = "2015-01-01 and 2100-01-01"

MAX_INTEGER_DIGITS = 20
MAX_DECIMAL_PLACES = 18
MAX_EXPONENT = 60
"""The largest exponent an amount in scientific notation may have (`1e-60`), whatever its digits."""
AMOUNT = ValueRule(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", f"not a decimal number: {DAMAGED}")
"""Decimal text, maybe in scientific notation; its value must also fit DECIMAL(38,18) exactly (`AMOUNT_TOO_PRECISE`).
The fast path takes every such text (plain_amount.sql), and refuses the same values."""
AMOUNT_TOO_PRECISE = (
    f"which has more than {MAX_DECIMAL_PLACES} decimal places or {MAX_INTEGER_DIGITS} integer digits, "
    "so DECIMAL(38,18) cannot hold it exactly: report the file to OKX"
)
AMOUNT_PARTS = r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?"
"""An `AMOUNT` text's sign, digits before and after the point, and exponent (groups 1 to 4)."""
AMOUNT_AS_WRITTEN = rf"-?[0-9]{{1,{MAX_INTEGER_DIGITS}}}(?:\.[0-9]{{1,{MAX_DECIMAL_PLACES}}})?"
"""An amount the fast path casts as written (nearly every value): no exponent, no zeros beyond the limits."""


def fast_path_sql(template: str) -> str:
    """A fast-path statement with each `{rules.<name>}` placeholder written as the SQL literal of that rule above."""
    return _RULE_PLACEHOLDER.sub(lambda match: _FAST_PATH_LITERALS[match.group(1)], template)


def fast_path_ts_range(window: tuple[date, date], offset: timedelta) -> tuple[int, int]:
    """The first and last epoch millisecond the fast path takes in `ts`: plausible (`MIN_TS_MS`..`MAX_TS_MS`), and
    its trade date at the fixed `offset` inside `window`. So one comparison a row checks both rules."""
    after = window[1] + timedelta(days=1)
    return max(_day_start_ms(window[0], offset), MIN_TS_MS), min(_day_start_ms(after, offset) - 1, MAX_TS_MS)


def _day_start_ms(day: date, offset: timedelta) -> int:
    """The epoch millisecond at which `day` begins at the fixed `offset` from UTC."""
    return (datetime.combine(day, time(), UTC) - offset - _EPOCH) // timedelta(milliseconds=1)


_RULE_PLACEHOLDER = re.compile(r"\{rules\.([a-z_]+)\}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FAST_PATH_LITERALS = {
    "ord_id": sql_literal(ORD_ID.fast_pattern),
    "ts": sql_literal(TS.fast_pattern),
    **{f"affiliated_{text}": sql_literal(text) for text in AFFILIATED_FLAGS},
    "amount": sql_literal(AMOUNT.fast_pattern),
    "amount_parts": sql_literal(f"^{AMOUNT_PARTS}$"),
    "amount_as_written": sql_literal(AMOUNT_AS_WRITTEN),
    "max_integer_digits": str(MAX_INTEGER_DIGITS),
    "max_decimal_places": str(MAX_DECIMAL_PLACES),
    "max_exponent": str(MAX_EXPONENT),
}
"""Each placeholder's SQL literal; a placeholder not listed here fails the statement's rendering (KeyError)."""


# --- the exact reader's checks and casts -------------------------------------------------------------------------

SAMPLE_ROWS = 256
"""How many values per column are re-read with Python (`Decimal`, `repr`) to confirm Polars' conversions."""

_TOTAL_DIGITS = MAX_INTEGER_DIGITS + MAX_DECIMAL_PLACES
_TOTAL_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS
TOTAL_TOO_LARGE = "an amount column's total is beyond DECIMAL(38,18) (over 20 integer digits): report the file to OKX"
_USUAL_AMOUNT = (
    rf"^[+-]?(?:0*[0-9]{{1,{MAX_INTEGER_DIGITS}}}(?:\.[0-9]{{0,{MAX_DECIMAL_PLACES}}}0*)?"
    rf"|0*\.[0-9]{{1,{MAX_DECIMAL_PLACES}}}0*)$"
)
"""A plain decimal that DECIMAL(38,18) holds exactly (leading and trailing zeros aside): such an amount needs no
digit count (`_unusual_amount_failures`)."""


def _whole(pattern: str) -> str:
    """A rule's pattern anchored for Polars' `str.contains`."""
    return f"^(?:{pattern})$"


def add_totals(sums: dict[str, Decimal], totals: dict[str, Decimal]) -> None:
    """Add a batch's `totals` to `sums`, exactly; a sum past DECIMAL(38,18) rejects the file."""
    with localcontext() as exact:
        exact.prec = 2 * _TOTAL_DIGITS
        for name, value in totals.items():
            total = sums[name] + value
            if abs(total) >= _TOTAL_LIMIT:
                raise RejectedFile(TOTAL_TOO_LARGE)
            sums[name] = total


@dataclass(frozen=True)
class _Rows:
    """Names a data row for a message: its number in the whole file, and in its zip member or sheet."""

    part: FilePart
    start: int
    """The file's row number of the part's first row."""

    def describe(self, row: int) -> str:
        if not self.part.label:
            return f"data row {row}"
        own = f", its row {row - self.start + 1}" if self.part.many else ""
        return f"data row {row} ({self.part.label}{own})"


@dataclass(frozen=True)
class _Check:
    """One way a column's value can be wrong: `bad` is true on the rows that break it."""

    name: str
    bad: pl.Expr
    problem: str
    """Ends the message after the value, e.g. `not a decimal number: <what to do>`."""


def typed_batch(
    text: pl.DataFrame, part: FilePart, first: int, start: int, tz: tzinfo, window: tuple[date, date] | None
) -> tuple[pl.DataFrame, int]:
    """Validate a batch of text columns (vectorised) and cast it to `FRAME_SCHEMA`; raise on its first bad row.

    `first` is the file's row number of the batch's first row, `start` that of its part's. Returns the typed batch
    and how many blank rows it skipped.
    """
    names, rows = part.names, _Rows(part, start)
    text = text.with_columns(source_row=pl.int_range(first, first + text.height, dtype=pl.Int64))
    data_columns = [name for name in text.columns if name != "source_row"]
    blank_rows = 0
    if text.height:
        blank_row = pl.all_horizontal(_blank(name) for name in data_columns)
        blank_rows = text.select(blank_row.sum()).item()
        if blank_rows:
            text = text.filter(~blank_row)
    _validate(text, names, rows)
    extras = [name for name in data_columns if name.startswith(EXTRA)]
    ts = pl.col("ts").cast(pl.Int64).cast(pl.Datetime("ms", "UTC"))
    parsed = text.select(
        pl.col("source_row"),
        *(_text_or_null(name, name in text.columns) for name in TEXT_COLUMNS),
        *(_cast_amount(pl.col(name)).alias(name) for name in AMOUNT_COLUMNS),
        pl.col("affiliated")
        .str.to_lowercase()
        .replace_strict(AFFILIATED_FLAGS, return_dtype=pl.Boolean)
        .alias("affiliated"),
        ts.alias("ts"),
        _local_date(ts, tz).alias("trade_date"),
        _extra_json(extras, names).alias("extra"),
    )
    if window is not None:
        _check_window(parsed, text, names, rows, window, tz)
    _confirm_amounts(text, parsed, names)
    return parsed, blank_rows


def _check_window(
    parsed: pl.DataFrame,
    text: pl.DataFrame,
    names: dict[str, str],
    rows: _Rows,
    window: tuple[date, date],
    tz: tzinfo,
) -> None:
    """Reject the batch's first row whose trade_date is outside the window, naming the likely cause."""
    outside = ~parsed["trade_date"].is_between(window[0], window[1])
    if not outside.any():
        return
    position = int(outside.arg_true()[0])
    day: date = parsed["trade_date"][position]
    near = min(abs((day - window[0]).days), abs((day - window[1]).days)) <= 1
    cause = (
        f"a row just past the window's edge: check REBATES_TZ ({tz}; OKX's days are UTC+8 days)"
        if near
        else "the file covers other days than the window: is it the right file for this window?"
    )
    raise RejectedFile(
        f"{names['ts']} in {rows.describe(text['source_row'][position])} is {text['ts'][position]!r}, "
        f"trade date {day}, outside the window {window[0]}..{window[1]}: {cause}"
    )


def _blank(name: str) -> pl.Expr:
    return pl.col(name).is_null() | (pl.col(name).str.len_bytes() == 0)


def _validate(text: pl.DataFrame, names: dict[str, str], rows: _Rows) -> None:
    """Raise `RejectedFile` for the earliest row that breaks a rule (the leftmost rule on that row).

    One vectorised pass evaluates every cheap rule; the costlier digit count of an amount runs only on the rows of
    a column that are not plain decimals of the usual size (scientific notation, or too long).
    """
    if not text.height:
        return
    checks = _checks(names)
    flags = text.select(check.bad.any().alias(str(index)) for index, check in enumerate(checks)).row(0)
    broken = [check for check, failed in zip(checks, flags, strict=True) if failed]
    failures: list[tuple[int, int, _Check]] = []
    if broken:
        firsts = text.select(check.bad.arg_true().first().alias(str(index)) for index, check in enumerate(broken))
        failures = [
            (position, index, check) for index, (position, check) in enumerate(zip(firsts.row(0), broken, strict=True))
        ]
    amounts = [name for name in names if name in AMOUNT_COLUMNS]
    unusual = text.select((~_blank(name) & ~pl.col(name).str.contains(_USUAL_AMOUNT)).alias(name) for name in amounts)
    for name, mask in zip(amounts, unusual.iter_columns(), strict=True):
        if mask.any():
            failures.extend(_unusual_amount_failures(text[name], mask, len(failures)))
    if failures:
        position, _, check = min(failures, key=lambda failure: failure[:2])
        header = names.get(check.name) or f"column {check.name.removeprefix(NAMELESS)}"
        value = text[check.name][position]
        shown = "empty" if value is None or value == "" else shorten(value)
        raise RejectedFile(f"{header} in {rows.describe(text['source_row'][position])} is {shown}, {check.problem}")


def _unusual_amount_failures(amounts: pl.Series, unusual: pl.Series, order: int) -> list[tuple[int, int, _Check]]:
    """The first row of an amount column that is not a number, and the first with too many digits.

    Only the rows that are not plain decimals of the usual size are examined (`unusual`), so scientific notation
    costs little and a well-formed file costs nothing here.
    """
    name = amounts.name
    column = pl.col(name)
    is_number = column.str.contains(_whole(AMOUNT.pattern))
    checks = [
        _Check(name, ~is_number, AMOUNT.problem),
        _Check(name, is_number & ~_fits_decimal(column), AMOUNT_TOO_PRECISE),
    ]
    subset = pl.DataFrame([unusual.arg_true().alias("position"), amounts.filter(unusual)])
    firsts = subset.select(
        pl.col("position").filter(check.bad).first().alias(str(index)) for index, check in enumerate(checks)
    ).row(0)
    return [
        (position, order + index, check)
        for index, (position, check) in enumerate(zip(firsts, checks, strict=True))
        if position is not None
    ]


def _checks(names: dict[str, str]) -> list[_Check]:
    """The cheap rules on the values, in the file's column order."""
    checks: list[_Check] = []
    for name in names:
        column, present = pl.col(name), ~_blank(name)
        if name in REQUIRED_VALUES:
            checks.append(_Check(name, _blank(name), REQUIRED_PROBLEM))
        if name == "ord_id":
            checks.append(_Check(name, present & ~column.str.contains(_whole(ORD_ID.pattern)), ORD_ID.problem))
        elif name == "affiliated":
            is_flag = column.str.to_lowercase().is_in(list(AFFILIATED_FLAGS))
            checks.append(_Check(name, present & ~is_flag, AFFILIATED_PROBLEM))
        elif name == "ts":
            is_ms = column.str.contains(_whole(TS.pattern))
            checks.append(_Check(name, present & ~is_ms, TS.problem))
            value = pl.when(is_ms).then(column.cast(pl.Int64, strict=False))
            plausible = f"between {_PLAUSIBLE_TS_TEXT}"
            for scale, cause in ((1000, "it looks like seconds"), (1 / 1000, "it looks like microseconds")):
                low, high = int(MIN_TS_MS / scale), int(MAX_TS_MS / scale)
                checks.append(
                    _Check(
                        name,
                        value.is_between(low, high),
                        f"not epoch milliseconds {plausible}: {cause}, not milliseconds; ask OKX for a fresh file",
                    )
                )
            checks.append(
                _Check(
                    name,
                    ~value.is_between(MIN_TS_MS, MAX_TS_MS),
                    f"not a plausible time in epoch milliseconds (expected {plausible}): {DAMAGED}",
                )
            )
        elif name.startswith(NAMELESS):
            checks.append(_Check(name, present, f"but its column has no header: {NOT_AN_OKX_FILE}"))
    return checks


def _fits_decimal(text: pl.Expr) -> pl.Expr:
    """Whether number text (maybe `1.5E-7`), its exponent applied, has at most 20 integer digits and 18 places."""
    parts = text.str.extract_groups(_whole(AMOUNT_PARTS))
    whole, fraction = parts.struct.field("2"), parts.struct.field("3").fill_null("")
    exponent = parts.struct.field("4").fill_null("0").cast(pl.Int64, strict=False)
    digits = whole + fraction
    count = digits.str.len_chars().cast(pl.Int64)
    point = whole.str.len_chars().cast(pl.Int64) + exponent
    leading = count - digits.str.strip_chars_start("0").str.len_chars().cast(pl.Int64)
    significant_end = digits.str.strip_chars_end("0").str.len_chars().cast(pl.Int64)
    fits = (leading == count) | (
        ((point - leading) <= MAX_INTEGER_DIGITS) & ((significant_end - point) <= MAX_DECIMAL_PLACES)
    )
    return (fits & (exponent.abs() <= MAX_EXPONENT)).fill_null(False)


def _cast_amount(text: pl.Expr) -> pl.Expr:
    """Validated amount text to DECIMAL(38,18); the text was checked to fit, so nothing is rounded."""
    return text.cast(AMOUNT_DTYPE)


def _confirm_amounts(text: pl.DataFrame, parsed: pl.DataFrame, names: dict[str, str]) -> None:
    """Re-read a sample of every amount column with Python's Decimal and compare it with Polars' cast."""
    if not parsed.height:
        return
    step = max(1, parsed.height // SAMPLE_ROWS)
    for name in AMOUNT_COLUMNS:
        written = text[name].gather_every(step).to_list()
        cast = parsed[name].gather_every(step).to_list()
        for source, value in zip(written, cast, strict=True):
            if Decimal(source) != value:
                raise RuntimeError(
                    f"Polars read {names[name]} {source!r} as {value}: its decimal cast is not exact in this "
                    "Polars version; use the tested one (requirements.lock)"
                )


def _text_or_null(name: str, present: bool) -> pl.Expr:
    if not present:
        return pl.lit(None, dtype=pl.String).alias(name)
    return pl.when(_blank(name)).then(None).otherwise(pl.col(name)).alias(name)


def _local_date(ts: pl.Expr, tz: tzinfo) -> pl.Expr:
    """The calendar day of `ts` in `tz`: a fixed offset by arithmetic, an IANA zone through Polars' zone data."""
    offset = tz.utcoffset(None)
    if offset is not None:
        return (ts + pl.duration(milliseconds=offset // timedelta(milliseconds=1))).dt.date()
    key = getattr(tz, "key", None)
    if not isinstance(key, str):
        raise TypeError(f"tz must be a fixed offset or a zoneinfo.ZoneInfo, not {tz!r}")
    return ts.dt.convert_time_zone(key).dt.date()


def _extra_json(extras: Sequence[str], names: dict[str, str]) -> pl.Expr:
    if not extras:
        return pl.lit(None, dtype=pl.String)
    return pl.struct(_text_or_null(name, present=True).alias(names[name]) for name in extras).struct.json_encode()


def amount_totals(frame: pl.DataFrame) -> dict[str, Decimal]:
    try:
        sums = frame.select(pl.col(name).sum() for name in AMOUNT_COLUMNS).row(0)
    except pl.exceptions.ComputeError:
        raise RejectedFile(TOTAL_TOO_LARGE) from None
    return {name: Decimal(value) for name, value in zip(AMOUNT_COLUMNS, sums, strict=True)}
