"""Two passes sharing a data directory: one's cleanup never removes the other's download in progress."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest

from pipeline.clock import FakeClock
from pipeline.config import Settings
from pipeline.passes import sync
from pipeline.simulator.server import RunningSimulator

pytestmark = pytest.mark.integration


def test_a_pass_leaves_another_processs_partial_download_alone(
    sim_settings: Settings, simulator: RunningSimulator, fake_clock: FakeClock
) -> None:
    settings = sim_settings.replace(rebates_broker_types=("api",), rebates_start_date=date(2025, 2, 28))
    downloader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import hashlib, sys
            from datetime import date
            from pathlib import Path
            from pipeline.archive import partial_file, put
            from pipeline.config import DataLayout
            from pipeline.windows import RebateWindow
            layout = DataLayout(Path({str(settings.rebates_data_dir)!r}))
            body = b"brokerCode,ordId\\n"
            with partial_file(layout) as temp:
                temp.write_bytes(body[:5])
                print(temp, flush=True)
                sys.stdin.readline()  # the other pass runs now
                temp.write_bytes(body)
                window = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 31))
                archived = put(temp, window, layout, hashlib.sha256(body).hexdigest(), len(body), "test")
            print(archived.relative_path, flush=True)
        """),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert downloader.stdout is not None and downloader.stdin is not None
    partial = Path(downloader.stdout.readline().strip())
    assert partial.exists()
    sync(settings, fake_clock)  # its discover step cleans tmp/
    assert partial.exists(), "the pass deleted a live process's partial download"
    downloader.stdin.write("\n")
    downloader.stdin.flush()
    archived = downloader.stdout.readline().strip()
    assert downloader.wait(timeout=60) == 0
    assert (settings.rebates_data_dir / archived).exists()
