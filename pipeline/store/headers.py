"""A part's header row mapped to the frame's column names, and the part it heads (a CSV, zip member or sheet)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.columns import AMOUNT_COLUMNS
from pipeline.store.rejection import NOT_AN_OKX_FILE, RejectedFile, in_part

TEXT_COLUMNS: tuple[str, ...] = ("broker_code", "level", "uid", "inst_id", "ord_id", "cl_ord_id")
"""Columns kept as text; in a spreadsheet their cells must be text cells."""
OPTIONAL_COLUMNS = frozenset({"uid", "cl_ord_id"})
"""Columns only the newer 16-column layout has."""
NUMBER_COLUMNS = frozenset({*AMOUNT_COLUMNS, "ts"})


_DOCS_HEADERS: dict[str, str] = {
    "broker_code": "brokerCode",
    "level": "level",
    "uid": "uid",
    "inst_id": "instId",
    "ord_id": "ordId",
    "cl_ord_id": "clOrdId",
    "spot_trade_amt": "spotTradeAmt",
    "derivative_trade_amt": "derivativeTradeAmt",
    "fee": "fee",
    "net_fee": "netFee",
    "settlement_fee": "settlementFee",
    "broker_rebate": "brokerRebate",
    "sub_broker_rebate": "suBrokerRebate",
    "user_rebate": "userRebate",
    "affiliated": "affiliated",
    "ts": "ts",
}
"""Each column's header in OKX's docs, which name the sub-broker rebate `suBrokerRebate`."""
_HEADER_NAMES: dict[str, str] = {
    **{written.lower(): name for name, written in _DOCS_HEADERS.items()},
    "subbrokerrebate": "sub_broker_rebate",
}
"""Header (trimmed, lower case) to column name."""
EXTRA = "extra:"
NAMELESS = "nameless:"


@dataclass(frozen=True)
class FilePart:
    """One CSV, zip member or sheet of a rebate file, its header checked, its rows not read yet."""

    label: str
    """`zip member 'a.csv'`, `sheet 'Rebates'`, or empty for the file itself."""
    headers: tuple[str, ...]
    names: dict[str, str]
    """Column name (a name from `FRAME_SCHEMA`, `extra:<header>` or `nameless:<position>`) to its header, trimmed."""
    csv_path: Path | None = None
    """The CSV text on disk (a CSV file, or a zip member copied out); None for a sheet."""
    sheet: pl.DataFrame | None = None
    """A sheet's cells as text (a sheet holds at most 1,048,576 rows, so this is bounded)."""
    many: bool = False
    """Whether the file has more than one part (messages then give the row within the part too)."""

    @property
    def known_columns(self) -> bool:
        """Whether every column is one of OKX's (none kept in `extra`, none nameless)."""
        return all(not name.startswith((EXTRA, NAMELESS)) for name in self.names)


def column_names(headers: Sequence[str], label: str) -> list[str]:
    """Each header's column name; rejects a duplicated header or a missing required column."""
    names: list[str] = []
    first_seen: dict[str, int] = {}
    for position, written in enumerate(headers, start=1):
        header = written.strip()
        if not header:
            names.append(f"{NAMELESS}{position}")
            continue
        name = _HEADER_NAMES.get(header.lower(), f"{EXTRA}{header}")
        key = name.lower()
        if key in first_seen:
            other = headers[first_seen[key] - 1].strip()
            same = f"{header!r}" if other == header else f"{other!r} and {header!r}"
            raise RejectedFile(
                f"the header names column {same} twice{in_part(label)} (columns {first_seen[key]} and {position}): "
                f"{NOT_AN_OKX_FILE}"
            )
        first_seen[key] = position
        names.append(name)
    missing = [_DOCS_HEADERS[name] for name in _DOCS_HEADERS if name not in names and name not in OPTIONAL_COLUMNS]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        found = ", ".join(header.strip() for header in headers) or "none"
        raise RejectedFile(
            f"the file has no {', '.join(missing)} column{plural}{in_part(label)} (its columns: {found}): "
            + NOT_AN_OKX_FILE
        )
    return names


def file_part(label: str, headers: Sequence[str], names: Sequence[str], **where: Any) -> FilePart:
    return FilePart(
        label=label,
        headers=tuple(headers),
        names={name: header.strip() for name, header in zip(names, headers, strict=True)},
        **where,
    )
