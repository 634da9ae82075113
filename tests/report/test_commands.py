"""`rebates report` and `rebates statements`: a short summary and the paths, and a usage error for an unknown code."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import Exit, app
from tests.report.conftest import ReportDatabase

pytestmark = pytest.mark.slow

runner = CliRunner()


def printed(*args: str) -> list[str]:
    """The lines `rebates <args>` printed, once it exited 0."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


@pytest.fixture
def report_env(report_db: ReportDatabase, monkeypatch: pytest.MonkeyPatch) -> ReportDatabase:
    """The commands' settings pointing at the report fixture's database and archive."""
    monkeypatch.setenv("REBATES_DATA_DIR", str(report_db.path.parent))
    monkeypatch.setenv("REBATES_DB", str(report_db.path))
    monkeypatch.setenv("REBATES_TZ", "UTC+8")
    return report_db


def test_report_prints_period_totals_status_and_warnings_then_the_paths(
    report_env: ReportDatabase, tmp_path: Path
) -> None:
    lines = printed("report", "--month", "2025-01", "--out", str(tmp_path / "out"))
    assert lines[0] == "OKX broker commission report 2025-01: 2025-01-01 to 2025-01-31 (31 days), days in UTC+08:00"
    assert lines[1].startswith("  net fee 10,336.33 USDT, broker rebate 3,424.30 USDT")
    assert lines[2].startswith("  reconciled: every figure equals the loaded OKX files")
    assert "  incomplete: 2025-01-15: no api file loaded yet" in lines
    assert any(line.startswith("  warning: 25 day(s) of the previous period 2024-12") for line in lines)
    written = [Path(line.strip()) for line in lines if line.strip().startswith(str(tmp_path))]
    assert {path.name for path in written} >= {"commission_2025-01.xlsx", "commission_2025-01.html", "by_user.csv"}
    assert all(path.is_file() for path in written)


@pytest.mark.parametrize("command", ["report", "statements"])
def test_an_unknown_broker_code_is_a_usage_error_listing_the_known_ones(
    report_env: ReportDatabase, tmp_path: Path, command: str
) -> None:
    result = runner.invoke(app, [command, "--month", "2025-01", "--broker-code", "NOSUCH", "--out", str(tmp_path)])
    assert result.exit_code == Exit.CONFIG, result.output
    assert "'NOSUCH' is in no loaded file" in result.output
    assert all(code in result.output for code in report_env.broker_codes)
    assert list(tmp_path.iterdir()) == [], "nothing is written"


@pytest.mark.parametrize("command", ["report", "statements"])
def test_an_account_not_configured_is_a_usage_error(report_env: ReportDatabase, command: str) -> None:
    result = runner.invoke(app, [command, "--month", "2025-01", "--account", "asia"])
    assert result.exit_code == Exit.CONFIG
    assert "'asia' is not configured" in result.output


def test_statements_print_a_line_per_code_the_shared_warnings_once_and_the_manifest(
    report_env: ReportDatabase, tmp_path: Path
) -> None:
    lines = printed("statements", "--month", "2025-01", "--out", str(tmp_path / "payouts"))
    assert lines[0] == "statements 2025-01: 2025-01-01 to 2025-01-31 (31 days)"
    for code in report_env.broker_codes:
        (line,) = [line for line in lines if line.startswith(f"  {code}: ")]
        assert "orders, net fee" in line and "USDT; reconciled" in line
    missing = [line for line in lines if line.startswith("  incomplete: ")]
    assert missing == ["  incomplete: 2025-01-15: no api file loaded yet"], "said once, not once per api code"
    assert lines[-2] == f"5 statement(s) in {tmp_path / 'payouts'}"
    assert lines[-1] == f"  manifest: {tmp_path / 'payouts' / 'manifest.csv'}"
    assert (tmp_path / "payouts" / "manifest.csv").is_file()


def test_statements_of_a_month_without_rows_say_so(report_env: ReportDatabase, tmp_path: Path) -> None:
    result = runner.invoke(app, ["statements", "--month", "2024-06", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "no broker code has rows in 2024-06: no statement written" in result.output
