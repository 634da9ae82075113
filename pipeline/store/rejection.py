"""Why a rebate file is refused: the exceptions, and the fixes and wording every reader's messages share."""

from __future__ import annotations

import polars as pl

NOT_AN_OKX_FILE = "it is not an OKX rebate-details file, or it was edited; download it again from OKX"
DAMAGED = "the file is damaged or was edited; download it again from OKX"
SPREADSHEET = "a spreadsheet stored it as a number and may have changed it; use the file exactly as OKX sent it"
SPREADSHEET_IDS = "it turned the ids into numbers and lost digits; use the file exactly as OKX sent it"


class RejectedFile(Exception):
    """The file cannot be loaded; the message is one line naming column, data row and value where relevant."""


class NotARebateFile(RejectedFile):
    """The payload is no rebate file at all (an error page, empty, cut short): a transport glitch, download it again."""


def in_part(label: str) -> str:
    return f" in {label}" if label else ""


def first_row(mask: pl.Series) -> int:
    """The 1-based data row of the first true value."""
    return int(mask.arg_true()[0]) + 1


def shorten(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"
