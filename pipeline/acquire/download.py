"""Download a rebate file from its short-lived link, streaming, into the archive (never a partial file)."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit, urlunsplit

import httpx

from pipeline.archive import CHUNK, ArchivedFile, partial_file, put
from pipeline.config import LOOPBACK_HOSTS, DataLayout
from pipeline.logs import install_link_redaction
from pipeline.okx.limits import OKX_FILE_HOSTS
from pipeline.windows import RebateWindow

log = logging.getLogger(__name__)
install_link_redaction()


class DownloadError(Exception):
    """A download did not produce a whole file; nothing was archived. Worth another try with a fresh link."""


class LinkExpiredError(DownloadError):
    """The file host refused the link (HTTP 403): it expired or was spoiled; ask OKX for a fresh one."""


class DownloadTooLargeError(DownloadError):
    """The file is larger than REBATES_MAX_DOWNLOAD_BYTES; stopped before filling the disk."""


class UnsafeLinkError(DownloadError):
    """The link is not https (only loopback hosts, the simulator's, may use plain http)."""


def describe_link(href: str) -> str:
    """A link as logs may show it: host and path, never the signed query."""
    parts = urlsplit(href)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def check_link(href: str) -> tuple[str, str]:
    """The link to fetch and its host: https as given; plain http only on loopback (the simulator) or upgraded to
    https on OKX's own file hosts (its docs show http links); anything else is refused."""
    parts = urlsplit(href)
    host = parts.hostname or ""
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return href, host
    if parts.scheme == "http" and OKX_FILE_HOSTS.match(host):
        global _upgrade_said
        if not _upgrade_said:
            log.info("OKX handed out a plain-http link on %s; downloading it over https instead", host)
            _upgrade_said = True
        return urlunsplit(parts._replace(scheme="https")), host
    raise UnsafeLinkError(f"refusing to follow {describe_link(href)}: only https links are downloaded")


_upgrade_said = False
"""Whether this process has said once that it upgrades OKX's http links."""


def download_file(
    href: str,
    window: RebateWindow,
    layout: DataLayout,
    *,
    max_bytes: int,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
) -> ArchivedFile:
    """Stream `href` to a temp file, check its length, hash it, and rename it into the archive.

    The archive is content-addressed, so downloading the same bytes again changes nothing; a partial file is
    deleted, never archived.
    """
    href, host = check_link(href)
    digest = hashlib.sha256()
    received = 0
    with partial_file(layout) as temp:
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
                        f"{describe_link(href)} is {int(declared):,} bytes, over REBATES_MAX_DOWNLOAD_BYTES="
                        f"{max_bytes:,}"
                    )
                with _open_partial(temp, href) as out:
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
            raise DownloadError(
                f"{describe_link(href)} failed after {received:,} bytes: {type(exc).__name__}"
            ) from None
        try:
            archived = put(temp, window, layout, digest.hexdigest(), received, host)
        except FileNotFoundError:
            raise DownloadError(
                f"{describe_link(href)}: the partial download vanished before it was archived (removed by another "
                "process?); it is fetched again"
            ) from None
    log.info(
        "archived %s (%s bytes, %s) as %s", window.window_id, f"{received:,}", archived.format.value,
        archived.relative_path,
    )  # fmt: skip
    return archived


@contextmanager
def _open_partial(temp: Path, href: str) -> Iterator[BinaryIO]:
    """The partial file for writing; a write that finds it gone (another process removed it) is a DownloadError."""
    try:
        with temp.open("wb") as out:
            yield out
    except FileNotFoundError:
        raise DownloadError(f"{describe_link(href)}: the partial download vanished while it was written") from None
