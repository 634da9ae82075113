"""How query records become report tables: every column named once (with its unit), Total rows and their notes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Context, Decimal
from typing import Any

from pipeline.columns import AMOUNT_COLUMNS
from pipeline.report.model import EXACT, TOTAL, Cell, Column, Kind, Missing, Table, exact_sum

RATE_QUANTUM = Decimal("1E-10")
_DIVISION = Context(prec=28)
_QUANTIZING = Context(prec=60)
"""Wide enough that quantizing any quotient of two DECIMAL(38,18) sums to 1E-10 never overflows."""

AMOUNT_LABELS: dict[str, str] = {
    "spot_trade_amt": "Spot volume",
    "derivative_trade_amt": "Derivative volume",
    "fee": "Fee",
    "net_fee": "Net fee",
    "settlement_fee": "Settlement fee",
    "broker_rebate": "Broker rebate",
    "sub_broker_rebate": "Sub-broker rebate",
    "user_rebate": "User rebate",
}
"""Each amount column (pipeline.columns) as people read it; the unit is added where the label is used."""

UNIT = "USDT"


def ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    """The ratio of two sums to 28 digits, quantized to 1E-10 (`RATE_QUANTUM`); None when the denominator is 0."""
    if denominator == 0:
        return None
    quotient = _DIVISION.divide(Decimal(numerator), Decimal(denominator))
    return quotient.quantize(RATE_QUANTUM, context=_QUANTIZING)


def amount_column(key: str, *, side: str = "", detail: bool = False) -> Column:
    """An amount's column: `broker_rebate_usdt`, "Broker rebate (USDT)"; with `side` ("in files"), both say it."""
    label = AMOUNT_LABELS[key] + (f" {side}" if side else "")
    name = key + ("_" + side.replace(" ", "_") if side else "")
    return Column(f"{name}_{UNIT.lower()}", f"{label} ({UNIT})", Kind.AMOUNT, detail)


RECONCILIATION_SHOWN = ("net_fee", "broker_rebate")
"""The amounts a report's reconciliation card shows file against database; the CSV has all eight."""

RECONCILED_SHOWN = ("net_fee", "broker_rebate", "sub_broker_rebate", "user_rebate")
"""The amounts a statement's reconciliation shows from the files; the CSV has all eight from both sides."""


def _registry() -> dict[str, Column]:
    plain = (
        Column("day", "Day", Kind.DATE),
        Column("month", "Month", Kind.MONTH),
        Column("account", "Account", Kind.TEXT),
        Column("broker_code", "Broker code", Kind.TEXT),
        Column("broker_type", "Broker type", Kind.TEXT),
        Column("broker_codes", "Broker codes", Kind.TEXT),
        Column("uid", "User (uid)", Kind.TEXT),
        Column("instrument_type", "Instrument type", Kind.TEXT),
        Column("instrument", "Instrument", Kind.TEXT),
        Column("user_level", "User level", Kind.TEXT),
        Column("affiliated", "Affiliated rebate", Kind.BOOLEAN),
        Column("orders", "Orders", Kind.INTEGER),
        Column("users", "Users", Kind.INTEGER),
        Column("active_broker_codes", "Active broker codes", Kind.INTEGER),
        Column("active_users", "Active users", Kind.INTEGER),
        Column("effective_rate_pct", "Effective rate", Kind.RATE),
        Column("share_pct", "Share of broker rebate", Kind.RATE),
        Column("data_complete", "Data complete", Kind.TEXT),
        Column("data", "Data", Kind.TEXT),
        # The reconciliations' (a report's per window, a statement's per day) and the source files'.
        Column("file", "File", Kind.TEXT),
        Column("files", "Files", Kind.TEXT),
        Column("file_name", "File name", Kind.TEXT),
        Column("sha256", "SHA-256", Kind.TEXT),
        Column("days", "Days in this period", Kind.TEXT),
        Column("rows_in_file", "Rows in file", Kind.INTEGER),
        Column("rows_in_database", "Rows in database", Kind.INTEGER),
        Column("rows_in_files", "Rows in files", Kind.INTEGER),
        Column("rows_in_statement", "Rows in statement", Kind.INTEGER),
        Column("matches", "Matches", Kind.BOOLEAN),
        Column("differences", "Differences", Kind.TEXT),
    )
    found = {column.name.removesuffix("_pct"): column for column in plain}
    found |= {
        "file_name_detail": Column("file_name", "File name", Kind.TEXT, detail=True),
        "sha256_detail": Column("sha256", "SHA-256", Kind.TEXT, detail=True),
        "unchanged": Column("unchanged_since_load", "Unchanged since loaded", Kind.BOOLEAN),
    }
    for key in AMOUNT_COLUMNS:
        found[key] = amount_column(key)
        found[f"{key}_previous"] = amount_column(key, side="previous")
        found[f"{key}_change"] = amount_column(key, side="change")
        found[f"{key}_change_pct"] = Column(f"{key}_change_pct", f"{AMOUNT_LABELS[key]} change %", Kind.RATE)
        found[f"{key}_in_file"] = amount_column(key, side="in file", detail=key not in RECONCILIATION_SHOWN)
        found[f"{key}_in_database"] = amount_column(key, side="in database", detail=key not in RECONCILIATION_SHOWN)
        found[f"{key}_in_files"] = amount_column(key, side="in files", detail=key not in RECONCILED_SHOWN)
        found[f"{key}_in_statement"] = amount_column(key, side="in statement", detail=True)
    return found


COLUMNS = _registry()
"""Every column by key: a query's column name (`trade_date` is `day`, `inst_type` is `instrument_type`), an
amount column's name (`broker_rebate`, written `broker_rebate_usdt`) or a rate's (`share`, written `share_pct`)."""

QUERY_NAMES = {"trade_date": "day", "inst_type": "instrument_type", "inst_id": "instrument", "level": "user_level"}
"""Query columns whose report column is named for people."""


def keyed(record: Mapping[str, Any]) -> dict[str, Any]:
    """A query record with its keys as `COLUMNS` names them (`trade_date` becomes `day`, ...)."""
    return {QUERY_NAMES.get(key, key): value for key, value in record.items()}


def columns(keys: Iterable[str]) -> tuple[Column, ...]:
    """The registered columns for these keys, in order."""
    return tuple(COLUMNS[key] for key in keys)


def rows_of(keys: Sequence[str], records: Iterable[Mapping[str, Any]]) -> tuple[tuple[Cell, ...], ...]:
    """Each record as a row of the columns `keys` (records keyed as `COLUMNS` names them)."""
    return tuple(tuple(record[key] for key in keys) for record in records)


def with_rates(records: Iterable[Mapping[str, Any]], period_broker_rebate: Decimal) -> list[dict[str, Any]]:
    """Each record with its effective rate (broker rebate / net fee) and its share of the period's broker rebate."""
    return [
        {
            **record,
            "effective_rate": ratio(record["broker_rebate"], record["net_fee"]),
            "share": ratio(record["broker_rebate"], period_broker_rebate),
        }
        for record in records
    ]


def users_cell(users: int | None, rows: int) -> Cell:
    """A users count as shown: `n/a` where rows exist but none carries a uid, else the count (0 without rows)."""
    if users is None:
        return Missing.NOT_AVAILABLE if rows else 0
    return users


def total_row(
    keys: Sequence[str], records: Sequence[Mapping[str, Any]], counts: Mapping[str, Cell], label: str = TOTAL
) -> tuple[Cell, ...]:
    """The Total row of columns `keys`: `label` first, each amount summed exactly, each count from `counts` (the
    period's distinct orders or users, which rows may overlap in), a rate over the totals, text columns empty."""
    sums = {key: column_sum(record[key] for record in records) for key in keys if key in AMOUNT_COLUMNS}
    row: list[Cell] = [label]
    for key in keys[1:]:
        if key in sums:
            row.append(sums[key])
        elif key in counts:
            row.append(counts[key])
        elif key == "effective_rate":
            row.append(ratio(sums["broker_rebate"], sums["net_fee"]))
        elif key == "share":
            row.append(Decimal(1) if sums["broker_rebate"] != 0 else None)
        else:
            row.append(None)
    return tuple(row)


def count_note(records: Sequence[Mapping[str, Any]], total: Mapping[str, Cell], key: str, what: str, why: str) -> str:
    """One plain sentence when a count's rows add up to more than its Total (which counts each once), else ``."""
    counted = [record[key] for record in records if isinstance(record[key], int) and not isinstance(record[key], bool)]
    shown = total.get(key)
    if not isinstance(shown, int) or isinstance(shown, bool) or sum(counted) == shown:
        return ""
    return (
        f" The Total counts each {what} once ({shown:,}); the rows add up to {sum(counted):,} because {why}. "
        "The amounts add up exactly."
    )


def table(
    name: str,
    title: str,
    keys: Sequence[str],
    records: Sequence[Mapping[str, Any]],
    note: str,
    *,
    total: tuple[Cell, ...] | None = None,
    **options: Any,
) -> Table:
    """A `Table` of the registered columns `keys` from records keyed as `COLUMNS` names them."""
    return Table(name, title, columns(keys), rows_of(keys, records), note, total=total, **options)


def change(now: Cell, before: Cell) -> tuple[Cell, Cell]:
    """The change from `before` to `now` and the change over `before`'s size (a ratio, None from zero).

    `Missing` on either side (no data, n/a) makes both that; counts stay ints, amounts exact Decimals.
    """
    for side in (before, now):
        if isinstance(side, Missing):
            return side, side
    if not isinstance(now, int | Decimal) or not isinstance(before, int | Decimal):
        return None, None
    difference: int | Decimal
    if isinstance(now, int) and isinstance(before, int):
        difference = now - before
    else:
        difference = EXACT.subtract(Decimal(now), Decimal(before))
    return difference, ratio(difference, EXACT.abs(Decimal(before)))


def rate_change(now: Cell, before: Cell) -> Cell:
    """The change of a rate, in rate points (a Decimal ratio; shown in percentage points), or why there is none."""
    if isinstance(before, Missing):
        return before
    if isinstance(now, Decimal) and isinstance(before, Decimal):
        return EXACT.subtract(now, before)
    return None


def column_sum(values: Iterable[Cell]) -> Decimal:
    """The exact sum of a column's Decimal cells (text and None skipped)."""
    return exact_sum(value for value in values if isinstance(value, Decimal))


def first_rows(
    records: Sequence[Mapping[str, Any]], count: int, rest: Callable[[Sequence[Mapping[str, Any]]], Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The first `count` records and, when there are more, one record adding up the rest (`rest` builds it)."""
    if len(records) <= count:
        return list(records)
    return [*records[:count], rest(records[count:])]
