"""CSV text is decoded by checks, not guesses: UTF-8 kept as it is, UTF-16 and GB18030 copied out as UTF-8."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from pipeline.store import text
from pipeline.store.text import GB18030, UndecodableText, utf8_text

TEXT = "brokerCode,instId\n经纪商甲,SOL-USDT-SWAP\nbroker\U0001d518\U0001d52b,BTC-USDT\n" * 3
"""Characters of one to four bytes, so chunk edges fall inside them."""


@pytest.fixture(autouse=True)
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read 5 bytes at a time: every multi-byte character is cut by a chunk's edge somewhere."""
    monkeypatch.setattr(text, "_CHUNK", 5)


def written(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "RebateDetails.csv"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (TEXT.encode(), "UTF-8"),
        (codecs.BOM_UTF8 + TEXT.encode(), "UTF-8"),
        (TEXT.encode("utf-16-le"), "UTF-16LE"),
        (TEXT.encode("utf-16-be"), "UTF-16BE"),
        (TEXT.encode("gb18030"), GB18030),
    ],
)
def test_text_in_any_exact_encoding_reads_back_the_same(tmp_path: Path, data: bytes, encoding: str) -> None:
    bom = {"UTF-16LE": codecs.BOM_UTF16_LE, "UTF-16BE": codecs.BOM_UTF16_BE}.get(encoding, b"")
    source = written(tmp_path, bom + data)
    work = tmp_path / "work"
    work.mkdir()
    decoded = utf8_text(source, work)
    assert decoded.encoding == encoding
    assert decoded.path.read_text(encoding="utf-8-sig") == TEXT
    assert (decoded.path == source) is (encoding == "UTF-8"), "UTF-8 is read where it is: no copy"


def test_a_nul_is_refused_where_it_is(tmp_path: Path) -> None:
    data = TEXT.encode()
    at = len(data) - 3
    with pytest.raises(UndecodableText, match=f"^byte {at} is a NUL character"):
        utf8_text(written(tmp_path, data[:at] + b"\x00" + data[at:]), tmp_path)


def test_bytes_that_are_no_exact_encoding_say_which_byte(tmp_path: Path) -> None:
    latin = b"brokerCode,instId\ncaf\xe9,SOL-USDT-SWAP\n"  # é in Latin-1, then a comma: neither UTF-8 nor GB18030
    at = latin.index(b"\xe9")
    with pytest.raises(UndecodableText, match=rf"^it is not UTF-8 \(byte {at} is not\).*as GB18030, byte {at} does"):
        utf8_text(written(tmp_path, latin), tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == ["RebateDetails.csv"], "a failed copy is removed"


def test_utf16_cut_in_the_middle_of_a_character_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UndecodableText, match="as UTF-16LE"):
        utf8_text(written(tmp_path, codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le")[:-1]), tmp_path)
