"""Partial files in tmp/: owned by an OS lock, so cleanup removes what a dead writer left and never a live download."""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pipeline import archive
from pipeline.archive import ABANDONED_AFTER, clean_temp, partial_file
from pipeline.config import DataLayout
from pipeline.windows import RebateWindow

LATER = datetime.now(UTC) + ABANDONED_AFTER * 10
"""Far past any age limit: only the lock may keep a partial file."""


def left_by_a_dead_writer(layout: DataLayout) -> Path:
    """The partial file of a process that died in the middle of writing it (no cleanup ran)."""
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from pipeline.archive import partial_file
        from pipeline.config import DataLayout
        with partial_file(DataLayout(Path({str(layout.root)!r}))) as temp:
            temp.write_bytes(b"half a file")
            print(temp, flush=True)
            os._exit(9)
    """)
    died = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert died.returncode == 9, died.stderr
    return Path(died.stdout.strip())


def test_a_live_download_survives_cleanup_on_a_dotted_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "ip-10-0-0-1.ec2.internal")
    layout = DataLayout(tmp_path)
    with partial_file(layout) as temp:
        temp.write_bytes(b"downloading")
        os.utime(temp, (0, 0))  # however old it looks
        assert clean_temp(layout, now=LATER) == 0
        assert clean_temp(layout) == 0
        assert temp.read_bytes() == b"downloading"
    assert temp.exists(), "the block ended normally: archiving it is the caller's business"


def test_a_dead_writers_partial_is_removed_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "ip-10-0-0-1.ec2.internal")
    layout = DataLayout(tmp_path)
    gone = left_by_a_dead_writer(layout)
    assert gone.parent == layout.tmp and gone.exists()
    with partial_file(layout) as live:
        assert clean_temp(layout) == 1
        assert live.exists() and not gone.exists()
    assert clean_temp(layout) == 1  # `live`, whose block ended without archiving it
    assert list(layout.tmp.iterdir()) == []


def test_a_partial_without_a_lock_is_left_over_from_before_and_removed(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    layout.tmp.mkdir()
    (layout.tmp / "ip-10-0-0-1.ec2.internal.123.abc.part").write_bytes(b"half")
    (layout.tmp / "duckdb").mkdir()  # DuckDB's spill directory is not a partial file
    assert clean_temp(layout) == 1
    assert clean_temp(layout) == 0
    assert [path.name for path in layout.tmp.iterdir()] == ["duckdb"]


def test_a_failed_block_deletes_its_partial_and_lets_go(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    with pytest.raises(RuntimeError), partial_file(layout) as temp:
        temp.write_bytes(b"half")
        raise RuntimeError("cut off")
    assert not temp.exists()
    with partial_file(layout) as again:
        assert again != temp


def test_where_the_filesystem_takes_no_locks_age_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_locks(fd: int, *, blocking: bool = True) -> bool:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(archive, "lock_descriptor", no_locks)
    layout = DataLayout(tmp_path)
    with partial_file(layout) as temp:
        temp.write_bytes(b"downloading")
        assert clean_temp(layout) == 0
        assert clean_temp(layout, now=datetime.now(UTC) + ABANDONED_AFTER + timedelta(seconds=1)) == 1
        assert not temp.exists()


@pytest.mark.parametrize("kernel", [True, False], ids=["kernel copy", "read and write"])
def test_a_file_loaded_by_hand_is_archived_whole_under_the_hash_of_its_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: bool
) -> None:
    """The kernel copies it while a thread hashes the copy chunk by chunk; where it cannot, Python copies it."""
    monkeypatch.setattr(archive, "KERNEL_CHUNK", 1 << 16)
    monkeypatch.setattr(archive, "CHUNK", 1 << 12)
    content = os.urandom(5 * (1 << 16) + 123)
    source = tmp_path / "by-hand.csv"
    source.write_bytes(content)
    copies: list[int] = []
    real_copy = os.copy_file_range

    def copy_file_range(src: int, dst: int, count: int) -> int:
        if not kernel:
            raise OSError(errno.EXDEV, "across file systems")
        copies.append(count)
        return real_copy(src, dst, count)

    monkeypatch.setattr(os, "copy_file_range", copy_file_range)
    window = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 31))
    archived = archive.archive_local_file(source, window, DataLayout(tmp_path / "data"))
    assert archived.path.read_bytes() == content
    assert archived.sha256 == hashlib.sha256(content).hexdigest()
    assert archived.bytes == len(content)
    assert len(copies) == (7 if kernel else 0), "64 KiB at a time, then the call that finds the end"
