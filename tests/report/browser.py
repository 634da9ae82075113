"""Headless Chromium for the report tests: render a page at 1280 px, measure its tables, decode a screenshot."""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

WINDOW = (1280, 2000)
CHROMIUM_TIMEOUT = 60

MEASURE = """<script>
const tables = Array.from(document.querySelectorAll('table')).map(table => {
  const box = table.getBoundingClientRect();
  const section = table.closest('section');
  return {section: section ? section.dataset.table : '', width: box.width, right: box.right};
});
const out = document.createElement('pre');
out.id = 'measured';
out.textContent = JSON.stringify({window: window.innerWidth, page: document.documentElement.scrollWidth, tables});
document.body.appendChild(out);
</script>"""
"""Appended to a copy of the page (whose own policy allows no script): what Chromium laid out, as JSON in the DOM."""


@dataclass(frozen=True)
class Layout:
    """What Chromium drew: the window's width, the page's scroll width, each table's width and right edge."""

    window: int
    page: int
    tables: list[dict[str, float | str]]


def chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        pytest.fail("the HTML report test renders in Debian's Chromium: run `make chromium` (apt-get install chromium)")
    return found


def chromium_args(profile: Path) -> list[str]:
    """Headless, and quiet on the network (it is closed here): no sync, updates, background fetches or QUIC."""
    return [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ]


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """Width, height, bytes per pixel and the unfiltered pixels of an 8-bit RGB or RGBA PNG (stdlib only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, header, compressed = 8, b"", bytearray()
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed += body
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG format {header!r}"
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(bytes(compressed))
    stride = width * channels
    assert len(raw) == height * (stride + 1)
    low, high = int.from_bytes(b"\x7f" * stride, "big"), int.from_bytes(b"\x80" * stride, "big")
    pixels, prior = bytearray(), bytes(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], raw[start + 1 : start + 1 + stride]
        if kind == 0:
            current = line
        elif kind == 2:  # Up, the usual one: add bytes to the row above, all at once (SIMD within a Python int)
            a, b = int.from_bytes(line, "big"), int.from_bytes(prior, "big")
            current = (((a & low) + (b & low)) ^ ((a ^ b) & high)).to_bytes(stride, "big")
        else:
            current = unfilter(kind, line, prior, channels)
        pixels += current
        prior = current
    return width, height, channels, bytes(pixels)


def unfilter(kind: int, line: bytes, prior: bytes, channels: int) -> bytes:
    """PNG filters Sub (1), Average (3) and Paeth (4), byte by byte."""
    out = bytearray(len(line))
    for index, value in enumerate(line):
        left = out[index - channels] if index >= channels else 0
        up = prior[index]
        corner = prior[index - channels] if index >= channels else 0
        if kind == 1:
            predicted = left
        elif kind == 3:
            predicted = (left + up) // 2
        else:
            guess = left + up - corner
            distances = (abs(guess - left), abs(guess - up), abs(guess - corner))
            predicted = (left, up, corner)[distances.index(min(distances))]
        out[index] = (value + predicted) & 0xFF
    return bytes(out)


def measured_copy(page: Path, target: Path) -> Path:
    """A copy of `page` that measures its tables once laid out (its policy relaxed for that one inline script)."""
    text = page.read_text(encoding="utf-8")
    text = text.replace("style-src 'unsafe-inline'", "style-src 'unsafe-inline'; script-src 'unsafe-inline'", 1)
    target.write_text(text.replace("</body>", MEASURE + "</body>", 1), encoding="utf-8")
    return target


def render(page: Path, work: Path) -> tuple[str, Layout, bytes]:
    """The page's DOM after Chromium laid it out at `WINDOW`, its measured layout, and a screenshot (PNG bytes).

    Two Chromium processes run side by side: one dumps the DOM of a measuring copy, one screenshots the page itself.
    """
    shot = work / "shot.png"
    copy = measured_copy(page, work / "measured.html")
    with subprocess.Popen(
        [*chromium_args(work / "profile-shot"), f"--screenshot={shot}", page.as_uri()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as screenshot:
        try:
            dom = dump_dom(copy, work / "profile-dom")
            _, shot_errors = screenshot.communicate(timeout=CHROMIUM_TIMEOUT)
        except subprocess.TimeoutExpired:
            screenshot.kill()
            pytest.fail(f"Chromium did not render the report within {CHROMIUM_TIMEOUT} s")
    assert screenshot.returncode == 0, shot_errors[-2000:]
    return dom, layout_of(dom), shot.read_bytes()


def measure(page: Path, work: Path) -> Layout:
    """Only the layout of `page` at `WINDOW` (one Chromium process)."""
    return layout_of(dump_dom(measured_copy(page, work / "measured.html"), work / "profile-measure"))


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM of `page` once Chromium (in its own `profile`) laid it out at `WINDOW`."""
    dom = subprocess.run(
        [*chromium_args(profile), "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_TIMEOUT,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout


def layout_of(dom: str) -> Layout:
    """What the measuring script left in the DOM."""
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
    assert found, "the measuring script did not run"
    data = json.loads(html.unescape(found.group(1)))
    return Layout(data["window"], data["page"], data["tables"])


def too_wide(layout: Layout) -> list[dict[str, float | str]]:
    """The tables wider than the window or reaching past its right edge (none, on a readable page)."""
    return [
        table
        for table in layout.tables
        if float(table["right"]) > layout.window or float(table["width"]) > layout.window
    ]
