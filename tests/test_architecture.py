"""The house: imports run down the layers (never up, never in a circle), and light commands stay light."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

LAYERS: list[set[str]] = [
    {"pipeline.cli"},
    {"pipeline.doctor", "pipeline.summary", "pipeline.simulator", "pipeline.run_tables"},
    {"pipeline.passes", "pipeline.alerts"},
    {"pipeline.report"},  # reads what the store wrote: the database, and the archived files again to reconcile
    {"pipeline.acquire", "pipeline.store", "pipeline.users"},
    {"pipeline.archive", "pipeline.state", "pipeline.pass_types"},
    {"pipeline.ledger"},
    {"pipeline.okx"},
    {
        "pipeline.db",
        "pipeline.pg",
        "pipeline.windows",
        "pipeline.fileformat",
        "pipeline.columns",
        "pipeline.formulas",
        "pipeline.clock_file",
    },
    {"pipeline.migrations"},
    {"pipeline.config", "pipeline.clock", "pipeline.logs", "pipeline.sqlfiles"},
    {"pipeline.domain", "pipeline.okx.signing"},
]
"""Top to bottom. A module may import its own room (package) and any room below its own, nothing above or beside."""

HEAVY = ("prefect", "uvicorn", "starlette", "openpyxl", "xlwt", "polars", "fastexcel", "markdown_it", "pygments")
"""Libraries `rebates --help` and `rebates status` must not load (each costs a visible part of a second; rich's help
renderer brings the last two: the help is plain)."""


def modules() -> dict[str, Path]:
    found = {}
    for root in ("pipeline", "flows"):
        for path in (REPO / root).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every first-party module `path` imports, at any depth of the file (lazy imports count too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name in known}


def room(module: str) -> str:
    """The layer unit a module belongs to: the most specific entry of LAYERS that contains it."""
    candidates = [unit for layer in LAYERS for unit in layer if module == unit or module.startswith(unit + ".")]
    assert candidates, f"{module} is in no layer: add it to LAYERS"
    return max(candidates, key=len)


def rank(unit: str) -> int:
    return next(index for index, layer in enumerate(LAYERS) if unit in layer)


GRAPH = {name: imports_of(path, set(modules())) for name, path in modules().items()}


@pytest.mark.parametrize("module", sorted(name for name in GRAPH if name.startswith("pipeline.")))
def test_a_pipeline_module_imports_only_its_room_and_rooms_below(module: str) -> None:
    own = room(module)
    for target in GRAPH[module]:
        if target.startswith("flows"):
            assert room(module) == "pipeline.cli", f"{module} imports {target}: only the CLI may start flows"
            continue
        other = room(target)
        if other == own or own.startswith(other + ".") or other.startswith(own + "."):
            assert rank(other) >= rank(own), f"{module} imports {target}, above it"
            continue
        assert rank(other) > rank(own), f"{module} ({own}) imports {target} ({other}), at its level or above"


def test_there_are_no_import_circles() -> None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(GRAPH[node]):
            if target == node or target not in GRAPH:
                continue
            if state.get(target) == 1:
                raise AssertionError("import circle: " + " -> ".join([*path, target]))
            if target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


def test_flows_hold_no_pipeline_logic_the_pipeline_lacks() -> None:
    for name in GRAPH:
        if name.startswith("pipeline.") and room(name) != "pipeline.cli":
            assert not any(target.startswith("flows") for target in GRAPH[name]), name
    for path in (REPO / "pipeline").rglob("*.py"):
        if "cli" not in path.relative_to(REPO / "pipeline").parts:
            assert "import prefect" not in path.read_text() and "from prefect" not in path.read_text(), path


@pytest.mark.parametrize("argv", [["--help"], ["status"]])
def test_help_and_status_load_no_heavy_library(argv: list[str], tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import json, sys
        from typer.testing import CliRunner
        from pipeline.cli import app
        result = CliRunner().invoke(app, {argv!r})
        assert result.exit_code == 0, result.output
        print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {HEAVY!r})))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
