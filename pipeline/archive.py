"""The raw/ archive: content-addressed names, atomic puts, and cleanup of partial files no live process holds."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from filelock import lock_descriptor

from pipeline.config import DEFAULT_ACCOUNT, DataLayout
from pipeline.domain import DATE_FORMAT
from pipeline.fileformat import FileFormat, detect_format
from pipeline.ledger import FileRecord
from pipeline.windows import RebateWindow

log = logging.getLogger(__name__)

CHUNK = 1 << 20
KERNEL_CHUNK = 64 << 20
"""Bytes one copy_file_range call copies before the copied chunk is handed to the hashing thread."""
PARTIAL_SUFFIX = ".part"

ABANDONED_AFTER = timedelta(hours=6)
"""On a filesystem that takes no file locks, a partial file untouched this long is abandoned (a download is stopped by
its deadline long before). Where locks work, the lock alone decides, whatever the age."""


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

    The file exists from the start, and this process holds an OS lock on it (`flock`, through filelock's
    `lock_descriptor`) until the block ends: `clean_temp`, in any process, leaves it alone while its writer lives,
    and a writer that dies releases the lock with it. The name says nothing about the owner (it is random).
    """
    layout.tmp.mkdir(parents=True, exist_ok=True)
    temp, held = _locked_partial(layout.tmp)
    try:
        yield temp
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        os.close(held)  # releases the lock, after the file was archived or deleted


def _locked_partial(tmp: Path) -> tuple[Path, int]:
    """A new partial file and the descriptor that holds its lock (open, unlocked, where the filesystem takes none).

    Between creating the file and locking it, a `clean_temp` may lock it first and remove it: the lock is then taken
    on a file no longer at its path, so a fresh one is made.
    """
    while True:
        temp = tmp / f"{uuid.uuid4().hex}{PARTIAL_SUFFIX}"
        held = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            locked = lock_descriptor(held, blocking=False)
        except OSError:
            log.debug("tmp/ takes no file locks: partial files there are cleaned by age only")
            return temp, held
        if locked and _still_at(held, temp):
            return temp, held
        os.close(held)


def _still_at(held: int, path: Path) -> bool:
    """Whether `path` still names the file open as `held` (neither removed nor replaced since it was opened)."""
    try:
        return os.path.samestat(os.fstat(held), path.stat())
    except FileNotFoundError:
        return False


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

    The kernel copies it (`copy_file_range`: the bytes never pass through Python) while a thread hashes the copy,
    a chunk behind, so the hash is of exactly the bytes archived and the two run side by side (a 1.6 GB file: 1.4 s
    instead of 4 s read, hashed and written in turn). Where the kernel cannot copy between the two files, each chunk
    is read, hashed and written in one pass.
    """
    with partial_file(layout) as temp:
        with source.open("rb") as handle, temp.open("w+b") as copy:
            try:
                size, sha256 = _copy_in_kernel(handle.fileno(), copy.fileno())
            except _NoKernelCopy:
                size, sha256 = _copy_through(handle, copy)
            os.fsync(copy.fileno())
        return put(temp, window, layout, sha256, size, "local")


class _NoKernelCopy(Exception):
    """copy_file_range is missing, or refused these two files before copying anything."""


def _copy_in_kernel(source: int, target: int) -> tuple[int, str]:
    """Copy `source` to `target` with copy_file_range, `KERNEL_CHUNK` at a time, hashing each copied chunk in a thread.

    Returns the bytes copied and their SHA-256; raises `_NoKernelCopy` when nothing could be copied this way.
    """
    copy_file_range = getattr(os, "copy_file_range", None)
    if copy_file_range is None:
        raise _NoKernelCopy
    digest = hashlib.sha256()
    size = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-hash") as hasher:
        hashed = []
        while True:
            try:
                copied = copy_file_range(source, target, KERNEL_CHUNK)
            except OSError as exc:
                if size == 0 and exc.errno in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise _NoKernelCopy from exc
                raise
            if copied == 0:
                break
            hashed.append(hasher.submit(_hash_range, digest, target, size, copied))  # in order: one thread
            size += copied
        for chunk in hashed:
            chunk.result()
    return size, digest.hexdigest()


def _hash_range(digest: hashlib._Hash, fd: int, offset: int, length: int) -> None:
    """Add `length` bytes of `fd` from `offset` to `digest` (hashlib and pread let go of the GIL)."""
    while length:
        chunk = os.pread(fd, min(length, CHUNK), offset)
        if not chunk:
            raise OSError(f"the archive copy ended {length} bytes short while it was hashed")
        digest.update(chunk)
        offset += len(chunk)
        length -= len(chunk)


def _copy_through(handle: BinaryIO, copy: BinaryIO) -> tuple[int, str]:
    """Read, hash and write each chunk in one pass; the bytes copied and their SHA-256."""
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
        copy.write(chunk)
        size += len(chunk)
    copy.flush()
    return size, digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_temp(layout: DataLayout, *, now: datetime | None = None) -> int:
    """Delete the partial files no live process holds (their writer died); how many.

    A partial file is another download in progress as long as its writer holds its lock (`partial_file`), however
    old it is: the lock is tried without waiting, and a file whose lock is held is left alone. Only where the
    filesystem takes no locks (or the file cannot be opened to try) does age decide, after ABANDONED_AFTER.

    Across machines the lock is only as good as the shared filesystem's locking: NFSv4 (and NFSv3 with lockd) shares
    `flock` locks between clients, but a mount with `nolock` or `local_lock` keeps them local, and then another
    machine's live partial file looks abandoned. Removing it costs that download a retry ("vanished"), never a file.
    """
    moment = now or datetime.now(UTC)
    leftovers = sorted(layout.tmp.glob(f"*{PARTIAL_SUFFIX}")) if layout.tmp.exists() else []
    return sum(_remove_if_abandoned(leftover, moment) for leftover in leftovers)


def _remove_if_abandoned(path: Path, moment: datetime) -> bool:
    """Remove a partial file whose lock nobody holds (see `clean_temp`); whether it was removed."""
    try:
        # Open for writing: NFS grants an exclusive lock only on a file open for writing.
        held = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False  # archived or removed meanwhile
    except OSError:
        return _remove_if_untouched(path, moment)
    try:
        try:
            free = lock_descriptor(held, blocking=False)
        except OSError:
            return _remove_if_untouched(path, moment)
        if not free or not _still_at(held, path):
            return False  # a live writer holds it, or it was archived while the lock was tried
        path.unlink()
        return True
    finally:
        os.close(held)


def _remove_if_untouched(path: Path, moment: datetime) -> bool:
    """Where no lock can tell: remove a partial file untouched for ABANDONED_AFTER."""
    try:
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except FileNotFoundError:
        return False
    if moment - modified < ABANDONED_AFTER:
        return False
    path.unlink(missing_ok=True)
    return True
