"""The demo collects, loads and reports four weeks from the simulator, writing only under its own folder."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from pipeline.demo import run_demo


def test_the_demo_loads_every_window_and_writes_the_reports(tmp_path: Path) -> None:
    output = io.StringIO()
    result = run_demo(Console(file=output, width=120), directory=tmp_path / "demo", history_days=10)
    assert result.windows == result.loaded == 2  # api and oauth, one history window each
    assert result.rows > 0
    assert {path.suffix for path in result.reports} == {".xlsx", ".csv", ".html"}
    assert all(path.is_relative_to(tmp_path / "demo") and path.exists() for path in result.reports)
    assert "Commission" in output.getvalue()
    assert not (tmp_path / "data").exists()
