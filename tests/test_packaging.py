"""Packaging: a non-editable `pip install .` gives a working `rebates` from any directory, SQL included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project installed (not editable) into a directory of its own, dependencies taken from the venv."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), str(ROOT)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return target


def run_installed(installed: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=120
    )


def test_the_installed_package_is_the_one_imported(installed: Path, tmp_path: Path) -> None:
    result = run_installed(
        installed, "-c", "import pipeline, sql; print(pipeline.__file__, sql.__file__)", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert all(path.startswith(str(installed)) for path in result.stdout.split())


@pytest.mark.parametrize(("args", "expected"), [(["--help"], "sync"), (["simulator", "--help"], "--ready-after")])
def test_rebates_help_works_from_another_directory(
    installed: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    script = installed / "bin" / "rebates"
    assert script.exists()
    result = run_installed(installed, str(script), *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_every_sql_file_ships_inside_the_package(installed: Path) -> None:
    in_repo = sorted(path.relative_to(ROOT / "sql") for path in (ROOT / "sql").rglob("*.sql"))
    shipped = sorted(path.relative_to(installed / "sql") for path in (installed / "sql").rglob("*.sql"))
    assert shipped == in_repo
