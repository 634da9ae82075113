"""The raw/ archive: content-addressed names, atomic puts, and cleanup of partial files only their owner left behind."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.config import DEFAULT_ACCOUNT, DataLayout
from pipeline.fileformat import FileFormat, detect_format
from pipeline.ledger import FileRecord
from pipeline.okx.limits import DATE_FORMAT
from pipeline.windows import RebateWindow

log = logging.getLogger(__name__)

CHUNK = 1 << 20
PARTIAL_SUFFIX = ".part"

ABANDONED_AFTER = timedelta(hours=6)
"""A partial file untouched this long is abandoned whoever owns it (a download stalls out long before)."""


@dataclass(frozen=True)
class ArchivedFile:
    """A file safely in the archive."""

    path: Path
    relative_path: str
    bytes: int
    sha256: str
    format: FileFormat
    source_host: str

    def file_id(self, window: RebateWindow) -> str:
        """The rebate_files key: window and the first 12 hex digits of the hash."""
        return f"{window.window_id}@{self.sha256[:12]}"

    def file_record(self, window: RebateWindow) -> FileRecord:
        """This file as the ledger's rebate_files row for `window`."""
        return FileRecord(
            self.file_id(window), window.window_id, self.relative_path, self.bytes, self.sha256, self.format.value
        )


def archive_name(window: RebateWindow, sha256: str, file_format: FileFormat) -> str:
    """`raw/<broker type>/<begin>_<end>_<sha8>.<ext>` relative to the data directory; `raw/<account>/<broker type>/…`
    for an account other than `default` (whose files stay where they were before there were accounts)."""
    folder = window.broker_type if window.account == DEFAULT_ACCOUNT else f"{window.account}/{window.broker_type}"
    return (
        f"{DataLayout.RAW}/{folder}/{window.begin:{DATE_FORMAT}}_{window.end:{DATE_FORMAT}}_{sha256[:8]}."
        f"{file_format.value}"
    )


@contextmanager
def partial_file(layout: DataLayout) -> Iterator[Path]:
    """A fresh path under tmp/ to write a file on its way into the archive; deleted if the block fails.

    Its name says who owns it (`<host>.<pid>.<random>.part`), so `clean_temp` leaves a live process's file alone.
    """
    layout.tmp.mkdir(parents=True, exist_ok=True)
    temp = layout.tmp / f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}"
    try:
        yield temp
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def put(temp: Path, window: RebateWindow, layout: DataLayout, sha256: str, size: int, source_host: str) -> ArchivedFile:
    """Rename a whole file from tmp/ into the archive under its content name (a copy already there wins)."""
    file_format = detect_format(temp)
    relative = archive_name(window, sha256, file_format)
    final = layout.root / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        temp.unlink()
    else:
        temp.replace(final)
        _fsync_dir(final.parent)
    return ArchivedFile(final, relative, size, sha256, file_format, source_host)


def archive_local_file(source: Path, window: RebateWindow, layout: DataLayout) -> ArchivedFile:
    """Copy a file obtained by hand (e.g. from the broker dashboard) into the archive, named like a download.

    One read of the file: each chunk is hashed and written to tmp/ in the same pass (hashing first and copying after
    read a large file twice).
    """
    digest = hashlib.sha256()
    size = 0
    with partial_file(layout) as temp:
        with source.open("rb") as handle, temp.open("wb") as copy:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                copy.write(chunk)
                size += len(chunk)
            copy.flush()
            os.fsync(copy.fileno())
        return put(temp, window, layout, digest.hexdigest(), size, "local")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_temp(layout: DataLayout, *, now: datetime | None = None) -> int:
    """Delete partial files their owner left behind (it died, or they are older than ABANDONED_AFTER); how many.

    A partial file of a live process on this host is another pass's download in progress: it is left alone.
    """
    removed = 0
    moment = now or datetime.now(UTC)
    for leftover in layout.tmp.glob(f"*{PARTIAL_SUFFIX}") if layout.tmp.exists() else ():
        try:
            modified = datetime.fromtimestamp(leftover.stat().st_mtime, UTC)
        except FileNotFoundError:
            continue
        if moment - modified < ABANDONED_AFTER and _owner_alive(leftover.name):
            continue
        leftover.unlink(missing_ok=True)
        removed += 1
    return removed


def _owner_alive(name: str) -> bool:
    """Whether the process that named a partial file still runs (unknown owners, e.g. on another host, count)."""
    host, _, rest = name.partition(".")
    pid_text = rest.partition(".")[0]
    if not pid_text.isdigit():
        return False  # an old-style name from before owners were recorded: nobody is writing it
    if host != socket.gethostname():
        return True  # another machine's: only its age can tell
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
