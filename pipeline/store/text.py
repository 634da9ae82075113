"""Tell how a rebate file's CSV text is encoded, by checks that cannot guess wrong, and hand it on as UTF-8.

The rules, in order:

1. A UTF-16 byte-order mark (`FF FE` or `FE FF`) says UTF-16: the whole text must decode as UTF-16 in that byte
   order, and is copied out as UTF-8.
2. Otherwise the text must be UTF-8 (with or without a BOM) from its first byte to its last: it is used as it is,
   so DuckDB's fast reader still reads the file itself.
3. Otherwise, and only without a UTF-8 BOM, the text may be GB18030 (which holds GBK and GB2312): the bytes are not
   UTF-8, they decode strictly as GB18030 from first to last, and the decoded header must name OKX's rebate
   columns (the caller checks the header: `Utf8Text.encoding`). It is then copied out as UTF-8. No other legacy
   encoding is tried: one that also decoded would be a guess.

A NUL character anywhere refuses the text (UTF-16's own zero bytes are not characters). Files are read and copied a
chunk at a time: memory does not grow with the file.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

from pipeline.fileformat import UTF8_BOM, UTF16_BOMS

_CHUNK = 1 << 20
_UTF8 = "UTF-8"
GB18030 = "GB18030"
"""`Utf8Text.encoding` of a text read by rule 3, whose header the caller must check."""


class UndecodableText(Exception):
    """The bytes are no text this module decodes exactly; the message says where and why (no bytes quoted)."""


@dataclass(frozen=True)
class Utf8Text:
    """A CSV's text as UTF-8: the file itself, or a copy in a working directory."""

    path: Path
    encoding: str
    """What the source was: `UTF-8`, `UTF-16LE`, `UTF-16BE` or `GB18030`."""


def utf8_text(path: Path, workdir: Path) -> Utf8Text:
    """The text of `path` as UTF-8 (see the rules above); a copy, if one is needed, is written under `workdir`.

    Raises `UndecodableText` for bytes that are none of the encodings above, or that hold a NUL character.
    """
    with path.open("rb") as source:
        head = source.read(len(UTF8_BOM))
    if head.startswith(UTF16_BOMS):
        order = "UTF-16LE" if head.startswith(codecs.BOM_UTF16_LE) else "UTF-16BE"
        return Utf8Text(_copy_as_utf8(path, workdir, "utf-16", order), order)
    wrong = _first_non_utf8(path)
    if wrong is None:
        return Utf8Text(path, _UTF8)
    if head.startswith(UTF8_BOM):
        raise UndecodableText(f"it starts with a UTF-8 byte-order mark but byte {wrong:,} is not UTF-8")
    try:
        return Utf8Text(_copy_as_utf8(path, workdir, "gb18030", GB18030), GB18030)
    except UndecodableText as exc:
        raise UndecodableText(
            f"it is not UTF-8 (byte {wrong:,} is not), nor UTF-16 with a byte-order mark, nor GB18030 ({exc})"
        ) from None


def _first_non_utf8(path: Path) -> int | None:
    """The offset of the first byte that is not UTF-8 text, or None when every byte is.

    A NUL in otherwise valid UTF-8 raises `UndecodableText` at once: no other encoding reads it as text.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        with path.open("rb") as source:
            while chunk := source.read(_CHUNK):
                nul = chunk.find(b"\x00")
                _decoded(decoder, chunk[:nul] if nul >= 0 else chunk, offset)
                if nul >= 0:
                    raise UndecodableText(f"byte {offset + nul:,} is a NUL character, which no rebate file holds")
                offset += len(chunk)
            _decoded(decoder, b"", offset, final=True)
    except _BadByte as bad:
        return bad.offset
    return None


def _copy_as_utf8(path: Path, workdir: Path, codec: str, name: str) -> Path:
    """Decode `path` strictly as `codec`, a chunk at a time, into a UTF-8 copy under `workdir` (no BOM)."""
    target = workdir / f"{path.name}.utf-8.csv"
    decoder = codecs.getincrementaldecoder(codec)()
    offset = 0
    try:
        with path.open("rb") as source, target.open("w", encoding="utf-8", newline="") as sink:
            while True:
                chunk = source.read(_CHUNK)
                text = _decoded(decoder, chunk, offset, final=not chunk)
                if "\x00" in text:
                    raise UndecodableText(f"as {name}, it holds a NUL character, which no rebate file holds")
                sink.write(text)
                if not chunk:
                    return target
                offset += len(chunk)
    except _BadByte as bad:
        target.unlink()
        raise UndecodableText(f"as {name}, byte {bad.offset:,} does not decode") from None
    except UndecodableText:
        target.unlink()
        raise


class _BadByte(Exception):
    """A byte that does not decode, at `offset` in the file."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


def _decoded(decoder: codecs.IncrementalDecoder, chunk: bytes, offset: int, *, final: bool = False) -> str:
    """`chunk`, which starts at byte `offset` of the file, decoded; raises `_BadByte` at the first that does not."""
    pending = len(decoder.getstate()[0])
    try:
        return decoder.decode(chunk, final=final)
    except UnicodeDecodeError as exc:
        raise _BadByte(max(offset - pending + exc.start, 0)) from None
