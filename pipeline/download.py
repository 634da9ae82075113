"""Download a rebate file from its short-lived link and archive it atomically under raw/, keyed by its hash."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from pipeline.config import LOOPBACK_HOSTS
from pipeline.fileformat import FileFormat, detect_format
from pipeline.okx.limits import DATE_FORMAT
from pipeline.windows import RebateWindow

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class DownloadError(Exception):
    """A download did not produce a whole file; nothing was archived. Worth another try with a fresh link."""


class LinkExpiredError(DownloadError):
    """The file host refused the link (HTTP 403): it expired or was spoiled; ask OKX for a fresh one."""


class DownloadTooLargeError(DownloadError):
    """The file is larger than REBATES_MAX_DOWNLOAD_BYTES; stopped before filling the disk."""


class UnsafeLinkError(DownloadError):
    """The link is not https (only loopback hosts, the simulator's, may use plain http)."""


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


def describe_link(href: str) -> str:
    """A link as logs may show it: host and path, never the signed query."""
    parts = urlsplit(href)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def check_link(href: str) -> str:
    """Refuse anything but https, except loopback hosts; returns the host."""
    parts = urlsplit(href)
    host = parts.hostname or ""
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return host
    raise UnsafeLinkError(f"refusing to follow {describe_link(href)}: only https links are downloaded")


def archive_name(window: RebateWindow, sha256: str, file_format: FileFormat) -> str:
    """`raw/<broker type>/<begin>_<end>_<sha8>.<ext>` relative to the data directory."""
    return (
        f"raw/{window.broker_type}/{window.begin:{DATE_FORMAT}}_{window.end:{DATE_FORMAT}}_{sha256[:8]}."
        f"{file_format.value}"
    )


def download_file(
    href: str,
    window: RebateWindow,
    data_dir: Path,
    *,
    max_bytes: int,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
) -> ArchivedFile:
    """Stream `href` to a temp file, check its length, hash it, and rename it into the archive.

    The archive is content-addressed, so downloading the same bytes again changes nothing; a partial file is
    deleted, never archived.
    """
    host = check_link(href)
    temp_dir = data_dir / "tmp"
    temp_dir.mkdir(parents=True, exist_ok=True)
    temp = temp_dir / f"{uuid.uuid4().hex}.part"
    digest = hashlib.sha256()
    received = 0
    try:
        with (
            httpx.Client(timeout=timeout, transport=transport, follow_redirects=False) as http,
            http.stream("GET", href) as response,
        ):
            if response.status_code == httpx.codes.FORBIDDEN:
                raise LinkExpiredError(f"{describe_link(href)} answered 403: the link expired")
            if response.status_code != httpx.codes.OK:
                raise DownloadError(f"{describe_link(href)} answered HTTP {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and int(declared) > max_bytes:
                raise DownloadTooLargeError(
                    f"{describe_link(href)} is {int(declared):,} bytes, over REBATES_MAX_DOWNLOAD_BYTES={max_bytes:,}"
                )
            with temp.open("wb") as out:
                for chunk in response.iter_raw(CHUNK):
                    received += len(chunk)
                    if received > max_bytes:
                        raise DownloadTooLargeError(
                            f"{describe_link(href)} passed REBATES_MAX_DOWNLOAD_BYTES={max_bytes:,}; stopped"
                        )
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if declared is not None and received != int(declared):
                raise DownloadError(f"{describe_link(href)} sent {received:,} of {int(declared):,} bytes")
    except httpx.HTTPError as exc:
        temp.unlink(missing_ok=True)
        raise DownloadError(f"{describe_link(href)} failed after {received:,} bytes: {type(exc).__name__}") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    sha256 = digest.hexdigest()
    file_format = detect_format(temp)
    relative = archive_name(window, sha256, file_format)
    final = data_dir / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        temp.unlink()
    else:
        temp.replace(final)
        _fsync_dir(final.parent)
    log.info("archived %s (%s bytes, %s) as %s", window.window_id, f"{received:,}", file_format.value, relative)
    return ArchivedFile(final, relative, received, sha256, file_format, host)


def archive_local_file(source: Path, window: RebateWindow, data_dir: Path) -> ArchivedFile:
    """Copy a file obtained by hand (e.g. from the broker dashboard) into the archive, named like a download."""
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    sha256 = digest.hexdigest()
    file_format = detect_format(source)
    relative = archive_name(window, sha256, file_format)
    final = data_dir / relative
    if not final.exists():
        temp_dir = data_dir / "tmp"
        temp_dir.mkdir(parents=True, exist_ok=True)
        temp = temp_dir / f"{uuid.uuid4().hex}.part"
        shutil.copyfile(source, temp)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp.replace(final)
        _fsync_dir(final.parent)
    return ArchivedFile(final, relative, size, sha256, file_format, "local")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_temp(data_dir: Path) -> int:
    """Delete partial downloads left by a killed process; returns how many."""
    temp_dir = data_dir / "tmp"
    removed = 0
    for leftover in temp_dir.glob("*.part") if temp_dir.exists() else ():
        leftover.unlink(missing_ok=True)
        removed += 1
    return removed
