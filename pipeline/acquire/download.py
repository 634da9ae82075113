"""Download a rebate file from its short-lived link, streaming, into the archive (never a partial file)."""

from __future__ import annotations

import hashlib
import logging
import os
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit, urlunsplit

import httpx

from pipeline.archive import CHUNK, ArchivedFile, partial_file, put
from pipeline.config import LOOPBACK_HOSTS, DataLayout, Settings
from pipeline.domain import OKX_FILE_HOSTS
from pipeline.logs import install_link_redaction
from pipeline.windows import RebateWindow

log = logging.getLogger(__name__)
install_link_redaction()

STALL_BYTES = 64 * 1024
STALL_SECONDS = 60.0
"""A download that receives less than STALL_BYTES in STALL_SECONDS has stalled: it is abandoned for this pass."""

DECODED_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate"})
"""Content-Encodings whose decoded bytes are archived (a host should send none: we ask for `identity`)."""


class DownloadError(Exception):
    """A download did not produce a whole file; nothing was archived. Worth another try with a fresh link."""


class LinkExpiredError(DownloadError):
    """The file host refused the link (HTTP 403): it expired or was spoiled; ask OKX for a fresh one."""


class DownloadTooLargeError(DownloadError):
    """The file is larger than REBATES_MAX_DOWNLOAD_BYTES; stopped before filling the disk."""


class DownloadStalledError(DownloadError):
    """The file host sent too slowly (under STALL_BYTES in STALL_SECONDS) or past REBATES_DOWNLOAD_DEADLINE.

    Abandoned for this pass: a fresh link from the same host would crawl as well, so the window backs off instead.
    """


class UnsafeLinkError(DownloadError):
    """The link does not point at a host rebate files may come from (see `FileHosts`); nothing was requested."""


@dataclass(frozen=True)
class FileHosts:
    """Where rebate files may be downloaded from.

    https on OKX's own file hosts (`OKX_FILE_HOSTS`) or on a host the operator adds (REBATES_FILE_HOSTS: a name, or
    a suffix starting with a dot); plain http only to the loopback simulator that OKX_BASE_URL itself names, and
    only to that host and port.
    """

    added: tuple[str, ...] = ()
    """REBATES_FILE_HOSTS: `files.example.com` (that host) or `.example.com` (any host under it)."""
    simulator: str | None = None
    """`127.0.0.1:8765`: OKX_BASE_URL's host and port while it is the loopback simulator over http."""

    @classmethod
    def of(cls, settings: Settings) -> FileHosts:
        """The hosts the settings allow (the account's own OKX_BASE_URL decides about the simulator)."""
        base = urlsplit(settings.okx_base_url)
        simulator = base.netloc if base.scheme == "http" and base.hostname in LOOPBACK_HOSTS else None
        return cls(settings.rebates_file_hosts, simulator)

    def serves_https(self, host: str) -> bool:
        """Whether `host` may serve rebate files over https."""
        return bool(OKX_FILE_HOSTS.match(host)) or any(
            host == name or (name.startswith(".") and host.endswith(name)) for name in self.added
        )


@dataclass(frozen=True)
class DownloadRules:
    """What one download may do: where it may go, how much it may bring, and how long it may take."""

    max_bytes: int
    """REBATES_MAX_DOWNLOAD_BYTES: the file's size (decoded), past which the download stops."""
    timeout: float
    """REBATES_HTTP_TIMEOUT: seconds to connect, and to wait for each read."""
    deadline: float
    """REBATES_DOWNLOAD_DEADLINE: seconds the whole download may take."""
    hosts: FileHosts = FileHosts()
    stall_bytes: int = STALL_BYTES
    stall_seconds: float = STALL_SECONDS
    monotonic: Callable[[], float] = field(default=time.monotonic, compare=False)
    """The clock that times the transfer (tests pass a fake one)."""

    @classmethod
    def of(cls, settings: Settings) -> DownloadRules:
        """The rules the settings give."""
        return cls(
            max_bytes=settings.rebates_max_download_bytes,
            timeout=settings.rebates_http_timeout,
            deadline=settings.rebates_download_deadline,
            hosts=FileHosts.of(settings),
        )


def describe_link(href: str) -> str:
    """A link as logs may show it: host and path, never the signed query."""
    parts = urlsplit(href)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def check_link(href: str, hosts: FileHosts) -> tuple[str, str]:
    """The link to fetch and its host, or `UnsafeLinkError` before any request (see `FileHosts`).

    A plain-http link on OKX's own file hosts (its docs show such links) is fetched over https instead.
    """
    parts = urlsplit(href)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and hosts.serves_https(host):
        return href, host
    if parts.scheme == "http" and hosts.simulator is not None and parts.netloc == hosts.simulator:
        return href, host
    if parts.scheme == "http" and hosts.serves_https(host):
        global _upgrade_said
        if not _upgrade_said:
            log.info("OKX handed out a plain-http link on %s; downloading it over https instead", host)
            _upgrade_said = True
        return urlunsplit(parts._replace(scheme="https")), host
    raise UnsafeLinkError(
        f"refusing to follow {describe_link(href)}: rebate files are downloaded over https from OKX's file hosts "
        "or a host in REBATES_FILE_HOSTS (plain http only from the loopback simulator OKX_BASE_URL names); add the "
        "host to REBATES_FILE_HOSTS if OKX really serves files there"
    )


_upgrade_said = False
"""Whether this process has said once that it upgrades OKX's http links."""


def download_file(
    href: str,
    window: RebateWindow,
    layout: DataLayout,
    rules: DownloadRules,
    *,
    transport: httpx.BaseTransport | None = None,
) -> ArchivedFile:
    """Stream `href` to a temp file, check its length, hash it, and rename it into the archive.

    The archive holds the file's own bytes: `identity` is asked for, and a gzip or deflate answer is decoded (the
    hash, the size and the cap are the decoded file's). The archive is content-addressed, so downloading the same
    bytes again changes nothing; a partial file is deleted, never archived. Neither an error nor a log line quotes
    what the host answered.
    """
    href, host = check_link(href, rules.hosts)
    digest = hashlib.sha256()
    received = 0
    with partial_file(layout) as temp:
        try:
            with (
                httpx.Client(timeout=rules.timeout, transport=transport, follow_redirects=False) as http,
                http.stream("GET", href, headers={"Accept-Encoding": "identity"}) as response,
            ):
                decode, declared = _accept(response, href, rules.max_bytes)
                pace = _Pace(rules, href)
                with _open_partial(temp, href) as out:
                    for raw in response.iter_raw():
                        pace.received(len(raw))
                        for chunk in decode.feed(raw):
                            received += len(chunk)
                            if received > rules.max_bytes:
                                raise DownloadTooLargeError(
                                    f"{describe_link(href)} passed REBATES_MAX_DOWNLOAD_BYTES={rules.max_bytes:,}; "
                                    "stopped"
                                )
                            digest.update(chunk)
                            out.write(chunk)
                    decode.finish()
                    out.flush()
                    os.fsync(out.fileno())
                if declared is not None and received != declared:
                    raise DownloadError(f"{describe_link(href)} sent {received:,} of {declared:,} bytes")
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


def _accept(response: httpx.Response, href: str, max_bytes: int) -> tuple[_Decoder, int | None]:
    """The decoder for a 200 answer and the length to expect of it (None when unknown); raise on anything else.

    Content-Length counts the bytes on the wire: it is the file's length only when no Content-Encoding is given.
    The status alone is reported, never the body (it may be anything the host chose to send).
    """
    if response.status_code == httpx.codes.FORBIDDEN:
        raise LinkExpiredError(f"{describe_link(href)} answered 403: the link expired")
    if response.status_code != httpx.codes.OK:
        raise DownloadError(f"{describe_link(href)} answered HTTP {response.status_code}")
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        if encoding not in DECODED_ENCODINGS:
            raise DownloadError(
                f"{describe_link(href)} answered in Content-Encoding {encoding[:40]!r}, which is not decoded here "
                "(only gzip or deflate, and identity was asked for)"
            )
        return _Decoder(encoding), None
    length = response.headers.get("content-length")
    declared = int(length) if length is not None and length.isdigit() else None
    if declared is not None and declared > max_bytes:
        raise DownloadTooLargeError(
            f"{describe_link(href)} is {declared:,} bytes, over REBATES_MAX_DOWNLOAD_BYTES={max_bytes:,}"
        )
    return _Decoder(""), declared


class _Decoder:
    """A body's Content-Encoding undone chunk by chunk, each decoded piece at most CHUNK bytes (a bomb stays small).

    `""` passes bytes through; gzip (several members in a row too) and deflate (zlib-wrapped as the RFC says, or raw
    as some servers send it) are inflated, and must end where the body ends.
    """

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.inflate: zlib._Decompress | None = None
        self.started = False
        if encoding:
            self.inflate = zlib.decompressobj(zlib.MAX_WBITS if encoding == "deflate" else zlib.MAX_WBITS | 16)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of the next piece of the body."""
        if self.inflate is None:
            if data:
                yield data
            return
        if self.encoding == "deflate" and not self.started and data:
            self.started = True
            try:
                zlib.decompressobj().decompress(data[:2])
            except zlib.error:
                self.inflate = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, without the zlib header
        yield from self._inflate(data)

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        assert self.inflate is not None
        while data:
            try:
                piece = self.inflate.decompress(data, CHUNK)
            except zlib.error:
                raise DownloadError(f"the {self.encoding} body does not decode: damaged in transit") from None
            if piece:
                yield piece
            data = self.inflate.unconsumed_tail
            if self.inflate.eof:
                rest = self.inflate.unused_data
                if not rest or self.encoding == "deflate":
                    if rest:
                        raise DownloadError(f"the {self.encoding} body goes on after its end: damaged in transit")
                    return
                self.inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)  # the next gzip member
                data = rest + data

    def finish(self) -> None:
        """Raise unless the encoded body ended where its encoding says it ends (a cut transfer)."""
        if self.inflate is not None and not self.inflate.eof:
            raise DownloadError(f"the {self.encoding} body was cut short")


class _Pace:
    """Stops a transfer that stalls (under `stall_bytes` in `stall_seconds`) or runs past the download's deadline.

    Counted on the bytes received from the wire, at every piece, so a host that sends a byte now and then (each read
    inside REBATES_HTTP_TIMEOUT) cannot hold the pass: it ends at most one read timeout after the window it broke.
    """

    def __init__(self, rules: DownloadRules, href: str) -> None:
        self.rules = rules
        self.href = href
        self.started = self.mark = rules.monotonic()
        self.since_mark = 0

    def received(self, size: int) -> None:
        rules, now = self.rules, self.rules.monotonic()
        self.since_mark += size
        if now - self.started > rules.deadline:
            raise DownloadStalledError(
                f"{describe_link(self.href)} took longer than REBATES_DOWNLOAD_DEADLINE={rules.deadline:g} s; "
                "abandoned for this pass"
            )
        if self.since_mark >= rules.stall_bytes:
            self.mark, self.since_mark = now, 0
        elif now - self.mark >= rules.stall_seconds:
            raise DownloadStalledError(
                f"{describe_link(self.href)} stalled: {self.since_mark:,} bytes in {now - self.mark:.0f} s (less than "
                f"{rules.stall_bytes:,} in {rules.stall_seconds:g} s); abandoned for this pass"
            )


@contextmanager
def _open_partial(temp: Path, href: str) -> Iterator[BinaryIO]:
    """The partial file for writing; a write that finds it gone (another process removed it) is a DownloadError."""
    try:
        with temp.open("wb") as out:
            yield out
    except FileNotFoundError:
        raise DownloadError(f"{describe_link(href)}: the partial download vanished while it was written") from None
