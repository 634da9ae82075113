"""Downloads: whole files archived once under raw/, partial or refused ones never, unsafe links not followed."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from pipeline.acquire.download import (
    DownloadError,
    DownloadTooLargeError,
    LinkExpiredError,
    UnsafeLinkError,
    describe_link,
    download_file,
)
from pipeline.config import DataLayout
from pipeline.fileformat import FileFormat
from pipeline.windows import RebateWindow

WINDOW = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 31))
CSV = b"brokerCode,level,ordId\nabc,,2877198384625049600\n"
HREF = "https://okg-pri-hk.example/RebateDetails0101-0131.xls?Expires=1&Signature=secret-signature"


def serve(handler: httpx.MockTransport | None = None, *, body: bytes = CSV, status: int = 200) -> httpx.MockTransport:
    return handler or httpx.MockTransport(lambda request: response(status, body))


def response(status: int, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    """A streamed response, as a real server gives (MockTransport's content= arrives already read)."""
    length = {"content-length": str(len(body))}
    return httpx.Response(status, headers={**length, **(headers or {})}, stream=Chunks(body))


class Chunks(httpx.SyncByteStream):
    def __init__(self, body: bytes) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        yield from (self.body[start : start + 7] for start in range(0, len(self.body), 7))


def fetch(data_dir: Path, transport: httpx.BaseTransport, *, href: str = HREF, max_bytes: int = 10_000) -> Path:
    return download_file(href, WINDOW, DataLayout(data_dir), max_bytes=max_bytes, timeout=5, transport=transport).path


def test_a_whole_file_is_archived_by_content_hash(tmp_path: Path) -> None:
    archived = download_file(HREF, WINDOW, DataLayout(tmp_path), max_bytes=10_000, timeout=5, transport=serve())
    sha = hashlib.sha256(CSV).hexdigest()
    assert archived.relative_path == f"raw/api/20250101_20250131_{sha[:8]}.csv"
    assert archived.path.read_bytes() == CSV
    assert (archived.bytes, archived.sha256, archived.format) == (len(CSV), sha, FileFormat.CSV)
    assert archived.file_id(WINDOW) == f"api:20250101-20250131@{sha[:12]}"
    again = download_file(HREF, WINDOW, DataLayout(tmp_path), max_bytes=10_000, timeout=5, transport=serve())
    assert again.path == archived.path
    assert list((tmp_path / "raw" / "api").iterdir()) == [archived.path]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_different_download_of_the_window_is_kept_beside_the_first(tmp_path: Path) -> None:
    first = fetch(tmp_path, serve())
    second = fetch(tmp_path, serve(body=CSV + b"abd,,2877198384625049601\n"))
    assert first != second
    assert first.exists()
    assert second.exists()


def test_a_403_means_the_link_expired(tmp_path: Path) -> None:
    with pytest.raises(LinkExpiredError):
        fetch(tmp_path, serve(status=403, body=b"<Error><Code>AccessDenied</Code></Error>"))
    assert not (tmp_path / "raw").exists()


class Truncated(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield CSV[:10]
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def test_a_truncated_download_is_never_archived(tmp_path: Path) -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"content-length": str(len(CSV))}, stream=Truncated())
    )
    with pytest.raises(DownloadError) as caught:
        fetch(tmp_path, transport)
    assert "secret-signature" not in str(caught.value)
    assert not (tmp_path / "raw").exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_fewer_bytes_than_announced_is_an_error(tmp_path: Path) -> None:
    transport = httpx.MockTransport(lambda request: response(200, CSV, {"content-length": "999"}))
    with pytest.raises(DownloadError, match="sent"):
        fetch(tmp_path, transport)
    assert not (tmp_path / "raw").exists()


def test_the_size_cap_stops_a_runaway_download(tmp_path: Path) -> None:
    with pytest.raises(DownloadTooLargeError, match="REBATES_MAX_DOWNLOAD_BYTES"):
        fetch(tmp_path, serve(body=b"x," * 1000), max_bytes=100)
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize("href", ["http://okx.example/file.csv", "ftp://127.0.0.1/file.csv", "file:///etc/passwd"])
def test_only_https_or_loopback_links_are_followed(tmp_path: Path, href: str) -> None:
    with pytest.raises(UnsafeLinkError):
        fetch(tmp_path, serve(), href=href)


def test_loopback_http_is_allowed_for_the_simulator(tmp_path: Path) -> None:
    assert fetch(tmp_path, serve(), href="http://127.0.0.1:8765/files/t/RebateDetails.csv").exists()


def test_logs_and_errors_show_links_without_their_signed_query() -> None:
    assert describe_link(HREF) == "https://okg-pri-hk.example/RebateDetails0101-0131.xls"


def test_an_http_link_on_okxs_file_host_is_fetched_over_https_and_other_http_is_refused(tmp_path: Path) -> None:
    docs_link = "http://okg-pri-hk.oss-cn-hongkong.aliyuncs.com/okex/broker/RebateDetails0510-0513.xls?Signature=s"
    seen: list[str] = []

    def host(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return response(200, CSV)

    download_file(
        docs_link, WINDOW, DataLayout(tmp_path), max_bytes=10_000, timeout=5, transport=httpx.MockTransport(host)
    )
    assert seen == ["https" + docs_link.removeprefix("http")]
    with pytest.raises(UnsafeLinkError):
        fetch(tmp_path, serve(), href="http://evil.example/RebateDetails.xls?Signature=s")
    with pytest.raises(UnsafeLinkError):
        fetch(tmp_path, serve(), href="http://okg-pri-hk.oss-cn-hongkong.aliyuncs.com.evil.example/x.xls")


def test_no_log_line_at_any_level_carries_a_signed_link(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "pipeline"):
        caplog.set_level(logging.DEBUG, logger=name)  # restored after the test, unlike a bare setLevel
    fetch(tmp_path, serve())
    with pytest.raises(LinkExpiredError):
        fetch(tmp_path, serve(status=403, body=b"<Error/>"))
    lines = [record.getMessage() for record in caplog.records]
    assert any("HTTP Request" in line for line in lines), "httpx logged nothing: the test would prove nothing"
    assert not [line for line in lines if "secret-signature" in line or "Expires=" in line]


def test_a_partial_removed_by_another_process_is_a_retryable_download_error(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)

    def vanishing(request: httpx.Request) -> httpx.Response:
        class Gone(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                yield CSV[:10]
                for leftover in layout.tmp.glob("*.part"):
                    leftover.unlink()
                yield CSV[10:]

        return httpx.Response(200, headers={"content-length": str(len(CSV))}, stream=Gone())

    with pytest.raises(DownloadError, match="vanished"):
        download_file(HREF, WINDOW, layout, max_bytes=10_000, timeout=5, transport=httpx.MockTransport(vanishing))
    assert not layout.raw.exists()
