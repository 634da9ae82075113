"""Downloads: whole files archived once under raw/, partial or refused ones never, unsafe links not followed."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from pipeline.acquire.download import (
    STALL_BYTES,
    STALL_SECONDS,
    DownloadError,
    DownloadRules,
    DownloadStalledError,
    DownloadTooLargeError,
    FileHosts,
    LinkExpiredError,
    UnsafeLinkError,
    describe_link,
    download_file,
)
from pipeline.config import DataLayout, load_settings
from pipeline.fileformat import FileFormat
from pipeline.windows import RebateWindow

WINDOW = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 31))
CSV = b"brokerCode,level,ordId\nabc,,2877198384625049600\n"
HOST = "okg-pri-hk.oss-cn-hongkong.aliyuncs.com"
HREF = f"https://{HOST}/RebateDetails0101-0131.xls?Expires=1&Signature=secret-signature"
RULES = DownloadRules(max_bytes=10_000, timeout=5, deadline=60)


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


def recording(asked: list[httpx.Request], body: bytes = CSV) -> httpx.MockTransport:
    """A host that notes every request it gets."""

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return response(200, body)

    return httpx.MockTransport(answer)


def fetch(data_dir: Path, transport: httpx.BaseTransport, *, href: str = HREF, rules: DownloadRules = RULES) -> Path:
    return download_file(href, WINDOW, DataLayout(data_dir), rules, transport=transport).path


def test_a_whole_file_is_archived_by_content_hash(tmp_path: Path) -> None:
    archived = download_file(HREF, WINDOW, DataLayout(tmp_path), RULES, transport=serve())
    sha = hashlib.sha256(CSV).hexdigest()
    assert archived.relative_path == f"raw/api/20250101_20250131_{sha[:8]}.csv"
    assert archived.path.read_bytes() == CSV
    assert (archived.bytes, archived.sha256, archived.format) == (len(CSV), sha, FileFormat.CSV)
    assert archived.file_id(WINDOW) == f"api:20250101-20250131@{sha[:12]}"
    again = download_file(HREF, WINDOW, DataLayout(tmp_path), RULES, transport=serve())
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
        fetch(tmp_path, serve(body=b"x," * 1000), rules=replace(RULES, max_bytes=100))
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize(
    "href",
    [
        "http://okx.example/file.csv",
        "ftp://127.0.0.1/file.csv",
        "file:///etc/passwd",
        "https://evil.example/RebateDetails.csv",
        "https://localhost:8443/admin/flush",
        f"https://{HOST}.evil.example/RebateDetails.csv",
        "http://127.0.0.1:8765/files/t/RebateDetails.csv",  # loopback, but OKX_BASE_URL is not the simulator
    ],
)
def test_only_links_to_okxs_file_hosts_are_followed(tmp_path: Path, href: str) -> None:
    asked: list[httpx.Request] = []
    with pytest.raises(UnsafeLinkError, match="REBATES_FILE_HOSTS"):
        fetch(tmp_path, recording(asked), href=href)
    assert asked == []


def test_with_an_https_okx_a_loopback_link_is_refused_without_a_request(tmp_path: Path) -> None:
    settings = load_settings(okx_base_url="https://www.okx.com")
    asked: list[httpx.Request] = []
    transport = recording(asked, b"admin secrets")
    for href in ("http://localhost:8080/admin/dump?x=1", "https://127.0.0.1/admin", "http://[::1]:9000/"):
        with pytest.raises(UnsafeLinkError) as refused:
            fetch(tmp_path, transport, href=href, rules=DownloadRules.of(settings))
        assert "x=1" not in str(refused.value)
    assert asked == []


def test_plain_http_goes_only_to_the_simulator_okx_base_url_names(tmp_path: Path) -> None:
    rules = DownloadRules.of(load_settings(okx_base_url="http://127.0.0.1:8765"))
    assert fetch(tmp_path, serve(), href="http://127.0.0.1:8765/files/t/RebateDetails.csv", rules=rules).exists()
    for elsewhere in ("http://127.0.0.1:9999/admin", "http://localhost:8765/files/t/x.csv", "http://evil.example/"):
        with pytest.raises(UnsafeLinkError):
            fetch(tmp_path, serve(), href=elsewhere, rules=rules)


def test_an_operator_adds_file_hosts_by_name_or_suffix(tmp_path: Path) -> None:
    settings = load_settings(rebates_file_hosts="files.example.com, .cdn.example.net")
    rules = DownloadRules.of(settings)
    assert rules.hosts == FileHosts(("files.example.com", ".cdn.example.net"))
    for href in ("https://files.example.com/f.csv", "https://eu.cdn.example.net/f.csv", HREF):
        assert fetch(tmp_path, serve(), href=href, rules=rules).exists()
    for href in (
        "https://other.example.com/f.csv",
        "https://cdn.example.net.evil.example/f.csv",
        "https://example.net/f.csv",
    ):
        with pytest.raises(UnsafeLinkError):
            fetch(tmp_path, serve(), href=href, rules=rules)


@pytest.mark.parametrize("status", [403, 404, 500, 302])
def test_a_refused_download_never_quotes_the_hosts_answer(
    tmp_path: Path, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = b"<Error><Secret>internal-token-123</Secret></Error>"
    transport = httpx.MockTransport(
        lambda request: response(status, body, {"location": "http://169.254.169.254/latest/meta-data"})
    )
    with pytest.raises(DownloadError) as refused:
        fetch(tmp_path, transport)
    said = str(refused.value) + "\n".join(record.getMessage() for record in caplog.records)
    assert "internal-token-123" not in said and "169.254" not in said
    assert str(status) in str(refused.value)


def test_logs_and_errors_show_links_without_their_signed_query() -> None:
    assert describe_link(HREF) == f"https://{HOST}/RebateDetails0101-0131.xls"


def test_an_http_link_on_okxs_file_host_is_fetched_over_https_and_other_http_is_refused(tmp_path: Path) -> None:
    docs_link = "http://okg-pri-hk.oss-cn-hongkong.aliyuncs.com/okex/broker/RebateDetails0510-0513.xls?Signature=s"
    seen: list[str] = []

    def host(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return response(200, CSV)

    download_file(docs_link, WINDOW, DataLayout(tmp_path), RULES, transport=httpx.MockTransport(host))
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
        download_file(HREF, WINDOW, layout, RULES, transport=httpx.MockTransport(vanishing))
    assert not layout.raw.exists()


# --- the file's bytes, not a transfer encoding --------------------------------------------------------------------


def encoded(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body[:20], mtime=0) + gzip.compress(body[20:], mtime=0)  # two members, as gzip allows
    if encoding == "deflate":
        return zlib.compress(body)
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # "deflate" as some servers send it: without the zlib header
    return raw.compress(body) + raw.flush()


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate"])
def test_a_host_that_compresses_anyway_has_its_answer_decoded_before_it_is_hashed(
    tmp_path: Path, encoding: str
) -> None:
    asked: list[str] = []
    wire = encoded(CSV, encoding)

    def compressing(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers["accept-encoding"])
        name = encoding.removeprefix("raw ")
        return response(200, wire, {"content-encoding": name})  # Content-Length: the compressed length

    archived = download_file(HREF, WINDOW, DataLayout(tmp_path), RULES, transport=httpx.MockTransport(compressing))
    assert asked == ["identity"]
    assert archived.path.read_bytes() == CSV
    assert (archived.bytes, archived.sha256, archived.format) == (
        len(CSV),
        hashlib.sha256(CSV).hexdigest(),
        FileFormat.CSV,
    )


def test_the_size_cap_counts_decoded_bytes(tmp_path: Path) -> None:
    bomb = gzip.compress(b"0," * 1_000_000, mtime=0)
    assert len(bomb) < 10_000
    transport = httpx.MockTransport(lambda request: response(200, bomb, {"content-encoding": "gzip"}))
    with pytest.raises(DownloadTooLargeError):
        fetch(tmp_path, transport)
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize(
    ("wire", "encoding", "problem"),
    [
        (gzip.compress(CSV, mtime=0)[:-12], "gzip", "cut short"),
        (b"not gzip at all", "gzip", "does not decode"),
        (gzip.compress(CSV, mtime=0) + b"junk", "gzip", "does not decode"),
        (CSV, "br", "Content-Encoding 'br'"),
    ],
    ids=["gzip cut short", "not gzip", "gzip with junk after", "an encoding not asked for"],
)
def test_an_encoded_answer_that_does_not_decode_whole_is_never_archived(
    tmp_path: Path, wire: bytes, encoding: str, problem: str
) -> None:
    transport = httpx.MockTransport(lambda request: response(200, wire, {"content-encoding": encoding}))
    with pytest.raises(DownloadError, match=problem):
        fetch(tmp_path, transport)
    assert not (tmp_path / "raw").exists()


# --- downloads that end -------------------------------------------------------------------------------------------


class FakeMonotonic:
    """A monotonic clock the stream moves: each piece arrives `step` seconds after the last."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def paced(clock: FakeMonotonic, piece: bytes, step: float, pieces: int) -> httpx.MockTransport:
    """A host sending `pieces` pieces, `step` seconds apart on `clock` (none of it waits for real)."""

    class Paced(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            for _ in range(pieces):
                clock.now += step
                yield piece

    return httpx.MockTransport(lambda request: httpx.Response(200, stream=Paced()))


def test_a_host_that_sends_a_byte_now_and_then_is_abandoned_once_a_minute_brings_too_little(tmp_path: Path) -> None:
    clock = FakeMonotonic()
    rules = replace(RULES, max_bytes=10**9, deadline=10**6, monotonic=clock)
    started = clock.now
    with pytest.raises(DownloadStalledError, match="stalled") as stalled:
        fetch(tmp_path, paced(clock, b"x" * 1024, step=10, pieces=1000), rules=rules)  # 1 KiB every 10 s
    assert STALL_SECONDS <= clock.now - started < STALL_SECONDS + 10
    assert "secret-signature" not in str(stalled.value)
    assert not (tmp_path / "raw").exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_steady_download_is_not_a_stall(tmp_path: Path) -> None:
    clock = FakeMonotonic()
    rules = replace(RULES, max_bytes=10**9, deadline=10**6, monotonic=clock)
    piece = b"x" * (STALL_BYTES // 4)
    fetch(tmp_path, paced(clock, piece, step=STALL_SECONDS / 5, pieces=100), rules=rules)  # 80 KiB a minute


def test_a_download_past_its_deadline_is_abandoned(tmp_path: Path) -> None:
    clock = FakeMonotonic()
    rules = replace(RULES, max_bytes=10**9, deadline=300, monotonic=clock)
    with pytest.raises(DownloadStalledError, match="REBATES_DOWNLOAD_DEADLINE=300"):
        fetch(tmp_path, paced(clock, b"x" * STALL_BYTES, step=10, pieces=1000), rules=rules)  # 64 KiB every 10 s
    assert 300 < clock.now - 1000.0 <= 310


def test_a_real_host_dribbling_bytes_is_cut_off(tmp_path: Path) -> None:
    class Dribbling(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(1000):  # 100 bytes every 10 ms: each read is quick, the transfer never ends
                    self.wfile.write(b"x" * 100)
                    self.wfile.flush()
                    time.sleep(0.01)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Dribbling)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        netloc = f"127.0.0.1:{server.server_address[1]}"
        rules = replace(RULES, max_bytes=10**9, hosts=FileHosts(simulator=netloc), stall_seconds=0.5)
        started = time.monotonic()
        with pytest.raises(DownloadStalledError):
            fetch(tmp_path, httpx.HTTPTransport(), href=f"http://{netloc}/files/t/RebateDetails.csv", rules=rules)
        assert time.monotonic() - started < 5
    finally:
        server.shutdown()
        server.server_close()
