"""The simulator's file options and port, light enough for `rebates --help` to list without loading the simulator."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

DEFAULT_PORT = 8765
"""Where `rebates simulator` listens on 127.0.0.1 by default."""

ROTATE: Literal["rotate"] = "rotate"
"""A file option that picks a value per range, deterministically, from all the choices."""


class FileShape(StrEnum):
    """How the bytes behind a `fileHref` are laid out; clients must detect it from the first bytes."""

    CSV = "csv"
    CSV_BOM = "csv-bom"
    CSV_CRLF = "csv-crlf"
    ZIP_CSV = "zip"
    XLSX = "xlsx"
    XLS = "xls"


class Layout(StrEnum):
    """Which column set the file has: the older docs' 14 or the newer docs' 16 (adds uid and clOrdId)."""

    COLUMNS_14 = "14"
    COLUMNS_16 = "16"


class HeaderStyle(StrEnum):
    """How the header row spells and orders the columns."""

    DOCS = "docs"
    """camelCase, in the docs' order."""
    TITLE = "title"
    """TitleCase, with brokerRebate moved before netFee (seen in a real client)."""
    SUB_BROKER = "sub-broker"
    """The docs' order, but `subBrokerRebate` instead of the docs' `suBrokerRebate`."""
