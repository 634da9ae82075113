"""Publish what analysts read: a consistent read-only copy of the database, replaced atomically."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.config import DEFAULT_LOCK_TIMEOUT
from pipeline.db import connect


def publish_snapshot(db_path: Path, snapshot: Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> Path:
    """Copy the database, consistently, to `snapshot` for analysts (atomic rename; readers of the old one go on).

    The copy is taken while this process holds the database after a CHECKPOINT, so no write can be half in it.
    """
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    temp = snapshot.with_name(snapshot.name + ".tmp")
    with connect(db_path, lock_timeout=lock_timeout) as db:
        db.execute("CHECKPOINT")
        shutil.copyfile(db_path, temp)
    temp.replace(snapshot)
    return snapshot
