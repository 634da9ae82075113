"""Find the xlsx number cells whose stored text a double cannot carry, while the workbook is inflated."""

from __future__ import annotations

import math
import posixpath
import re
import threading
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from xml.etree import ElementTree

from pipeline.store.inflate import member_chunks

__all__ = [
    "SheetNumbers",
    "SheetScanner",
    "StoredNumber",
    "UnreadableSheet",
    "changed_by_a_double",
    "scan_workbook",
    "worksheet_members",
]

MAX_CELL_BYTES = 8 << 20
"""No cell of a real sheet comes near this (Excel caps a cell's text at 32,767 characters): a scan stops here."""

_LONG_NUMBER = rb"[-+]?[0-9.]{16}"
"""The start of a number's text with 16 digits or more: only such text can hold more than a double carries.

Text with at most 15 significant digits always comes back from its nearest double by the double's shortest repr
(a double carries any 15 decimal digits), so a scan looks closely at nothing shorter.
"""
_DOUBLE_DIGITS = 17
"""A double is written in full with 17 significant digits; no spreadsheet program writes more."""
_ROOT = re.compile(rb"<(\w+:)?worksheet[\s>/]")
_CELL_REF = re.compile(rb"""\br\s*=\s*["']([A-Z]{1,3})([0-9]{1,7})["']""")
_CELL_TYPE = re.compile(rb"""\bt\s*=\s*["']([A-Za-z]*)["']""")
_NUMBER_TYPES = (b"", b"n")
"""Cell types (`t`) of number cells; shared (`s`), inline (`inlineStr`) and formula (`str`) strings are text."""
_RELATIONSHIPS = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_SHEET = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}sheet"
_RELATION_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


class UnreadableSheet(Exception):
    """A worksheet's XML is not what a spreadsheet program writes (the message says what)."""


@dataclass(frozen=True)
class StoredNumber:
    """A number cell whose stored text holds more than its nearest double (see `changed_by_a_double`)."""

    cell: str
    """The cell reference as written, e.g. `F7`."""
    row: int
    """The sheet row, from 1."""
    column: int
    """The sheet column, from 0 (A is 0)."""
    text: str
    """The number exactly as the sheet stores it, e.g. `0.123456789012345678`."""


@dataclass
class SheetNumbers:
    """What a scan of one worksheet found: where its table starts, and its number cells a double would change."""

    first_row: int | None = None
    """The row of the first cell with a value (the header row calamine reads), from 1."""
    first_column: int | None = None
    """The column of that cell, from 0: calamine's first column when no later cell lies left of it."""
    changed: list[StoredNumber] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)
    """Stored texts a double would change, in number cells without a cell reference."""


class SheetScanner:
    """Scan a worksheet's XML as it is inflated, chunk by chunk, for number cells a double would change.

    Feed it every chunk of a zip member in order; it decides from the first chunk whether the member is a worksheet
    and otherwise ignores the rest. Only the `<v>` texts of 16 digits or more are looked at closely, so a scan costs
    one regular-expression pass over the bytes.
    """

    def __init__(self) -> None:
        self.numbers = SheetNumbers()
        self.is_worksheet = False
        self._decided = False
        self._done = False
        self._carry = b""
        self._cell_start = b"<c"
        self._value_start = b"<v>"
        self._long: re.Pattern[bytes] = re.compile(rb"")
        self._end = b"</sheetData>"
        self._inline = b"<is>"

    def feed(self, chunk: bytes) -> None:
        """Scan the next chunk; a cell cut by the chunk's end is kept and scanned with the next one."""
        if self._done:
            return
        text = self._carry + chunk
        if not self._decided:
            if len(text) < 4096 and chunk:
                self._carry = text
                return
            self._decide(text)
            if self._done:
                return
        cut = text.rfind(self._cell_start)
        if cut > 0:
            self._scan(text, cut)
            self._carry = text[cut:]
            return
        end = text.find(self._end)
        if end >= 0:
            self._scan(text, end)
            self._done, self._carry = True, b""
        elif len(text) > MAX_CELL_BYTES:
            raise UnreadableSheet(f"it holds over {MAX_CELL_BYTES:,} bytes without a cell")
        else:
            self._carry = text

    @property
    def done(self) -> bool:
        """Whether the rest of the member can be left unread: it is no worksheet, or its cells are behind."""
        return self._done

    def finish(self) -> SheetNumbers:
        """What the scan found, once the member's last chunk was fed."""
        if not self._decided:
            self._decide(self._carry)
        if not self._done:
            self._scan(self._carry, len(self._carry))
            self._done, self._carry = True, b""
        return self.numbers

    def _decide(self, head: bytes) -> None:
        self._decided = True
        root = _ROOT.search(head[:4096])
        if root is None:
            self._done, self._carry = True, b""
            return
        self.is_worksheet = True
        prefix = root.group(1) or b""
        self._cell_start = b"<" + prefix + b"c"
        self._value_start = b"<" + prefix + b"v>"
        self._long = re.compile(re.escape(self._value_start) + _LONG_NUMBER)
        self._end = b"</" + prefix + b"sheetData>"
        self._inline = b"<" + prefix + b"is>"

    def _scan(self, text: bytes, end: int) -> None:
        """Scan the complete cells in `text[:end]`."""
        if self.numbers.first_row is None:
            self._find_first_cell(text[:end])
        skip = len(self._value_start)
        for match in self._long.finditer(text, 0, end):
            start = match.start()
            end = text.find(b"<", start + skip)
            self._check(text, start, text[start + skip : end].decode("ascii", "replace"))

    def _find_first_cell(self, text: bytes) -> None:
        starts = [at for at in (text.find(self._value_start), text.find(self._inline)) if at >= 0]
        if not starts:
            return
        tag = self._start_tag(text, min(starts))
        reference = _CELL_REF.search(tag) if tag is not None else None
        if reference is None:
            return
        self.numbers.first_row = int(reference.group(2))
        self.numbers.first_column = column_index(reference.group(1).decode())

    def _check(self, text: bytes, value_at: int, stored: str) -> None:
        if not changed_by_a_double(stored):
            return
        tag = self._start_tag(text, value_at)
        if tag is None:
            return
        kind = _CELL_TYPE.search(tag)
        if kind is not None and kind.group(1) not in _NUMBER_TYPES:
            return
        reference = _CELL_REF.search(tag)
        if reference is None:
            self.numbers.unplaced.append(stored)
            return
        letters, row = reference.group(1).decode(), reference.group(2).decode()
        self.numbers.changed.append(StoredNumber(letters + row, int(row), column_index(letters), stored))

    def _start_tag(self, text: bytes, value_at: int) -> bytes | None:
        """The start tag of the cell holding the value at `value_at` (a `<c ...>` may hold a formula first)."""
        start = text.rfind(self._cell_start, 0, value_at)
        if start < 0:
            return None
        close = text.find(b">", start, value_at)
        return text[start:close] if close >= 0 else None


def changed_by_a_double(stored: str) -> bool:
    """Whether a number cell's stored text holds more than its nearest double, read back by its shortest repr.

    Spreadsheet programs write a double with up to 17 significant digits (Excel 17: `0.10000000000000001`;
    openpyxl 16: `8.857984825799999`), and such text is read as its double, as Excel shows it (`0.1`,
    `8.8579848258`): the digits past the shortest repr are the writing's, not the value's. Text that no double
    writes (more than 17 significant digits, or 16-17 that are not the nearest rendering of any double) holds a
    decimal a double cannot carry: `0.123456789012345678` would be read as `0.12345678901234568`.
    """
    try:
        nearest = float(stored)
        if stored in (repr(nearest), format(nearest, ".16g"), format(nearest, ".17g")):
            return False
        exact = Decimal(stored)
    except (InvalidOperation, ValueError):
        return False
    if not math.isfinite(nearest) or not exact.is_finite():
        return True
    significant = len(exact.normalize().as_tuple().digits)
    if significant <= _DOUBLE_DIGITS - 2:
        return False
    if significant > _DOUBLE_DIGITS:
        return True
    return Decimal(format(nearest, f".{significant}g")) != exact


def column_index(letters: str) -> int:
    """A column's letters as a 0-based index: A is 0, Z 25, AA 26."""
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def scan_workbook(path: Path, stop: threading.Event) -> dict[str, SheetNumbers]:
    """Scan every worksheet of the xlsx at `path` (`SheetScanner`), member by member; by sheet name.

    Stops early, with what it found so far, once `stop` is set. Call it on a workbook whose real unpacked size was
    checked: it inflates every member in full. Raises zipfile's errors for a damaged workbook.
    """
    scanned: dict[str, SheetNumbers] = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            scanner = SheetScanner()
            for chunk in member_chunks(archive, info):
                if stop.is_set():
                    return {}
                scanner.feed(chunk)
                if scanner.done:
                    break
            numbers = scanner.finish()
            if scanner.is_worksheet:
                scanned[info.filename] = numbers
        return {name: scanned[member] for name, member in worksheet_members(archive).items() if member in scanned}


def worksheet_members(archive: zipfile.ZipFile) -> dict[str, str]:
    """Each sheet's name to its worksheet's member name, from the workbook and its relationships."""
    names = set(archive.namelist())
    workbook = _office_document(archive, names)
    relationships = posixpath.join(posixpath.dirname(workbook), "_rels", posixpath.basename(workbook) + ".rels")
    if workbook not in names or relationships not in names:
        return {}
    relations, book = _small_xml(archive, relationships), _small_xml(archive, workbook)
    if relations is None or book is None:
        return {}
    targets = {relation.get("Id"): relation.get("Target", "") for relation in relations.iter(_RELATIONSHIPS)}
    folder = posixpath.dirname(workbook)
    members: dict[str, str] = {}
    for sheet in book.iter(_SHEET):
        target = targets.get(sheet.get(_RELATION_ID), "")
        if target:
            absolute = target.startswith("/")
            members[sheet.get("name", "")] = (
                target.lstrip("/") if absolute else posixpath.normpath(posixpath.join(folder, target))
            )
    return members


def _office_document(archive: zipfile.ZipFile, names: set[str]) -> str:
    """The workbook part's member name (`xl/workbook.xml` unless the package says otherwise)."""
    package = _small_xml(archive, "_rels/.rels") if "_rels/.rels" in names else None
    if package is not None:
        for relation in package.iter(_RELATIONSHIPS):
            if relation.get("Type", "").endswith("/officeDocument"):
                return relation.get("Target", "").lstrip("/")
    return "xl/workbook.xml"


def _small_xml(archive: zipfile.ZipFile, member: str) -> ElementTree.Element | None:
    """A small package part parsed, or None when it is damaged or declares a DTD (entity expansion attacks)."""
    data = archive.read(member)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return None
    try:
        # Safe without defusedxml: no DTD means no entities to expand, and the member's size was capped already.
        return ElementTree.fromstring(data)  # noqa: S314
    except ElementTree.ParseError:
        return None
