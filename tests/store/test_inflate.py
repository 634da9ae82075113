"""A zip member's bytes read by ISA-L: the same bytes zipfile reads, bounded chunks, damage refused as zipfile does."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import pytest

from pipeline.store.inflate import CHUNK, member_chunks

TEXT = "".join(f"<c r='A{n}'><v>{random.Random(n).random()}</v></c>" for n in range(40_000)).encode()


def archive_of(path: Path, members: dict[str, tuple[bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, (data, method) in members.items():
            archive.writestr(name, data, compress_type=method)
    return path


def read_all(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: b"".join(member_chunks(archive, info)) for info in archive.infolist()}


def test_every_kind_of_member_reads_as_zipfile_reads_it(tmp_path: Path) -> None:
    members = {
        "deflated.xml": (TEXT, zipfile.ZIP_DEFLATED),
        "stored.xml": (TEXT[:100_000], zipfile.ZIP_STORED),
        "bzip2.xml": (TEXT[:50_000], zipfile.ZIP_BZIP2),  # not deflate: zipfile reads it
        "empty.xml": (b"", zipfile.ZIP_DEFLATED),
    }
    path = archive_of(tmp_path / "book.xlsx", members)
    assert read_all(path) == {name: data for name, (data, _) in members.items()}


def test_a_member_that_compresses_a_thousandfold_comes_out_in_bounded_chunks(tmp_path: Path) -> None:
    bomb = b"\0" * (40 * CHUNK)
    path = archive_of(tmp_path / "bomb.zip", {"sheet.xml": (bomb, zipfile.ZIP_DEFLATED)})
    with zipfile.ZipFile(path) as archive:
        (info,) = archive.infolist()
        assert info.compress_size * 500 < info.file_size
        sizes = [len(chunk) for chunk in member_chunks(archive, info)]
    assert max(sizes) <= CHUNK and sum(sizes) == len(bomb)


def damaged(path: Path, at: int) -> Path:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def test_damage_is_refused_as_zipfile_refuses_it(tmp_path: Path) -> None:
    source = archive_of(tmp_path / "good.zip", {"sheet.xml": (TEXT, zipfile.ZIP_DEFLATED)})
    with zipfile.ZipFile(source) as archive:
        (info,) = archive.infolist()
    data_start = info.header_offset + 30 + len(info.filename.encode())
    middle = tmp_path / "middle.zip"
    middle.write_bytes(source.read_bytes())
    damaged(middle, data_start + info.compress_size // 2)
    with pytest.raises(zipfile.BadZipFile):
        read_all(middle)

    stored = archive_of(tmp_path / "stored.zip", {"sheet.xml": (TEXT[:1000], zipfile.ZIP_STORED)})
    damaged(stored, data_start + 10)  # a changed byte of a stored member: only the CRC tells
    with pytest.raises(zipfile.BadZipFile, match="CRC"):
        read_all(stored)


def test_a_member_cut_short_is_refused(tmp_path: Path) -> None:
    path = archive_of(tmp_path / "cut.zip", {"sheet.xml": (TEXT, zipfile.ZIP_DEFLATED)})
    with zipfile.ZipFile(path) as archive:
        (info,) = archive.infolist()
        # The central directory still says the full size; the member's data ends early (a truncated deflate stream).
        info.compress_size //= 2
        with pytest.raises(zipfile.BadZipFile):
            b"".join(member_chunks(archive, info))


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=["bzip2", "lzma"])
def test_damage_to_a_member_zipfile_reads_is_refused_the_same_way(tmp_path: Path, method: int) -> None:
    """Callers handle one kind of damage: bzip2's OSError and lzma's LZMAError come out as BadZipFile too."""
    path = archive_of(tmp_path / "other.zip", {"sheet.xml": (TEXT[:200_000], method)})
    with zipfile.ZipFile(path) as archive:
        (info,) = archive.infolist()
    data_start = info.header_offset + 30 + len(info.filename.encode())
    for offset in range(16, 64):  # the first bytes past the stream's own header
        damaged(path, data_start + offset)
    with pytest.raises(zipfile.BadZipFile, match=r"sheet\.xml"):
        read_all(path)
