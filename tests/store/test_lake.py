"""The analysts' lake: it holds exactly what the database does, rewrites only what a load touched, and heals itself."""

from __future__ import annotations

import os
import shutil
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

import pipeline.store.ingest
import pipeline.store.lake
from pipeline.clock import FakeClock
from pipeline.columns import AMOUNT_COLUMNS
from pipeline.config import Settings, load_settings
from pipeline.db import connect
from pipeline.ledger import Ledger
from pipeline.simulator.files import FileSpec, build_rebate_file
from pipeline.store.ingest import ingest_due, load_by_hand
from pipeline.windows import RebateWindow, WindowKind
from tests.store.conftest import Digests

pytestmark = pytest.mark.slow

EARLY = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 5))
LATE = RebateWindow("api", date(2025, 1, 6), date(2025, 1, 10))


def source(tmp_path: Path, window: RebateWindow, *, end: date | None = None, orders_per_day: int = 12) -> Path:
    """A generated rebate file for the window (or for its first days only, up to `end`)."""
    spec = FileSpec(window.begin, end or window.end, window.broker_type, orders_per_day=orders_per_day)
    path = tmp_path / f"{window.window_id.replace(':', '_')}_{end}.csv"
    path.write_bytes(build_rebate_file(spec))
    return path


def load(settings: Settings, ledger: Ledger, clock: FakeClock, path: Path, window: RebateWindow) -> None:
    outcome = load_by_hand(settings, ledger, path, window, clock)
    assert outcome.result is not None, outcome.reason


def partition_files(settings: Settings) -> dict[str, int]:
    """Every partition file of the lake, relative to it, with its inode (a file rewritten gets a new one)."""
    lake = settings.layout.lake
    return {
        str(path.relative_to(lake)): path.stat().st_ino
        for table in ("rebate_details", "rebate_orders")
        for path in lake.glob(f"{table}/*/*/*/*.parquet")
    }


def order_keys_in_lake(settings: Settings) -> list[tuple[str, str, int]]:
    """Order keys the lake holds more than once (an order left behind in its old partition)."""
    pattern = settings.layout.lake / "rebate_orders" / "*" / "*" / "*" / "*.parquet"
    with duckdb.connect() as reader:
        return reader.execute(
            f"SELECT ord_id, broker_code, count(*) FROM read_parquet('{pattern}') GROUP BY ALL HAVING count(*) > 1"
        ).fetchall()


def test_polars_reads_the_lake_with_the_exact_sums_and_types_of_the_database(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path
) -> None:
    for window in (EARLY, LATE):
        load(settings, ledger, fake_clock, source(tmp_path, window), window)
    sums = [pl.col(column).sum() for column in AMOUNT_COLUMNS]
    details = pl.scan_parquet(settings.layout.lake / "rebate_details", hive_partitioning=True)
    orders = pl.scan_parquet(settings.layout.lake / "rebate_orders", hive_partitioning=True)
    lake_details = details.select(pl.len(), *sums).collect().row(0)
    lake_orders = orders.select(pl.len(), *sums).collect().row(0)
    amounts = ", ".join(f"sum({column})" for column in AMOUNT_COLUMNS)
    with connect(settings.rebates_db) as db:
        database_details = db.execute(f"SELECT count(*), {amounts} FROM rebate_details").fetchone()
        database_orders = db.execute(f"SELECT count(*), {amounts} FROM rebate_orders").fetchone()
    assert database_details is not None and database_orders is not None
    assert lake_details == database_details
    assert lake_orders == database_orders
    assert all(isinstance(value, Decimal) for value in lake_details[1:]), "amounts stay exact decimals"
    schema = details.collect_schema()
    assert schema["fee"] == pl.Decimal(38, 18)
    assert schema["ord_id"] == pl.String
    assert schema["trade_date"] == pl.Date
    assert schema["broker_type"] == pl.String


def test_a_publish_rewrites_only_the_partitions_the_load_touched(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, digests: Digests
) -> None:
    history = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 10))
    load(settings, ledger, fake_clock, source(tmp_path, history), history)
    before = partition_files(settings)
    day = RebateWindow("api", date(2025, 1, 11), date(2025, 1, 11))
    load(settings, ledger, fake_clock, source(tmp_path, day), day)
    after = partition_files(settings)
    rewritten = {path for path, inode in after.items() if before.get(path) != inode}
    new_day = {
        "rebate_details/account=default/broker_type=api/trade_date=2025-01-11/data.parquet",
        "rebate_orders/account=default/broker_type=api/first_trade_date=2025-01-11/data.parquet",
    }
    # orders filling on 10 and 11 January
    straddlers = {"rebate_orders/account=default/broker_type=api/first_trade_date=2025-01-10/data.parquet"}
    assert new_day <= rewritten <= new_day | straddlers
    assert len(before) == 20 and set(before) <= set(after)
    assert digests.lake(settings) == digests.database(settings)


def test_an_order_a_load_moves_to_another_partition_is_not_left_behind(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, digests: Digests
) -> None:
    """Windows load in any order, and a window can come back with fewer days: orders move between partitions.

    The later window first: orders filling on 5 and 6 January start on the 6th. Then the earlier one: they start on
    the 5th, a partition the load did not write days for is the one they leave. Then the earlier window again without
    its last day: they start on the 6th again, and the 5th's files go.
    """
    load(settings, ledger, fake_clock, source(tmp_path, LATE), LATE)
    load(settings, ledger, fake_clock, source(tmp_path, EARLY), EARLY)
    with connect(settings.rebates_db) as db:
        moved = db.execute("SELECT count(*) FROM rebate_orders WHERE windows = 2").fetchone()
    assert moved is not None and moved[0] > 0, "the generator has orders across 5 and 6 January"
    assert order_keys_in_lake(settings) == []
    assert digests.lake(settings) == digests.database(settings)

    load(settings, ledger, fake_clock, source(tmp_path, EARLY, end=date(2025, 1, 4)), EARLY)
    assert order_keys_in_lake(settings) == []
    assert digests.lake(settings) == digests.database(settings)
    gone = settings.layout.lake / "rebate_details" / "account=default" / "broker_type=api" / "trade_date=2025-01-05"
    assert not gone.exists(), "a day the window no longer has is removed from the lake"


def test_a_publish_that_died_halfway_is_finished_by_the_next_pass(
    settings: Settings,
    ledger: Ledger,
    fake_clock: FakeClock,
    tmp_path: Path,
    digests: Digests,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load(settings, ledger, fake_clock, source(tmp_path, EARLY), EARLY)
    real_replace = pipeline.store.lake._replace
    calls: list[Path] = []

    def dying(staged: Path, final: Path) -> None:
        calls.append(final)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process dies with two of the new files in place
        real_replace(staged, final)

    monkeypatch.setattr(pipeline.store.lake, "_replace", dying)
    with pytest.raises(KeyboardInterrupt):
        load_by_hand(settings, ledger, source(tmp_path, LATE), LATE, fake_clock)
    monkeypatch.undo()
    assert digests.lake(settings) != digests.database(settings)
    assert ingest_due(settings, ledger, fake_clock) == []  # nothing to load; the pass publishes what is missing
    assert digests.lake(settings) == digests.database(settings)
    assert not settings.layout.lake_staging.exists()


def test_a_pass_that_died_between_its_load_and_its_publish_is_published_by_the_next(
    settings: Settings,
    ledger: Ledger,
    fake_clock: FakeClock,
    tmp_path: Path,
    digests: Digests,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    load(settings, ledger, fake_clock, source(tmp_path, LATE), LATE)

    def dead(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline.store.ingest, "publish_lake", dead)
    with pytest.raises(KeyboardInterrupt):
        load_by_hand(settings, ledger, source(tmp_path, EARLY), EARLY, fake_clock)
    monkeypatch.undo()
    with connect(settings.rebates_db) as db:
        assert db.execute("SELECT count(*) FROM pending_order_ranges").fetchone() == (0,), "rebate_orders is current"
        assert db.execute("SELECT count(*) FROM lake_pending_ranges").fetchone() != (0,), "what moved is remembered"
    ingest_due(settings, ledger, fake_clock)
    assert order_keys_in_lake(settings) == []
    assert digests.lake(settings) == digests.database(settings)
    with connect(settings.rebates_db) as db:
        published = db.execute("SELECT max(last_load_id) FROM lake_publishes").fetchone()
        loads = db.execute("SELECT max(load_id) FROM rebate_loads").fetchone()
    assert published == loads


def lake_and_database_files(settings: Settings) -> dict[str, tuple[int, int]]:
    """Every file under the data folder's lake and the database, with its inode and modification time."""
    paths = [*settings.layout.lake.rglob("*"), *settings.rebates_db.parent.glob(settings.rebates_db.name + "*")]
    return {str(path): (path.stat().st_ino, path.stat().st_mtime_ns) for path in paths}


def test_a_pass_that_loads_nothing_writes_nothing_and_opens_the_database_once(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idle hour costs nothing: no lake or ledger file rewritten, no fsync, one connection to end the pass."""
    for window in (EARLY, LATE):
        load(settings, ledger, fake_clock, source(tmp_path, window), window)
    before = lake_and_database_files(settings)
    fsyncs: list[int] = []
    connections: list[str] = []
    real_connect = duckdb.connect

    def counted(database: str = ":memory:", *args: object, **kwargs: object) -> duckdb.DuckDBPyConnection:
        connections.append(database)
        return real_connect(database, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", fsyncs.append)
    monkeypatch.setattr(duckdb, "connect", counted)
    pipeline.store.ingest.refresh_and_publish(settings, loaded=False)
    assert connections == [str(settings.rebates_db)]
    assert ingest_due(settings, ledger, fake_clock) == []
    fake_clock.advance(timedelta(hours=1))
    assert ingest_due(settings, ledger, fake_clock) == []
    assert fsyncs == []
    assert lake_and_database_files(settings) == before


def test_a_pass_that_only_moves_a_window_rewrites_only_the_ledgers_small_files(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, digests: Digests
) -> None:
    """The lake's rebate_windows shows what the ledger says, even when no load came: only the small files change."""
    load(settings, ledger, fake_clock, source(tmp_path, EARLY), EARLY)
    partitions = partition_files(settings)
    windows_file = settings.layout.lake / "rebate_windows" / "data.parquet"
    old_windows = windows_file.stat().st_ino
    ledger.add_windows([(LATE, WindowKind.HISTORY)])
    assert ingest_due(settings, ledger, fake_clock) == []
    assert windows_file.stat().st_ino != old_windows
    assert partition_files(settings) == partitions
    with duckdb.connect(str(settings.layout.analysts), read_only=True) as analyst:
        states = analyst.execute("SELECT window_id, state FROM rebate_windows ORDER BY ALL").fetchall()
    assert states == [(EARLY.window_id, "loaded"), (LATE.window_id, "planned")]
    assert digests.lake(settings) == digests.database(settings)


def test_a_deleted_lake_is_written_again_whole(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, digests: Digests
) -> None:
    load(settings, ledger, fake_clock, source(tmp_path, EARLY), EARLY)
    shutil.rmtree(settings.layout.lake)
    ingest_due(settings, ledger, fake_clock)
    assert digests.lake(settings) == digests.database(settings)
    assert settings.layout.analysts.exists()


def test_the_entry_point_finds_its_lake_wherever_the_folder_is_moved(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(settings, ledger, fake_clock, source(tmp_path, EARLY), EARLY)
    shared = tmp_path / "shared" / "rebates"
    shutil.copytree(settings.layout.lake, shared)
    shutil.rmtree(settings.layout.lake)
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    relative = Path("..", "..", "shared", "rebates", "analysts.duckdb")
    with duckdb.connect(str(relative), read_only=True) as analyst:
        counted = analyst.execute("SELECT count(*), sum(broker_rebate) FROM rebate_details").fetchone()
        views = analyst.execute("SELECT sum(broker_rebate) FROM daily_commission_by_instrument_type").fetchone()
        complete = analyst.execute("SELECT bool_and(complete), count(*) FROM coverage").fetchone()
    with connect(settings.rebates_db) as db:
        expected = db.execute("SELECT count(*), sum(broker_rebate) FROM rebate_details").fetchone()
    assert counted == expected
    assert views == (expected[1],) if expected else False
    assert complete == (True, 5)


def test_the_entry_point_is_written_in_a_storage_version_duckdb_1_4_opens(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path
) -> None:
    load(settings, ledger, fake_clock, source(tmp_path, EARLY), EARLY)
    with duckdb.connect() as probe:
        probe.execute(f"ATTACH '{settings.layout.analysts}' AS analysts (READ_ONLY)")
        tags = probe.execute("SELECT tags FROM duckdb_databases() WHERE database_name = 'analysts'").fetchone()
    assert tags == ({"storage_version": "v1.4.0+"},)


def test_a_publish_of_many_days_writes_each_partition_once_and_whole(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, digests: Digests
) -> None:
    """A publish goes one day and one partition file at a time: no day is lost between them, none written twice."""
    history = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 10))
    load(settings, ledger, fake_clock, source(tmp_path, history, orders_per_day=4), history)
    assert len(partition_files(settings)) == 20
    assert digests.lake(settings) == digests.database(settings)
    oauth = RebateWindow("oauth", date(2025, 1, 1), date(2025, 1, 10))  # the same days, a second broker type
    load(settings, ledger, fake_clock, source(tmp_path, oauth, orders_per_day=4), oauth)
    assert len(partition_files(settings)) == 40
    assert digests.lake(settings) == digests.database(settings)


# --- several OKX broker accounts: one folder level per account --------------------------------------------------------


def load_two_accounts(settings: Settings, clock: FakeClock, tmp_path: Path) -> None:
    """EARLY's days for account default and for account eu (another broker's users, so other broker codes)."""
    for account, seed in (("default", 0), ("eu", 7)):
        window = RebateWindow("api", EARLY.begin, EARLY.end, account=account)
        spec = FileSpec(window.begin, window.end, "api", orders_per_day=12, seed=seed)
        path = tmp_path / f"{account}.csv"
        path.write_bytes(build_rebate_file(spec))
        load(settings, Ledger(settings.rebates_db, clock, account=account), clock, path, window)


def test_each_account_has_its_own_partitions_and_the_entry_point_shows_the_account(
    settings: Settings, fake_clock: FakeClock, tmp_path: Path, digests: Digests
) -> None:
    load_two_accounts(settings, fake_clock, tmp_path)
    lake = settings.layout.lake
    for table in ("rebate_details", "rebate_orders"):
        assert sorted(path.name for path in (lake / table).iterdir()) == ["account=default", "account=eu"]
    assert (lake / "rebate_details/account=eu/broker_type=api/trade_date=2025-01-03/data.parquet").exists()
    assert digests.lake(settings) == digests.database(settings)
    by_account = "SELECT account, count(*), sum(broker_rebate) FROM {} GROUP BY account ORDER BY account"
    with connect(settings.rebates_db) as db:
        expected = {
            table: db.execute(by_account.format(table)).fetchall() for table in ("rebate_details", "rebate_orders")
        }
    with duckdb.connect(str(settings.layout.analysts), read_only=True) as analyst:
        seen = {table: analyst.execute(by_account.format(table)).fetchall() for table in expected}
        daily = analyst.execute(by_account.format("daily_commission_by_broker_code").replace("count(*)", "sum(rows)"))
        daily_rows = daily.fetchall()
        coverage = analyst.execute(
            "SELECT account, count(*), bool_and(complete) FROM coverage GROUP BY account ORDER BY account"
        ).fetchall()
        small = {
            table: analyst.execute(f"SELECT DISTINCT account FROM {table} ORDER BY account").fetchall()
            for table in ("rebate_windows", "rebate_loads", "rebate_files")
        }
    assert seen == expected
    assert [(account, int(rows), rebate) for account, rows, rebate in daily_rows] == expected["rebate_details"]
    assert coverage == [("default", 5, True), ("eu", 5, True)]
    assert small == {key: [("default",), ("eu",)] for key in small}


def test_a_lake_in_the_layout_before_accounts_is_moved_whole_by_the_next_publish(
    settings: Settings, ledger: Ledger, fake_clock: FakeClock, tmp_path: Path, digests: Digests
) -> None:
    """An old lake (no account= level): the next publish rewrites it in the new layout and removes the old folders."""
    load(settings, ledger, fake_clock, source(tmp_path, EARLY), EARLY)
    lake = settings.layout.lake
    for table in ("rebate_details", "rebate_orders"):  # the lake as a publish before accounts left it
        (lake / table / "account=default" / "broker_type=api").rename(lake / table / "broker_type=api")
        (lake / table / "account=default").rmdir()
    with connect(settings.rebates_db) as db:
        db.execute("UPDATE lake_publishes SET layout = 1, entry_point = 'before accounts'")
    old_files = sorted(lake.glob("rebate_*/broker_type=*/*/*.parquet"))
    assert len(old_files) == 10

    pipeline.store.ingest.refresh_and_publish(settings, loaded=False)

    assert list(lake.glob("rebate_*/broker_type=*")) == [], "the old layout's folders are gone"
    assert len(partition_files(settings)) == 10
    assert digests.lake(settings) == digests.database(settings)
    with connect(settings.rebates_db) as db:
        expected = db.execute("SELECT count(*) FROM rebate_details").fetchone()
        last = db.execute("SELECT layout, entry_point FROM lake_publishes ORDER BY publish_id DESC LIMIT 1").fetchone()
    with duckdb.connect() as reader:  # every Parquet file under the folder: no row twice
        everything = reader.execute(f"SELECT count(*) FROM read_parquet('{lake}/rebate_details/**/*.parquet')")
        assert everything.fetchone() == expected
    with duckdb.connect(str(settings.layout.analysts), read_only=True) as analyst:
        assert analyst.execute("SELECT count(*) FROM rebate_details").fetchone() == expected
    assert last == (pipeline.store.lake.LAKE_LAYOUT, pipeline.store.lake.entry_point_fingerprint())

    before = partition_files(settings)
    pipeline.store.ingest.refresh_and_publish(settings, loaded=False)
    assert partition_files(settings) == before, "the layout moves once"


# --- the two partitioned tables published side by side --------------------------------------------------------------


def test_a_publish_on_two_threads_writes_the_same_files_as_one_on_a_single_thread(
    tmp_path: Path, fake_clock: FakeClock, digests: Digests
) -> None:
    """REBATES_DB_THREADS=2 writes rebate_details and rebate_orders on two cursors at once; 1 writes them in turn."""
    history = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 10))
    path = source(tmp_path, history, orders_per_day=6)
    lakes = {}
    for threads in (1, 2):
        data = tmp_path / f"threads{threads}"
        settings = load_settings(rebates_data_dir=data, rebates_db=data / "rebates.duckdb", rebates_db_threads=threads)
        load(settings, Ledger(settings.rebates_db, fake_clock), fake_clock, path, history)
        assert digests.lake(settings) == digests.database(settings)
        lake = settings.layout.lake
        lakes[threads] = {
            str(file.relative_to(lake)): file.read_bytes() for file in sorted(lake.glob("rebate_*/*/*/*/*.parquet"))
        }
    assert len(lakes[2]) == 20
    assert lakes[2] == lakes[1]
