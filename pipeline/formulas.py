"""Text from outside (OKX's answers, rebate files) kept inert in the CSV and xlsx files the pipeline writes."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell, MergedCell

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet run a cell as a formula (OWASP's CSV injection list)."""

_NUMBER = re.compile(r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")


def neutralised(text: str) -> str:
    """CSV text a spreadsheet would run as a formula, with a leading `'` so it shows as text; real numbers untouched.

    An instrument id like `=HYPERLINK("http://…")` comes from a rebate file, a broker code from OKX's answer, that
    is from outside: opening the CSV must not run it.
    """
    if text.startswith(FORMULA_STARTS) and not _NUMBER.match(text):
        return "'" + text
    return text


def sheet_text(text: str) -> str:
    """Text a worksheet can hold: control characters (illegal in xlsx) become U+FFFD."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE  # here: only the writers of workbooks load openpyxl

    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)


def write_text(cell: Cell | MergedCell, text: str) -> None:
    """Put `text` in a worksheet cell as a string, never a formula or an error code, whatever it starts with."""
    cell.value = sheet_text(text)
    cell.data_type = "s"
