"""Store fixtures: settings and a ledger of the test's own, digests of the database and the lake to compare; zips."""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from pipeline.clock import FakeClock
from pipeline.config import Settings, load_settings
from pipeline.db import connect
from pipeline.ledger import Ledger

KEY_ORDER = {
    "rebate_details": "ord_id, broker_code, trade_date",
    "rebate_orders": "ord_id, broker_code",
}
"""The two partitioned tables and their keys."""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data folder and DuckDB file are the test's own (the ledger in DuckDB, UTC+8 days)."""
    return load_settings(rebates_data_dir=tmp_path / "data", rebates_db=tmp_path / "data" / "rebates.duckdb")


@pytest.fixture
def ledger(settings: Settings, fake_clock: FakeClock) -> Ledger:
    """The ledger in `settings`' DuckDB file, on the shared fake clock."""
    return Ledger(settings.rebates_db, fake_clock)


def _ordered(connection: duckdb.DuckDBPyConnection, source: str, key: str) -> list[tuple[object, ...]]:
    """Every row of `source`, columns by name and rows by key, so a table and its Parquet compare equal."""
    names = sorted(row[0] for row in connection.execute(f"DESCRIBE SELECT * FROM {source}").fetchall())
    names = [name for name in names if name != "extra"]  # JSON in the database, the same JSON as text in the lake
    return connection.execute(f"SELECT {', '.join(names)} FROM {source} ORDER BY {key}").fetchall()


@dataclass(frozen=True)
class Digests:
    """Hashes of every row of rebate_details and rebate_orders: in the database, and in the lake's Parquet."""

    def database(self, settings: Settings) -> str:
        with connect(settings.rebates_db) as db:
            rows = [_ordered(db, table, key) for table, key in KEY_ORDER.items()]
        return hashlib.sha256(repr(rows).encode()).hexdigest()

    def lake(self, settings: Settings) -> str:
        rows: list[list[tuple[object, ...]]] = []
        with duckdb.connect() as reader:
            reader.execute("SET TimeZone = 'UTC'")
            for table, key in KEY_ORDER.items():
                if not list(settings.layout.lake.glob(f"{table}/*/*/*/*.parquet")):
                    rows.append([])
                    continue
                pattern = settings.layout.lake / table / "*" / "*" / "*" / "*.parquet"
                rows.append(_ordered(reader, f"read_parquet('{pattern}', hive_partitioning = true)", key))
        return hashlib.sha256(repr(rows).encode()).hexdigest()


def zip_of(members: dict[str, bytes]) -> bytes:
    """A zip (deflated) of `members`, name to content, in order."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


@pytest.fixture
def digests() -> Digests:
    return Digests()
