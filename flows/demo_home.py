"""Where the demo writes, Prefect's own database included; imports no Prefect, so it can run before Prefect loads."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

DEMO_DIR = Path("demo-data")
"""Where the demo writes (never REBATES_DATA_DIR, so it cannot touch real data); wiped at each start."""

PREFECT_HOME_NAME = "prefect"
"""The demo directory's subfolder that is Prefect's home: its temporary server's database, profiles and logs."""


def use_demo_prefect_home(directory: Path = DEMO_DIR) -> Path:
    """Wipe `directory` and make its `prefect/` PREFECT_HOME, so the demo writes nothing in ~/.prefect.

    Prefect reads PREFECT_HOME once, when it is first imported: call this before anything imports it.
    """
    if "prefect" in sys.modules:
        raise RuntimeError("Prefect is already imported: PREFECT_HOME must be set before it loads")
    if directory.exists():
        shutil.rmtree(directory)
    home = directory / PREFECT_HOME_NAME
    home.mkdir(parents=True)
    os.environ["PREFECT_HOME"] = str(home.resolve())
    return home


def clear_demo_data(directory: Path) -> None:
    """Remove what an earlier demo left in `directory`, except Prefect's home (in use by this process)."""
    if not directory.exists():
        return
    for child in directory.iterdir():
        if child.name == PREFECT_HOME_NAME:
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
