"""`rebates sql` reads the lake and nothing else: each way out is refused with a message, and queries still run."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from pipeline.cli import Exit, app
from pipeline.clock import FakeClock
from pipeline.config import Settings, load_settings
from pipeline.db import connect
from pipeline.ledger import Ledger
from pipeline.simulator.files import FileSpec, build_rebate_file
from pipeline.store.analysts import QUERIES, NotAQueryError, open_entry_point, run_query
from pipeline.store.ingest import load_by_hand
from pipeline.windows import RebateWindow

pytestmark = pytest.mark.slow

SECRET = "never-read-7d1e"
"""What every file outside the lake holds: no output may show it."""

WINDOW = RebateWindow("api", date(2025, 1, 1), date(2025, 1, 5))

OUTSIDE = "rebates sql reads the lake's folder and nothing else"
"""The message of a read outside the lake (DuckDB refuses it; `explain` says why)."""


def not_a(kind: str) -> str:
    """The message of a statement `rebates sql` does not run."""
    return f"rebates sql only reads the lake: it runs {QUERIES}, not {kind}"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A lake with one loaded window; beside it a secret file, and inside it symlinks to it and to its folder."""
    root = tmp_path_factory.mktemp("analysts")
    settings = load_settings(rebates_data_dir=root / "data", rebates_db=root / "data" / "rebates.duckdb")
    clock = FakeClock(datetime(2025, 3, 1, 2, tzinfo=UTC))
    source = root / "file.csv"
    source.write_bytes(build_rebate_file(FileSpec(WINDOW.begin, WINDOW.end, "api", orders_per_day=5)))
    assert load_by_hand(settings, Ledger(settings.rebates_db, clock), source, WINDOW, clock).result is not None
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(f"secret\n{SECRET}\n")
    (settings.layout.lake / "escape.csv").symlink_to(outside / "secret.csv")
    (settings.layout.lake / "escape_dir").symlink_to(outside, target_is_directory=True)
    return settings


def fingerprint(settings: Settings) -> dict[str, str]:
    """Every file under the data directory (the lake, the archive, the pipeline's database) and a hash of its bytes."""
    return {
        str(path.relative_to(settings.rebates_data_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(settings.rebates_data_dir.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


ESCAPES = {
    # writes, into the lake or anywhere else
    "copy to a file": ("COPY (SELECT 1) TO '{outside}/copied.csv'", not_a("COPY statements")),
    "copy into the lake": ("COPY (FROM rebate_details) TO '{lake}/rebate_details/x.parquet'", not_a("COPY")),
    "explain analyze copy": ("EXPLAIN ANALYZE COPY (SELECT 1) TO '{lake}/x.csv'", not_a("an EXPLAIN of anything")),
    "export database": ("EXPORT DATABASE '{lake}/exported'", not_a("EXPORT statements")),
    "create table": ("CREATE TABLE t AS SELECT 1", not_a("CREATE statements")),
    "create temp table": ("CREATE TEMP TABLE t AS FROM rebate_details", not_a("CREATE statements")),
    "insert": ("INSERT INTO rebate_details FROM rebate_details", not_a("INSERT statements")),
    "update after a query": ("SELECT 1; UPDATE rebate_details SET fee = 0", not_a("UPDATE statements")),
    "delete": ("DELETE FROM rebate_windows", not_a("DELETE statements")),
    # other databases
    "attach the pipeline's database": ("ATTACH '{db}' AS p (READ_WRITE)", not_a("ATTACH statements")),
    "attach a new file in the lake": ("ATTACH '{lake}/new.duckdb' AS n (READ_WRITE)", not_a("ATTACH statements")),
    "detach": ("DETACH analysts", not_a("DETACH statements")),
    "use": ("USE memory", not_a("SET statements")),
    # files outside the lake
    "read_text /etc/passwd": ("FROM read_text('/etc/passwd')", OUTSIDE),
    "read_text .env": ("FROM read_text('.env')", OUTSIDE),
    "read_csv outside the lake": ("FROM read_csv('{outside}/secret.csv')", OUTSIDE),
    "read_csv of the archive": ("FROM read_csv('{data}/raw/*/*')", OUTSIDE),
    "a relative path out of the lake": ("FROM read_text('{lake}/../../outside/secret.csv')", OUTSIDE),
    "a symlink out of the lake": ("FROM read_text('{lake}/escape.csv')", OUTSIDE),
    "a symlinked folder out of the lake": ("FROM read_text('{lake}/escape_dir/secret.csv')", OUTSIDE),
    "glob outside the lake": ("FROM glob('/etc/*')", OUTSIDE),
    "the network": ("FROM read_csv('http://127.0.0.1:9/x.csv')", OUTSIDE),
    # extensions and settings
    "install": ("INSTALL httpfs", not_a("LOAD statements")),
    "load": ("LOAD httpfs", not_a("LOAD statements")),
    "enable external access": ("SET enable_external_access = true", not_a("SET statements")),
    "reset allowed directories": ("RESET allowed_directories", not_a("SET statements")),
    "unlock the configuration": ("SET lock_configuration = false", not_a("SET statements")),
    "point the views elsewhere": ("SET VARIABLE rebates_lake = '/etc'", not_a("SET statements")),
    "pragma": ("PRAGMA enable_profiling", not_a("PRAGMA statements")),
    "call": ("CALL enable_profiling()", not_a("CALL statements")),
}


@pytest.mark.parametrize(("statement", "message"), ESCAPES.values(), ids=ESCAPES.keys())
def test_rebates_sql_refuses_every_way_out_of_the_lake(
    published: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, statement: str, message: str
) -> None:
    (tmp_path / ".env").write_text(f"# {SECRET}\n")
    monkeypatch.setenv("REBATES_DATA_DIR", str(published.rebates_data_dir))
    monkeypatch.setenv("REBATES_DB", str(published.rebates_db))
    monkeypatch.setenv("COLUMNS", "1000")  # the message on one line
    data = published.rebates_data_dir
    sql = statement.format(
        lake=published.layout.lake, data=data, db=published.rebates_db, outside=data.parent / "outside"
    )
    before = fingerprint(published)
    result = CliRunner().invoke(app, ["sql", "-c", sql])
    assert result.exit_code == Exit.UNEXPECTED, result.output
    assert message in " ".join(result.output.split()), result.output
    assert SECRET not in result.output and "root:" not in result.output
    assert fingerprint(published) == before
    assert not (data.parent / "outside" / "copied.csv").exists()


def test_the_lake_answers_queries_through_the_restricted_connection(published: Settings) -> None:
    with connect(published.rebates_db) as db:
        expected = db.execute("SELECT count(*), sum(broker_rebate) FROM rebate_details").fetchone()
    with open_entry_point(published.layout.analysts) as connection:
        answers = {
            query: run_query(connection, query).rows
            for query in (
                "SELECT count(*), sum(broker_rebate) FROM rebate_details",
                "FROM rebate_orders SELECT count(*) > 0",
                "SELECT count(*) FROM coverage WHERE complete",
                "SELECT count(*) > 0 FROM daily_commission_by_broker_code",
                "DESCRIBE rebate_windows",
                "EXPLAIN ANALYZE SELECT count(*) FROM rebate_files",
                "SELECT 1; SELECT 2 AS last",
            )
        }
    assert answers["SELECT count(*), sum(broker_rebate) FROM rebate_details"] == (expected,)
    assert answers["FROM rebate_orders SELECT count(*) > 0"] == ((True,),)
    assert answers["SELECT count(*) FROM coverage WHERE complete"] == ((5,),)
    assert answers["SELECT count(*) > 0 FROM daily_commission_by_broker_code"] == ((True,),)
    assert answers["SELECT 1; SELECT 2 AS last"] == ((2,),)


def test_the_connection_cannot_be_unlocked_even_past_the_statement_check(published: Settings) -> None:
    with open_entry_point(published.layout.analysts) as connection:
        for statement in ("SET enable_external_access = true", "RESET allowed_directories"):
            with pytest.raises(duckdb.InvalidInputException, match="the configuration has been locked"):
                connection.execute(statement)
        with pytest.raises(NotAQueryError):
            run_query(connection, "SET lock_configuration = false")


def test_the_prompt_says_why_it_refused_and_goes_on(published: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REBATES_DATA_DIR", str(published.rebates_data_dir))
    typed = "COPY rebate_windows TO 'w.csv';\nSELECT 40 + 2 AS answer;\n.quit\n"
    result = CliRunner().invoke(app, ["sql"], input=typed)
    assert result.exit_code == 0, result.output
    assert "not COPY statements" in result.output and "42" in result.output
    assert not Path("w.csv").exists()
